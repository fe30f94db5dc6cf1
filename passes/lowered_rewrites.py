"""Rewrites of lowered graphs only (after autodiff): forms that compute the same values in fewer
passes, but that autodiff must not see, since their derivatives would be computed differently.

A product with a sigmoid read nowhere else, ``a * sigmoid(z)`` (silu, swish, the LSTM's gates, a
GLU), is ``a / (1 + exp(-z))``: a large float32 sigmoid is four numpy passes (``1 / (1 +
exp(-z))``), and the division by the denominator replaces the reciprocal and the product (on 1M
float32 elements: silu 1.14 ms against 0.73 ms for the plain numpy form). The values are the
same limits included: z = -inf gives exp(inf) = inf and a / inf = 0, as 0 * a; z = +inf gives a;
NaN stays NaN. Only large float32 arrays: smaller ones, and other types, compute sigmoid in one
scipy call, against which four passes would be slower. (Autodiff of ``a / (1 + exp(-z))`` would
give NaN gradients for z below -88, where exp(-z) overflows: so not in the composite.)
"""
from __future__ import annotations

import math

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.graph import Graph, Node, Value


def _sigmoid_read_once(s, n: Node, outputs: set[int]) -> bool:
    """Whether ``s`` is a large float32 sigmoid whose only reader is ``n`` (of its own type), and
    not a graph output (``outputs``: their ids)."""
    return (isinstance(s, Value) and s.producer is not None and s.producer.prim is P.sigmoid
            and s.users == [n] and id(s) not in outputs and s.dtype is dt.float32 and n.output.dtype is dt.float32
            and math.prod(s.shape) >= P.NUMPY_PASSES_MIN_SIZE)


def lowered_rewrites(g: Graph) -> Graph:
    made: dict[int, list[Node]] = {}  # id(node replaced) -> the nodes computing it, in order
    gone: list[Node] = []
    outputs = {id(v) for v in g.outputs}
    for n in list(g.nodes):
        if n.prim is not P.mul or len(n.inputs) != 2:
            continue
        for s, a in ((n.inputs[1], n.inputs[0]), (n.inputs[0], n.inputs[1])):
            if _sigmoid_read_once(s, n, outputs) and (isinstance(a, Value) and a.dtype is dt.float32 or type(a) in (int, float)):
                z = s.producer.inputs[0]
                start = len(g.nodes)
                e = g.add_node(P.exp, [g.add_node(P.neg, [z], {}, loc=n.loc)], {}, loc=n.loc)
                q = g.add_node(P.div, [a, g.add_node(P.add, [e, 1], {}, loc=n.loc)], {}, n.output.type, n.loc)
                made[id(n)] = g.nodes[start:]
                del g.nodes[start:]
                g.replace_all_uses(n.output, q)
                gone += [n, s.producer]
                break
    if gone:
        keep = {id(m) for m in gone}
        touched = {id(v): v for m in gone for v in m.value_inputs()}
        for v in touched.values():
            v.users = [u for u in v.users if id(u) not in keep]
        g.nodes = [m for n in g.nodes for m in (made.get(id(n), [n]) if id(n) not in keep or id(n) in made else [])]
    return g
