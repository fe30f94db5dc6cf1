"""Collectives inside compiled graphs.

A compiled training step through ``DistributedDataParallel`` averages its gradients with the IR
primitive ``collective`` (``graphc.ir.prims``): a node like any other, which the numpy and Triton
backends run as a library call. IR knows nothing of MPI; importing graphc.distributed installs
the function that runs the node, here, on the group the node names by key.
"""
from __future__ import annotations

from typing import Any

from graphc.ir import prims as P

from ..tensors import Tensor
from .collectives import ReduceOp, all_reduce, broadcast
from .process_group import ProcessGroup, group_of_key


def _run(x: Any, kind: str, op: str, root: int, group: int) -> Any:
    """The node's value: a new array (operands are never written)."""
    pg = group_of_key(group)
    t = Tensor._make(x.copy())
    if kind == "all_reduce":
        all_reduce(t, op=ReduceOp[op.upper()], group=pg)
    elif kind == "broadcast":
        broadcast(t, group=pg, group_src=root)
    else:
        raise ValueError(f"collective: unknown kind {kind!r} (all_reduce, broadcast)")
    return t._data


P.COLLECTIVE_RUNNER[0] = _run


def all_reduce_node(t: Tensor, op: str, group: ProcessGroup) -> Tensor:
    """``t`` combined across ``group`` with ``op`` (sum, avg, max, min, product), as a graph node."""
    return P.collective(t, kind="all_reduce", op=op, root=0, group=group.key)


def broadcast_node(t: Tensor, root: int, group: ProcessGroup) -> Tensor:
    """Group rank ``root``'s ``t`` on every rank, as a graph node."""
    return P.collective(t, kind="broadcast", op="", root=root, group=group.key)
