"""Tracing for the function transforms: run ``f`` on symbolic tensors into a graph of primitives.

A ``FuncTrace`` is a trace (``graphc.compile``'s, with its symbolic tensors, in-place writes as new
values and random ops with explicit keys) that may nest inside another trace: the transform of an
inner function records into its own graph while the outer one waits. Any tensor from outside the
trace that ``f`` reaches (a captured tensor, a module's parameter, a tensor of an outer trace) is
lifted as a graph input by identity, and a transform's result is computed by running its graph on
the tensors of the calling level (``passes.vmap.interpret``), so whatever the caller is (eager
code, an outer transform, ``graphc.compile``) computes or records it in turn. Composite ops run
their decomposition, so the graph holds primitives only and every rule table applies to it.
"""
from __future__ import annotations

import threading
from typing import Any

from graphc.ir import prims as P
from graphc.ir.graph import Value
from graphc.ir.primitive import Primitive, TensorType, current_handler, pop_handler, push_handler

from ..autograd import grad_mode
from ..compiler.tracing import (GraphBreak, SymbolicTensor, Trace, TraceHandler, operand_values, user_location,
                                view_result)
from ..tensors import Tensor

# PyTorch's errors for data-dependent Python and for writes into captured tensors, per transform
_ITEM = ("vmap: It looks like you're calling .item() on a Tensor. We don't support vmap over calling .item() on a "
         "Tensor, please try to rewrite what you're doing with other operations.")
_CONTROL_FLOW = ("vmap: It looks like you're attempting to use a Tensor in some data-dependent control flow. We "
                 "don't support that yet, please rewrite it with tensor operations (torch.where, ...).")


class DataDependentError(RuntimeError):
    """The transformed function read tensor values in Python, which a traced graph cannot express."""


class FuncTrace(Trace):
    """One transform's trace of one call of the user's function."""

    def __init__(self, transform: str, device=None) -> None:
        super().__init__(f"func_{transform}", device)
        self.transform = transform  # "vmap", "grad", "vjp", ...: named in errors
        self.handler = FuncTraceHandler(self)
        self.outer = None
        self.thread: int | None = None  # the thread tracing, while it does

    def __enter__(self) -> "FuncTrace":
        self.outer = current_handler()  # where the result will be computed
        self.grad_at_entry = True
        self.thread = threading.get_ident()
        push_handler(self.handler)
        return self

    def __exit__(self, *exc) -> None:
        pop_handler(self.handler)
        self.thread = None

    def input(self, shape: tuple, dtype, requires_grad: bool) -> SymbolicTensor:
        v = self.graph.add_input(TensorType(tuple(shape), dtype), "input", f"in{len(self.graph.inputs)}")
        return SymbolicTensor._wrap(v, self, requires_grad)

    def value(self, t: Any) -> Value | None:
        """The graph value of a tensor ``f`` returned (a captured one is lifted); None for others."""
        if isinstance(t, SymbolicTensor) and t._trace is self:
            return t._value
        if isinstance(t, Tensor):
            return self.value_of(t)
        return None

    def lifted_env(self) -> dict[int, tuple[Any, bool]]:
        """The interpreter's environment for the lifted inputs: each is the tensor it stands for."""
        return {id(v): (t, False) for v, t in self.lifted.values() if isinstance(t, Tensor)}

    def rng_key(self):
        # a random op's key is drawn where the result is computed (eagerly, or as an input of the
        # outer trace), and captured: one draw per call of the transformed function, as eagerly
        if isinstance(self.outer, TraceHandler):
            return self.outer.trace.rng_key()
        from ..random import draw_key
        return Tensor._make(draw_key())

    def backward(self, loss, gradient, retain_graph, create_graph, inputs) -> None:
        raise RuntimeError(f"{self.transform}: .backward() inside a function transformed by graphc.func is not "
                           "supported; use graphc.func.grad or graphc.func.vjp to differentiate it")

    def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` traced, with reads of tensor values turned into the transform's error."""
        try:
            with self:
                return fn(*args, **kwargs)
        except GraphBreak as e:
            raise DataDependentError(self._data_dependent(e)) from None

    def _data_dependent(self, e: GraphBreak) -> str:
        where = f" ({e.location}: {e.reason})"
        if self.transform == "vmap":
            if "data-dependent output shape" in e.reason:
                return ("vmap: We do not support batching operators that can output dynamic shape. Attempted to "
                        f"vmap over {e.reason.split()[0]}") + where
            return (_ITEM if ".item()" in e.reason else _CONTROL_FLOW) + where
        return (f"{self.transform}: graphc.func traces the function into a graph of tensor operations, so it "
                f"cannot read the values of the tensors it transforms in Python (data-dependent Python){where}; "
                "rewrite it with tensor operations (torch.where, ...)")


class FuncTraceHandler(TraceHandler):
    """Records a transformed function's ops into its trace's graph."""

    def apply(self, prim: Primitive, args: tuple, attrs: dict):
        trace = self.trace
        if trace.thread != threading.get_ident():
            # a traced tensor kept in Python state (or handed to another thread) reached an op
            raise RuntimeError(f"a tensor traced by graphc.func.{trace.transform} was used outside the function being "
                               "transformed (stored in Python state or handed to another thread); it holds no values")
        if prim.data_dependent:
            raise GraphBreak(f"{prim.name} has a data-dependent output shape")
        vals, operands_rg = operand_values(trace, args)  # captured tensors, or an outer level's: lifted
        trace.graph.loc = user_location()
        out = self.builder.apply(prim, tuple(vals), attrs)
        requires_grad = prim.result_requires_grad(operands_rg, out.dtype)
        if requires_grad and not grad_mode.is_grad_enabled():
            # under no_grad inside the function: no transform differentiates through it
            out = self.builder.apply(P.stop_gradient, (out,), {})
            requires_grad = False
        return view_result(SymbolicTensor._wrap(out, trace, requires_grad), prim, args, attrs)

    def module_called(self, module) -> None:
        pass  # nothing is cached, so a module's training flag needs no guard

    def reading_values(self, tensor, what: str) -> None:
        pass  # a captured tensor's values are read now, for this call only

    def get_grad(self, tensor):
        return tensor._read_grad()

    def set_grad(self, tensor, value) -> None:
        tensor._write_grad(value)

    def guard(self, check) -> None:
        pass

    def hyperparameter(self, read, name: str, key: tuple):
        raise RuntimeError(f"{self.trace.transform}: an optimizer step inside a function transformed by graphc.func "
                           "is not supported")

    def composite(self, name: str, args: tuple, kwargs: dict):
        return None  # run the decomposition: the graph holds primitives only

    def write(self, tensor, result):
        trace = self.trace
        target = tensor._base if tensor._base is not None else tensor
        if not (isinstance(target, SymbolicTensor) and target._trace is trace):
            if trace.transform == "vmap":
                raise RuntimeError(
                    "vmap: inplace arithmetic(self, *extra_args) is not possible because the tensor written to was "
                    "captured from outside the vmapped function (it is not vmapped over). Please try to use "
                    "out-of-place operators instead of inplace operators, or pass the tensor in as an argument.")
            raise RuntimeError(
                f"During a grad (vjp, jvp, grad, etc) transform ({trace.transform}), the function provided attempted "
                "to call in-place operation that would mutate a captured Tensor. This is not supported; please rewrite "
                "the function being transformed to explicitly accept the mutated Tensor(s) as inputs.")
        return super().write(tensor, result)
