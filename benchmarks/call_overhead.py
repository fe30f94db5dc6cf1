#!/usr/bin/env python
"""Per-call overhead of a ``graphc.compile``d function: what a call costs beyond its generated code.

For each workload (``tiny``: ``x + 1`` on 4 float32 elements; ``block``: LayerNorm+GELU+softmax on
(64, 256), as in ``compile_vs_eager.py``; ``module``: a compiled ``nn.Linear(16, 16)`` on (8, 16),
whose weight and bias are lifted tensors checked at every call; they require grad, so each call
also makes the autograd node of the compiled backward) it times, in
microseconds per call:

* ``call``      the compiled call, ``f(*args)``;
* ``code``      the generated function alone, on the same arrays and a workspace it keeps;
* ``overhead``  the compiled call with a stand-in for the generated function that returns its
                outputs at once: what a call costs beyond its code, timed directly (not as the
                small difference of two large times); and its parts, each timed on its own:
* ``guards``    the check that the entry that ran last fits these arguments (``_fast_hit``) and
                that the tensors it reads by identity are unchanged (``_lifted_changed``);
* ``args/out``  argument handling before the runtime (input list, arrays) and what is made of
                its outputs (tensors, for the module the autograd node of the compiled backward);
* ``runtime``   ``CompiledGraph.__call__`` around the generated function: input check, workspace
                taken from and given back to the pool;
* ``fp state``  numpy's floating-point error state set around the generated code (errors ignored,
                as eagerly);
* ``dispatch``  the rest: the call itself (``Module.__call__`` for the module), the thread checks.

Timing: ``time.process_time`` (CPU time of this process, which a loaded machine inflates less
than wall time) over blocks of calls, the functions of a workload alternating block by block;
the median over the blocks (``--repeats``) is shown, and the minimum in the JSON. One thread
(BLAS and graphc's piece pool), set before numpy loads.

    python benchmarks/call_overhead.py [--quick] [--only tiny,block] [--repeats N] [--json PATH] [--profile tiny]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GRAPHC_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402  (after the thread variables)

PARTS = ("call", "code", "overhead", "guards", "args/out", "runtime", "fp state", "dispatch")


def workloads(only: set[str] | None) -> dict:
    """name -> (compiled callable, its arguments), each called once (compiled) already."""
    import graphc
    import graphc.nn as nn
    import graphc.nn.functional as F

    rng = np.random.default_rng(0)

    def block(x, w, b):
        return F.softmax(F.gelu(F.layer_norm(x, (x.shape[-1],), w, b)), dim=-1)

    made = {
        "tiny": lambda: (graphc.compile(lambda x: x + 1), (graphc.ones(4),)),
        "block": lambda: (graphc.compile(block), tuple(graphc.from_numpy(rng.standard_normal(s).astype(np.float32))
                                                       for s in ((64, 256), (256,), (256,)))),
        "module": lambda: (graphc.compile(nn.Linear(16, 16)), (graphc.randn(8, 16),)),
    }
    out = {}
    for name, make in made.items():
        if only and name not in only:
            continue
        f, args = make()
        f(*args)
        out[name] = (f, args)
    return out


def timings(f, args: tuple) -> tuple[dict, object, dict]:
    """(name -> no-argument callable, the compiled graph, name -> its ``fn`` while that one is
    timed). ``call`` and ``code`` run the generated code; the others run a stand-in for it that
    returns the arrays it returned once, so that what they time is the overhead alone, not a
    small difference of two large times."""
    from graphc.compiler import api
    from graphc.ir.array_module import ignoring_fp_errors

    cf = getattr(f, "_compiled", f)   # compile(module) wraps its CompiledFunction
    (entry,) = cf.cache.values()
    assert cf._last is entry, "the entry must be the one the fast check finds"
    graph = entry.forward
    arrays = [api._input_array(t._data, entry.xp) for t in [*args, *entry.lifted]]
    ws = graph.pool.acquire() if graph.pool.layout else ()
    code = graph.fn.__wrapped__  # the generated function (graph.fn sets numpy's error state around it)
    outs = code(*arrays, ws)
    real, stand_in = graph.fn, ignoring_fp_errors(lambda *_: outs)
    modules = cf.modules

    def guards():
        return api._fast_hit(entry, args, modules) and cf._lifted_changed(entry) is None

    fns = {"call": lambda: f(*args), "code": lambda: code(*arrays, ws), "overhead": lambda: f(*args),
           "guards": guards, "run": lambda: cf._run(entry, args), "forward": lambda: graph(arrays, entry.keep),
           "fn": lambda: graph.fn(*arrays, ws)}
    return fns, graph, {name: real if name in ("call", "code") else stand_in for name in fns}


def measure(fns: dict, graph, graph_fn: dict, repeats: int, block_s: float) -> dict:
    """name -> (median, min) CPU seconds per call, the functions alternating block by block
    (``graph.fn`` set to ``graph_fn[name]`` for each)."""
    number = {}
    try:
        for name, fn in fns.items():  # calibrate: calls per block of about block_s
            graph.fn = graph_fn[name]
            n, t0 = 0, time.process_time()
            while time.process_time() - t0 < block_s / 4 or n < 10:
                fn()
                n += 1
            number[name] = max(10, int(4 * n * block_s / max(time.process_time() - t0, 1e-9) / 4))
        samples: dict[str, list[float]] = {name: [] for name in fns}
        names = list(fns)
        for r in range(repeats):
            for k in range(len(names)):
                name = names[(k + r) % len(names)]
                fn, n = fns[name], number[name]
                graph.fn = graph_fn[name]
                t0 = time.process_time()
                for _ in range(n):
                    fn()
                samples[name].append((time.process_time() - t0) / n)
    finally:
        graph.fn = graph_fn["call"]
    return {name: (statistics.median(s), min(s)) for name, s in samples.items()}


def breakdown(t: dict, pick: int) -> dict:
    """The parts in microseconds, from the measured pieces (``pick``: 0 median, 1 minimum)."""
    us = {name: v[pick] * 1e6 for name, v in t.items()}
    return {"call": us["call"], "code": us["code"], "overhead": us["overhead"], "guards": us["guards"],
            "args/out": us["run"] - us["forward"], "runtime": us["forward"] - us["fn"], "fp state": us["fn"],
            "dispatch": us["overhead"] - us["run"] - us["guards"]}


def profile(f, args: tuple, calls: int = 20000) -> None:
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for _ in range(calls):
        f(*args)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: short blocks, 3 repeats")
    ap.add_argument("--only", default="", help="comma-separated workloads (tiny, block, module)")
    ap.add_argument("--repeats", type=int, default=15, help="blocks per function (median shown)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--profile", help="run one workload under cProfile instead")
    args = ap.parse_args(argv)
    only = {w.strip() for w in args.only.split(",") if w.strip()} or None
    if args.profile:
        f, fargs = workloads({args.profile})[args.profile]
        profile(f, fargs)
        return 0
    repeats, block_s = (3, 0.01) if args.quick else (args.repeats, 0.05)
    print(f"$ python benchmarks/call_overhead.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"numpy {np.__version__}, one thread, CPU time per call in µs (median of {repeats} blocks)\n")
    print(f"{'workload':<10}" + "".join(f"{p:>10}" for p in PARTS))
    results = {}
    for name, (f, fargs) in workloads(only).items():
        t = measure(*timings(f, fargs), repeats, block_s)
        med, best = breakdown(t, 0), breakdown(t, 1)
        results[name] = {"median_us": med, "min_us": best}
        print(f"{name:<10}" + "".join(f"{med[p]:>10.1f}" for p in PARTS))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": {"numpy": np.__version__, "repeats": repeats, "parts": PARTS}, "workloads": results},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
