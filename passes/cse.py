"""Common-subexpression elimination: identical (op, operands, attributes) compute once."""
from __future__ import annotations

from graphc.ir.graph import Graph, Value


def _key(n) -> tuple:
    ops = tuple(("v", id(x)) if isinstance(x, Value) else hashable(x) for x in n.inputs)
    return (n.prim.name, ops, tuple(sorted((k, hashable(v)) for k, v in n.attrs.items())))


def hashable(v):
    """A hashable form of an operand or attribute that tells apart what computes differently
    (also the outline pass's structural key)."""
    if isinstance(v, (list, tuple)):
        return tuple(hashable(x) for x in v)
    if isinstance(v, float):
        return ("float", repr(v))  # 0.0 and -0.0 differ (1/x), and nan equals nan here
    if isinstance(v, Graph):  # a fused node's body: compare by text
        from graphc.ir.printer import print_graph
        return ("graph", print_graph(v))
    return (type(v).__name__, v)


def cse(g: Graph) -> Graph:
    seen: dict[tuple, Value] = {}
    removed = []
    for n in g.nodes:
        # two collectives are two exchanges; a node of several outputs (a call) is kept whole
        key = (id(n),) if n.prim.effectful or len(n.outputs) > 1 else _key(n)
        prev = seen.get(key)
        if prev is not None and prev.type == n.output.type:
            g.replace_all_uses(n.output, prev)
            removed.append(n)
        else:
            seen[key] = n.output
    g.remove_nodes(removed)
    return g
