"""Constant folding: nodes whose operands are all constants are evaluated at compile time with
the primitives' reference semantics, and become constant ``full`` nodes when the result is
uniform (small, printable, exactly reproducible)."""
from __future__ import annotations

import numpy as np

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Value
from graphc.ir.interpret import run_node

MAX_ELEMENTS = 1 << 16


def constant_fold(g: Graph) -> Graph:
    known: dict[int, np.ndarray] = {}
    folded: dict[int, list] = {}  # id(folded node) -> [the constant node taking its place]
    for n in list(g.nodes):
        if n.prim is P.full:
            known[id(n.output)] = n.prim.impl(**n.attrs)
            continue
        ins = list(n.value_inputs())
        if len(n.outputs) != 1 or not ins or not all(id(x) in known for x in ins) or n.prim.data_dependent \
                or n.prim.effectful:
            continue
        if int(np.prod(n.output.shape)) > MAX_ELEMENTS:
            continue
        env = {id(x): known[id(x)] for x in ins}
        out = run_node(n, env)
        known[id(n.output)] = out
        flat = out.reshape(-1)
        uniform = flat.size > 0 and bool(np.all(flat == flat[0]))
        if uniform and (out.dtype.kind != "f" or np.isfinite(flat[0])):
            value = flat[0].item()
            new = g.add_node(P.full, [], {"shape": n.output.shape, "value": value, "dtype": n.output.dtype},
                             n.output.type, n.loc)
            g.nodes.pop()  # appended: it takes the folded node's place below
            folded[id(n)] = [new.producer]
            known[id(new)] = out
            g.replace_all_uses(n.output, new)
    g.remove_nodes([n for n in g.nodes if id(n) in folded], folded)
    return g
