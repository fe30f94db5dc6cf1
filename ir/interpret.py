"""Reference interpreter: run a graph with each primitive's numpy semantics.

Used by constant folding and as the oracle that generated code is tested against.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .graph import Graph, Node, Value


def run_node(node: Node, env: dict) -> np.ndarray | list[np.ndarray]:
    """The node's result (a list of arrays for a node with several outputs, e.g. fused)."""
    prim = node.prim
    args = [env[id(x)] if isinstance(x, Value) else x for x in node.inputs]
    casts = prim.operand_casts(tuple(node.inputs), node.attrs)
    dtypes = [v.dtype for v in node.outputs] if len(node.outputs) > 1 else node.output.dtype
    with np.errstate(all="ignore"):  # inf/nan follow IEEE rules silently, as in eager mode
        return prim.run(args, node.attrs, casts, dtypes)


def interpret(g: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(inputs) != len(g.inputs):
        raise ValueError(f"graph {g.name} takes {len(g.inputs)} inputs, got {len(inputs)}")
    env: dict[int, np.ndarray] = {}
    for v, a in zip(g.inputs, inputs):
        env[id(v)] = np.asarray(a)
    for n in g.nodes:
        out = run_node(n, env)
        if len(n.outputs) > 1:
            env.update((id(v), o) for v, o in zip(n.outputs, out))
        else:
            env[id(n.output)] = out
    return [env[id(o)] for o in g.outputs]
