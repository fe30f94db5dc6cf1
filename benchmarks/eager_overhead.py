#!/usr/bin/env python
"""Per-op eager overhead of graphc on small tensors, next to raw numpy and (optionally) PyTorch.

For each op (add, mul, matmul, sum, relu, indexing ``x[1]``, and a forward+backward of
``(x*y).sum()``) and each size (4x4, the dispatch overhead, and 256x256, float32) it times:

* ``numpy``        raw numpy on the same arrays (the floor graphc's eager mode sits on);
* ``graphc``       graphc eager, inputs without ``requires_grad``;
* ``graphc+grad``  graphc eager, inputs with ``requires_grad=True`` (autograd history recorded);
* ``torch``        PyTorch eager, when ``import torch`` succeeds (never required);
* ``torch+grad``   PyTorch eager with ``requires_grad=True`` inputs.

The forward+backward op (``fwd_bwd``) only exists for the autograd variants; for numpy it is the
hand-written gradient (``gx = y``, ``gy = x`` times the upstream ones), for the no-grad variants it is
reported as skipped.

The summary under the table gives, per size, the graphc/torch ratio of every op (and its geometric
mean): on 4x4 tensors that is the per-op dispatch overhead against PyTorch's (target: within 2x).

Every cell is calibrated (``number`` loops per repeat, so one repeat lasts a few ms), then the repeats
of all frameworks for one (op, size) are *interleaved* so drift in machine load hits them alike. The
table shows the median of the repeats in microseconds per op; the JSON also keeps the best (min).

Usage::

    python benchmarks/eager_overhead.py               # full run, prints the table
    python benchmarks/eager_overhead.py --quick       # smoke run (fewer, shorter repeats)
    python benchmarks/eager_overhead.py --json out.json
    python benchmarks/eager_overhead.py --no-torch    # skip PyTorch even when installed
    python benchmarks/eager_overhead.py --threads 0   # keep the libraries' default thread pools
    python benchmarks/eager_overhead.py --sizes 4     # only the tiny tensors

By default every library runs single-threaded (``--threads 1``): this measures per-op overhead, and
BLAS/OpenMP pools of numpy and PyTorch spinning against each other on a few cores make the 256x256
matmul numbers meaningless. The thread env vars must be set before numpy is imported, hence the
early look at ``sys.argv`` below.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _threads_from_argv(argv: List[str]) -> int:
    for i, a in enumerate(argv):
        value = argv[i + 1] if a == "--threads" and i + 1 < len(argv) else (
            a.split("=", 1)[1] if a.startswith("--threads=") else None)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return 1  # argparse reports the bad value later
    return 1


if __name__ == "__main__":  # before numpy (and its BLAS pool) is loaded
    _n_threads = _threads_from_argv(sys.argv[1:])
    if _n_threads > 0:
        for _var in _THREAD_ENV_VARS:
            os.environ[_var] = str(_n_threads)

import numpy as np  # noqa: E402

OPS = ["add", "mul", "matmul", "sum", "relu", "index", "fwd_bwd"]
SIZES = [4, 256]
ALL_FRAMEWORKS = ["numpy", "graphc", "graphc+grad", "torch", "torch+grad"]

# (repeats, target seconds per repeat) per mode
# Many short repeats, interleaved: on a shared machine other processes take whole time slices, and
# the median of many short samples taken turn about sees graphc and torch under the same load.
MODES = {"full": (21, 0.005), "quick": (3, 0.002)}


def _load_graphc():
    import graphc
    return graphc


def _load_torch():
    """PyTorch is optional: returns the module, or (None, reason) when it cannot be imported."""
    try:
        import torch  # noqa: WPS433  (optional dependency, imported only here)
    except ImportError as exc:  # not installed: the benchmark still runs without it
        return None, f"{type(exc).__name__}: {exc}"
    # Guard against a `torch` alias that is really graphc (``sys.modules['torch'] = graphc``).
    if getattr(torch, "__name__", "") != "torch" or not hasattr(torch, "__version__"):
        return None, "the importable `torch` is not PyTorch"
    return torch, None


# ---------------------------------------------------------------------------------------------
# op builders: each returns a zero-argument callable doing one op, or None when not applicable


def _numpy_ops(x: np.ndarray, y: np.ndarray) -> Dict[str, Callable[[], object]]:
    def fwd_bwd():
        p = x * y
        s = p.sum()
        g = np.ones_like(p)          # upstream grad of sum
        return s, g * y, g * x       # d/dx, d/dy of (x*y).sum()
    return {
        "add": lambda: x + y,
        "mul": lambda: x * y,
        "matmul": lambda: x @ y,
        "sum": lambda: x.sum(),
        "relu": lambda: np.maximum(x, 0),
        "index": lambda: x[1],
        "fwd_bwd": fwd_bwd,
    }


def _torchlike_ops(mod, x, y, grad: bool) -> Dict[str, Optional[Callable[[], object]]]:
    """The same op bodies for graphc and PyTorch (``mod`` is the framework module)."""
    relu = mod.relu

    def fwd_bwd():
        x.grad = None
        y.grad = None
        (x * y).sum().backward()

    return {
        "add": lambda: x + y,
        "mul": lambda: x * y,
        "matmul": lambda: x @ y,
        "sum": lambda: x.sum(),
        "relu": lambda: relu(x),
        "index": lambda: x[1],
        "fwd_bwd": fwd_bwd if grad else None,
    }


def _to_numpy(v) -> np.ndarray:
    if isinstance(v, tuple):
        v = v[0]
    if hasattr(v, "detach"):
        v = v.detach()
    if hasattr(v, "numpy"):
        return np.asarray(v.numpy())
    return np.asarray(v)


def build_cells(size: int, torch_mod, graphc_mod) -> Dict[str, Dict[str, Optional[Callable]]]:
    rng = np.random.default_rng(size)
    xa = rng.standard_normal((size, size)).astype(np.float32)
    ya = rng.standard_normal((size, size)).astype(np.float32)
    cells: Dict[str, Dict[str, Optional[Callable]]] = {"numpy": _numpy_ops(xa, ya)}
    for name, mod in (("graphc", graphc_mod), ("torch", torch_mod)):
        if mod is None:
            continue
        for grad in (False, True):
            x = mod.tensor(xa.copy(), requires_grad=grad)
            y = mod.tensor(ya.copy(), requires_grad=grad)
            cells[name + ("+grad" if grad else "")] = _torchlike_ops(mod, x, y, grad)
    return cells


def check_agreement(cells, size: int) -> None:
    """All frameworks must compute the same values (so we time the same work)."""
    ref = cells["numpy"]
    for fw, ops in cells.items():
        if fw == "numpy":
            continue
        for op, fn in ops.items():
            if fn is None or op == "fwd_bwd":
                continue
            got, want = _to_numpy(fn()), _to_numpy(ref[op]())
            tol = 1e-3 * max(1.0, float(np.abs(want).max(initial=0.0)))
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=tol):
                raise AssertionError(f"{fw} {op} {size}x{size} disagrees with numpy")


# ---------------------------------------------------------------------------------------------
# timing


def _time_loop(fn: Callable[[], object], number: int) -> float:
    """Seconds for `number` calls of fn (timeit-style: GC off, perf_counter)."""
    rng = range(number)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in rng:
            fn()
        return time.perf_counter() - t0
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(fn: Callable[[], object], target: float) -> int:
    """Loops per repeat (1, 2, 5, 10, 20, 50, ...) so one repeat lasts about `target` seconds.

    The per-call estimate is the best of a few short probes, so one hiccup of machine load during
    calibration does not shrink `number` to a handful of calls.
    """
    fn()  # warm-up (lazy imports, caches, BLAS thread start-up)
    probe = 1
    while _time_loop(fn, probe) < target / 20 and probe < 10**6:
        probe *= 2
    per_call = min(_time_loop(fn, probe) for _ in range(3)) / probe
    want = max(1.0, target / max(per_call, 1e-9))
    number = 1
    for i in (10 ** k for k in range(8)):
        for j in (1, 2, 5):
            if i * j <= want:
                number = i * j
    return number


def measure(cells, ops: List[str], frameworks: List[str], repeats: int, target: float, size: int
            ) -> Tuple[List[dict], List[dict]]:
    results, skipped = [], []
    for op in ops:
        live = []
        for fw in frameworks:
            fn = cells[fw][op]
            if fn is None:
                skipped.append({"op": op, "size": size, "framework": fw,
                                "reason": "forward+backward needs requires_grad inputs"})
                continue
            live.append((fw, fn, calibrate(fn, target)))
        samples: Dict[str, List[float]] = {fw: [] for fw, _, _ in live}
        for _ in range(repeats):  # interleave frameworks within each repeat round
            for fw, fn, number in live:
                samples[fw].append(_time_loop(fn, number) / number * 1e6)
        for fw, _, number in live:
            s = samples[fw]
            results.append({
                "op": op, "size": size, "framework": fw, "number": number, "repeats": repeats,
                "median_us": statistics.median(s), "best_us": min(s), "samples_us": s,
            })
    return results, skipped


# ---------------------------------------------------------------------------------------------
# report


def _fmt_us(v: Optional[float]) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _fmt_ratio(a: Optional[float], b: Optional[float]) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.1f}x"


def format_table(results: List[dict], frameworks: List[str], key: str = "median_us",
                 sizes: List[int] = SIZES) -> str:
    by = {(r["op"], r["size"], r["framework"]): r[key] for r in results}
    has_torch = "torch" in frameworks
    head = ["op", "size"] + [f"{fw}" for fw in frameworks] + ["graphc/numpy", "graphc+grad/numpy"]
    if has_torch:
        head += ["graphc/torch", "graphc+grad/torch+grad"]
    rows = []
    for op in OPS:
        for size in sizes:
            if not any((op, size, fw) in by for fw in frameworks):
                continue
            g = by.get((op, size, "graphc"))
            gg = by.get((op, size, "graphc+grad"))
            n = by.get((op, size, "numpy"))
            row = [op, f"{size}x{size}"] + [_fmt_us(by.get((op, size, fw))) for fw in frameworks]
            row += [_fmt_ratio(g, n), _fmt_ratio(gg, n)]
            if has_torch:
                row += [_fmt_ratio(g, by.get((op, size, "torch"))),
                        _fmt_ratio(gg, by.get((op, size, "torch+grad")))]
            rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    align = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [align(head), align(["-" * w for w in widths])]
    lines += [align(r) for r in rows]
    return "\n".join(lines)


def torch_ratios(results: List[dict], sizes: List[int], key: str = "median_us") -> Dict[str, dict]:
    """Per size: graphc/torch for every op (plain and +grad inputs), their geometric mean and max."""
    by = {(r["op"], r["size"], r["framework"]): r[key] for r in results}
    out: Dict[str, dict] = {}
    for size in sizes:
        ratios = {}
        for op in OPS:
            for g, t, suffix in (("graphc", "torch", ""), ("graphc+grad", "torch+grad", "+grad")):
                a, b = by.get((op, size, g)), by.get((op, size, t))
                if a is not None and b:
                    ratios[op + suffix] = a / b
        if ratios:
            vals = list(ratios.values())
            out[f"{size}x{size}"] = {
                "ratios": ratios, "max": max(vals),
                "geomean": math.exp(sum(math.log(v) for v in vals) / len(vals))}
    return out


def format_summary(summary: Dict[str, dict]) -> str:
    lines = []
    for size, s in summary.items():
        body = ", ".join(f"{op} {r:.2f}x" for op, r in s["ratios"].items())
        lines.append(f"graphc/torch {size}: geomean {s['geomean']:.2f}x, max {s['max']:.2f}x  ({body})")
    return "\n".join(lines)


def _thread_settings(torch) -> str:
    env = ", ".join(f"{v}={os.environ[v]}" for v in _THREAD_ENV_VARS if v in os.environ) or "no thread env vars"
    parts = [env]
    try:
        from threadpoolctl import threadpool_info  # optional: what numpy's BLAS really uses
        parts.append("numpy BLAS threads " + ",".join(
            str(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas") or "?")
    except ImportError:
        pass
    if torch is not None:
        parts.append(f"torch.get_num_threads()={torch.get_num_threads()}")
    return "; ".join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer, shorter repeats (smoke run)")
    ap.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    ap.add_argument("--no-torch", action="store_true", help="do not compare against PyTorch")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for numpy's BLAS and PyTorch (default 1; 0 = library defaults)")
    ap.add_argument("--stat", choices=("median", "best"), default="median",
                    help="statistic shown in the table (both are in the JSON)")
    ap.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {OPS}")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="comma-separated square sizes (default %(default)s)")
    args = ap.parse_args(argv)
    try:
        sizes = [int(v) for v in args.sizes.split(",") if v]
    except ValueError:
        ap.error(f"--sizes wants integers, got {args.sizes!r}")

    ops = [o for o in args.ops.split(",") if o]
    bad = [o for o in ops if o not in OPS]
    if bad:
        ap.error(f"unknown op(s) {bad}; choose from {OPS}")
    mode = "quick" if args.quick else "full"
    repeats, target = MODES[mode]

    graphc = _load_graphc()
    if args.no_torch:
        torch, torch_note = None, "disabled with --no-torch"
    else:
        torch, torch_note = _load_torch()
    if torch is not None and args.threads > 0:
        torch.set_num_threads(args.threads)
    frameworks = [fw for fw in ALL_FRAMEWORKS if torch is not None or not fw.startswith("torch")]

    results: List[dict] = []
    skipped: List[dict] = []
    for size in sizes:
        cells = build_cells(size, torch, graphc)
        check_agreement(cells, size)
        r, s = measure(cells, ops, frameworks, repeats, target, size)
        results += r
        skipped += s

    meta = {
        "mode": mode, "repeats": repeats, "target_s_per_repeat": target,
        "statistic": "median of repeats (best_us = min)", "table_statistic": args.stat,
        "dtype": "float32", "threads": args.threads or "library default",
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "numpy": np.__version__,
        "graphc": getattr(graphc, "__version__", "?"),
        "torch": getattr(torch, "__version__", None) if torch is not None else None,
        "torch_num_threads": torch.get_num_threads() if torch is not None else None,
        "torch_note": torch_note,
        "command": " ".join(["python", "benchmarks/eager_overhead.py", *(sys.argv[1:] if argv is None else argv)]),
        "thread_settings": _thread_settings(torch),
    }
    summary = torch_ratios(results, sizes, key=f"{args.stat}_us")
    threads = f"{args.threads} thread(s)" if args.threads > 0 else "default threads"
    print(f"graphc eager overhead  ({mode} mode: {args.stat} of {repeats} repeats, microseconds per op, "
          f"float32, {os.cpu_count()} CPUs, {threads})")
    print(f"python {meta['python']}, numpy {meta['numpy']}, graphc {meta['graphc']}, "
          + (f"torch {meta['torch']} ({meta['torch_num_threads']} threads)" if torch is not None
             else "torch: not compared"))
    print(f"command: {meta['command']}")
    print(f"threads: {meta['thread_settings']}")
    if torch is None:
        print(f"note: PyTorch comparison skipped ({torch_note}); "
              "install the `bench` extra (pip install -e .[bench]) to add it.")
    print()
    print(format_table(results, frameworks, key=f"{args.stat}_us", sizes=sizes))
    if summary:
        print()
        print(format_summary(summary))
    if skipped:
        print()
        print("skipped: fwd_bwd for " + ", ".join(sorted({s['framework'] for s in skipped}))
              + " (forward+backward needs requires_grad inputs)")

    if args.json:
        bad_times = [r for r in results if not (math.isfinite(r["median_us"]) and r["median_us"] > 0)]
        if bad_times:
            print(f"warning: non-positive/non-finite times: {bad_times}", file=sys.stderr)
        payload = {"meta": meta, "ops": ops, "sizes": sizes, "frameworks": frameworks,
                   "results": results, "skipped": skipped, "graphc_over_torch": summary}
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
