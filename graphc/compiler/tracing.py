"""Tracing: run the user's Python on symbolic tensors and record the primitives into an IR graph.

A ``SymbolicTensor`` is a graphc Tensor whose value is an IR Value: every PyTorch-level method
works on it, because they all bind primitives, and the trace handler (higher level than eager)
turns each binding into a graph node. A concrete tensor that an op reaches during tracing
(parameter, buffer, global) is lifted as a graph input by identity, so the compiled code reads
its current contents on every call. Reading data (``.item()``, ``bool(t)``, ``.numpy()``) is a
graph break.
"""
from __future__ import annotations

import os
import sys
import threading
import traceback

from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, GraphBuilder, Value
from graphc.ir.primitive import Primitive, TensorType, pop_handler, push_handler

from ..autograd import grad_mode
from ..dispatch import FrontendHandler
from ..tensors import Size, Tensor

_GRAPHC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GraphBreak(Exception):
    """Raised inside tracing when the code needs concrete data; carries the user's file:line."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.location = user_location()
        super().__init__(f"{self.location}: {reason}")


def _is_internal(filename: str) -> bool:
    f = os.path.abspath(filename)
    from graphc import ir, passes
    roots = (_GRAPHC_DIR, os.path.dirname(ir.__file__), os.path.dirname(passes.__file__))
    return f.startswith(roots) or "importlib" in f


def user_location() -> str:
    """file:line of the innermost frame of user code (outside graphc) on the current stack."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not _is_internal(frame.filename):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"


def _caller() -> str:
    """``function (graphc/file.py)`` of the code that asked a symbolic tensor for its data."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_name.startswith("<") and f.f_back is not None:
        f = f.f_back  # a comprehension or generator: name the function around it
    fn = os.path.abspath(f.f_code.co_filename)
    root = os.path.dirname(_GRAPHC_DIR)
    where = os.path.relpath(fn, root) if fn.startswith(root + os.sep) else os.path.basename(fn)
    return f"{f.f_code.co_name} ({where})"


_active = threading.local()


def current_trace() -> "Trace | None":
    return getattr(_active, "trace", None)


class Trace:
    """The state of one tracing run: the graph, lifted tensors, and mutations to write back."""

    def __init__(self, name: str, device=None) -> None:
        from ..device import CPU
        self.graph = Graph(name)
        self.device = device or CPU  # where the traced function's tensors live (what .device says)
        self.lifted: dict[int, tuple[Value, Tensor]] = {}  # id(tensor) -> (input value, tensor)
        self.current: dict[int, Value] = {}  # id(lifted tensor) -> its latest (possibly mutated) value
        self.mutations: dict[int, tuple[Tensor, Value]] = {}
        self.handler = TraceHandler(self)
        self._rng: SymbolicTensor | None = None
        self._streams = 0
        self.modules: list = []  # nn.Modules called while tracing (their training flags are guarded)
        self._module_ids: set[int] = set()
        self._buffers_before: list = []  # (module, its buffers when first called): reassignments undone

    def __enter__(self) -> "Trace":
        if current_trace() is not None:
            raise RuntimeError("graphc.compile: nested tracing is not supported")
        _active.trace = self
        self.grad_at_entry = grad_mode.is_grad_enabled()  # the graph will be differentiated
        push_handler(self.handler)  # this thread's ops now go to the trace
        return self

    def note_module(self, module) -> None:
        """A module called while tracing: its training flag is guarded, and buffers it reassigns
        are adopted as mutations (or undone)."""
        if id(module) not in self._module_ids:
            self._module_ids.add(id(module))
            self.modules.append(module)
            self._buffers_before.append((module, dict(module.__dict__.get("_buffers", {}))))

    def adopt_buffer_assignments(self) -> str | None:
        """Buffers reassigned during tracing (``self.avg = 0.9 * self.avg + ...``) become mutations of
        the original buffer, written back after each call. Returns where that is impossible (a new
        shape or dtype), or None."""
        for m, before in self._buffers_before:
            for key, v in m.__dict__.get("_buffers", {}).items():
                old = before.get(key)
                if isinstance(v, SymbolicTensor) and v._trace is self:
                    if (old is None or isinstance(old, SymbolicTensor) or tuple(old.shape) != tuple(v.shape)
                            or old.dtype is not v.dtype):
                        return f"{type(m).__name__}.{key}"
                    self.record_mutation(old, v._value)
        return None

    def __exit__(self, *exc) -> None:
        for m, before in self._buffers_before:  # buffers are never left holding traced tensors
            bufs = m.__dict__.get("_buffers", {})
            for key, v in list(bufs.items()):
                if isinstance(v, SymbolicTensor) and key in before:
                    bufs[key] = before[key]
        pop_handler(self.handler)
        _active.trace = None

    def is_state(self, t: Tensor) -> bool:
        """A tensor whose values may differ at the next call: lifted, a parameter, or a buffer
        of a module called while tracing."""
        if id(t) in self.lifted or t.is_param:
            return True
        return any(b is t for m in self.modules for b in m.__dict__.get("_buffers", {}).values())

    def value_of(self, t: Tensor) -> Value:
        """The IR value for a concrete tensor: a lifted input (by identity) or a constant."""
        key = id(t)
        if key in self.current:
            return self.current[key]
        if getattr(t, "is_param", False):
            role = "param"
        else:
            role = "buffer"
        v = self.graph.add_input(TensorType(tuple(t.shape), t.dtype), role, f"{role[0]}{len(self.graph.inputs)}")
        self.lifted[key] = (v, t)
        self.current[key] = v
        return v

    def rng_key(self) -> "SymbolicTensor":
        """The i64[2] key input that random ops draw from; a fresh key is fed at every call."""
        if self._rng is None:
            v = self.graph.add_input(TensorType((2,), dt.int64), "rng", "rng")
            self.lifted[id(RNG_KEY)] = (v, RNG_KEY)
            self.current[id(RNG_KEY)] = v
            self._rng = SymbolicTensor._wrap(v, self, False)
        return self._rng

    def next_stream(self) -> int:
        self._streams += 1
        return self._streams

    def record_mutation(self, t: Tensor, new: Value) -> None:
        self.value_of(t)
        self.current[id(t)] = new
        self.mutations[id(t)] = (t, new)


class SymbolicTensor(Tensor):
    """A tensor during tracing: shape and dtype are known, data is not."""

    __slots__ = ("_value", "_trace", "_sym_requires_grad")
    _symbolic = True

    def __init__(self, *args, **kwargs) -> None:  # built with _wrap only
        raise TypeError("SymbolicTensor is created by tracing")

    @classmethod
    def _wrap(cls, value: Value, trace: Trace, requires_grad: bool) -> "SymbolicTensor":
        t = object.__new__(cls)
        Tensor._init_fields(t, None)
        t._value = value
        t._trace = trace
        t._sym_requires_grad = requires_grad
        return t

    @property
    def _graphc_handler(self) -> "TraceHandler":
        return self._trace.handler

    # data is not available while tracing: touching it is a graph break
    @property
    def _data(self):
        raise GraphBreak(f"{_caller()} needs the tensor's values (data-dependent Python)")

    @_data.setter
    def _data(self, value) -> None:
        if value is not None:
            raise GraphBreak("writing tensor data directly is not traceable")

    @property
    def dtype(self) -> dt.DType:
        return self._value.dtype

    @property
    def device(self):
        return self._trace.device

    @property
    def shape(self) -> Size:
        return Size(self._value.shape)

    def size(self, dim=None):
        from graphc.ir.shapes import wrap_dim
        if dim is None:
            return Size(self._value.shape)
        return self._value.shape[wrap_dim(dim, self._value.ndim)] if self._value.ndim else 1

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def dim(self) -> int:
        return self._value.ndim

    def numel(self) -> int:
        n = 1
        for s in self._value.shape:
            n *= s
        return n

    def __len__(self) -> int:
        if not self._value.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._value.shape[0]

    def is_contiguous(self, memory_format=None) -> bool:
        return True

    def contiguous(self, memory_format=None) -> "SymbolicTensor":
        return self  # graph values have no layout; the generated code makes arrays contiguous as needed

    @property
    def requires_grad(self) -> bool:
        return self._sym_requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        raise GraphBreak("changing requires_grad inside a compiled function is not traceable")

    @property
    def is_leaf(self) -> bool:
        return not self._sym_requires_grad

    def item(self):
        raise GraphBreak(".item() reads a tensor value")

    def tolist(self):
        raise GraphBreak(".tolist() reads tensor values")

    def numpy(self, *, force: bool = False):
        raise GraphBreak(".numpy() reads tensor values")

    def __bool__(self) -> bool:
        raise GraphBreak("bool(tensor) (e.g. `if tensor:`) depends on tensor values")

    def __float__(self) -> float:
        raise GraphBreak("float(tensor) reads a tensor value")

    def __int__(self) -> int:
        raise GraphBreak("int(tensor) reads a tensor value")

    def __index__(self) -> int:
        raise GraphBreak("using a tensor as a Python index reads its value")

    def __repr__(self) -> str:
        return f"SymbolicTensor(%{self._value.name}: {self._value.dtype.short}{list(self._value.shape)})"

    def backward(self, *args, **kwargs) -> None:
        raise GraphBreak("calling .backward() inside a compiled function is not supported; call it on "
                         "the compiled function's output")

    def detach(self) -> "SymbolicTensor":
        from graphc.ir import prims as P
        with grad_mode.no_grad():
            return P.stop_gradient(self)

    def data_ptr(self) -> int:
        raise GraphBreak("data_ptr() has no meaning while tracing")


class TraceHandler(FrontendHandler):
    """Records this thread's ops into the trace's graph and decides the frontend events while
    tracing (see ``graphc.dispatch``)."""

    level = 1
    functional = True

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.builder = GraphBuilder(trace.graph)

    def apply(self, prim: Primitive, args: tuple, attrs: dict):
        trace = self.trace
        if current_trace() is not trace:
            # a symbolic tensor escaped its trace (kept in Python state, or handed to another
            # thread) and reached an op outside it
            msg = ("a tensor traced by graphc.compile was used outside the function being compiled (stored in "
                   "Python state or handed to another thread); it holds no values")
            if current_trace() is not None:
                raise GraphBreak(msg)
            raise RuntimeError(msg)
        if prim.data_dependent:
            raise GraphBreak(f"{prim.name} has a data-dependent output shape")
        vals = []
        operands_rg = []
        for a in args:
            if isinstance(a, SymbolicTensor):
                if a._trace is not trace:
                    raise GraphBreak("a tensor from another compiled function's trace was used")
                vals.append(a._value)
                operands_rg.append(a._sym_requires_grad)
            elif isinstance(a, Tensor):
                vals.append(trace.value_of(a))
                operands_rg.append(a.requires_grad)
            else:
                vals.append(a)
                operands_rg.append(False)
        out = self.builder.apply(prim, tuple(vals), attrs)
        flows = prim.result_requires_grad(operands_rg, out.dtype)
        requires_grad = flows and grad_mode.is_grad_enabled()
        if requires_grad and not trace.grad_at_entry:
            raise GraphBreak("enable_grad() inside a function called under no_grad: the compiled graph would "
                             "not be differentiated")
        if flows and trace.grad_at_entry and not grad_mode.is_grad_enabled():
            # computed under no_grad: the autodiff pass must not differentiate through it either
            from graphc.ir import prims as P
            out = self.builder.apply(P.stop_gradient, (out,), {})
        result = SymbolicTensor._wrap(out, trace, requires_grad)
        if prim.view and isinstance(args[0], Tensor):
            src = args[0]
            base = src._base if src._base is not None else src
            result._base = base
            result._view_ops = (src._view_ops if src._base is not None else ()) + ((prim, attrs),)
        return result

    # ---- frontend events (graphc.dispatch) ---------------------------------------------------

    def module_called(self, module) -> None:
        self.trace.note_module(module)

    def reading_values(self, tensor, what: str) -> None:
        # reading a parameter's or buffer's values would bake them into the graph, though they
        # change between calls (optimizer steps, running statistics)
        if self.trace.is_state(tensor):
            raise GraphBreak(f"{what} reads the values of a parameter or buffer, which may change between calls")

    def touching_grad(self, tensor) -> None:
        # .grad tensors are replaced between calls (zero_grad sets them to None): baking one into
        # the graph by identity would read stale gradients
        raise GraphBreak(".grad is read or written inside a compiled function; gradients change between calls "
                         "(backward, zero_grad), so run optimizer steps and gradient code eagerly")

    def write(self, tensor, result):
        return functional_write(self.trace, tensor, result)

    def random(self, kind: str, shape: tuple, dtype):
        from graphc.ir import prims as P
        from ..random import normal_from_uniform
        trace = self.trace

        def uniform(d):
            return P.rand_uniform(trace.rng_key(), shape=tuple(shape), dtype=d, stream=trace.next_stream())
        if kind == "uniform":
            return uniform(dtype)
        if kind == "normal":
            return normal_from_uniform(uniform, dtype)
        return None

    def drawing_random(self) -> None:
        # a draw at trace time would be frozen into the compiled code as a constant
        raise GraphBreak("random numbers drawn from a generator (or with arguments) inside a compiled function are "
                         "not supported yet")

    def composite(self, name: str, args: tuple, kwargs: dict):
        # a single-tensor composite becomes one node (the decompose pass expands it), so traced
        # graphs read like the user's code
        from graphc.ir.composite import composite as composite_prim
        from graphc.passes.decompositions import layout_of
        layout, operands = layout_of(args, kwargs)
        return composite_prim(*operands, name=name, layout=layout)

    def call_compiled(self, compiled, args: tuple, kwargs: dict):
        return compiled.fn(*args, **kwargs)  # a compiled function called while tracing is inlined


def functional_write(trace: Trace, t: Tensor, result: Tensor) -> Tensor:
    """An in-place write while tracing: rebind ``t`` (and its base, via a scatter) to new values;
    writes to concrete tensors (buffers, parameters) become mutations written back after each call."""
    import numpy as np

    from graphc.ir import prims as P
    if tuple(result.shape) != tuple(t.shape):
        raise RuntimeError(
            f"output with shape {list(t.shape)} doesn't match the broadcast shape {list(result.shape)}")
    if result.dtype is not t.dtype:
        result = P.cast(result, dtype=t.dtype)
    base = t._base
    if base is not None:
        pos = np.arange(base.numel(), dtype=np.int64).reshape(tuple(base.shape))
        for prim, attrs in t._view_ops:
            pos = prim.impl(pos, **attrs)
        n = base.numel()
        flat = P.scatter(P.reshape(base, shape=(n,)), Tensor._make(np.ascontiguousarray(pos).reshape(-1)),
                         P.reshape(result, shape=(t.numel(),)), axis=0)
        _rebind(trace, base, P.reshape(flat, shape=tuple(base.shape)))
    _rebind(trace, t, result)
    return t


def _rebind(trace: Trace, t: Tensor, new: Tensor) -> None:
    value = new._value if isinstance(new, SymbolicTensor) else trace.value_of(new)
    if isinstance(t, SymbolicTensor):
        t._value = value
        t._sym_requires_grad = t._sym_requires_grad or new.requires_grad
    else:
        trace.record_mutation(t, value)


class _RngKey:
    """Stands in the lifted-input list for the random key; the runtime replaces it each call."""

    def __repr__(self) -> str:
        return "<rng key>"


RNG_KEY = _RngKey()
