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

from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, GraphBuilder, Value
from graphc.ir.primitive import Primitive, TensorType, pop_handler, push_handler

from ..autograd import grad_mode
from ..autograd.engine import backward_pass
from ..dispatch import FrontendHandler
from ..tensors import Size, Tensor
from .py_state import WatchedState

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


_user_files: dict[str, str | None] = {}  # a code object's file -> its name in locations (None: graphc's)


def user_location(skip: int = 0) -> str:
    """file:line of the innermost frame of user code (outside graphc) on the current stack, above
    the caller's ``skip`` innermost callers (known to be graphc's: ``sys._getframe`` reaches past
    them without making their frame objects). Each traced op asks, so frames are walked directly
    and each file is classified once."""
    f = sys._getframe(1 + skip)
    while f is not None:
        fn = f.f_code.co_filename
        shown = _user_files.get(fn, "")
        if shown == "":
            # a file name is printed in IR and code comments: no control characters in it
            shown = _user_files[fn] = None if _is_internal(fn) else "".join(
                c if c.isprintable() else "?" for c in fn)
        if shown is not None:
            return f"{shown}:{f.f_lineno}"
        f = f.f_back
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
        self.modules: list = []  # nn.Modules called while tracing (their training flags are guarded)
        # module calls that returned traced tensors: (first node, end node, output values); the
        # outline pass makes one body of calls that repeat with the same structure
        self.calls: list[tuple[int, int, list[Value]]] = []
        self._module_ids: set[int] = set()
        self._buffers_before: list = []  # (module, its buffers when first called): reassignments undone
        # id(parameter or buffer) -> its path in the first called module that holds it (fc1.weight):
        # the name of its graph input
        self.paths: dict[int, str] = {}
        self.leaves: dict[int, Tensor] = {}  # id(input value) -> the user's tensor it stands for
        # .grad of concrete tensors as the traced code sees it: id(t) -> [t, its value (a tensor or
        # None), whether it was None when tracing began, whether it is a new tensor (not the one
        # .grad held when the call began, updated in place)]
        self.grads: dict[int, list] = {}
        self.freed: set[int] = set()  # nodes a backward() without retain_graph went through
        self.guards: list = []  # checks of Python state the graph depends on (see dispatch.guard)
        self.backward_done = False
        self.needs_backward: list[str] = []  # why the function breaks if it runs no backward() (see dispatch)
        self.py_state = WatchedState()  # module attributes and globals the traced code may rebind

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
            if not self.paths or not any(id(p) in self.paths for p in module.parameters()):
                # a module no called module holds (submodules are called after their parent)
                for path, t in (*module.named_parameters(), *module.named_buffers()):
                    self.paths.setdefault(id(t), path)
            self._buffers_before.append((module, dict(module.__dict__.get("_buffers", {}))))
            self.py_state.watch(type(module).__name__, module.__dict__)

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
        self.py_state.restore()  # attributes and globals as before tracing (writes are replayed per call)
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
        role = "param" if getattr(t, "is_param", False) else "buffer"
        v = self.graph.add_input(TensorType(tuple(t.shape), t.dtype), role,
                                 self._input_name(self.paths.get(key), f"{role[0]}{len(self.graph.inputs)}"))
        self.lifted[key] = (v, t)
        self.current[key] = v
        return v

    def _input_name(self, path: str | None, fallback: str) -> str:
        """A module path as the input's IR name where it is free, else the numbered fallback."""
        if path and all(v.name != path for v in self.graph.inputs):
            return path
        return fallback

    def tensor_input(self, t: Tensor, requires_grad: bool = False) -> "SymbolicTensor":
        """A graph input standing for the user's tensor ``t`` (inputs ``%x0``, ``%x1``...)."""
        v = self.graph.add_input(TensorType(tuple(t.shape), t.dtype), "input", f"x{len(self.graph.inputs)}")
        return SymbolicTensor._wrap(v, self, requires_grad)

    def output_value(self, o: Tensor) -> Value:
        """The graph value of a tensor the traced code returned (a concrete one is lifted)."""
        return o._value if isinstance(o, SymbolicTensor) and o._trace is self else self.value_of(o)

    def rng_key(self) -> "SymbolicTensor":
        """A fresh key input for one random op (drawn at every call, in the order eager mode
        would draw them)."""
        v = self.graph.add_input(TensorType((2,), dt.int64), "rng", f"rng{len(self.graph.inputs)}")
        self.lifted[("rng", len(self.graph.inputs))] = (v, RngSlot())
        return SymbolicTensor._wrap(v, self, False)

    # ---- gradients inside the trace (a whole training step in one graph) -----------------------

    def grad_of(self, t: Tensor):
        """``t.grad`` as the traced code sees it. A gradient that exists when the call begins is
        read as a graph input (``.grad`` tensors are replaced between calls, so never by identity)."""
        if isinstance(t, SymbolicTensor):
            raise GraphBreak(".grad of a tensor computed inside the compiled function is not supported")
        rec = self.grads.get(id(t))
        if rec is None:
            g = t._grad
            if g is None:
                rec = [t, None, True, False]
            else:
                slot = GradSlot(t)
                path = self.paths.get(id(t))
                v = self.graph.add_input(TensorType(tuple(g.shape), g.dtype), "grad",
                                         self._input_name(path and f"{path}.grad", f"g{len(self.graph.inputs)}"))
                self.lifted[("grad", id(t))] = (v, slot)
                rec = [t, SymbolicTensor._wrap(v, self, False), False, False]
            self.grads[id(t)] = rec
        return rec[1]

    def hyperparameter(self, read, name: str, key: tuple) -> "SymbolicTensor":
        """A number ``read()`` gives (an optimizer hyperparameter; ``key`` tells it apart) as a 0-d
        float64 graph input read at every call, so a scheduler changing it does not recompile."""
        k = ("hyper",) + key
        if k not in self.lifted:
            v = self.graph.add_input(TensorType((), dt.float64), "hyper", self._input_name(
                name.replace("[", ".").rstrip("]"), f"h{len(self.graph.inputs)}"))  # betas[0] -> %betas.0
            self.lifted[k] = (v, HyperSlot(read, name))
        return SymbolicTensor._wrap(self.lifted[k][0], self, False)

    def set_grad(self, t: Tensor, value) -> None:
        if isinstance(t, SymbolicTensor):
            raise GraphBreak("setting .grad of a tensor computed inside the compiled function is not supported")
        self.grad_of(t)
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value.dtype is not t.dtype or tuple(value.shape) != tuple(t.shape):
                t._write_grad(value)  # PyTorch's error for the mismatch
        rec = self.grads[id(t)]
        rec[1], rec[3] = value, True

    def backward(self, loss: "SymbolicTensor", gradient, retain_graph, create_graph: bool, inputs) -> None:
        """``loss.backward()`` inside the traced function: the reverse sweep is appended to the
        graph and the gradients accumulate into ``.grad`` of the leaves, as eager autograd does."""
        from graphc.ir import prims as P
        from graphc.passes.autodiff.backprop import backprop
        if create_graph:
            raise GraphBreak("backward(create_graph=True) inside a compiled function is not supported")
        if not loss.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if loss.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            with grad_mode.no_grad():
                gradient = P.full(shape=tuple(loss.shape), value=1.0, dtype=loss.dtype)
        elif not isinstance(gradient, Tensor) or tuple(gradient.shape) != tuple(loss.shape):
            got = list(gradient.shape) if isinstance(gradient, Tensor) else type(gradient).__name__
            raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {got} and output[0] has a shape "
                               f"of {list(loss.shape)}.")
        # the leaves gradients flow to: parameters and other lifted tensors, and the user's inputs
        leaves: dict[int, Tensor] = dict(self.leaves)
        for key, (v, t) in self.lifted.items():
            if isinstance(t, Tensor):
                leaves[id(v)] = t
        wanted = [(vid, t) for vid, t in leaves.items() if t.requires_grad]
        if inputs is not None:
            keep = {id(t) for t in ([inputs] if isinstance(inputs, Tensor) else inputs)}
            wanted = [(vid, t) for vid, t in wanted if id(t) in keep]
        for _, t in wanted:
            post = t.__dict__.get("_post_accumulate_hooks") or {}
            if t._hooks or not all(getattr(h, "traceable_in_graph", False) for h in post.values()):
                raise GraphBreak("a tensor with hooks (register_hook) is differentiated inside a compiled function; "
                                 "hooks run eagerly only")
        n_before = len(self.graph.nodes)
        seed = gradient._value if isinstance(gradient, SymbolicTensor) else self.value_of(gradient)
        ct = backprop(self.graph, [(loss._value, seed)], {vid for vid, _ in wanted})
        swept = {id(n) for n in self.graph.nodes[:n_before] if id(n.output) in ct}
        if swept & self.freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed). Saved intermediate values of the graph are freed when you call "
                ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
                "graph a second time or if you need to access saved tensors after calling backward.")
        if not retain_graph:
            self.freed |= swept
        self.backward_done = True
        with backward_pass():  # what hooks queue runs when the pass ends, as eagerly
            for vid, t in wanted:
                g = ct.get(vid)
                if g is None:
                    continue
                gt = SymbolicTensor._wrap(g, self, False)
                old = self.grad_of(t)
                rec = self.grads[id(t)]
                if old is None:
                    rec[1], rec[3] = gt, True
                else:
                    with grad_mode.no_grad():
                        rec[1] = P.add(old, gt)
                # hooks that declare themselves traceable (DistributedDataParallel's) are traced:
                # what they compute on .grad becomes part of the graph
                for hook in list(t.__dict__.get("_post_accumulate_hooks", {}).values()):
                    hook(t)

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

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        self._trace.backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self) -> "SymbolicTensor":
        from graphc.ir import prims as P
        with grad_mode.no_grad():
            return P.stop_gradient(self)

    def data_ptr(self) -> int:
        raise GraphBreak("data_ptr() has no meaning while tracing")


def operand_values(trace, args: tuple) -> tuple[list, list[bool]]:
    """A traced op's operands as IR values (this trace's tensors by value, any other tensor lifted
    by identity, Python scalars as they are), and whether each requires grad."""
    vals, operands_rg = [], []
    for a in args:
        if isinstance(a, SymbolicTensor) and a._trace is trace:
            vals.append(a._value)
            operands_rg.append(a._sym_requires_grad)
        elif isinstance(a, Tensor):
            vals.append(trace.value_of(a))
            operands_rg.append(a.requires_grad)
        else:
            vals.append(a)
            operands_rg.append(False)
    return vals, operands_rg


def view_result(result: "SymbolicTensor", prim, args: tuple, attrs: dict) -> "SymbolicTensor":
    """A view op's traced result records its base and the view ops from it, as eager views do."""
    if prim.view and isinstance(args[0], Tensor):
        src = args[0]
        result._base = src._base if src._base is not None else src
        result._view_ops = (src._view_ops if src._base is not None else ()) + ((prim, attrs),)
    return result


class TraceHandler(FrontendHandler):
    """Records this thread's ops into the trace's graph and decides the frontend events while
    tracing (see ``graphc.dispatch``)."""

    level = 1
    functional = True

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.builder = GraphBuilder(trace.graph)

    def apply(self, prim: Primitive, args: tuple, attrs: dict):
        # Every traced op comes here: a warm start traces the whole step again (its graph is the
        # cache key), so the common path does each check once and calls as little as it can.
        trace = self.trace
        if getattr(_active, "trace", None) is not trace:
            # a symbolic tensor escaped its trace (kept in Python state, or handed to another
            # thread) and reached an op outside it
            msg = ("a tensor traced by graphc.compile was used outside the function being compiled (stored in "
                   "Python state or handed to another thread); it holds no values")
            if current_trace() is not None:
                raise GraphBreak(msg)
            raise RuntimeError(msg)
        if prim.data_dependent:
            raise GraphBreak(f"{prim.name} has a data-dependent output shape")
        for a in args:
            if isinstance(a, SymbolicTensor) and a._trace is not trace:
                raise GraphBreak("a tensor from another compiled function's trace was used")
        vals, operands_rg = operand_values(trace, args)
        trace.graph.loc = user_location(2)  # past this frame and its caller's (bind, or autocast's cast)
        out = self.builder.apply(prim, vals, attrs)
        # no operand requires grad (most ops of an optimizer update): nothing can flow
        flows = True in operands_rg and prim.result_requires_grad(operands_rg, out.dtype)
        if flows:
            enabled = grad_mode.is_grad_enabled()
            if enabled and not trace.grad_at_entry:
                raise GraphBreak("enable_grad() inside a function called under no_grad: the compiled graph would "
                                 "not be differentiated")
            if trace.grad_at_entry and not enabled:
                # computed under no_grad: the autodiff pass must not differentiate through it either
                from graphc.ir import prims as P
                out = self.builder.apply(P.stop_gradient, (out,), {})
            flows = enabled
        result = SymbolicTensor._wrap(out, trace, flows)
        return view_result(result, prim, args, attrs) if prim.view else result

    # ---- frontend events (graphc.dispatch) ---------------------------------------------------

    def module_called(self, module):
        self.trace.note_module(module)
        return len(self.trace.graph.nodes)  # where the call's nodes start

    def module_returned(self, mark, out) -> None:
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if outs and all(isinstance(o, SymbolicTensor) and o._trace is self.trace for o in outs):
            self.trace.calls.append((mark, len(self.trace.graph.nodes), [o._value for o in outs]))

    def reading_values(self, tensor, what: str) -> None:
        # reading a parameter's or buffer's values would bake them into the graph, though they
        # change between calls (optimizer steps, running statistics)
        if self.trace.is_state(tensor):
            raise GraphBreak(f"{what} reads the values of a parameter or buffer, which may change between calls")

    def get_grad(self, tensor):
        return self.trace.grad_of(tensor)

    def set_grad(self, tensor, value) -> None:
        self.trace.set_grad(tensor, value)

    def hyperparameter(self, read, name: str, key: tuple):
        return self.trace.hyperparameter(read, name, key)

    def guard(self, check) -> None:
        self.trace.guards.append(check)

    def eager_only(self, reason: str) -> None:
        raise GraphBreak(reason)

    def collective(self, name: str, run, traced):
        if traced is None:
            raise GraphBreak(f"torch.distributed.{name} runs eagerly (it exchanges data with other processes)")
        return traced()

    def needs_backward_inside(self, reason: str) -> None:
        self.trace.needs_backward.append(reason)

    def write(self, tensor, result):
        return functional_write(self.trace, tensor, result)

    def random(self, kind: str, shape: tuple, dtype):
        from graphc.ir import prims as P
        from ..random import normal_from_uniform
        trace = self.trace

        def uniform(d):
            return P.rand_uniform(trace.rng_key(), shape=tuple(shape), dtype=d, stream=0)
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

    def custom_function(self, cls, args: tuple, kwargs: dict):
        from .custom_function import trace_custom_function
        return trace_custom_function(self.trace, cls, args, kwargs)

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


class Slot:
    """Stands in a trace's lifted-input list for a graph input that is read afresh at every call
    (a tensor lifted by identity is read from that tensor instead)."""

    def read(self) -> Tensor:
        raise NotImplementedError

    def stale(self) -> str | None:
        """Why the compiled code no longer fits what the slot reads (None: it does)."""
        return None


class RngSlot(Slot):
    """A random op's key: two int64 drawn from graphc's default generator at every call, as an
    eager random op draws its key (so ``graphc.manual_seed`` gives compiled and eager runs the
    same numbers; see ``graphc.random.uniform_tensor``)."""

    def read(self) -> Tensor:
        from ..random import draw_key
        return Tensor._make(draw_key())


class GradSlot(Slot):
    """``t.grad`` as it is when the call begins."""

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor

    def read(self) -> Tensor:
        return self.tensor._grad  # not None: the entry's gradient guards check it first


class AttrSlot(Slot):
    """A tensor held by a module attribute or global that the traced code rebinds (its new value is
    written back after each call): read by name at every call, with the shape and dtype traced."""

    def __init__(self, where: str, d: dict, key: str, traced: Tensor) -> None:
        self.where, self.d, self.key = where, d, key
        self.type = (tuple(traced.shape), traced.dtype, traced.device)

    def read(self) -> Tensor:
        return self.d[self.key]

    def stale(self) -> str | None:
        t = self.d.get(self.key)
        if not isinstance(t, Tensor) or t.requires_grad or (tuple(t.shape), t.dtype, t.device) != self.type:
            return f"{self.where} changed (no longer a tensor of the shape, dtype and device traced)"
        return None


class HyperSlot(Slot):
    """An optimizer hyperparameter, read at every call. The traced code may have branched on its
    sign (``momentum != 0``): a change of sign recompiles."""

    def __init__(self, value, name: str) -> None:
        self.value, self.name = value, name  # value(): the number now
        self.sign = self._sign(value())

    @staticmethod
    def _sign(v: float) -> tuple:
        return (v > 0, v == 0, v < 0)

    def read(self) -> Tensor:
        import numpy as np
        return Tensor._make(np.array(self.value(), dtype=np.float64))

    def stale(self) -> str | None:
        v = self.value()
        if self._sign(v) != self.sign:
            return f"the optimizer's {self.name} changed sign (now {v!r})"
        return None
