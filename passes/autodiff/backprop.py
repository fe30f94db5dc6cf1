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
from graphc.ir.call import add_call, call
from graphc.ir.composite import composite, expand
from graphc.ir.graph import Graph, Node, Value, building, located

from .rules import UNSUPPORTED, VJP, NoDerivative


def reaches(nodes: Iterable[Node], live: set[int]) -> set[int]:
    """``live`` (ids of values that carry gradients) grown by the outputs of ``nodes`` that
    depend on one through differentiable operands."""
    for n in nodes:
        if n.prim is call:  # each inexact output of a call with a live operand (a call is not split per output)
            if any(id(x) in live for x in n.value_inputs()):
                live.update(id(o) for o in n.outputs if o.dtype.is_inexact)
        elif n.prim.result_requires_grad((isinstance(x, Value) and id(x) in live for x in n.inputs), n.output.dtype):
            live.add(id(n.output))
    return live


def backprop(g: Graph, seeds: list[tuple[Value, Value]], sources: set[int]) -> dict[int, Value]:
    """Append to ``g`` the gradients of the seeded values (``(value, cotangent)`` pairs) with
    respect to every value that depends on ``sources`` (ids of values, usually inputs). Returns
    the cotangent of each value reached, by id; nodes are appended in an order that keeps ``g``
    topological."""
    nodes = list(g.nodes)
    live = reaches(nodes, set(sources))
    split_bodies: dict[tuple, object] = {}
    for n in nodes:
        if n.prim is call:
            _split_call(g, n, live, split_bodies)
    ct: dict[int, Value] = {}
    with building(g):
        for v, seed in seeds:
            _accumulate(ct, v, seed)
        _sweep(g, nodes, ct, live)
    return ct


def _accumulate(ct: dict[int, Value], x: Value, gx: Value) -> None:
    if gx.dtype is not x.dtype:
        gx = P.cast(gx, dtype=x.dtype)
    old = ct.get(id(x))
    ct[id(x)] = gx if old is None else (_scattered_sum(old, gx) or P.add(old, gx))


def _scattered_sum(old: Value, new: Value) -> Value | None:
    """``old + new`` where both scatter disjoint slices into zeros (the gradients of the slices
    ``x.chunk(4)`` takes: an LSTM's gates), without the additions: ``new``'s slice scattered into
    ``old``, and once the slices tile ``x`` along one axis, their concatenation. None when the
    pattern does not apply. ``old`` is a cotangent still being summed: nothing else reads it."""
    mine = _zero_scatters(new)
    pieces = _zero_scatters(old)
    if mine is None or pieces is None or len(mine) != 1 or old.type != new.type:
        return None
    index, src = mine[0]
    if not all(_disjoint(index, other) for other, _ in pieces):
        return None
    pieces.append(mine[0])
    axis = _tiling_axis([i for i, _ in pieces], new.shape)
    if axis is not None:
        return P.concat(*(s for _, s in sorted(pieces, key=lambda p: p[0][axis][0])), axis=axis)
    return P.slice_scatter(old, src, index=index)


def _zero_scatters(v: Value) -> list[tuple[tuple, Value]] | None:
    """The (index, source) pairs of a chain of slice_scatters, with unit steps, into a tensor of
    zeros; None if ``v`` is not one."""
    pieces = []
    while v.producer is not None and v.producer.prim is P.slice_scatter:
        index = tuple(tuple(r) for r in v.producer.attrs["index"])
        if any(step != 1 for _, _, step in index):
            return None
        pieces.append((index, v.producer.inputs[1]))
        v = v.producer.inputs[0]
    p = v.producer
    if not pieces or p is None or p.prim is not P.full or p.attrs.get("value") != 0:
        return None
    return pieces[::-1]


def _disjoint(a: tuple, b: tuple) -> bool:
    return any(hi_a <= lo_b or hi_b <= lo_a for (lo_a, hi_a, _), (lo_b, hi_b, _) in zip(a, b))


def _tiling_axis(indexes: list[tuple], shape: tuple) -> int | None:
    """The axis along which the slices ``indexes`` (disjoint, unit steps) cover ``shape``
    exactly, each spanning every other axis whole; None if they don't."""
    for axis in range(len(shape)):
        if all(lo == 0 and hi == n for i in indexes for d, ((lo, hi, _), n) in enumerate(zip(i, shape)) if d != axis) \
                and sum(i[axis][1] - i[axis][0] for i in indexes) == shape[axis]:
            return axis  # disjoint, unit steps, the lengths add up: they tile the axis
    return None


def _split_call(g: Graph, n: Node, live: set[int], memo: dict) -> None:
    """A call whose gradient is wanted calls its body's forward graph instead, which also
    returns the values the body's backward graph reads (as more outputs of the call). Each body
    is differentiated once per set of operands that need gradients (``memo``)."""
    from .transform import differentiate
    body = n.attrs["body"]
    wrt = [i for i, x in enumerate(n.inputs) if id(x) in live and x.dtype.is_inexact]
    diff = [j for j, o in enumerate(body.outputs) if o.dtype.is_inexact]
    if not wrt or not diff:
        return
    key = (id(body), tuple(wrt))
    split = memo.get(key)
    if split is None:
        split = memo[key] = differentiate(body, wrt, diff)
    n.attrs = {"body": split.forward, "vjp": split.backward, "returns": len(body.outputs), "diff": tuple(diff),
               "wrt": tuple(split.wrt)}
    for v in split.forward.outputs[len(body.outputs):]:
        n.outputs.append(Value(v.type, n, g._fresh(), None, g))


def _call_vjp(g: Graph, n: Node, ct: dict[int, Value], live: set[int]) -> None:
    """The gradients of a call's operands: a call of its body's backward graph, on the
    cotangents of the call's outputs (zeros where none reached them) and the values its forward
    call saved."""
    if "vjp" not in n.attrs:
        return
    gouts = [ct.get(id(n.outputs[j])) for j in n.attrs["diff"]]
    if all(gx is None for gx in gouts):
        return
    gouts = [gx if gx is not None else P.full(shape=tuple(o.shape), value=0.0, dtype=o.dtype)
             for gx, o in zip(gouts, (n.outputs[j] for j in n.attrs["diff"]))]
    node = add_call(g, n.attrs["vjp"], gouts + n.outputs[n.attrs["returns"]:])
    for i, gx in zip(n.attrs["wrt"], node.outputs):
        if id(n.inputs[i]) in live:
            _accumulate(ct, n.inputs[i], gx)


def _sweep(g: Graph, nodes: list[Node], ct: dict[int, Value], live: set[int]) -> None:
    for n in reversed(nodes):
        if n.prim is call:
            with located(g, n.loc):
                _call_vjp(g, n, ct, live)
            continue
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
                if type(gx) is NoDerivative and isinstance(x, Value) and id(x) in live:
                    raise gx.error()  # PyTorch has no formula for a gradient that is wanted
                if gx is not None and isinstance(x, Value) and id(x) in live:
                    _accumulate(ct, x, gx)
