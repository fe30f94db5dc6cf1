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
from graphc.ir.shapes import numel

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
    body = n.attrs["body"]
    wrt = [i for i, x in enumerate(n.inputs) if id(x) in live and x.dtype.is_inexact]
    diff = [j for j, o in enumerate(body.outputs) if o.dtype.is_inexact]
    if not wrt or not diff:
        return
    key = (id(body), tuple(wrt))
    attrs = memo.get(key)
    if attrs is None:
        attrs = memo[key] = _differentiate_body(body, wrt, diff)
    n.attrs = dict(attrs)
    for v in attrs["body"].outputs[len(body.outputs):]:
        n.outputs.append(Value(v.type, n, g._fresh(), None, g))


def _differentiate_body(body: Graph, wrt: list[int], diff: list[int]) -> dict:
    """A call's attributes once its body is split into forward and backward graphs. The values
    the backward reads are handed over cheaply: one it reads from the call's operands (a weight)
    is read from the operand by the backward call (``operands``), not returned (a returned operand
    would be copied at every call); the forward's own values are returned packed, one flat array
    per dtype, so each call saves a few arrays and not a dozen."""
    from .transform import differentiate
    split = differentiate(body, wrt, diff)
    fwd, bwd, k = split.forward, split.backward, len(body.outputs)
    saved = fwd.outputs[k:]
    n_ct = len(bwd.inputs) - len(saved)
    given = {id(v): i for i, v in enumerate(fwd.inputs)}
    operands = [(given[id(v)], b) for v, b in zip(saved, bwd.inputs[n_ct:]) if id(v) in given]
    by_dtype: dict = {}
    for v, b in zip(saved, bwd.inputs[n_ct:]):
        if id(v) not in given:
            by_dtype.setdefault(v.dtype, []).append((v, b))
    outs, reads, first = list(fwd.outputs[:k]), [], len(bwd.nodes)
    for items in by_dtype.values():
        if len(items) == 1:
            outs.append(items[0][0])
            reads.append(items[0][1])
            continue
        flat = P.concat(*(P.reshape(v, shape=(numel(v.shape),)) for v, _ in items), axis=0)
        outs.append(flat)
        packed = bwd.add_input(flat.type, "input", f"packed{len(reads)}")
        reads.append(packed)
        at = 0
        for v, b in items:
            part = P.slice(packed, index=((at, at + numel(v.shape), 1),))
            bwd.replace_all_uses(b, P.reshape(part, shape=tuple(v.shape)))
            at += numel(v.shape)
    bwd.nodes = bwd.nodes[first:] + bwd.nodes[:first]  # the unpacking views come first
    fwd.set_outputs(outs)
    bwd.inputs = bwd.inputs[:n_ct] + [b for _, b in operands] + reads
    fwd.rename()
    bwd.rename()
    return {"body": fwd, "vjp": bwd, "returns": k, "diff": tuple(diff), "wrt": tuple(split.wrt),
            "operands": tuple(i for i, _ in operands)}


def _call_vjp(g: Graph, n: Node, ct: dict[int, Value], live: set[int], memo: dict) -> None:
    """The gradients of a call's operands: a call of its body's backward graph, on the
    cotangents of the call's outputs (zeros where none reached them), the operands its backward
    reads and the values its forward call saved."""
    if "vjp" not in n.attrs:
        return
    gouts = [ct.get(id(n.outputs[j])) for j in n.attrs["diff"]]
    if all(gx is None for gx in gouts):
        return
    gouts = [gx if gx is not None else P.full(shape=tuple(o.shape), value=0.0, dtype=o.dtype)
             for gx, o in zip(gouts, (n.outputs[j] for j in n.attrs["diff"]))]
    vjp, wrt = n.attrs["vjp"], n.attrs["wrt"]
    args = gouts + [n.inputs[i] for i in n.attrs["operands"]] + n.outputs[n.attrs["returns"]:]
    # gradients summed so far (a weight's, over the later steps of a loop) are added inside the
    # backward call, which returns the sums: no addition per call in the caller's graph, and no
    # gradient of each step kept until a sum at the end
    once = [i for i in wrt if sum(n.inputs[k] is n.inputs[i] for k in wrt) == 1]
    acc = tuple(j for j, i in enumerate(wrt) if i in once and id(n.inputs[i]) in live
                and ct.get(id(n.inputs[i])) is not None and ct[id(n.inputs[i])].type == vjp.outputs[j].type)
    if acc:
        key = (id(vjp), acc)
        if key not in memo:
            memo[key] = _accumulating(vjp, acc)
        vjp = memo[key]
        args += [ct[id(n.inputs[wrt[j]])] for j in acc]
    node = add_call(g, vjp, args)
    for j, (i, gx) in enumerate(zip(wrt, node.outputs)):
        if id(n.inputs[i]) not in live:
            continue
        if j in acc:
            ct[id(n.inputs[i])] = gx
        else:
            _accumulate(ct, n.inputs[i], gx)


def _accumulating(vjp: Graph, acc: tuple[int, ...]) -> Graph:
    """A copy of the backward graph ``vjp`` that takes, for each output in ``acc``, the sum so
    far (one more input each, at the end) and returns that sum plus the output."""
    from .transform import _clone
    new, _ = _clone(vjp)
    sums = [new.add_input(new.outputs[j].type, "input", f"sum{j}") for j in acc]
    outs = list(new.outputs)
    for j, s in zip(acc, sums):
        outs[j] = new.add_node(P.add, [s, outs[j]], {})  # not a bind: the sweep is building another graph
    new.set_outputs(outs)
    new.rename()
    return new


def _sweep(g: Graph, nodes: list[Node], ct: dict[int, Value], live: set[int], memo: dict | None = None) -> None:
    memo = {} if memo is None else memo  # backward graphs of calls that add to gradient sums, by (graph, outputs)
    for n in reversed(nodes):
        if n.prim is call:
            with located(g, n.loc):
                _call_vjp(g, n, ct, live, memo)
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
            _sweep(g, inner, ct, live, memo)
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
