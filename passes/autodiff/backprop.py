"""Reverse-mode sweep over a graph: append the nodes that compute gradients to the graph itself.

Used by the forward/backward split (``transform.build_joint``) and by ``loss.backward()`` inside a
compiled function (a whole training step traced into one graph). Composite nodes (softmax,
layer_norm, … kept whole in traced graphs) have no rule of their own: the sweep appends their
decomposition and differentiates through it; CSE later merges that recomputation with the
composite's own expansion.
"""
from __future__ import annotations

from typing import Iterable

from graphc.ir import prims as P
from graphc.ir.composite import composite, expand
from graphc.ir.graph import Graph, Node, Value, building, located

from .rules import UNSUPPORTED, VJP


def reaches(nodes: Iterable[Node], live: set[int]) -> set[int]:
    """``live`` (ids of values that carry gradients) grown by the outputs of ``nodes`` that
    depend on one through differentiable operands."""
    for n in nodes:
        if n.prim.result_requires_grad((isinstance(x, Value) and id(x) in live for x in n.inputs), n.output.dtype):
            live.add(id(n.output))
    return live


def backprop(g: Graph, seeds: list[tuple[Value, Value]], sources: set[int]) -> dict[int, Value]:
    """Append to ``g`` the gradients of the seeded values (``(value, cotangent)`` pairs) with
    respect to every value that depends on ``sources`` (ids of values, usually inputs). Returns
    the cotangent of each value reached, by id; nodes are appended in an order that keeps ``g``
    topological."""
    nodes = list(g.nodes)
    live = reaches(nodes, set(sources))
    ct: dict[int, Value] = {}
    with building(g):
        for v, seed in seeds:
            _accumulate(ct, v, seed)
        _sweep(g, nodes, ct, live)
    return ct


def _accumulate(ct: dict[int, Value], x: Value, gx: Value) -> None:
    if gx.dtype is not x.dtype:
        gx = P.cast(gx, dtype=x.dtype)
    ct[id(x)] = P.add(ct[id(x)], gx) if id(x) in ct else gx


def _sweep(g: Graph, nodes: list[Node], ct: dict[int, Value], live: set[int]) -> None:
    for n in reversed(nodes):
        gout = ct.get(id(n.output))
        if gout is None or id(n.output) not in live:
            continue
        if n.prim is composite:
            start = len(g.nodes)
            with located(g, n.loc):
                out = expand(n.attrs["name"], n.attrs["layout"], list(n.inputs))
            inner = g.nodes[start:]
            reaches(inner, live)
            ct[id(out)] = gout
            _sweep(g, inner, ct, live)
            continue
        if n.prim in UNSUPPORTED:
            raise NotImplementedError(f"autodiff: {n.prim.name}: {UNSUPPORTED[n.prim]}")
        with located(g, n.loc):  # a gradient (and its sum with others) takes the line of the op it differentiates
            grads = VJP[n.prim].fn(gout, n.output, *n.inputs, **n.attrs)
            for x, gx in zip(n.inputs, grads):
                if gx is not None and isinstance(x, Value) and id(x) in live:
                    _accumulate(ct, x, gx)
