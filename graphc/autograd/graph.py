"""Autograd graph nodes (what ``grad_fn`` holds) and saved-tensor bookkeeping."""
from __future__ import annotations

import itertools
import re
from types import MappingProxyType
from typing import Any, Callable

from graphc.ir import dtypes
from graphc.ir.primitive import TensorType

_sequence = itertools.count()
_Tensor: Any = None


def tensor_class() -> type:
    """``graphc.tensors.Tensor``, which imports this module: imported on first use, then kept
    (an import statement in a function costs more than the backward step that needs it)."""
    global _Tensor
    if _Tensor is None:
        from ..tensors import Tensor
        _Tensor = Tensor
    return _Tensor

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class RemovableHandle:
    _ids = itertools.count()

    def __init__(self, container: dict) -> None:
        self.id = next(RemovableHandle._ids)
        self._container = container

    def remove(self) -> None:
        self._container.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: dict, hook: Callable, prepend: bool = False) -> RemovableHandle:
    """Stores ``hook`` under a fresh handle id; hooks run in the dict's order, so ``prepend``
    (which needs an OrderedDict) makes it run first."""
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


# where PyTorch's name is not the op's name capitalized
_BACKWARD_NAMES = {"log1p": "Log1PBackward0", "i0e": "SpecialI0EBackward0", "i1": "SpecialI1Backward0",
                   "i1e": "SpecialI1EBackward0", "erfcx": "SpecialErfcxBackward0",
                   "log_ndtr": "SpecialLogNdtrBackward0", "zeta": "SpecialZetaBackward0"}


def backward_name(op: str) -> str:
    """``log_softmax`` -> ``LogSoftmaxBackward0`` (PyTorch's naming)."""
    name = _BACKWARD_NAMES.get(op)
    if name is None:  # remembered: every eager op with autograd asks
        name = _BACKWARD_NAMES[op] = "".join(p[:1].upper() + p[1:] for p in re.split(r"_", op) if p) + "Backward0"
    return name


_NO_HOOKS: Any = MappingProxyType({})


class Node:
    """One step of the backward graph. ``next_functions`` points at the producers of the inputs."""

    num_outputs = 1
    # Hook tables: ``_pre_hooks``, ``_post_hooks``, ``_tensor_hooks`` (hooks registered on
    # non-leaf tensors, keyed by the tensor's output number) and ``_retain_grad_hooks``. Until a
    # hook is added a node shares one empty read-only table (``_own`` gives it its own), so
    # making a node, once per eager op with autograd, allocates none.
    _pre_hooks = _post_hooks = _tensor_hooks = _retain_grad_hooks = _NO_HOOKS

    def __init__(self, next_functions: tuple) -> None:
        self._next = next_functions
        self._seq = next(_sequence)

    def _own(self, table: str) -> dict:
        """This node's own hook table ``table`` (one of the four above), made on first use."""
        d = self.__dict__.get(table)
        if d is None:
            d = self.__dict__[table] = {}
        return d

    @property
    def metadata(self) -> dict:
        return self._own("_metadata")

    @property
    def next_functions(self) -> tuple:
        return self._next

    def name(self) -> str:
        return type(self).__name__

    def register_hook(self, fn: Callable) -> RemovableHandle:
        return add_hook(self._own("_post_hooks"), fn)

    def register_prehook(self, fn: Callable) -> RemovableHandle:
        return add_hook(self._own("_pre_hooks"), fn)

    def apply(self, grads: list) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:
        """Free saved tensors after a backward pass that did not retain the graph."""

    def __call__(self, *grads):
        return self.apply(list(grads))

    def __repr__(self) -> str:
        return f"<{self.name().split('::')[-1]} object at {hex(id(self))}>"


class SavedTensor:
    """A tensor saved for backward, checked against in-place changes when it is used (made by
    ``save``)."""

    __slots__ = ("data", "counter", "version", "grad_fn", "output_nr", "leaf", "is_output",
                 "requires_grad")

    @property
    def dtype(self) -> dtypes.DType:  # read only for errors and on release
        return dtypes.from_numpy_dtype(self.data.dtype)

    def detach_from_buffer(self) -> None:
        """Keep the current values privately: the buffer is about to be overwritten in place."""
        from ..tensors import VersionCounter
        self.data = self.data.copy()
        self.counter = VersionCounter()
        self.version = 0
        self.leaf = None

    def unpack(self, node: Node):
        if self.counter.value != self.version:
            fn = node if self.is_output else self.grad_fn
            # PyTorch's wording: "[torch.FloatTensor [2]], which is output 0 of Exp, is at version 1"
            producer = (f", which is output {self.output_nr} of "
                        f"{re.sub(r'Backward[0-9]*$', '', fn.name())}," if fn is not None else "")
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [graphc.{self.dtype.scalar_name}Tensor {list(self.data.shape)}]"
                f"{producer} is at version {self.counter.value}; expected version {self.version} instead. "
                "Hint: the tensor was changed in place after an operation saved it for backward; "
                "use the out-of-place form (x = x * 2 rather than x *= 2) or .clone() it first.")
        if self.leaf is not None:
            return self.leaf
        t = tensor_class()._alias(self.data, self.counter)
        if self.is_output:
            t.grad_fn, t._output_nr = (node, 0) if self.requires_grad else (None, 0)
        else:
            t.grad_fn, t._output_nr = self.grad_fn, self.output_nr
        return t


def save(t, is_output: bool = False) -> SavedTensor:
    """``t`` saved for backward (``is_output``: the node's own result, which must not hold the
    node); made without an ``__init__`` call, as for every saved operand of every eager op."""
    if t._inference:
        raise RuntimeError(
            "Inference tensors cannot be saved for backward. Please do not use Tensors created in "
            "inference mode in computation tracked by autograd. To work around this, you can make a "
            "clone to get a normal tensor and use it in autograd, or use `torch.no_grad()` instead "
            "of `torch.inference_mode()`.")
    s = _new_object(SavedTensor)
    s.data = t._data
    counter = t._vc  # t._version_counter, without the property call
    if counter is None:
        counter = t._version_counter
    s.counter = counter
    s.version = counter.value
    s.is_output = is_output
    if is_output:
        s.requires_grad, s.leaf, s.grad_fn = True, None, None
    else:
        # the grad_fn property only where it may regenerate (a view's; output_nr with it)
        fn = s.grad_fn = t._grad_fn if t._view_ver is None else t.grad_fn
        s.requires_grad = requires_grad = t._requires_grad or fn is not None or t.requires_grad
        s.leaf = t if fn is None and requires_grad else None
    s.output_nr = t._output_nr
    return s


_NO_EDGE = (None, 0)


def _edge(t) -> tuple:
    """Where the gradient for tensor ``t`` goes: its grad_fn, or its AccumulateGrad if a leaf."""
    fn = t._grad_fn if t._view_ver is None else t.grad_fn  # the property only where it may regenerate
    if fn is not None:
        return (fn, t._output_nr)
    if t._requires_grad or t.requires_grad:
        return (t._grad_accumulator(), 0)
    return _NO_EDGE


gradient_edge = _edge


_NAMED_NODES: dict[str, type] = {}


def _operands_to_save(rule, wanted: int) -> frozenset:
    """The operands whose values the gradients of the ``wanted`` operands (bit i: operand i) read."""
    return frozenset(j for i, js in rule.needs.items() if wanted >> i & 1 for j in js) & rule.uses


class _Unsaved:
    """An operand the rule reads that was not saved (its shape and dtype): the rule reads it only
    to compute a gradient nobody wants, which the engine then drops, so it gets zeros of the
    right shape, at no memory cost."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    def stand_in(self):
        import numpy as np

        from ..device import array_to, get_default_device
        from ..tensors import Tensor
        # the engine runs a node on its gradients' device, the default device meanwhile
        zero = array_to(np.zeros((), self.dtype.np), get_default_device())
        return Tensor._make(np.broadcast_to(zero, self.shape))


_OPERAND_TYPES: dict = {}  # (shape, numpy dtype) -> TensorType, shared


def _operand_type(arr) -> TensorType:
    """The type of an operand the rule does not read (it may look at its shape): one shared
    TensorType per shape and dtype, instead of an object per operand of every op."""
    key = (arr.shape, arr.dtype)
    typ = _OPERAND_TYPES.get(key)
    if typ is None:
        if len(_OPERAND_TYPES) >= 4096:
            _OPERAND_TYPES.clear()
        typ = _OPERAND_TYPES[key] = TensorType(arr.shape, dtypes.from_numpy_dtype(arr.dtype))
    return typ


class PrimBackward(Node):
    """Backward of one primitive application, driven by its rule in the VJP table.

    Made by ``record`` (no ``__init__``). An edge to a leaf operand holds the leaf tensor itself, ``(leaf, 0)``, until the edges are
    first read (``next_functions``: the engine, hooks, graph walks): only then does it become the
    leaf's ``AccumulateGrad``. Most eager results die unread, and a leaf holds its accumulator
    only weakly (as PyTorch's does), so making one per op and operand would be most of what
    recording costs; the node holds the leaf strongly either way, as its accumulator would."""

    _saved_out = None  # the saved result, for rules that read it
    _freed = False
    _leaf_edges = False  # some edge still holds a leaf tensor (see next_functions)

    _node_name = "PrimBackward"  # each named subclass sets its own (see prim_node_class)

    @property
    def next_functions(self) -> tuple:
        if self._leaf_edges:  # leaves' accumulators, made (or found alive) on first reading
            self._next = tuple((fn._grad_accumulator(), 0) if fn is not None and not isinstance(fn, Node)
                               else (fn, nr) for fn, nr in self._next)
            self._leaf_edges = False
        return self._next

    @property
    def _name(self) -> str:
        return self._node_name

    @_name.setter
    def _name(self, value: str) -> None:
        # type(y.grad_fn).__name__ is "MulBackward0", as in PyTorch: one subclass per name
        self._node_name = value
        cls = named_node_class(value)
        if self.__class__ is not cls:
            self.__class__ = cls

    def name(self) -> str:
        return "torch::autograd::CopySlices" if self._name == "CopySlices" else self._name

    def saved_buffers(self):
        for s in self._saved:
            if isinstance(s, SavedTensor):
                yield s

    def apply(self, grads: list) -> tuple:
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        args = [s.unpack(self) if isinstance(s, SavedTensor) else s.stand_in() if isinstance(s, _Unsaved) else s
                for s in self._saved]
        out = self._saved_out.unpack(self) if self._saved_out is not None else None
        return tuple(self.rule.fn(grads[0], out, *args, **self.attrs))

    def release(self) -> None:
        if self.rule.uses or self.rule.uses_out:
            self._saved = [TensorType(s.data.shape, s.dtype) if isinstance(s, SavedTensor) else s
                           for s in self._saved]
            self._saved_out = None
            self._freed = True


def record(cls: type, prim, rule, keeps: dict, attrs: dict, args: tuple, out, types: tuple | None = None):
    """The backward node (of class ``cls``, a PrimBackward named for ``prim``: see
    prim_node_class) of an eager application of ``prim`` to ``args`` that gave ``out``, or None
    when no differentiable operand requires grad. ``keeps``: the operands to save per set of
    wanted ones (a memo of ``_operands_to_save`` for ``rule``, kept by the caller per primitive,
    as rules with ``needs`` save less when fewer gradients are wanted). ``types``: the operands'
    TensorTypes where
    known (the eager handler memoizes them per signature; None: looked up here). Made for every
    eager op that records history, so kept lean: one pass over the operands for the edges, one
    for what is saved, the node made without an ``__init__`` call."""
    edges = []
    wanted = 0  # the operands whose gradient is wanted (those with an edge), bit i for operand i
    leaf_edges = False
    nondiff = prim.nondiff_operands
    i = 0
    for a in args:
        if isinstance(a, _Tensor) and i not in nondiff:  # (graphc.tensors set _Tensor on import)
            # _edge(a), inline, a leaf's accumulator left for next_functions to make
            fn = a._grad_fn if a._view_ver is None else a.grad_fn
            if fn is not None:
                edges.append((fn, a._output_nr))
                wanted |= 1 << i
            elif a._requires_grad or a.requires_grad:
                edges.append((a, 0))
                wanted |= 1 << i
                leaf_edges = True
            else:
                edges.append(_NO_EDGE)
        else:
            edges.append(_NO_EDGE)
        i += 1
    if not wanted:
        return None
    uses = rule.uses
    saved: list[Any] = []
    if uses:
        if rule.needs is None:
            keep = uses
        else:
            keep = keeps.get(wanted)
            if keep is None:
                keep = keeps[wanted] = _operands_to_save(rule, wanted)
        i = 0
        for a in args:
            if not isinstance(a, _Tensor):
                saved.append(a)
            elif i in keep:
                if a._inference or a._vc is None or a._view_ver is not None or not a._requires_grad:
                    saved.append(save(a))
                else:  # save(a) for a leaf that requires grad (a parameter), inline
                    s = _new_object(SavedTensor)
                    s.data = a._data
                    s.counter = counter = a._vc
                    s.version = counter.value
                    s.is_output = False
                    s.grad_fn = fn = a._grad_fn
                    s.requires_grad = True
                    s.leaf = a if fn is None else None
                    s.output_nr = a._output_nr
                    saved.append(s)
            elif i in uses:
                saved.append(_Unsaved(a._data.shape, a.dtype))
            else:
                saved.append(types[i] if types is not None else _operand_type(a._data))
            i += 1
    elif types is not None:  # the rule reads no operand's values (add, sub, views ...): their types
        i = 0
        for a in args:
            saved.append(types[i] if isinstance(a, _Tensor) else a)
            i += 1
    else:
        for a in args:
            saved.append(_operand_type(a._data) if isinstance(a, _Tensor) else a)
    node = _new_object(cls)
    # every attribute set, always in this order: instances of a class then share one key table
    # (a conditional attribute would give some a dict of their own, slower to fill)
    node._next = tuple(edges)  # Node.__init__
    node._seq = next(_sequence)
    node._leaf_edges = leaf_edges
    node.prim = prim
    node.rule = rule
    node.attrs = attrs
    node._saved = saved
    node._saved_out = save(out, is_output=True) if rule.uses_out else None
    return node


_new_object = object.__new__
_PRIM_NODES: dict = {}  # primitive -> the PrimBackward subclass named for it


def named_node_class(name: str) -> type:
    """The PrimBackward subclass named ``name`` (made once)."""
    cls = _NAMED_NODES.get(name)
    if cls is None:
        cls = _NAMED_NODES[name] = type(name, (PrimBackward,), {"__module__": __name__, "_node_name": name})
    return cls


def prim_node_class(prim) -> type:
    """The class of ``prim``'s backward nodes: ``type(y.grad_fn).__name__`` is PyTorch's name
    ("MulBackward0"), one PrimBackward subclass per name."""
    cls = _PRIM_NODES.get(prim)
    if cls is None:
        cls = _PRIM_NODES[prim] = named_node_class(backward_name(prim.name))
    return cls


class ToCopyBackward0(Node):
    """Backward of a copy to another device (``to("cuda")``): the gradient goes back to the
    source's device."""

    def __init__(self, src, device) -> None:
        super().__init__((_edge(src),))
        self._device = device

    def apply(self, grads: list) -> tuple:
        from ..methods import to_device
        return (to_device(grads[0], self._device),)


class AccumulateGrad(Node):
    """The sink for a leaf tensor: adds incoming gradients into ``variable.grad``."""

    def __init__(self, variable) -> None:
        self._next = ()  # Node.__init__, inline: made for every leaf an op reads
        self._seq = next(_sequence)
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def apply(self, grads: list) -> tuple:
        return ()
