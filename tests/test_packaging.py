"""The wheel installs the split layout correctly, and `import graphc` stays light.

graphc/ is the frontend package and the folders ir/, passes/, codegen/, runtime/ install as
graphc.ir, graphc.passes, graphc.codegen, graphc.runtime (setup.py's package_dir mapping). Inside
the repository, `python -c "import graphc.ir"` can find the bare graphc/ folder, so these checks
build a real wheel from a copy of the sources, install it into a fresh venv and import it from a
directory outside the repository.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]

# Installed package -> source folder; the same mapping as setup.py's PACKAGE_DIRS.
SOURCE_DIRS = {
    "graphc": "graphc",
    "graphc.ir": "ir",
    "graphc.passes": "passes",
    "graphc.codegen": "codegen",
    "graphc.runtime": "runtime",
}
UNMAPPED_NAMES = ("ir", "passes", "codegen", "runtime")

pytestmark = pytest.mark.timeout(60)  # enforced with pytest-timeout (in the `dev` extra)


def _run(cmd, *, cwd, timeout=45, env=None):
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _can_build_without_isolation() -> bool:
    """Whether this interpreter has what `pip wheel --no-build-isolation` needs (no network then)."""
    try:
        version = tuple(int(x) for x in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if version < (64, 0):
        return False
    if version >= (70, 1):  # bdist_wheel is built into setuptools from 70.1 on
        return True
    try:
        metadata.version("wheel")
        return True
    except metadata.PackageNotFoundError:
        return False


def _copy_sources(dest: Path) -> None:
    """The files a build needs: top-level files (pyproject.toml, setup.py, README...) + source folders."""
    dest.mkdir()
    for item in REPO.iterdir():
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, dest / item.name)
    for folder in SOURCE_DIRS.values():
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from a copy of the sources, installed with --no-deps into a fresh venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    env = _clean_env()

    # Build from a copy, so no build/ or *.egg-info lands in the repository and no stale build/lib
    # (setuptools never cleans it) can smuggle deleted modules into the wheel.
    _copy_sources(src)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist]
    if _can_build_without_isolation():
        build += ["--no-build-isolation", "--no-index"]
    # else: pip fetches setuptools into an isolated build env (install the `dev` extra to avoid it)
    _run([*build, src], cwd=tmp, env=env, timeout=55)
    (wheel,) = dist.glob("graphc-*.whl")

    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp, env=env, timeout=55)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp, env=env).strip())
    # numpy & co. may live in the environment running these tests (a venv), which the new venv's
    # --system-site-packages does not see: add its site-packages after the new venv's own. Paths
    # listed in a .pth file are only appended; .pth files inside them (an editable install's
    # finder) are not run.
    outer = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]
    (site / "_outer_env.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")

    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel], cwd=tmp, env=env, timeout=55)
    outside = tmp / "elsewhere"
    outside.mkdir()
    return SimpleNamespace(wheel=wheel, venv=venv, python=python, site=site.resolve(), cwd=outside, env=env)


def test_wheel_installs_split_layout_under_graphc(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()

    # Only graphc/ and its .dist-info at the top of the wheel: no top-level ir/, runtime/ ...
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"graphc"}, sorted(tops)

    # Every source file made it in under its installed name (a subpackage folder without an
    # __init__.py is skipped by package discovery, and its files would be missing here).
    missing = []
    for package, folder in SOURCE_DIRS.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(REPO / folder).as_posix()
            wanted = package.replace(".", "/") + "/" + rel
            if wanted not in names:
                missing.append(f"{path.relative_to(REPO)} (expected at {wanted}; is an __init__.py missing?)")
    assert not missing, "source files missing from the wheel:\n  " + "\n  ".join(missing)

    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "graphc = graphc.__main__:main" in text, text
    assert (installed.venv / "bin" / "graphc").exists()

    # Import from a directory outside the repository.
    code = textwrap.dedent(
        """
        import json, graphc, graphc.ir, graphc.passes, graphc.codegen, graphc.runtime
        print(graphc.ir.__file__)
        mods = (graphc, graphc.ir, graphc.passes, graphc.codegen, graphc.runtime)
        print(json.dumps({m.__name__: list(m.__path__) for m in mods}))
        """
    )
    out = _run([installed.python, "-c", code], cwd=installed.cwd, env=installed.env).splitlines()
    ir_file, paths = Path(out[0]).resolve(), json.loads(out[1])
    assert ir_file.is_relative_to(installed.site), f"graphc.ir came from {ir_file}, not from {installed.site}"
    assert not ir_file.is_relative_to(REPO), ir_file
    for name, dirs in paths.items():
        want = installed.site / name.replace(".", "/")
        assert [Path(d).resolve() for d in dirs] == [want], f"{name}.__path__ = {dirs}, expected [{want}]"

    installed_tops = {p.name for p in installed.site.iterdir()}
    stray = [n for n in UNMAPPED_NAMES if n in installed_tops or f"{n}.py" in installed_tops]
    assert not stray, f"top-level {stray} installed in {installed.site}"


def test_import_graphc_does_not_import_triton_or_torch(installed):
    # A meta-path spy sees every attempt, even a guarded `try: import torch` when torch is absent.
    code = textwrap.dedent(
        """
        import json, sys

        HEAVY = ("triton", "torch")

        class Spy:
            attempted = set()

            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HEAVY:
                    Spy.attempted.add(name)
                return None

        before = {m for m in sys.modules if m.split(".")[0] in HEAVY}
        sys.meta_path.insert(0, Spy())
        import graphc
        loaded = {m for m in sys.modules if m.split(".")[0] in HEAVY} - before
        print(json.dumps({"attempted": sorted(Spy.attempted), "loaded": sorted(loaded)}))
        """
    )
    out = json.loads(_run([installed.python, "-c", code], cwd=installed.cwd, env=installed.env).splitlines()[-1])
    assert out == {"attempted": [], "loaded": []}, (
        f"`import graphc` imports {out}; import triton/torch lazily, where a kernel is compiled or run"
    )
