"""Dead-code elimination: drop nodes whose outputs nothing uses."""
from __future__ import annotations

from graphc.ir.graph import Graph


def dce(g: Graph, keep_inputs: bool = True) -> Graph:
    live = {id(o) for o in g.outputs}
    kept = []
    for n in reversed(g.nodes):
        if any(id(o) in live for o in n.outputs):
            kept.append(n)
            live.update(id(x) for x in n.value_inputs())
        else:
            for x in n.value_inputs():
                if n in x.users:
                    x.users.remove(n)
    g.nodes = list(reversed(kept))
    if not keep_inputs:
        g.inputs = [v for v in g.inputs if id(v) in live]
    return g
