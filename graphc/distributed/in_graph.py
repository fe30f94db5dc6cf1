"""Collectives inside compiled graphs.

Inside ``graphc.compile``, ``all_reduce`` and ``broadcast`` (blocking) are the IR primitive
``collective`` (``graphc.ir.prims``) and an in-place write of its result: a node like any other,
which the numpy and Triton backends run as a library call. So a compiled training step through
``DistributedDataParallel`` averages its gradients in its graph. IR knows nothing of MPI;
importing graphc.distributed installs the function that runs the node, here, on the group the
node names by key.
"""
from __future__ import annotations

from typing import Any

from graphc.ir import prims as P

from ..autograd import grad_mode
from ..tensors import Tensor
from .collectives import ReduceOp, _root, all_reduce, broadcast
from .process_group import default_group, group_of_key


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


def traced_all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> None:
    """``all_reduce`` while tracing: ``tensor`` takes the collective node's value."""
    with grad_mode.no_grad():
        tensor.copy_(P.collective(tensor, kind="all_reduce", op=op.name.lower(), root=0, group=default_group(group).key))


def traced_broadcast(tensor: Tensor, src: int | None = None, group=None, group_src: int | None = None) -> None:
    """``broadcast`` while tracing: ``tensor`` takes the collective node's value."""
    pg = default_group(group)
    root = _root(pg, src, group_src, "source")
    with grad_mode.no_grad():
        tensor.copy_(P.collective(tensor, kind="broadcast", op="", root=root, group=pg.key))


IN_GRAPH = {"all_reduce": traced_all_reduce, "broadcast": traced_broadcast}
