"""Rank 1 raises while the others wait for it in a collective: every rank must exit."""
import sys

import graphc as torch
import graphc.distributed as dist

before_init = "--before-init" in sys.argv
if not before_init:
    dist.init_process_group()
rank = int(__import__("os").environ.get("PMI_RANK", "0"))
if rank == 1:
    raise ValueError("rank 1 failed on purpose")
if before_init:
    dist.init_process_group()
dist.all_reduce(torch.ones(3))
dist.barrier()
