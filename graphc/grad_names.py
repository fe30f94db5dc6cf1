"""PyTorch's names for the grad_fn of frontend ops (``ViewBackward0``, ``SelectBackward0`` ...).

The eager handler names a grad_fn after the primitive that made it (``ReshapeBackward0``); a
PyTorch op that binds a differently named primitive says here what PyTorch calls its node, so
``repr(t)`` and ``t.grad_fn.name()`` read as in PyTorch. Only names change, never gradients.
"""
from __future__ import annotations

import functools

from graphc.ir import prims as P

from . import math_ops, methods, shape_ops
from .tensors import NODE_NAMES, Tensor


def _new_node(out, args):
    """The grad_fn this op made for ``out`` (None when it made none, or returned an input's)."""
    if not isinstance(out, Tensor) or getattr(out, "_grad_fn", None) is None:
        return None
    g = out.grad_fn
    if g is None or not hasattr(g, "_name"):
        return None
    for a in args:  # an op that returned (a view of) its input unchanged made no node of its own
        # (_grad_fn: a grad_fn the property would regenerate is a new node, never g)
        if isinstance(a, Tensor):
            if a._grad_fn is g:
                return None
        elif isinstance(a, (list, tuple)) and any(isinstance(t, Tensor) and t._grad_fn is g for t in a):
            return None
    return g


def _wrap(fn, namer):
    @functools.wraps(fn)
    def op(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, Tensor) and out._grad_fn is None:
            return out  # no node to name (the common case without autograd)
        outs = out if isinstance(out, tuple) and not hasattr(out, "_fields") else (out,)
        nodes = [g for g in (_new_node(o, args) for o in outs) if g is not None]
        if nodes:  # only eager autograd nodes get names; nothing to do otherwise
            name = namer(out, *args, **kwargs) if callable(namer) else namer  # result is positional-only
            if name:
                for g in nodes:
                    g._name = name
        return out
    return op


def _wrap_inplace(fn, name: str):
    """An in-place method whose new node PyTorch names ``name``."""
    @functools.wraps(fn)
    def op(self, *args, **kwargs):
        before = getattr(self, "_grad_fn", None)
        out = fn(self, *args, **kwargs)
        g = getattr(out, "_grad_fn", None)
        if g is not None and g is not before and hasattr(g, "_name"):
            g._name = name
        return out
    return op


def _reshape_name(result, input, /, *a, **k):
    return "ViewBackward0" if input.is_contiguous() or result._base is not None else "UnsafeViewBackward0"


def _squeeze_name(result, input, /, dim=None, **k):
    return "SqueezeBackward0" if dim is None else "SqueezeBackward2" if isinstance(dim, (tuple, list)) \
        else "SqueezeBackward1"


def _split_name(result, tensor, split_size_or_sections, /, dim=0, **k):
    return "SplitBackward0" if isinstance(split_size_or_sections, int) else "SplitWithSizesBackward0"


def _dim_given(base: str):
    def namer(result, input, /, dim=None, *a, **k):
        return base + ("0" if dim is None and k.get("axis") is None else "1")
    return namer


def _extreme_name(kind: str):
    def namer(result, input, /, dim=None, *a, **k):
        if isinstance(result, tuple) or isinstance(dim, Tensor) or k.get("other") is not None:
            return None  # (values, indices) and the binary form already carry their names
        return f"{kind}Backward1"
    return namer


def _matmul_name(result, input, other, /, **k):
    return _matmul_node_name(input.ndim, other.ndim)


def _matmul_node_name(n1: int, n2: int):
    """PyTorch's name for the node of a matmul of an ``n1``-d and an ``n2``-d tensor (None: ours)."""
    if n1 == 2 and n2 == 2:
        return "MmBackward0"
    if n1 == 2 and n2 == 1:
        return "MvBackward0"
    if n1 == 1 and n2 == 1:
        return "DotBackward0"
    return "UnsafeViewBackward0" if n1 >= 3 or n2 >= 3 else None


def _clamp_name(result, input, /, min=None, max=None, **k):
    return "ClampBackward0" if isinstance(min, Tensor) or isinstance(max, Tensor) else "ClampBackward1"


_SHAPE_OPS = {
    "reshape": _reshape_name, "flatten": _reshape_name, "view": "ViewBackward0",
    "view_as": "ViewBackward0", "unsqueeze": "UnsqueezeBackward0", "squeeze": _squeeze_name,
    "t": "TBackward0", "transpose": "TransposeBackward0", "swapaxes": "TransposeBackward0",
    "swapdims": "TransposeBackward0", "cat": "CatBackward0", "concat": "CatBackward0",
    "concatenate": "CatBackward0", "stack": "StackBackward0", "select": "SelectBackward0",
    "unbind": "UnbindBackward0", "split": _split_name, "chunk": "SplitBackward0",
    "flip": "FlipBackward0", "repeat": "RepeatBackward0", "masked_fill": "MaskedFillBackward0",
    "index_select": "IndexSelectBackward0", "narrow": "SliceBackward0", "diagonal": "DiagonalBackward0",
}
_MATH_OPS = {
    "mm": "MmBackward0", "bmm": "BmmBackward0", "dot": "DotBackward0", "mv": "MvBackward0",
    "matmul": _matmul_name, "mean": _dim_given("MeanBackward"),  # (sum names its own node)
    "max": _extreme_name("Max"), "min": _extreme_name("Min"), "clamp": _clamp_name,
    "clip": _clamp_name,
}


def install() -> None:
    for mod, table in ((shape_ops, _SHAPE_OPS), (math_ops, _MATH_OPS)):
        for name, namer in table.items():
            orig = getattr(mod, name)
            wrapped = _wrap(orig, namer)
            setattr(mod, name, wrapped)
            if getattr(Tensor, name, None) is orig:
                setattr(Tensor, name, wrapped)
    Tensor.masked_fill_ = _wrap_inplace(Tensor.masked_fill_, "MaskedFillBackward0")
    # x @ y: the eager handler makes its node with the name for the operands' ranks (no renaming)
    NODE_NAMES[P.matmul] = lambda args: _matmul_node_name(args[0].ndim, args[1].ndim)
    P.matmul.__dict__.pop("_eager_typing", None)  # (signatures memoized before: named again)
    Tensor.clone = _wrap(methods.clone, "CloneBackward0")
    Tensor.contiguous = _wrap(methods.contiguous, "CloneBackward0")
    for name in ("to", "type", "type_as", "float", "double", "half", "long", "int", "short", "char",
                 "byte", "bool"):
        setattr(Tensor, name, _wrap(getattr(Tensor, name), "ToCopyBackward0"))
