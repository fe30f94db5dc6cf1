"""One data-parallel training step on 2 processes against the same step on one process.

    python benchmarks/ddp_step.py [--steps 30] [--nproc 2]

An MLP (64x784-512-256-10, AdamW) on a global batch of 64: one process takes the whole batch; N
processes (graphc.distributed, MPI on this machine) take 64/N each, and DistributedDataParallel
averages the 0.5M gradients. Prints the median ms per step of each, and of one all-reduce of the
gradients alone, and of the DDP step under no_sync() (no averaging). On a machine with fewer cores
than processes the ranks share cores: the figure then shows the overhead, not a speed-up. BLAS
threads compete with the ranks for cores: OPENBLAS_NUM_THREADS=1 gives each process one core.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F

BATCH = 64


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def time_steps(net, params, x, y, steps: int) -> float:
    opt = torch.optim.AdamW(params, lr=1e-3)
    times = []
    for _ in range(steps + 3):  # 3 warm-up steps
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[3:]) * 1e3


def data(n):
    g = np.random.default_rng(0)
    return (torch.from_numpy(g.standard_normal((n, 784)).astype(np.float32)),
            torch.from_numpy(g.integers(0, 10, n)))


def worker(steps: int) -> None:
    import graphc.distributed as dist
    from graphc.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = data(BATCH)
    n = BATCH // world
    m = model()
    net = DDP(m)
    xs, ys = x[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n]
    ms = time_steps(net, m.parameters(), xs, ys, steps)
    with net.no_sync():  # the same step without averaging: what the communication costs
        local = time_steps(net, m.parameters(), xs, ys, steps)
    flat = torch.zeros(sum(p.numel() for p in m.parameters()))
    times = []
    for _ in range(steps + 3):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(flat)
        times.append(time.perf_counter() - t0)
    if rank == 0:
        print(f"RESULT {ms:.2f} {local:.2f} {statistics.median(times[3:]) * 1e3:.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.steps)
        return
    x, y = data(BATCH)
    m = model()
    one = time_steps(m, m.parameters(), x, y, args.steps)
    out = subprocess.run([sys.executable, "-m", "graphc.distributed.run", "--nproc", str(args.nproc),
                          str(Path(__file__).resolve()), "--worker", "--steps", str(args.steps)],
                         capture_output=True, text=True, check=True).stdout
    ddp, local, allreduce = (float(v) for v in out.split("RESULT")[1].split())
    n_params = sum(p.numel() for p in m.parameters())
    print(f"MLP 784-512-256-10 ({n_params} parameters), AdamW, global batch {BATCH}, median of {args.steps} steps")
    print(f"  1 process, batch {BATCH}:                {one:7.2f} ms/step")
    print(f"  {args.nproc} processes, batch {BATCH // args.nproc} each (DDP):  {ddp:7.2f} ms/step  ({one / ddp:.2f}x)")
    print(f"  {args.nproc} processes, the same without averaging (no_sync): {local:7.2f} ms/step")
    print(f"  all-reduce of the {n_params} gradients alone: {allreduce:7.2f} ms")


if __name__ == "__main__":
    main()
