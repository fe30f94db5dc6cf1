"""graphc.distributed on MPI, on this machine: one MPI job per case runs every check of
tests/distributed/checks.py (collectives against numpy, DDP training against one process), with
2 and 3 processes (3 oversubscribes CI's 2 cores); a failing rank ends the whole job."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason="graphc.distributed needs mpi4py (pip install 'graphc[mpi]')")

from graphc.distributed._mpi import find_mpiexec  # noqa: E402

HERE = Path(__file__).parent / "distributed"
ROOT = Path(__file__).parent.parent
CHECKS = [c for c in (HERE / "checks.py").read_text().split("CHECKS = [")[1].split("]")[0].replace("\n", "").split(",")]


def run(cmd, timeout=120):
    """Run an MPI job; on a timeout kill every process it started (mpiexec's own death would leave
    its ranks spinning) and fail showing what it printed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"the MPI job hung (killed after {timeout} s):\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("nproc", [2, 3])
def test_every_check(nproc):
    # 2 processes through the launcher, 3 with plain mpiexec
    if nproc == 2:
        cmd = [sys.executable, "-m", "graphc.distributed.run", "--nproc_per_node", "2", str(HERE / "checks.py")]
    else:
        cmd = [find_mpiexec(), "-n", "3", sys.executable, str(HERE / "checks.py")]
    r = run(cmd)
    assert r.returncode == 0, r.stdout + r.stderr
    done = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("ok ")]
    assert done == [c.strip() for c in CHECKS], r.stdout + r.stderr


@pytest.mark.timeout(100)
@pytest.mark.parametrize("how", ["mpiexec", "launcher-before-init"])
def test_a_failing_rank_ends_every_rank(how):
    script = str(HERE / "fails.py")
    if how == "mpiexec":
        cmd = [find_mpiexec(), "-n", "2", sys.executable, script]
    else:
        cmd = [sys.executable, "-m", "graphc.distributed.run", "--nproc", "2", script]
        cmd += ["--before-init"] if how.endswith("before-init") else []
    r = run(cmd, timeout=60)  # a hang fails the test
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "ValueError: rank 1 failed on purpose" in out, out
    assert "aborting all ranks" in out, out


def test_launcher_command_line(monkeypatch):
    from graphc.distributed import run as launcher
    monkeypatch.setattr(launcher, "find_mpiexec", lambda: "/x/mpiexec")
    monkeypatch.setattr(launcher, "_is_open_mpi", lambda exe: False)
    args = launcher._parser().parse_args(["--nproc_per_node", "4", "train.py", "--lr", "0.1"])
    assert launcher.mpiexec_command(args) == ["/x/mpiexec", "-n", "4", sys.executable, "-m", "graphc.distributed.run",
                                              "--graphc-worker", "train.py", "--lr", "0.1"]
    args = launcher._parser().parse_args(["--nproc", "2", "--nnodes", "3", "--hostfile", "hosts", "t.py"])
    assert launcher.mpiexec_command(args)[:7] == ["/x/mpiexec", "-n", "6", "-f", "hosts", "-ppn", "2"]
    monkeypatch.setattr(launcher, "_is_open_mpi", lambda exe: True)
    args = launcher._parser().parse_args(["--nproc", "3", "t.py"])
    assert "--oversubscribe" in launcher.mpiexec_command(args)
    with pytest.raises(SystemExit, match="needs --hostfile"):
        launcher.mpiexec_command(launcher._parser().parse_args(["--nnodes", "2", "t.py"]))


def test_without_a_process_group():
    import graphc.distributed as dist
    assert not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            fn()
    import graphc
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.all_reduce(graphc.ones(2))
    with pytest.raises(ValueError, match="Invalid backend: 'tcp'"):
        dist.init_process_group("tcp")


def test_finds_the_mpich_package_library(tmp_path):
    """mpi4py alone does not find the mpich package's library from a venv layered over the one
    it is installed in; graphc points it there (MPI4PY_LIBMPI)."""
    from graphc.distributed import _mpi
    files = _mpi._mpich_files()
    if not files:
        pytest.skip("the mpich package is not installed (a system MPI is used)")
    # _mpi.py loaded alone (importing graphc would take most of the time)
    code = (f"import os, importlib.util as u; s = u.spec_from_file_location('m', {str(Path(_mpi.__file__))!r}); "
            "m = u.module_from_spec(s); s.loader.exec_module(m); MPI = m.load_mpi(); "
            "print(os.environ['MPI4PY_LIBMPI']); print(MPI.Get_library_version().split()[0])")
    env = {k: v for k, v in os.environ.items() if k != "MPI4PY_LIBMPI"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lib, name = r.stdout.split()
    assert Path(lib).exists() and name == "MPICH"


@pytest.mark.timeout(150)
def test_ddp_digits_example_reaches_the_single_process_accuracy():
    pytest.importorskip("sklearn")
    r = run([sys.executable, "-m", "graphc.distributed.run", "--nproc", "2", "examples/ddp_digits.py",
             "--model", "mlp", "--epochs", "2"], timeout=140)
    assert r.returncode == 0, r.stdout + r.stderr
    acc = float(r.stdout.strip().splitlines()[-1].split("test accuracy ")[1].split("%")[0])
    # one process (python examples/digits_classifier.py --model mlp --epochs 2, the same global
    # batch and schedule) reaches 92.2%; the shuffles differ, so allow 2 points
    assert acc >= 90.2, r.stdout


@pytest.mark.timeout(100)
def test_one_process_without_mpiexec_and_launcher_variables_that_disagree():
    code = """
import os
import graphc as torch, graphc.distributed as dist
os.environ["WORLD_SIZE"] = "2"  # as torchrun would set it for a job MPI did not start
try:
    dist.init_process_group()
except RuntimeError as e:
    print("refused:", e)
assert not dist.is_initialized() and "RANK" not in os.environ
del os.environ["WORLD_SIZE"]
try:
    dist.init_process_group(world_size=2)
except ValueError as e:
    print("refused:", e)
dist.init_process_group(rank=0, world_size=1)  # python train.py: a world of one process
t = torch.ones(2)
dist.all_reduce(t)
print(t.tolist(), dist.get_world_size(), os.environ["RANK"], os.environ["LOCAL_RANK"])
"""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "WORLD_SIZE=2, but MPI says 1" in lines[0] and "mpiexec" in lines[0]
    assert "world_size=2, but MPI started this process with world_size=1" in lines[1]
    assert lines[2] == "[1.0, 1.0] 1 0 0"
