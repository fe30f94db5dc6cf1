"""Finding and loading MPI: mpi4py over the MPI library of the ``mpich`` package, or the machine's own.

mpi4py's wheels are built against the MPI ABI and look for ``libmpi`` when ``mpi4py.MPI`` is first
imported: in the running environment's ``lib`` folder, the user's and the system's, then the
loader's path (see mpi4py's "Binary wheels" documentation). That finds the ``mpich`` package's
library when both are installed in the same venv, but not from a venv layered over another one, a
``--user`` install or a ``--target`` folder. So before that import we point ``MPI4PY_LIBMPI`` at
the library the ``mpich`` package installed, found through its own file list. A cluster's MPI wins:
if ``MPI4PY_LIBMPI`` is already set, or ``mpich`` is not installed, mpi4py searches as it always does.
"""
from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from types import ModuleType

_INSTALL_HINT = "pip install 'graphc[mpi]' (installs mpi4py and the MPICH library from PyPI)"


@functools.cache
def _mpich_files() -> dict[str, Path]:
    """The ``mpich`` package's libmpi and mpiexec, by name, where it is installed."""
    import importlib.metadata as md
    try:
        dist = md.distribution("mpich")
    except md.PackageNotFoundError:
        return {}
    found = {}
    for f in dist.files or ():
        name = f.name
        if name in ("libmpi.so.12", "libmpi.12.dylib", "mpiexec", "mpiexec.exe"):
            p = Path(dist.locate_file(f)).resolve()
            if p.exists():
                found[name] = p
    return found


def _point_mpi4py_at_mpich() -> None:
    if "MPI4PY_LIBMPI" in os.environ:
        return
    files = _mpich_files()
    lib = files.get("libmpi.so.12") or files.get("libmpi.12.dylib")
    if lib is not None:
        # set in the environment, so the ranks a launcher starts from here inherit it too
        os.environ["MPI4PY_LIBMPI"] = str(lib)


@functools.cache
def load_mpi() -> ModuleType:
    """``mpi4py.MPI``, or an ImportError naming what is missing and how to install it."""
    try:
        import mpi4py  # noqa: F401  (installed?)
    except ImportError:
        raise ImportError(f"graphc.distributed needs mpi4py and an MPI library: {_INSTALL_HINT}") from None
    _point_mpi4py_at_mpich()
    try:
        from mpi4py import MPI
    except RuntimeError as e:  # mpi4py found no libmpi
        raise RuntimeError(f"mpi4py could not load an MPI library ({e}). {_INSTALL_HINT}, or set "
                           "MPI4PY_LIBMPI to your cluster's libmpi.so") from None
    return MPI


def find_mpiexec() -> str:
    """The ``mpiexec`` to launch ranks with: ``$GRAPHC_MPIEXEC``, the ``mpich`` package's, else
    the one on PATH (a cluster's)."""
    exe = os.environ.get("GRAPHC_MPIEXEC")
    if exe:
        return exe
    _point_mpi4py_at_mpich()  # so the ranks find the same library
    own = _mpich_files().get("mpiexec") or _mpich_files().get("mpiexec.exe")
    if own is not None:
        return str(own)
    on_path = shutil.which("mpiexec") or shutil.which("mpirun")
    if on_path is None:
        raise RuntimeError(f"no mpiexec found: {_INSTALL_HINT}, or put your MPI's mpiexec on PATH "
                           "(or set GRAPHC_MPIEXEC)")
    return on_path

