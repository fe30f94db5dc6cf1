"""The ``fused`` node: a kernel that owns a small subgraph (its body) plus its iteration domain.

Kinds: ``pointwise`` (elementwise ops over one domain), ``reduction`` (pointwise ops feeding one
reduction), ``matmul_epilogue`` (a matmul followed by pointwise ops on its result). Backends
lower the same groups: the scheduler (``graphc.codegen.scheduler``) makes each one a ``Kernel``
record with explicit ranges and index maps, which every backend renders.
"""
from __future__ import annotations

from .graph import Graph, Node, Value
from .interpret import interpret
from .primitive import Primitive, register

KINDS = ("pointwise", "reduction", "matmul_epilogue")


def _infer(*inputs, body: Graph, kind: str, domain: tuple = ()):
    if kind not in KINDS:
        raise ValueError(f"fused: unknown kind {kind!r}")
    if len(inputs) != len(body.inputs):
        raise ValueError(f"fused: {len(inputs)} operands for a body with {len(body.inputs)} inputs")
    for i, (x, v) in enumerate(zip(inputs, body.inputs)):
        if isinstance(x, Value) and x.type != v.type:
            raise ValueError(f"fused: operand {i} has type {x.type}, the body expects {v.type}")
    return [o.type for o in body.outputs]


def _impl(*arrays, body: Graph, kind: str, domain: tuple = ()):
    out = interpret(body, list(arrays))
    return out if len(out) > 1 else out[0]


fused = register(Primitive("fused", _infer, _impl, kind="fused",
                          complex_operands=True))  # its body's nodes were checked


def add_fused_node(g: Graph, inputs: list, body: Graph, kind: str, domain: tuple, at: int | None) -> Node:
    """Insert a fused node at position ``at`` (None: the caller places it in ``g.nodes``); its
    outputs mirror the body's outputs."""
    node = g.add_multi_node(fused, inputs, {"body": body, "kind": kind, "domain": tuple(domain)},
                            [o.type for o in body.outputs], loc="", at=len(g.nodes) if at is None else at)
    if at is None:
        g.nodes.pop()
    return node
