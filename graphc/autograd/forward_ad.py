"""Forward-mode AD with dual tensors, as ``torch.autograd.forward_ad``::

    with fwAD.dual_level():
        x = fwAD.make_dual(primal, tangent)
        y = f(x)                                  # any graphc ops, run eagerly
        value, jvp = fwAD.unpack_dual(y)          # jvp = J_f(primal) @ tangent

A dual tensor is a view of its primal carrying a tangent and, as its dispatch handler, the
level's ``_DualHandler`` (it outranks the eager handler at ``bind``, the one dispatch point).
The handler runs each op eagerly on the primals and gives every floating-point output the
Jacobian-vector product of the op's inputs' tangents, computed from the op's VJP rule (the one
table autograd uses) by the double-VJP trick: for ``y = op(x)`` and a cotangent ``u``,
``vjp(u) = J^T u`` is linear in ``u``, so ``J t = d/du <J^T u, t>``, one eager ``grad`` of the
VJP taken with ``create_graph``. So every differentiable primitive has its forward derivative,
at the price of two backward sweeps of one op per op. In-place ops carry the result's tangent
into the written tensor. Forward AD runs eagerly: inside ``graphc.compile``, use
``graphc.func.jvp`` (a transformation of the traced graph) instead. Levels are per thread; only
one is active at a time, as in PyTorch.
"""
from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np

from graphc.ir.primitive import current_handler, instances_carry_handlers

from ..dispatch import FrontendHandler
from ..tensors import EAGER, Tensor
from . import grad_mode

__all__ = ["UnpackedDualTensor", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual", "dual_level"]


class _Levels(threading.local):
    def __init__(self) -> None:
        self.stack: list[_DualHandler] = []


_levels = _Levels()


class UnpackedDualTensor(NamedTuple):
    primal: Tensor
    tangent: Tensor | None


class _DualHandler(FrontendHandler):
    """One forward-AD level: the handler of its dual tensors while the level is open."""

    level = 2  # above the eager (0) and trace (1) handlers: ops on duals come here

    def __init__(self, index: int) -> None:
        self.index = index
        self.active = True

    def tangent(self, t: Any) -> Tensor | None:
        if isinstance(t, Tensor) and self.active and t.__dict__.get("_graphc_handler") is self:
            return t.__dict__["_fw_tangent"]
        return None

    def apply(self, prim, args: tuple, attrs: dict):
        inner = current_handler()
        if inner is not EAGER:
            raise RuntimeError("graphc's forward-mode AD (autograd.forward_ad) runs eagerly; inside graphc.compile "
                               "use graphc.func.jvp")
        out = EAGER.apply(prim, args, attrs)  # the primal result, with autograd history as usual
        tangents = [self.tangent(a) for a in args]
        if not self.active or not prim.differentiable or all(t is None for t in tangents):
            return out
        outs = out if isinstance(out, tuple) else (out,)
        for o, t in zip(outs, _jvp(prim, args, attrs, tangents, outs)):
            if t is not None:
                make_dual_in_place(o, t, self)
        return out


def _plain(t: Any) -> Any:
    """A tensor's data as a plain eager tensor (no tangent, no history): ops on it never come back
    to a dual handler."""
    return Tensor._make(t._data) if isinstance(t, Tensor) else t


def _jvp(prim, args: tuple, attrs: dict, tangents: list, outs: tuple) -> list:
    """The tangent of each of ``prim``'s outputs (None for a non-floating one): ``J t`` as the
    derivative in the cotangent ``u`` of ``<vjp(u), t>``."""
    from .engine import grad
    with grad_mode.enable_grad():
        xs = [_plain(a) for a in args]
        wrt = [(x, t) for x, t in zip(xs, tangents) if t is not None and x.dtype.is_inexact]
        for x, _ in wrt:
            x.requires_grad_(True)
        ys = EAGER.apply(prim, tuple(xs), attrs)
        ys = ys if isinstance(ys, tuple) else (ys,)
        live = [i for i, y in enumerate(ys) if isinstance(y, Tensor) and y.grad_fn is not None]
        result: list = [None] * len(outs)
        if not live or not wrt:
            return result
        us = [Tensor._make(np.zeros_like(ys[i]._data), requires_grad=True) for i in live]
        gs = grad([ys[i] for i in live], [x for x, _ in wrt], grad_outputs=us, create_graph=True, allow_unused=True)
        inner = None
        for g, (_, t) in zip(gs, wrt):
            if g is not None:
                term = (g * _plain(t)).sum()
                inner = term if inner is None else inner + term
        jts = (grad(inner, us, allow_unused=True) if inner is not None and inner.requires_grad
               else [None] * len(us))
    for i, u, jt in zip(live, us, jts):
        result[i] = Tensor._make(jt._data) if jt is not None else Tensor._make(np.zeros_like(u._data))
    return result


def make_dual_in_place(t: Tensor, tangent: Tensor, handler: _DualHandler) -> None:
    instances_carry_handlers()  # bind must now ask each tensor for its handler
    t.__dict__["_graphc_handler"] = handler
    t.__dict__["_fw_tangent"] = tangent


def enter_dual_level() -> int:
    """Open a new forward-AD level (only one at a time, as in PyTorch); its index."""
    if _levels.stack:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _levels.stack.append(_DualHandler(len(_levels.stack)))
    return _levels.stack[-1].index


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the current level: its dual tensors lose their tangents."""
    if not _levels.stack or (level is not None and level != _levels.stack[-1].index):
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. This is "
                           "not supported.")
    _levels.stack.pop().active = False


def _level_handler(level: int | None) -> _DualHandler | None:
    if not _levels.stack:
        return None
    if level is not None and level != _levels.stack[-1].index:
        raise RuntimeError(f"forward AD level {level} is not the current one ({_levels.stack[-1].index})")
    return _levels.stack[-1]


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A view of ``tensor`` that carries ``tangent`` (same shape) at the current level."""
    handler = _level_handler(level)
    if handler is None:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, make sure to "
                           "enter_dual_level() first.")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ValueError(f"Expected primal to be floating point or complex, but got: {tensor.dtype}")
    if not (tangent.is_floating_point() or tangent.is_complex()):
        raise ValueError(f"Expected tangent to be floating point or complex, but got: {tangent.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(f"Trying to set a forward gradient that has a different size than that of the original "
                           f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
                           f"forward gradient is of size {list(tangent.shape)}.")
    dual = _view(tensor)
    make_dual_in_place(dual, _plain(tangent.detach()).to(tensor.dtype), handler)
    return dual


def _view(t: Tensor) -> Tensor:
    """A view of ``t`` (sharing memory and autograd history) that is a new tensor object."""
    from graphc.ir import prims as P
    return EAGER.apply(P.reshape, (t,), {"shape": tuple(t.shape)})


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)``: a view of ``tensor`` without the tangent, and the tangent (None when
    ``tensor`` has none at this level, or no level is open)."""
    handler = _level_handler(level)
    tangent = handler.tangent(tensor) if handler is not None else None
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(_view(tensor), tangent)


def carry_tangent(t: Tensor, result: Tensor) -> None:
    """After ``result`` was written into ``t`` in place: ``t`` takes over ``result``'s tangent."""
    handler = result.__dict__.get("_graphc_handler")
    if isinstance(handler, _DualHandler) and handler.active:
        make_dual_in_place(t, result.__dict__["_fw_tangent"], handler)


class dual_level:
    """``with dual_level():`` opens a forward-AD level for the block (also a decorator)."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> None:
        exit_dual_level()

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        return wrapper
