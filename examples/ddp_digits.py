"""The digits classifier (examples/digits_classifier.py) trained data-parallel on several
processes, written as a PyTorch DDP tutorial would be (only the import differs):

    python -m graphc.distributed.run --nproc 2 examples/ddp_digits.py --model cnn --epochs 8
    mpiexec -n 2 python examples/ddp_digits.py --model mlp

Each rank loads its share of every batch (DistributedSampler; the global batch is --batch-size,
as in the one-process example); DistributedDataParallel averages the gradients, so every rank
takes the same optimizer step; BatchNorm becomes SyncBatchNorm (statistics of the whole batch).
Rank 0 evaluates and prints.
"""
from __future__ import annotations

import argparse
import time

import graphc as torch
import graphc.distributed as dist
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.nn.parallel import DistributedDataParallel as DDP
from graphc.utils.data import DataLoader
from graphc.utils.data.distributed import DistributedSampler

from digits_classifier import CNN, MLP, evaluate, load_digits_split


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["mlp", "cnn"], default="cnn")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch, split across the ranks")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="compile the model (forward and backward)")
    args = p.parse_args(argv)

    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by the {world} processes")
    torch.manual_seed(args.seed)  # rank 0's initial parameters are broadcast anyway
    train_set, test_set = load_digits_split(args.seed)
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size // world, sampler=sampler)
    test_loader = DataLoader(test_set, batch_size=256)

    model = MLP() if args.model == "mlp" else nn.SyncBatchNorm.convert_sync_batchnorm(CNN())
    ddp = DDP(torch.compile(model) if args.compile else model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    if rank == 0:
        print(f"{args.model.upper()} on {world} processes, {args.batch_size // world} images each per step")

    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)  # a new shuffle, the same on every rank
        ddp.train()
        start, running = time.perf_counter(), torch.zeros(())
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp(x), y)
            loss.backward()  # gradients averaged over the ranks
            optimizer.step()
            running += loss.detach()
        scheduler.step()
        dist.all_reduce(running, op=dist.ReduceOp.AVG)
        elapsed = time.perf_counter() - start
        if rank == 0:
            test_loss, acc = evaluate(model, test_loader)
            print(f"epoch {epoch:2d}  train loss {running.item() / len(train_loader):.4f}  "
                  f"test loss {test_loss:.4f}  test accuracy {acc * 100:.2f}%  ({elapsed:.2f} s)", flush=True)
    dist.destroy_process_group()
    return acc


if __name__ == "__main__":
    main()
