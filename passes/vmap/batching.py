"""Run a traced graph on operands of the calling level, batching where operands are batched.

``interpret`` walks a graph's nodes in order and binds each primitive on the values it is given:
eager tensors compute now, tensors traced by an outer transformation or by ``graphc.compile`` are
recorded there, IR values become nodes of the graph being built. A node with a batched operand
runs its primitive's batching rule instead (``rules.BATCH``), so unbatched work is done once. With
no batched operand at all this is a plain replay (how ``graphc.func.grad`` runs the graph it
differentiated). ``batch_graph`` is the graph-to-graph form.
"""
from __future__ import annotations

from typing import Any, Iterable

from graphc.ir.graph import Graph, Node, Value, building

from .rules import BATCH, UNSUPPORTED, BatchContext, materialize


def interpret(nodes: Iterable[Node], env: dict[int, tuple[Any, bool]], ctx: BatchContext | None = None) -> None:
    """Compute ``nodes`` into ``env`` (id of a value -> (what stands for it, whether it carries the
    batch as dimension 0)); ``env`` already holds every value the nodes read but do not make."""
    for n in nodes:
        args, flags = [], []
        for x in n.inputs:
            if isinstance(x, Value):
                a, b = env[id(x)]
            else:
                a, b = x, False
            args.append(a)
            flags.append(b)
        prim = n.prim
        batched = any(flags) or (ctx is not None and prim.kind == "random" and ctx.randomness != "same")
        if not batched:
            out = prim(*args, **n.attrs)
        else:
            rule = BATCH.get(prim)
            if rule is None:
                raise NotImplementedError(
                    f"vmap: no batching rule for primitive {prim.name}: "
                    f"{UNSUPPORTED.get(prim, 'none is written yet (passes/vmap/rules.py)')}")
            out = rule(ctx, args, flags, **n.attrs)
        env[id(n.output)] = (out, batched)


def batch_graph(g: Graph, batched: list[bool], size: int, randomness: str = "error") -> Graph:
    """A new graph computing ``g`` on a batch of ``size``: inputs flagged in ``batched`` gain a
    leading batch dimension, every output has one."""
    from graphc.ir.primitive import TensorType
    out = Graph(f"{g.name}_vmap")
    ctx = BatchContext(size, randomness)
    env: dict[int, tuple[Any, bool]] = {}
    for v, b in zip(g.inputs, batched):
        t = TensorType(((size,) if b else ()) + tuple(v.shape), v.dtype)
        env[id(v)] = (out.add_input(t, v.role, v.name), b)
    with building(out):
        interpret(g.nodes, env, ctx)
        results = [env[id(o)] for o in g.outputs]
        out.set_outputs([v if b else materialize(ctx, v) for v, b in results])
    return out
