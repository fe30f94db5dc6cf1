"""Reference interpreter: run a graph with each primitive's numpy semantics.

Used by constant folding and as the oracle that generated code is tested against.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .graph import Graph, Node, Value


def run_node(node: Node, env: dict) -> np.ndarray:
    prim = node.prim
    args = [env[id(x)] if isinstance(x, Value) else x for x in node.inputs]
    casts = prim.operand_casts(tuple(node.inputs), node.attrs)
    args = [a.astype(c.np, copy=False) if c is not None else a for a, c in zip(args, casts)]
    out = prim.impl(*args, **node.attrs)
    want = node.output.type.dtype.np
    if type(out) is not np.ndarray or out.dtype != want:
        out = np.asarray(out).astype(want, copy=False)
    return out


def interpret(g: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(inputs) != len(g.inputs):
        raise ValueError(f"graph {g.name} takes {len(g.inputs)} inputs, got {len(inputs)}")
    env: dict[int, np.ndarray] = {}
    for v, a in zip(g.inputs, inputs):
        env[id(v)] = np.asarray(a)
    for n in g.nodes:
        env[id(n.output)] = run_node(n, env)
    return [env[id(o)] for o in g.outputs]
