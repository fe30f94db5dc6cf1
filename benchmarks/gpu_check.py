"""Check and measure graphc's GPU path on a machine with an NVIDIA GPU and no network.

One run, one JSON file. Sections, in order; each is recorded as ok / failed (with the traceback's
tail) / skipped (with the reason), and a failure never stops the sections after it:

  environment  python, numpy, cupy, triton, torch versions; GPU name, compute capability, memory,
               SM count, driver and runtime versions (through ``cupy.cuda.runtime``)
  install      with ``--install``: ``pip install --no-deps --no-build-isolation -e .`` in the
               repository root; then checks that ``import graphc`` resolves to this repository
  tests        ``pytest -m cuda tests/`` with ``GRAPHC_REAL_CUDA=1``: summary line, counts, the
               names of failed tests and the output's tail
  benchmarks   in one child process on the device (so a hang or crash cannot stop the report):
    copy                   device-to-device copy of 1 GiB: GB/s counting bytes read + written (the
                           ceiling for the % figures), plus the datasheet figure (memory clock x bus
                           width x 2) from the GPU's properties
    pointwise.*            ((x * 1.5 + y).sigmoid() * x - 0.25).tanh() on 64M float32: graphc
                           compiled (fused) and the same expression unfused in CuPy
    sum_last, softmax_last, sum_first
                           x.sum(-1), x.softmax(-1), x.sum(0) on (16384, 4096) float32
    matmul_fp32/fp16.*     relu(a @ b + bias) at 4096^3: graphc compiled vs cuBLAS (cupy.matmul and
                           the epilogue in CuPy), TFLOP/s
    mlp.*, transformer.*   training steps (MLP 256x784-2048-2048-10 with AdamW; one
                           TransformerEncoderLayer(256, 4, 1024) + linear head, batch 32, seq 128,
                           Adam): graphc eager, graphc with the loss function compiled, PyTorch eager
                           and torch.compile, all from the same initial weights
  Every benchmark checks its result against a float64 reference (for training: the first loss,
  before any update, against graphc eager's in float64 on the CPU) before timing; it is timed with
  CUDA events through CuPy after warm-up, median of repeats, on random inputs. ``max_rel_err`` is
  max|out - ref| / max|ref| and ``rel_l2_err`` is ||out - ref|| / ||ref||. Minimum bytes (each
  input read once, each output written once) give GB/s; ``pct_of_copy_peak`` compares that with
  the measured copy.
  ``ratios`` at the end: graphc vs cuBLAS, graphc vs PyTorch, fused vs unfused.

The whole run keeps to ``--budget`` seconds (default 330, under the 6 minutes a lent GPU machine
allows): every section and benchmark checks the time left and records "skipped: out of time"
rather than overrun, and every subprocess has a timeout.

Usage, on the GPU machine from the repository root (a short table is printed at the end):

    python3 benchmarks/gpu_check.py --install --out $OUT/gpu_check.json

Options: ``--install`` (pip install -e . first; graphc must be installed for the rest), ``--out
PATH`` (default gpu_check.json, rewritten after every section), ``--budget SECONDS`` (default 330),
``--quick`` (tiny shapes and few repeats), ``--device cpu`` (below).

Without a GPU, the same code paths on the CPU with tiny shapes: numpy arrays, graphc's
``backend="triton"`` kernels under Triton's interpreter, wall-clock timing; install, tests and
PyTorch are skipped (tests/test_gpu_check_smoke.py runs this):

    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu_check.json
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]

INSTALL_TIMEOUT_S = 120
TESTS_TIMEOUT_S = 150
PER_TEST_TIMEOUT_S = 60
BENCH_RESERVE_S = 150  # the tests section leaves at least this much for the benchmarks
TAIL_CHARS = 3000


# ---------------------------------------------------------------------------------------------
# Time budget, sections, subprocesses
# ---------------------------------------------------------------------------------------------

class Deadline:
    """Seconds left until the end of the run's budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def _tail(text: str, n: int = TAIL_CHARS) -> str:
    return text if len(text) <= n else "..." + text[-n:]


def _failure(exc: BaseException) -> dict[str, Any]:
    return {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc)[:500]}",
            "traceback": _tail(traceback.format_exc())}


def run_section(name: str, fn: Callable[[], dict[str, Any]], deadline: Deadline, need_s: float) -> dict[str, Any]:
    """``fn()`` recorded as a section: its own dict (``status`` defaults to ok), a failure with the
    traceback's tail, or skipped when less than ``need_s`` seconds are left."""
    if deadline.left() < need_s:
        return {"status": "skipped", "reason": "out of time"}
    t0 = time.monotonic()
    try:
        result = {"status": "ok", **fn()}
    except Exception as e:  # one section's failure is a finding, not the end of the run
        result = _failure(e)
    result["seconds"] = round(time.monotonic() - t0, 2)
    print(f"[{name}] {result['status']} ({result['seconds']} s)"
          + (f": {result['reason']}" if result.get("reason") else ""), flush=True)
    return result


def run_command(cmd: list[str], timeout: float, **kwargs: Any) -> tuple[int | None, str]:
    """(exit code, stdout+stderr) of ``cmd``; None when it ran past ``timeout`` seconds. The command
    gets its own process group, killed whole on timeout, so helpers it started (pytest workers,
    torch.compile's compile workers) cannot outlive it and hold the run up."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kwargs)
    try:
        out, _ = proc.communicate(timeout=max(timeout, 1))
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a helper left the group and holds the pipe: give up on the output
            proc.kill()
            out = ""
        return None, out + f"\n[killed after {timeout:.0f} s]"


# ---------------------------------------------------------------------------------------------
# 1-3: environment, install, tests
# ---------------------------------------------------------------------------------------------

def _dist_version(*names: str) -> str | None:
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{name} {importlib.metadata.version(name)}"
    return None


def environment(device: str) -> dict[str, Any]:
    """Package versions (from their metadata: no imports) and, on cuda, the GPU's properties."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
        "numpy": np.__version__, "cupy": _dist_version("cupy-cuda13x", "cupy-cuda12x", "cupy"),
        "triton": _dist_version("triton"), "torch": _dist_version("torch"),
    }
    if device != "cuda":
        env["gpu"] = "skipped: cpu mode"
        return env
    import cupy
    rt = cupy.cuda.runtime
    props = rt.getDeviceProperties(0)
    free, total = rt.memGetInfo()
    env["gpu"] = {
        "count": rt.getDeviceCount(),
        "name": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        "compute_capability": f"{props['major']}.{props['minor']}",
        "total_memory_gib": round(total / 2**30, 2), "free_memory_gib": round(free / 2**30, 2),
        "sm_count": props["multiProcessorCount"], "l2_cache_mib": round(props["l2CacheSize"] / 2**20, 1),
        "memory_clock_mhz": props["memoryClockRate"] / 1e3, "memory_bus_bits": props["memoryBusWidth"],
        "driver_version": rt.driverGetVersion(), "runtime_version": rt.runtimeGetVersion(),
    }
    return env


def install(do_install: bool, deadline: Deadline) -> dict[str, Any]:
    """Optionally ``pip install -e .``; then which graphc a fresh interpreter imports (run from a
    temporary folder, so the repository's own folder on sys.path cannot answer for it)."""
    result: dict[str, Any] = {}
    if do_install:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", "."]
        rc, out = run_command(cmd, min(INSTALL_TIMEOUT_S, deadline.left() - 30), cwd=REPO)
        result["pip"] = {"rc": rc, "tail": _tail(out, 1500)}
        if rc != 0:
            last = out.strip().splitlines()[-1] if out.strip() else ""
            raise RuntimeError(f"pip install {'timed out' if rc is None else f'exited with {rc}'}: {last}")
    else:
        result["pip"] = "skipped: --install not given"
    with tempfile.TemporaryDirectory() as tmp:
        rc, out = run_command([sys.executable, "-c", "import graphc; print(graphc.__file__)"], 60, cwd=tmp)
    if rc != 0:
        raise RuntimeError(f"import graphc failed: {_tail(out, 800)}")
    location = Path(out.strip().splitlines()[-1]).resolve()
    result["graphc_file"] = str(location)
    if REPO not in location.parents:
        raise RuntimeError(f"import graphc resolves to {location}, not to this repository ({REPO})")
    return result


def run_tests(deadline: Deadline) -> dict[str, Any]:
    """The cuda-marked tests against the real GPU; the status is failed when any test failed."""
    timeout = min(TESTS_TIMEOUT_S, deadline.left() - BENCH_RESERVE_S)
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests/"]
    if importlib.util.find_spec("pytest_timeout") is not None:
        cmd.append(f"--timeout={PER_TEST_TIMEOUT_S}")
    rc, out = run_command(cmd, timeout, cwd=REPO, env={**os.environ, "GRAPHC_REAL_CUDA": "1"})
    lines = out.strip().splitlines()
    summary = next((ln.strip("= ") for ln in reversed(lines)
                    if re.search(r"\b(passed|failed|error|errors|no tests ran|deselected)\b", ln)), None)
    counts = {kind: int(n) for n, kind in re.findall(
        r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", summary or "")}
    failed = [m.group(2) for ln in lines if (m := re.match(r"(FAILED|ERROR) (\S+)", ln))]
    result = {"rc": rc, "timeout_s": round(timeout), "summary": summary, "counts": counts,
              "failed_tests": failed, "tail": _tail(out)}
    if rc is None:
        result.update(status="failed", reason=f"pytest ran past {timeout:.0f} s and was killed")
    elif rc != 0:
        result.update(status="failed", reason=summary or f"pytest exited with {rc}")
    return result


# ---------------------------------------------------------------------------------------------
# 4: benchmarks (in a child process: the script itself with ``--bench-child --out PATH``)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    copy_mib: int
    pointwise_n: int
    reduce_shape: tuple[int, int]
    matmul_n: int
    mlp: tuple[int, int, int, int]            # batch, inputs, hidden, classes
    transformer: tuple[int, int, int, int, int, int]  # batch, seq, d_model, heads, ff, classes
    warmup: int
    repeats: int
    train_repeats: int


FULL = Sizes(copy_mib=1024, pointwise_n=1 << 26, reduce_shape=(16384, 4096), matmul_n=4096,
             mlp=(256, 784, 2048, 10), transformer=(32, 128, 256, 4, 1024, 10),
             warmup=3, repeats=20, train_repeats=10)
# Tiny: under Triton's interpreter every program instance costs milliseconds.
QUICK = Sizes(copy_mib=4, pointwise_n=1 << 12, reduce_shape=(8, 32), matmul_n=32,
              mlp=(8, 16, 32, 10), transformer=(2, 4, 16, 2, 32, 10),
              warmup=1, repeats=3, train_repeats=2)

TRAIN_VARIANTS = ("graphc_eager", "graphc_compiled", "torch_eager", "torch_compile")


def benchmark_plan() -> list[str]:
    """Every benchmark's key, in run order; torch.compile last, since its compile is the slowest."""
    plan = ["copy", "pointwise.graphc", "pointwise.unfused", "sum_last.graphc", "softmax_last.graphc",
            "sum_first.graphc"]
    plan += [f"matmul_{dt}.{impl}" for dt in ("fp32", "fp16") for impl in ("library", "graphc")]
    plan += [f"{w}.{v}" for w in ("mlp", "transformer") for v in TRAIN_VARIANTS[:3]]
    plan += [f"{w}.torch_compile" for w in ("mlp", "transformer")]
    return plan


def _need_s(key: str, quick: bool) -> float:
    """Seconds a benchmark should have left to be worth starting (compile times included)."""
    if quick:
        return 3
    if key.endswith("torch_compile"):
        return 75
    return 30 if key.split(".")[0] in ("mlp", "transformer") else 10


class Device:
    """Where the benchmarks run: the array module, graphc's device and backend, and the timer."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "cuda":
            import cupy
            self.xp: Any = cupy
            self.backend = "inductor"  # graphc's default, which picks Triton kernels on cuda
        else:
            self.xp = np
            self.backend = "triton"  # the same kernels, run by Triton's interpreter on numpy arrays

    def synchronize(self) -> None:
        if self.kind == "cuda":
            self.xp.cuda.Device().synchronize()

    def time_ms(self, fn: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
        """Milliseconds per call of ``fn``, one sample per call, after ``warmup`` calls. On cuda,
        CUDA events on CuPy's current stream (the legacy default stream, which graphc's kernels,
        CuPy and PyTorch all use unless told otherwise)."""
        for _ in range(warmup):
            fn()
        self.synchronize()
        samples = []
        if self.kind == "cuda":
            start, stop = self.xp.cuda.Event(), self.xp.cuda.Event()
            for _ in range(repeats):
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                samples.append(self.xp.cuda.get_elapsed_time(start, stop))
        else:
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1e3)
        return samples

    def copy(self, dst: Any, src: Any) -> None:
        """A plain memory copy (cudaMemcpyAsync device to device on cuda)."""
        if self.kind == "cuda":
            dst.data.copy_from_device_async(src.data, src.nbytes)
        else:
            np.copyto(dst, src)

    def datasheet_gbps(self) -> float:
        """Memory clock x bus width x 2 (double data rate), from the GPU's properties."""
        props = self.xp.cuda.runtime.getDeviceProperties(0)
        return props["memoryClockRate"] * 1e3 * 2 * props["memoryBusWidth"] / 8 / 1e9


def _timing(samples: list[float]) -> dict[str, Any]:
    return {"ms": statistics.median(samples), "ms_min": min(samples), "repeats": len(samples)}


def _errors(xp: Any, out: Any, ref: Any, tol: float) -> dict[str, Any]:
    """max|out - ref| / max|ref| and ||out - ref|| / ||ref||, in float64; NaN never passes."""
    out, ref = xp.asarray(out, dtype=xp.float64), xp.asarray(ref, dtype=xp.float64)
    diff = out - ref
    max_rel = float(xp.abs(diff).max() / xp.abs(ref).max())
    l2_rel = float(xp.linalg.norm(diff) / xp.linalg.norm(ref))
    return {"max_rel_err": max_rel, "rel_l2_err": l2_rel, "tol": tol,
            "check": "ok" if max_rel <= tol else "mismatch"}


def _sigmoid(xp: Any, z: Any) -> Any:
    return 1 / (1 + xp.exp(-z))


def _pointwise(x: Any, y: Any) -> Any:
    return ((x * 1.5 + y).sigmoid() * x - 0.25).tanh()


def _pointwise_xp(xp: Any, x: Any, y: Any) -> Any:
    return xp.tanh(_sigmoid(xp, x * 1.5 + y) * x - 0.25)


class Benchmarks:
    """Runs the plan in order, writing every result to ``path`` as soon as it exists, so the
    parent process still has them if this one is killed."""

    def __init__(self, device: str, quick: bool, deadline: Deadline, path: Path) -> None:
        import graphc
        self.graphc = graphc
        self.dev = Device(device)
        self.xp = self.dev.xp
        self.sizes = QUICK if quick else FULL
        self.quick = quick
        self.deadline = deadline
        self.path = path
        self.rng = np.random.default_rng(0)
        self.results: dict[str, dict[str, Any]] = {k: {"status": "pending"} for k in benchmark_plan()}
        self.workloads: dict[str, Workload] = {}

    # -- plumbing --------------------------------------------------------------------------

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.results, indent=1, default=str))
        os.replace(tmp, self.path)

    def run(self, only: list[str] | None = None) -> None:
        self._save()
        for key in benchmark_plan():
            if only and key.split(".")[0] not in only:
                entry = {"status": "skipped", "reason": "not selected (--only)"}
            elif self.deadline.left() < _need_s(key, self.quick):
                entry = {"status": "skipped", "reason": "out of time"}
            else:
                self.results[key] = {"status": "running"}
                self._save()
                entry = self._measure(key)
            self.results[key] = entry
            self._save()
            print(f"  {key}: {entry['status']} {entry.get('ms', '')}", flush=True)

    def _measure(self, key: str) -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            entry = self._dispatch(key)
            entry.setdefault("status", "mismatch" if entry.get("check") == "mismatch" else "ok")
            if entry["status"] == "mismatch":
                entry["reason"] = f"result differs from the reference (max_rel_err={entry['max_rel_err']:.3g})"
        except Exception as e:  # recorded; the next benchmark still runs
            entry = _failure(e)
        entry["seconds"] = round(time.monotonic() - t0, 2)
        return entry

    def _dispatch(self, key: str) -> dict[str, Any]:
        group, _, impl = key.partition(".")
        if group == "copy":
            return self.copy()
        if group == "pointwise":
            return self.pointwise(impl)
        if group in ("sum_last", "softmax_last", "sum_first"):
            return self.reduction(group)
        if group.startswith("matmul_"):
            return self.matmul(group.removeprefix("matmul_"), impl)
        return self.training(group, impl)

    def _random(self, shape: tuple[int, ...] | int, dtype: Any = np.float32) -> tuple[np.ndarray, Any]:
        """Random normal data (never zeros) on the host and its copy on the device."""
        host = self.rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
        return host, self.xp.asarray(host)

    def _tensor(self, host: np.ndarray) -> Any:
        return self.graphc.from_numpy(host).to(self.dev.kind)

    def _array(self, t: Any) -> Any:
        """A graphc result as a device array, through the public API (a host round trip)."""
        return self.xp.asarray(t.detach().cpu().numpy())

    def _time_graphc(self, fn: Callable[..., Any], args: list[Any]) -> tuple[dict[str, Any], Any]:
        """First call (tracing, code generation, kernel compile and tuning), then the timing."""
        t0 = time.perf_counter()
        out = fn(*args)
        self.dev.synchronize()
        first_call_s = time.perf_counter() - t0
        samples = self.dev.time_ms(lambda: fn(*args), self.sizes.warmup, self.sizes.repeats)
        return {"first_call_s": round(first_call_s, 3), **_timing(samples)}, out

    # -- kernels ---------------------------------------------------------------------------

    def copy(self) -> dict[str, Any]:
        n = self.sizes.copy_mib * 2**20 // 4
        # A 64 MiB random block tiled: drawing 1 GiB of random numbers on the host takes seconds.
        block = min(n, 2**24)
        _, src_block = self._random(block)
        src = self.xp.tile(src_block, n // block)
        dst = self.xp.empty_like(src)
        self.dev.copy(dst, src)
        self.dev.synchronize()
        if not bool(self.xp.array_equal(dst, src)):
            raise RuntimeError("the copy's destination differs from its source")
        timing = _timing(self.dev.time_ms(lambda: self.dev.copy(dst, src), self.sizes.warmup, self.sizes.repeats))
        nbytes = 2 * src.nbytes  # read + written
        entry = {"params": {"bytes_copied": src.nbytes, "bytes_counted": nbytes}, **timing,
                 "gbps": nbytes / timing["ms"] / 1e6, "max_rel_err": 0.0, "check": "ok"}
        if self.dev.kind == "cuda":
            try:
                entry["datasheet_gbps"] = self.dev.datasheet_gbps()
            except Exception as e:  # extra information only: the measured copy is the ceiling used
                entry["datasheet_gbps"] = f"failed: {type(e).__name__}: {e}"
        return entry

    def pointwise(self, impl: str) -> dict[str, Any]:
        n = self.sizes.pointwise_n
        xh, xd = self._random(n)
        yh, yd = self._random(n)
        ref = _pointwise_xp(self.xp, xd.astype(self.xp.float64), yd.astype(self.xp.float64))
        params = {"n": n, "dtype": "float32", "expr": "((x * 1.5 + y).sigmoid() * x - 0.25).tanh()"}
        if impl == "graphc":
            fn = self.graphc.compile(_pointwise, backend=self.dev.backend)
            timing, out = self._time_graphc(fn, [self._tensor(xh), self._tensor(yh)])
            out = self._array(out)
            params["backend"] = self.dev.backend
        else:
            out = _pointwise_xp(self.xp, xd, yd)
            timing = _timing(self.dev.time_ms(lambda: _pointwise_xp(self.xp, xd, yd),
                                              self.sizes.warmup, self.sizes.repeats))
            params["library"] = self.xp.__name__
        nbytes = 3 * n * 4  # x and y read once, the result written once
        return {"params": {**params, "bytes": nbytes}, **_errors(self.xp, out, ref, 1e-5), **timing,
                "gbps": nbytes / timing["ms"] / 1e6}

    def reduction(self, kind: str) -> dict[str, Any]:
        rows, cols = self.sizes.reduce_shape
        xh, xd = self._random((rows, cols))
        x64 = xd.astype(self.xp.float64)
        g = self.graphc
        if kind == "sum_last":
            fn, ref, out_elems = (lambda x: x.sum(-1)), x64.sum(-1), rows
        elif kind == "sum_first":
            fn, ref, out_elems = (lambda x: x.sum(0)), x64.sum(0), cols
        else:
            e = self.xp.exp(x64 - x64.max(-1, keepdims=True))
            fn, ref, out_elems = (lambda x: x.softmax(-1)), e / e.sum(-1, keepdims=True), rows * cols
        timing, out = self._time_graphc(g.compile(fn, backend=self.dev.backend), [self._tensor(xh)])
        nbytes = (rows * cols + out_elems) * 4
        # float32 sums of thousands of terms round at ~1e-6 of the largest partial sums
        return {"params": {"shape": [rows, cols], "dtype": "float32", "bytes": nbytes, "backend": self.dev.backend},
                **_errors(self.xp, self._array(out), ref, 1e-4), **timing, "gbps": nbytes / timing["ms"] / 1e6}

    def matmul(self, dtype_name: str, impl: str) -> dict[str, Any]:
        n = self.sizes.matmul_n
        dtype = np.float32 if dtype_name == "fp32" else np.float16
        (ah, ad), (bh, bd), (ch, cd) = self._random((n, n), dtype), self._random((n, n), dtype), self._random(n, dtype)
        xp = self.xp
        ref = xp.maximum(xp.matmul(ad.astype(xp.float64), bd.astype(xp.float64)) + cd.astype(xp.float64), 0)
        params = {"m": n, "n": n, "k": n, "dtype": dtype_name, "epilogue": "relu(a @ b + bias)"}
        if impl == "graphc":
            g = self.graphc
            fn = g.compile(lambda a, b, bias: g.relu(a @ b + bias), backend=self.dev.backend)
            timing, out = self._time_graphc(fn, [self._tensor(ah), self._tensor(bh), self._tensor(ch)])
            out = self._array(out)
            params["backend"] = self.dev.backend
        else:
            def library() -> Any:
                return xp.maximum(xp.matmul(ad, bd) + cd, 0)
            out = library()
            timing = _timing(self.dev.time_ms(library, self.sizes.warmup, self.sizes.repeats))
            params["library"] = "cuBLAS (cupy.matmul) + CuPy epilogue" if self.dev.kind == "cuda" else "numpy"
        # float32 accumulation (no TF32) lands far under 1e-4; float16 outputs round at ~5e-4
        tol = 1e-4 if dtype_name == "fp32" else 1e-2
        return {"params": params, **_errors(xp, out, ref, tol), **timing,
                "tflops": 2 * n**3 / timing["ms"] / 1e9}

    # -- training steps --------------------------------------------------------------------

    def _build(self, lib: Any, workload: str) -> Any:
        """The model, written once for graphc and torch (``lib``)."""
        nn = lib.nn
        if workload == "mlp":
            _, d_in, hidden, classes = self.sizes.mlp
            return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, classes))
        _, _, d_model, heads, ff, classes = self.sizes.transformer
        return nn.Sequential(nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True),
                             nn.Linear(d_model, classes))

    def _workload(self, workload: str) -> Workload:
        """Inputs, targets, initial weights and the float64 reference loss, made once per workload
        and shared by every variant."""
        if workload not in self.workloads:
            g = self.graphc
            rng = np.random.default_rng(1)
            if workload == "mlp":
                batch, d_in, _, classes = self.sizes.mlp
                x, y = rng.standard_normal((batch, d_in), dtype=np.float32), rng.integers(0, classes, batch)
            else:
                batch, seq, d_model, _, _, classes = self.sizes.transformer
                x = rng.standard_normal((batch, seq, d_model), dtype=np.float32)
                y = rng.integers(0, classes, (batch, seq))
            g.manual_seed(0)
            model = self._build(g, workload)
            weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
            # The reference: graphc eager on the CPU in float64 (the suite checks that path against numpy).
            with g.no_grad():
                ref = _loss(g, model.double(), g.from_numpy(x.astype(np.float64)), g.from_numpy(y), classes)
            self.workloads[workload] = Workload(x, y, classes, weights, float(ref.item()))
        return self.workloads[workload]

    def training(self, workload: str, variant: str) -> dict[str, Any]:
        name, _, mode = variant.partition("_")
        if name == "torch":
            if self.dev.kind != "cuda":
                return {"status": "skipped", "reason": "PyTorch is not used in cpu mode"}
            import torch
            lib = torch
        else:
            lib = self.graphc
        w = self._workload(workload)
        device = self.dev.kind
        model = self._build(lib, workload)
        model.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in w.weights.items()})
        model.to(device)
        optimizer = lib.optim.AdamW if workload == "mlp" else lib.optim.Adam
        opt = optimizer(model.parameters(), lr=1e-3)
        x, y = lib.from_numpy(w.x).to(device), lib.from_numpy(w.y).to(device)

        def loss_fn(x: Any, y: Any) -> Any:
            return _loss(lib, model, x, y, w.classes)

        if mode == "eager":
            fn = loss_fn
        elif name == "graphc":
            fn = lib.compile(loss_fn, backend=self.dev.backend)
        else:
            fn = lib.compile(loss_fn)

        def step() -> None:
            opt.zero_grad()
            fn(x, y).backward()
            opt.step()

        # The first step, before any update, checks the loss and includes compiling.
        t0 = time.perf_counter()
        loss = fn(x, y)
        loss0 = float(loss.item())
        loss.backward()
        opt.step()
        self.dev.synchronize()
        first_step_s = time.perf_counter() - t0
        err = abs(loss0 - w.ref_loss) / abs(w.ref_loss) if math.isfinite(loss0) else math.inf
        samples = self.dev.time_ms(step, self.sizes.warmup, self.sizes.train_repeats)
        shape = self.sizes.mlp if workload == "mlp" else self.sizes.transformer
        params = {"shape": list(shape), "optimizer": optimizer.__name__, "device": device}
        if name == "torch":
            params["float32_matmul_precision"] = lib.get_float32_matmul_precision()
        return {"params": params,
                "first_step_s": round(first_step_s, 3), "loss0": loss0, "ref_loss": w.ref_loss,
                "max_rel_err": err, "tol": 1e-4, "check": "ok" if err <= 1e-4 else "mismatch", **_timing(samples)}


@dataclass
class Workload:
    x: np.ndarray
    y: np.ndarray
    classes: int
    weights: dict[str, np.ndarray]
    ref_loss: float


def _loss(lib: Any, model: Any, x: Any, y: Any, classes: int) -> Any:
    """Cross-entropy over every output row (every token, for the transformer)."""
    return lib.nn.functional.cross_entropy(model(x).reshape(-1, classes), y.reshape(-1))


def run_benchmarks(args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    """The benchmarks in a child process (a hang, a crash or a runaway compile cannot take the
    report with it); whatever it finished is kept when it is killed at the deadline."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "benchmarks.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--device", args.device, "--out", str(path),
               "--budget", f"{deadline.left() - 15:.0f}", "--bench-child"] + (["--quick"] if args.quick else []) \
            + (["--only", args.only] if args.only else [])
        rc, out = run_command(cmd, deadline.left() - 5, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        results = (json.loads(path.read_text()) if path.exists()
                   else {k: {"status": "pending"} for k in benchmark_plan()})
    ended = "killed at the deadline" if rc is None else f"exited with {rc}"
    for entry in results.values():
        if entry["status"] == "running":
            entry.update(status="failed", reason=f"the benchmark process {ended} while running this")
        elif entry["status"] == "pending":
            entry.update(status="skipped", reason=f"not reached: the benchmark process {ended}")
    section = {"rc": rc, "results": results, "ratios": derive(results), "tail": _tail(out)}
    if rc != 0:
        last = out.strip().splitlines()[-1] if out.strip() else ""
        section.update(status="failed", reason=f"the benchmark process {ended}: {last[:200]}")
    return section


def derive(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Figures across benchmarks: % of the measured copy peak (written into each entry), and the
    ratios graphc vs library / PyTorch / unfused. Every ratio is a time over a time, the pair
    ordered so that the label reads true: library ms / graphc ms is graphc's TFLOP/s over the
    library's, unfused ms / fused ms is the speed-up of fusion."""
    def ms(key: str) -> float | None:
        entry = results.get(key, {})
        return entry.get("ms") if entry.get("status") in ("ok", "mismatch") else None

    peak = results["copy"].get("gbps") if ms("copy") else None
    for key, entry in results.items():
        if peak and key != "copy" and "gbps" in entry:
            entry["pct_of_copy_peak"] = 100 * entry["gbps"] / peak
    pairs = {"pointwise unfused/graphc (speed-up of fusion)": ("pointwise.unfused", "pointwise.graphc")}
    for dt in ("fp32", "fp16"):
        pairs[f"matmul_{dt} graphc/library TFLOP/s"] = (f"matmul_{dt}.library", f"matmul_{dt}.graphc")
    for w in ("mlp", "transformer"):
        pairs[f"{w} graphc_eager/torch_eager ms"] = (f"{w}.graphc_eager", f"{w}.torch_eager")
        pairs[f"{w} graphc_compiled/torch_compile ms"] = (f"{w}.graphc_compiled", f"{w}.torch_compile")
        pairs[f"{w} graphc_compiled/torch_eager ms"] = (f"{w}.graphc_compiled", f"{w}.torch_eager")
        pairs[f"{w} graphc_compiled/graphc_eager ms"] = (f"{w}.graphc_compiled", f"{w}.graphc_eager")
    ratios = {}
    for label, (num, den) in pairs.items():
        a, b = ms(num), ms(den)
        if a and b:
            ratios[label] = a / b
    return ratios


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _cell(value: Any, width: int, fmt: str) -> str:
    return f"{value:>{width}{fmt}}" if isinstance(value, (int, float)) else " " * width


def print_table(report: dict[str, Any]) -> None:
    print("\n== gpu_check ==")
    for name, sec in report["sections"].items():
        print(f"{name:<12} {sec['status']:<8} {sec.get('seconds', ''):>7}  {str(sec.get('reason', ''))[:90]}")
    tests = report["sections"].get("tests", {})
    if tests.get("failed_tests"):
        failed = tests["failed_tests"]
        print(f"failed tests ({len(failed)}): " + ", ".join(failed[:10]) + (", ..." if len(failed) > 10 else ""))
    bench = report["sections"].get("benchmarks", {})
    if "results" not in bench:
        return
    print(f"\n{'benchmark':<28}{'status':<10}{'ms':>10}{'GB/s|TFLOP/s':>14}{'%peak':>7}{'max_rel_err':>13}  note")
    for key, e in bench["results"].items():
        cells = [_cell(e.get("ms"), 10, ".3f"), _cell(e.get("gbps", e.get("tflops")), 14, ".4g"),
                 _cell(e.get("pct_of_copy_peak"), 7, ".1f"), _cell(e.get("max_rel_err"), 13, ".2e")]
        first = e.get("first_call_s", e.get("first_step_s"))
        if e.get("reason"):
            note = e["reason"]
        elif isinstance(e.get("datasheet_gbps"), float):
            note = f"datasheet {e['datasheet_gbps']:.0f} GB/s"
        else:
            note = f"first call {first:.2f} s" if first is not None else ""
        print(f"{key:<28}{e['status']:<10}{''.join(cells)}  {str(note)[:70]}")
    for label, value in bench.get("ratios", {}).items():
        print(f"  {label:<50} {value:8.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny shapes and few repeats (smoke run)")
    p.add_argument("--install", action="store_true", help="pip install -e . first (cuda mode)")
    p.add_argument("--out", default="gpu_check.json", help="the JSON report (default gpu_check.json)")
    p.add_argument("--budget", type=float, default=330, help="seconds for the whole run (default 330)")
    p.add_argument("--only", default="", help="comma-separated benchmark groups to run (e.g. copy,transformer)")
    p.add_argument("--skip-tests", action="store_true", help="leave out the pytest section (a second run)")
    p.add_argument("--bench-child", action="store_true", help=argparse.SUPPRESS)  # the benchmarks' process
    args = p.parse_args(argv)
    deadline = Deadline(args.budget)
    # A fresh code cache: first-call times then include code generation, as on a new machine.
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-gpu-check-"))
    if args.bench_child:
        Benchmarks(args.device, args.quick, deadline, Path(args.out)).run(
            [g for g in args.only.split(",") if g] or None)
        return 0

    cpu = args.device == "cpu"
    started = time.time()
    sections: dict[str, Any] = {}
    report = {"meta": {"device": args.device, "quick": args.quick, "budget_s": args.budget,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                       "sizes": asdict(QUICK if args.quick else FULL)},
              "sections": sections}
    out = Path(args.out)

    def record(name: str, section: dict[str, Any]) -> None:
        """Keep the section and rewrite the report, so a run killed from outside leaves one."""
        sections[name] = section
        report["meta"]["seconds"] = round(time.time() - started, 1)
        out.write_text(json.dumps(report, indent=1, default=str))

    record("environment", run_section("environment", lambda: environment(args.device), deadline, 5))
    if cpu:
        record("install", {"status": "skipped", "reason": "cpu mode"})
        record("tests", {"status": "skipped", "reason": "cpu mode"})
    else:
        record("install", run_section("install", lambda: install(args.install, deadline), deadline, 40))
        if args.skip_tests:
            record("tests", {"status": "skipped", "reason": "--skip-tests"})
        else:
            record("tests", run_section("tests", lambda: run_tests(deadline), deadline, BENCH_RESERVE_S + 30))
    record("benchmarks", run_section("benchmarks", lambda: run_benchmarks(args, deadline), deadline, 20))
    print_table(report)
    print(f"\nwrote {args.out} ({report['meta']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
