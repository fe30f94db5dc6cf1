"""Erase ``custom_vjp`` nodes once autodiff is done: each is the identity on its first operand (the
custom Function's forward value); its other operands and its backward graph only served autodiff."""
from __future__ import annotations

from graphc.ir import prims as P
from graphc.ir.graph import Graph


def erase_custom_vjp(g: Graph) -> Graph:
    gone = [n for n in g.nodes if n.prim is P.custom_vjp]
    for n in gone:
        g.replace_all_uses(n.output, n.inputs[0])
    g.remove_nodes(gone)
    return g
