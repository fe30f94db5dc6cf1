"""A compiled graphc training step against PyTorch eager in CPU time (``time.process_time``), one
thread each, alternating rounds in one process: on a loaded machine wall time swings by 30% or
more, CPU time far less (see README, performance). Workloads as ``training_steps.py``'s.

    python benchmarks/step_cpu_time.py [mlp] [--rounds 25]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from training_steps import _same_weights, build, step_fn  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workloads", nargs="*", default=["mlp"])
    p.add_argument("--rounds", type=int, default=25)
    args = p.parse_args(argv)
    import graphc
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for wl in args.workloads:
            _compare(graphc, torch, wl, args.rounds)
    finally:
        torch.set_num_threads(threads)


def _compare(graphc, torch, wl: str, rounds: int) -> None:
    """Alternating rounds of the compiled graphc step and the PyTorch eager step of ``wl``."""
    gm, gopt, (gx, gy) = build(graphc, wl)
    tm, topt, _ = build(torch, wl)
    _same_weights(gm, tm)
    steps = {"graphc compiled": (graphc.compile(step_fn(graphc, gm, gopt), fullgraph=True), (gx, gy)),
             "torch eager": (step_fn(torch, tm, topt), (torch.from_numpy(gx.numpy()), torch.from_numpy(gy.numpy())))}
    for f, a in steps.values():
        for _ in range(3):
            f(*a)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for k, (f, a) in steps.items():
            start = time.process_time()
            for _ in range(5):
                f(*a)
            times[k].append((time.process_time() - start) / 5 * 1e3)
    g, t = (statistics.median(v) for v in times.values())
    print(f"{wl}: graphc compiled {g:.2f} ms, torch eager {t:.2f} ms (CPU time, median of {rounds} "
          f"rounds of 5 steps): {g / t:.3f}x")


if __name__ == "__main__":
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GRAPHC_NUM_THREADS"):
        os.environ[var] = "1"  # one thread each, set before numpy loads
    main()
