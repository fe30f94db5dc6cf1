"""In-place writes: version counters, autograd history rebasing, and PyTorch's safety checks.

An in-place op is computed out of place (so autograd records it like any op), then written into
the tensor's buffer. The tensor takes over the new history; a view's base gets a scatter node
so gradients through the base see the write too.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P

from .autograd import grad_mode
from .autograd.graph import PrimBackward, _sequence
from .dispatch import current as _dispatch
from .device import array_to, using_device
from .tensors import Tensor

_LEAF_MSG = "a leaf Variable that requires grad is being used in an in-place operation."
_VIEW_LEAF_MSG = "a view of a leaf Variable that requires grad is being used in an in-place operation."
_OVERLAP_MSG = ("unsupported operation: more than one element of the written-to tensor refers to a "
                "single memory location. Please clone() the tensor before performing the operation.")


def check_writable(t: Tensor) -> None:
    if grad_mode.is_grad_enabled():
        if t.grad_fn is None and t._requires_grad:
            raise RuntimeError(_LEAF_MSG)
        base = t._base
        if base is not None and base.grad_fn is None and base._requires_grad:
            raise RuntimeError(_VIEW_LEAF_MSG)
    if t._inference and not grad_mode.is_inference_mode_enabled():
        raise RuntimeError("Inplace update to inference tensor outside InferenceMode is not allowed."
                           "You can make a clone to get a normal tensor before doing inplace update."
                           "See https://github.com/pytorch/rfcs/pull/17 for more details.")
    if not t._symbolic and _overlaps(t._data):
        raise RuntimeError(_OVERLAP_MSG)


def _overlaps(arr) -> bool:
    """Whether several elements share memory (an expanded view). numpy marks such views (and
    other read-only memory) not writeable; device arrays have no such flag: their strides tell."""
    if isinstance(arr, np.ndarray):
        return not arr.flags.writeable
    return any(st == 0 and n > 1 for st, n in zip(arr.strides, arr.shape))


def view_positions(view: Tensor) -> np.ndarray:
    """Flat indices into the base's elements of every element of ``view`` (on the host)."""
    base = view._base
    idx = np.arange(base.numel(), dtype=np.int64).reshape(tuple(base.shape))
    for prim, attrs in view._view_ops:
        idx = prim.impl(idx, **attrs)
    return np.ascontiguousarray(idx)


def _decouple_saved(node, buffer: np.ndarray, since: int) -> None:
    """Nodes made by this very op that saved the old contents keep a private copy of them."""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen or n._seq < since:
            continue
        seen.add(id(n))
        if isinstance(n, PrimBackward):
            for s in n.saved_buffers():
                if type(s.data) is type(buffer) and np.may_share_memory(s.data, buffer):
                    s.detach_from_buffer()
        stack.extend(m for m, _ in n.next_functions)


def _rebase_history(t: Tensor, result: Tensor) -> None:
    if not result.requires_grad:
        # the new values don't depend on anything differentiable, but t stays in the graph
        with using_device(t.device):
            keep = P.full(shape=tuple(t.shape), value=True, dtype=dt.bool_)
        result = P.where(keep, result, t)
    base = t._base
    if base is not None and (base.requires_grad or result.requires_grad):
        n = base.numel()
        pos = Tensor._make(array_to(view_positions(t).reshape(-1), t.device))
        flat = P.scatter(P.reshape(base, shape=(n,)), pos, P.reshape(result, shape=(t.numel(),)), axis=0)
        new_base = P.reshape(flat, shape=tuple(base.shape))
        _set_history(base, new_base.grad_fn)
    _set_history(t, result.grad_fn)


def _set_history(t: Tensor, fn) -> None:
    """Give ``t`` its new grad_fn; retain_grad() follows the tensor to its new version."""
    old_fn, old_nr = t._grad_fn, t._output_nr
    t.grad_fn, t._output_nr = fn, 0
    if t._retains_grad and old_fn is not None and fn is not None and fn is not old_fn:
        hook = old_fn._retain_grad_hooks.get(old_nr)
        if hook is not None:
            del old_fn._own("_retain_grad_hooks")[old_nr]
            fn._own("_retain_grad_hooks")[0] = hook


def write(t: Tensor, result: Tensor, since: int | None = None) -> Tensor:
    """Write ``result`` into ``t``'s buffer as an in-place op and update autograd history."""
    check_writable(t)
    handler = _dispatch()
    if handler.functional:
        return handler.write(t, result)
    if tuple(result.shape) != tuple(t.shape):
        raise RuntimeError(
            f"output with shape {list(t.shape)} doesn't match the broadcast shape {list(result.shape)}")
    if result.dtype.category > t.dtype.category:
        raise RuntimeError(
            f"result type {result.dtype.scalar_name} can't be cast to the desired output type {t.dtype.scalar_name}")
    if since is not None and result.grad_fn is not None:
        _decouple_saved(result.grad_fn, t._data, since)
    np.copyto(t._data, result._data, casting="unsafe")
    t._version.value += 1
    if grad_mode.is_grad_enabled() and t.dtype.is_inexact and (
            result.requires_grad or t.requires_grad or (t._base is not None and t._base.requires_grad)):
        _rebase_history(t, result if result.dtype is t.dtype else P.cast(result, dtype=t.dtype))
    if "_fw_tangent" in result.__dict__:  # forward AD: the written tensor takes over the tangent
        from .autograd.forward_ad import carry_tangent
        carry_tangent(t, result)
    return t


def inplace(t: Tensor, compute: Callable[[], Tensor]) -> Tensor:
    """Run ``compute`` (an out-of-place op reading ``t``) and write its result into ``t``."""
    check_writable(t)
    since = next(_sequence)
    return write(t, compute(), since)


def inplace_method(fn: Callable, name: str) -> Callable:
    def method(self, *args, **kwargs):
        return inplace(self, lambda: fn(self, *args, **kwargs))
    method.__name__ = name
    method.__doc__ = f"In-place version of :meth:`{fn.__name__}`."
    return method
