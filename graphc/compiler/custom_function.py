"""A custom ``autograd.Function`` applied while tracing, as PyTorch 2 compiles one: its forward is
traced inline (detached, as eager mode runs it under no_grad), and its Python ``backward`` is traced
at once into a graph of its own, which becomes the VJP of each differentiable output: every such
output is a ``custom_vjp`` node (``ir/prims.py``) holding that graph, so autodiff — the whole-graph
pass or a ``backward()`` inside the compiled function — inlines the user's backward where eager
autograd would call it.

The backward is traced on placeholder cotangents, one per tensor output (always materialized:
zeros where no gradient arrives, so ``set_materialize_grads(False)`` code sees zeros, not None).
Its nodes are appended to the traced graph, then moved into the backward graph; the values of the
traced graph it reads (saved tensors, inputs, ``ctx`` attributes, parameters) become operands of the
``custom_vjp`` nodes, so they are kept (or saved for backward) like any other operand.
"""
from __future__ import annotations

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Value
from graphc.ir.primitive import TensorType

from ..autograd import grad_mode
from ..autograd.function import FunctionCtx, check_saved, run_forward
from ..tensors import Tensor
from .tracing import GraphBreak, SymbolicTensor, Trace


class TracedCtx(FunctionCtx):
    """The ``ctx`` of a custom Function while it is traced (it holds any attribute the forward sets)."""

    def __init__(self, args: tuple) -> None:
        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        self._to_save: tuple = ()
        self._dirty: tuple = ()
        self._non_diff: set = set()
        self._materialize = True

    @property
    def saved_tensors(self) -> tuple:
        return tuple(self._to_save)

    saved_variables = saved_tensors


def trace_custom_function(trace: Trace, cls, args: tuple, kwargs: dict):
    """``cls.apply(*args, **kwargs)`` while tracing (see the module docstring)."""
    ctx = TracedCtx(args)
    outs, single = run_forward(cls, ctx, args, kwargs)
    check_saved(ctx._to_save)
    if ctx._dirty:
        raise GraphBreak(f"the custom autograd.Function {cls.__name__} modifies inputs in place (mark_dirty); "
                         "graphc.compile traces custom Functions without mark_dirty only")
    tensor_outs = [k for k, o in enumerate(outs) if isinstance(o, Tensor)]
    diff_outs = [k for k in tensor_outs if outs[k].dtype.is_inexact and id(outs[k]) not in ctx._non_diff]
    diff_in = [a for a, need in zip(args, ctx.needs_input_grad) if need]
    if not (grad_mode.is_grad_enabled() and diff_in and diff_outs):
        return outs[0] if single else outs  # no gradient flows: the detached forward is all there is
    body, captured, has_grad = _trace_backward(trace, cls, ctx, args, outs, tensor_outs)
    wrapped = list(outs)
    captured_t = [SymbolicTensor._wrap(v, trace, False) for v in captured]
    for k in diff_outs:
        wrapped[k] = P.custom_vjp(outs[k], *diff_in, *captured_t, bwd=body, index=tensor_outs.index(k),
                                  n_inputs=len(diff_in), has_grad=has_grad, fn=cls.__name__)
    return wrapped[0] if single else tuple(wrapped)


def _trace_backward(trace: Trace, cls, ctx: TracedCtx, args: tuple, outs: tuple, tensor_outs: list):
    """Trace ``cls.backward`` into its own graph; returns it, the traced graph's values it reads,
    and per differentiable input whether it returns a gradient."""
    from graphc.passes.dce import dce
    from graphc.passes.decompose import decompose
    g = trace.graph
    n_nodes = len(g.nodes)
    cts: list = [None] * len(outs)
    for k in tensor_outs:
        v = g.add_input(TensorType(tuple(outs[k].shape), outs[k].dtype), "input", f"ct{k}")
        cts[k] = SymbolicTensor._wrap(v, trace, False)
    placeholders = [cts[k]._value for k in tensor_outs]
    mutations = dict(trace.mutations)
    saved = [(t, t._value) for t in ctx._to_save if isinstance(t, SymbolicTensor)]
    grads = cls.backward(ctx, *cts)
    if trace.mutations != mutations or any(t._value is not v for t, v in saved):
        raise GraphBreak(f"the backward of the custom autograd.Function {cls.__name__} writes in place into a "
                         "tensor it did not create; graphc.compile does not trace that")
    if not isinstance(grads, tuple):
        grads = (grads,)
    n = len(args)
    if len(grads) < n or (len(grads) > n and any(r is not None for r in grads[n:])):
        raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of gradients (expected {n}, "
                           f"got {len(grads)})")
    new_nodes = g.nodes[n_nodes:]
    if any(len(nd.outputs) != 1 for nd in new_nodes):
        raise GraphBreak(f"the backward of the custom autograd.Function {cls.__name__} uses a multi-output op")
    produced = {id(nd.output) for nd in new_nodes} | {id(v) for v in placeholders}
    captured: list[Value] = []
    seen: set[int] = set()

    def capture(v: Value) -> None:
        if id(v) not in produced and id(v) not in seen:
            seen.add(id(v))
            captured.append(v)

    for nd in new_nodes:
        for x in nd.value_inputs():
            capture(x)
    grad_values, has_grad = [], []
    for i, (need, gr) in enumerate(zip(ctx.needs_input_grad, grads)):
        if not need:
            continue
        if gr is not None and not isinstance(gr, Tensor):
            raise TypeError(f"function {cls.__name__}Backward returned a gradient of type {type(gr).__name__} at "
                            f"index {i}; expected a Tensor or None")
        has_grad.append(gr is not None)
        if gr is not None and not _sums_to(tuple(gr.shape), tuple(args[i].shape)):
            raise RuntimeError(f"Function {cls.__name__}Backward returned an invalid gradient at index {i} - got "
                               f"{list(gr.shape)} but expected shape compatible with {list(args[i].shape)}")
        if gr is not None:
            v = gr._value if isinstance(gr, SymbolicTensor) else trace.value_of(gr)
            capture(v)
            grad_values.append(v)
    body = Graph(f"{cls.__name__}_backward")
    m: dict[int, Value] = {}
    for v in placeholders:
        m[id(v)] = body.add_input(v.type, "input", v.name)
    for v in captured:
        m[id(v)] = body.add_input(v.type, "input", f"c{len(body.inputs)}")
    for nd in new_nodes:
        m[id(nd.output)] = body.add_node(nd.prim, [m[id(x)] if isinstance(x, Value) else x for x in nd.inputs],
                                         nd.attrs, nd.output.type, nd.loc)
    body.set_outputs([m[id(v)] for v in grad_values])
    # the backward's nodes leave the traced graph: they run only where autodiff inlines them
    g.remove_nodes(new_nodes)
    gone = {id(v) for v in placeholders}
    g.inputs = [v for v in g.inputs if id(v) not in gone]
    body = dce(decompose(body), keep_inputs=True)  # composites expanded: inlined after the decompose pass
    body.rename()
    return body, captured, tuple(has_grad)


def _sums_to(got: tuple, shape: tuple) -> bool:
    """Whether a gradient of shape ``got`` sums down to ``shape`` (it is ``shape`` broadcast), as
    eager autograd accepts it."""
    lead = len(got) - len(shape)
    return lead >= 0 and all(s == g or s == 1 for s, g in zip(shape, got[lead:]))
