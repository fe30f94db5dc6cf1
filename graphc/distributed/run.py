"""Start a data-parallel job on this machine: ``python -m graphc.distributed.run --nproc 2 train.py
ARGS`` (or torchrun's ``--nproc_per_node 2``). It runs ``mpiexec -n 2`` (the ``mpich`` package's,
else the one on PATH) with each rank's launcher variables set (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) before the script starts, as torchrun sets them. The exit
status is mpiexec's: non-zero when any rank failed. Plain ``mpiexec -n 2 python train.py`` works
too (``init_process_group`` sets the variables then).
"""
from __future__ import annotations

import argparse
import os
import runpy
import shlex
import signal
import subprocess
import sys
import traceback

from ._mpi import find_mpiexec

# (rank, world size, local rank, local world size) as MPICH's hydra and Open MPI's mpiexec name them
_MPI_ENV = (("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
             "OMPI_COMM_WORLD_LOCAL_SIZE"))
_WORKER = "--graphc-worker"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m graphc.distributed.run",
        description="Run a training script on several processes with mpiexec (graphc.distributed).")
    p.add_argument("--nproc", "--nproc_per_node", "--nproc-per-node", dest="nproc", type=int, default=1,
                   help="processes per machine (default 1)")
    p.add_argument("--nnodes", type=int, default=1, help="machines (more than 1 needs --hostfile)")
    p.add_argument("--standalone", action="store_true", help="torchrun's flag for one machine (the default here)")
    p.add_argument("--hostfile", help="the machines, one per line (passed to mpiexec's -f / --hostfile)")
    p.add_argument("--mpiexec-args", default="", help="more arguments for mpiexec, as one string")
    p.add_argument("-m", dest="module", action="store_true", help="run the script argument as a module")
    p.add_argument("--no-python", action="store_true", help="run the script as a program, not with Python")
    p.add_argument("script", help="the training script (or module with -m)")
    p.add_argument("script_args", nargs=argparse.REMAINDER)
    return p


def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in out.stdout + out.stderr or "OpenRTE" in out.stdout + out.stderr


def mpiexec_command(args: argparse.Namespace) -> list[str]:
    """The mpiexec command line that starts ``args``' job."""
    if args.nproc < 1:
        raise SystemExit(f"--nproc must be at least 1, got {args.nproc}")
    if args.nnodes > 1 and not args.hostfile:
        raise SystemExit("--nnodes > 1 needs --hostfile naming the machines (or use your cluster's mpiexec "
                         "directly: mpiexec -n <total> python train.py)")
    mpiexec = find_mpiexec()
    cmd = [mpiexec, "-n", str(args.nproc * args.nnodes)]
    if _is_open_mpi(mpiexec):
        # Open MPI refuses more ranks than cores and running as root unless told
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
        if args.hostfile:
            cmd += ["--hostfile", args.hostfile, "--npernode", str(args.nproc)]
    elif args.hostfile:
        cmd += ["-f", args.hostfile, "-ppn", str(args.nproc)]
    cmd += shlex.split(args.mpiexec_args)
    if args.no_python:
        return cmd + [args.script] + args.script_args
    return cmd + [sys.executable, "-m", "graphc.distributed.run", _WORKER] + (["-m"] if args.module else []) + [
        args.script] + args.script_args


def _worker(argv: list[str]) -> None:
    """One rank: set torchrun's variables from MPI's, then run the script as ``__main__``."""
    for names in _MPI_ENV:
        if names[0] in os.environ:
            for ours, theirs in zip(("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"), names):
                if theirs in os.environ:
                    os.environ.setdefault(ours, os.environ[theirs])
            break
    module = argv[:1] == ["-m"]
    if module:
        argv = argv[1:]
    sys.argv = list(argv)
    try:
        if module:
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            _abort(f"exited with status {e.code}")
        raise
    except BaseException:
        traceback.print_exc()
        _abort("raised")


def _abort(what: str) -> None:
    """End every rank: the others may be waiting for this one in a collective."""
    sys.stdout.flush()
    sys.stderr.write(f"graphc.distributed.run: rank {os.environ.get('RANK', '?')} {what}; aborting all ranks\n")
    sys.stderr.flush()
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.COMM_WORLD.Abort(1)
    # Without MPI started, mpiexec ends the others only when a rank dies by a signal (a plain
    # non-zero exit leaves them waiting)
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [_WORKER]:
        _worker(argv[1:])
        return 0
    args = _parser().parse_args(argv)
    proc = subprocess.Popen(mpiexec_command(args))
    # mpiexec ends the job on SIGTERM; without passing it on, this process would die alone and
    # leave the ranks running
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # mpiexec got the terminal's SIGINT too; wait for it to end the job
            continue


if __name__ == "__main__":
    sys.exit(main())
