"""Compile time of graphc.compile against graph size (issue #8, item 4).

A branching function with backward: a chain where each step reads the two previous values (so
values have several users and the backward graph accumulates gradients from two places), with a
matmul and a reduction every few steps, on inputs that require grad. For each N (traced nodes,
approximately) it compiles in a fresh process with an empty cache (cold), then again in another
fresh process on the cache the first one filled (warm), and prints the seconds of each compile
stage (the ``compile_stages`` the compiler records, also logged with ``GRAPHC_LOGS=compile``).

    python benchmarks/compile_time.py [--sizes 1000,5000,10000] [--json PATH] [--profile N]

``--profile N`` runs one cold compile of size N in this process under cProfile and prints the
top functions by cumulative and by own time instead.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

STEP_NODES = 9  # traced nodes per step of the chain below (checked against the traced graph)


def branching(x, w, steps: int):
    """``steps`` steps; each reads the two previous values."""
    a, b = x, x * 0.5
    for i in range(steps):
        c = (a * 0.5 + b).tanh() + a * b * 0.25   # 6 nodes
        if i % 8 == 3:
            c = c @ w                             # a matmul now and then
        elif i % 8 == 6:
            c = c - c.mean(dim=1, keepdim=True)   # and a reduction
        else:
            c = c.sigmoid() + b * 0.5             # 3 nodes
        a, b = b, c
    return (a * b).sum() + b.sum()


def run_one(n: int) -> dict:
    """Compile and call once in this process; the compile's stage timings."""
    import numpy as np

    import graphc
    rng = np.random.default_rng(0)
    x = graphc.from_numpy(rng.standard_normal((16, 16))).requires_grad_()
    w = graphc.from_numpy(rng.standard_normal((16, 16)) * 0.25).requires_grad_()
    steps = max(1, n // STEP_NODES)
    f = graphc.compile(lambda x, w: branching(x, w, steps))
    t0, c0 = time.perf_counter(), time.process_time()
    loss = f(x, w)
    first_call, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    loss.backward()
    entry = next(iter(f.cache.values()))
    traced = entry.stages.get("traced")
    traced_nodes = traced.count(" = ") if isinstance(traced, str) else None
    return {"n": n, "steps": steps, "traced_nodes": traced_nodes, "first_call_s": first_call, "first_call_cpu_s": first_cpu,
            "compile_s": entry.stages.get("compile_seconds"), "stages": entry.stages.get("compile_stages", {}),
            "from_cache": entry.stages.get("from_cache", False), "loss": float(loss.detach()),
            "grad_sum": float(x.grad.sum()) + float(w.grad.sum())}


def _child(n: int, cache_dir: str) -> dict:
    env = {**os.environ, "GRAPHC_CACHE_DIR": cache_dir}
    env.pop("GRAPHC_LOGS", None)
    r = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"compile of N={n} failed:\n{r.stderr}")
    return json.loads(r.stdout.splitlines()[-1])


def _fmt_stages(stages: dict) -> str:
    return "  ".join(f"{k} {v:.2f}" for k, v in stages.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000,10000")
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", type=int, default=None)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(run_one(args.child)))
        return
    if args.profile is not None:
        import cProfile
        import pstats
        with tempfile.TemporaryDirectory() as d:
            os.environ["GRAPHC_CACHE_DIR"] = d
            prof = cProfile.Profile()
            prof.enable()
            res = run_one(args.profile)
            prof.disable()
        print(json.dumps({k: v for k, v in res.items()}, indent=1))
        st = pstats.Stats(prof)
        st.sort_stats("cumulative").print_stats(40)
        st.sort_stats("tottime").print_stats(25)
        return
    rows = []
    print(f"{'N':>6} {'nodes':>6} {'cold s':>8} {'cpu s':>7} {'warm s':>8} {'cpu s':>7}  stages (cold | warm)")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as d:
            cold = _child(n, d)
            warm = _child(n, d)
        assert cold["loss"] == warm["loss"] and cold["grad_sum"] == warm["grad_sum"], (cold, warm)
        rows.append({"cold": cold, "warm": warm})
        print(f"{n:>6} {cold['traced_nodes'] or '?':>6} {cold['first_call_s']:8.2f} {cold['first_call_cpu_s']:7.2f} "
              f"{warm['first_call_s']:8.2f} {warm['first_call_cpu_s']:7.2f}  "
              f"{_fmt_stages(cold['stages'])} | {_fmt_stages(warm['stages'])}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
