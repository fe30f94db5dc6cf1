"""The ``call`` node: a call of a graph (its ``body``) that several places of one graph share.

The outline pass (``graphc.passes.outline``) makes them from module calls that repeat with the
same structure, such as an ``LSTMCell`` unrolled over a thousand time steps: the body is then
optimized, differentiated and compiled once, however many times it is called, and compile time
follows the number of distinct bodies instead of the number of steps. Its operands are the
body's inputs, its outputs the body's outputs; calls of one body share the ``Graph`` object.

Autodiff gives a call of a differentiated body two more attributes: ``vjp`` (the body's
backward graph) and ``returns`` (how many of its outputs are the body's own; the rest are the
values its backward reads).
"""
from __future__ import annotations

from .graph import Graph, Node, Value
from .interpret import interpret
from .primitive import Primitive, register


def _infer(*inputs, body: Graph, **_):
    if len(inputs) != len(body.inputs):
        raise ValueError(f"call: {len(inputs)} operands for a body with {len(body.inputs)} inputs")
    for i, (x, v) in enumerate(zip(inputs, body.inputs)):
        if not isinstance(x, Value) or x.type != v.type:
            raise ValueError(f"call: operand {i} is {getattr(x, 'type', x)}, the body expects {v.type}")
    return [o.type for o in body.outputs]


def _impl(*arrays, body: Graph, **_):
    out = interpret(body, list(arrays))
    return out if len(out) > 1 else out[0]


call = register(Primitive("call", _infer, _impl, kind="call", cheap=False, complex_operands=True))


def add_call(g: Graph, body: Graph, inputs: list[Value], attrs: dict | None = None, loc: str | None = None,
             at: int | None = None) -> Node:
    """A call of ``body`` on ``inputs`` in ``g`` (at position ``at``; None: appended)."""
    return g.add_multi_node(call, inputs, {"body": body, **(attrs or {})}, [o.type for o in body.outputs],
                            loc, at)


def bodies(g: Graph) -> list[Graph]:
    """The distinct bodies ``g``'s call nodes call, in order of first call."""
    seen: dict[int, Graph] = {}
    for n in g.nodes:
        if n.prim is call:
            seen.setdefault(id(n.attrs["body"]), n.attrs["body"])
    return list(seen.values())


def rebind_bodies(g: Graph, new: dict[int, Graph]) -> None:
    """Point ``g``'s calls at the optimized bodies ``new`` (id(old body) -> new body), which
    keep their bodies' inputs and outputs."""
    for n in g.nodes:
        if n.prim is call and id(n.attrs["body"]) in new:
            n.attrs["body"] = new[id(n.attrs["body"])]
