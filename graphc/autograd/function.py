"""``autograd.Function``: user-defined ops with their own forward and backward."""
from __future__ import annotations

from typing import Any

from . import grad_mode
from .graph import FREED_MESSAGE, Node, gradient_edge, save


class FunctionCtx:
    """The ``ctx`` a custom Function's forward and backward share."""

    def save_for_backward(self, *tensors) -> None:
        self._to_save = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)


class BackwardCFunction(Node, FunctionCtx):
    """The grad_fn of a custom Function's outputs; it is also the ``ctx``."""

    def __init__(self, cls, inputs: tuple) -> None:
        from ..tensors import Tensor
        edges = tuple(gradient_edge(a) if isinstance(a, Tensor) else (None, 0) for a in inputs)
        super().__init__(edges)
        self._cls = cls
        # type(y.grad_fn).__name__ is "<Function>Backward", as in PyTorch
        named = cls.__dict__.get("_backward_cls")
        if named is None:
            named = type(f"{cls.__name__}Backward", (BackwardCFunction,), {"__module__": cls.__module__})
            cls._backward_cls = named
        self.__class__ = named
        self._to_save: tuple = ()
        self._saved: list | None = None
        self._freed = False
        self._materialize = True
        self._non_diff: set = set()
        self._dirty: tuple = ()
        self._out_meta: list = []
        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in inputs)
        # next_functions lists only the Tensor arguments, as PyTorch's does
        self._tensor_pos = tuple(i for i, a in enumerate(inputs) if isinstance(a, Tensor))
        self._input_meta = [(tuple(a.shape), a.dtype) if isinstance(a, Tensor) else None for a in inputs]

    def name(self) -> str:
        return f"{self._cls.__name__}Backward"

    @property
    def num_outputs(self) -> int:
        return len(self._out_meta)

    @property
    def next_functions(self) -> tuple:
        return tuple(self._next[i] for i in self._tensor_pos)

    def _save(self, outputs: tuple, raw: tuple = ()) -> None:
        """``outputs`` are what apply returns; ``raw`` what forward returned (what ctx saw)."""
        from ..tensors import Tensor
        saved = []
        out_ids = {id(o): i for i, o in enumerate(outputs)}
        for i, o in enumerate(raw):
            out_ids.setdefault(id(o), i)
        check_saved(self._to_save)
        for t in self._to_save:
            if t is None:
                saved.append(None)
            else:
                nr = out_ids.get(id(t))
                # an output of this Function: unpacks with this node as its grad_fn
                is_out = nr is not None and isinstance(outputs[nr], Tensor) \
                    and outputs[nr].grad_fn is self
                saved.append((save(t, is_output=is_out), nr if is_out else None))
        self._saved = saved

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        out = []
        for s in self._saved or ():
            if s is None:
                out.append(None)
                continue
            st, nr = s
            t = st.unpack(self)
            if nr is not None and t.grad_fn is self:
                t._output_nr = nr
            out.append(t)
        return tuple(out)

    saved_variables = saved_tensors

    def apply(self, grads: list) -> tuple:
        from ..tensors import Tensor
        from .. import creation
        if self._materialize:
            grads = [creation.zeros(shape, dtype=dtype) if g is None else g
                     for g, (shape, dtype) in zip(grads, self._out_meta)]
        result = self._cls.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n = len(self._next)
        if len(result) < n or (len(result) > n and any(r is not None for r in result[n:])):
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients (expected {n}, got {len(result)})")
        result = result[:n]
        checked = []
        for i, (g, meta) in enumerate(zip(result, self._input_meta)):
            if g is None or meta is None or self._next[i][0] is None:
                checked.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(f"function {self.name()} returned a gradient of type {type(g).__name__} at index {i}; expected a Tensor or None")
            shape, dtype = meta
            if tuple(g.shape) != shape:
                from graphc.passes.autodiff import sum_to
                try:
                    g = sum_to(g, shape)
                except Exception:
                    raise RuntimeError(
                        f"Function {self.name()} returned an invalid gradient at index {i} - got "
                        f"{list(g.shape)} but expected shape compatible with {list(shape)}") from None
            if g.dtype is not dtype:
                g = g.to(dtype)
            checked.append(g)
        return tuple(checked[i] for i in self._tensor_pos)

    def release(self) -> None:
        if self._saved:
            self._freed = True
            self._saved = None


class FunctionMeta(type):
    pass


class Function(metaclass=FunctionMeta):
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``; call ``.apply``."""

    @staticmethod
    def forward(ctx: Any, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output) -> None:
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    def __init__(self, *args, **kwargs) -> None:
        import warnings
        warnings.warn(
            f"{self.__class__} should not be instantiated. Methods on autograd functions are all "
            "static, so you should invoke them on the class itself. Instantiating an autograd "
            "function will raise an error in a future version of PyTorch.",
            DeprecationWarning, stacklevel=2)

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. Please use new-style "
            "autograd function with static forward method. (Example: "
            "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..dispatch import current
        return current().custom_function(cls, args, kwargs)  # eagerly: apply_eagerly; compiled: traced

    @classmethod
    def _uses_setup_context(cls) -> bool:
        return cls.setup_context is not Function.setup_context


def check_saved(to_save: tuple) -> None:
    """``save_for_backward`` takes tensors and None only (PyTorch's message otherwise)."""
    from ..tensors import Tensor
    for k, t in enumerate(to_save):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"save_for_backward can only save variables, but argument {k} is of type "
                            f"{type(t).__name__}")


def run_forward(cls, ctx, args: tuple, kwargs: dict) -> tuple[tuple, bool]:
    """``cls.forward`` under no_grad with ``ctx`` (handed to ``setup_context`` when ``cls``
    defines one, else to forward): its outputs as a tuple, and whether it returned one value.
    Eager application and tracing both run forward through here."""
    with grad_mode.no_grad():
        if cls._uses_setup_context():
            outputs = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, outputs)
        else:
            outputs = cls.forward(ctx, *args, **kwargs)
    single = not isinstance(outputs, tuple)
    return ((outputs,) if single else outputs), single


def apply_eagerly(cls, args: tuple, kwargs: dict):
    """``cls.apply(*args, **kwargs)`` run now: forward under no_grad, outputs recorded with a
    ``<cls>Backward`` node that calls ``cls.backward``."""
    from ..tensors import Tensor
    node = BackwardCFunction(cls, args)
    outs, single = run_forward(cls, node, args, kwargs)
    track = grad_mode.is_grad_enabled() and any(node.needs_input_grad)
    dirty = {id(t) for t in node._dirty}
    wrapped = []
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            wrapped.append(o)
            continue
        node._out_meta.append((tuple(o.shape), o.dtype))
        if not track or id(o) in node._non_diff or not o.dtype.is_inexact:
            wrapped.append(o)
            continue
        if id(o) in dirty:
            t = o  # modified in place: the input itself takes the new history
        else:
            t = Tensor._alias(o._data, o._version)
            t._base = o._base
        t.grad_fn, t._output_nr = node, i
        wrapped.append(t)
    node._save(tuple(wrapped), outs)
    if not track:
        node._next = tuple((None, 0) for _ in node._next)
    return wrapped[0] if single else tuple(wrapped)


class once_differentiable:  # noqa: N801 - PyTorch's name
    def __new__(cls, fn):
        def wrapper(ctx, *args):
            with grad_mode.no_grad():
                return fn(ctx, *args)
        wrapper.__name__ = fn.__name__
        return wrapper
