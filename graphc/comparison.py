"""Whole-tensor comparisons: equal, allclose, isclose (PyTorch's semantics and defaults)."""
from __future__ import annotations

from . import creation, math_ops
from .tensors import Tensor


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and the same elements."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(math_ops.all(math_ops.eq(input, other)).item())


def isclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol * |other|, elementwise (infinities equal only to themselves)."""
    if isinstance(other, Tensor) and input.dtype is not other.dtype:
        raise RuntimeError(f"{input.dtype} did not match {other.dtype}")
    if not isinstance(other, Tensor):
        other = creation.full_like(input, other)
    if not input.dtype.is_floating_point:  # integers and bools: compare exactly representable doubles
        input, other = input.double(), other.double()
    close = math_ops.le(math_ops.abs(math_ops.sub(input, other)),
                        math_ops.add(math_ops.mul(math_ops.abs(other), rtol), atol))
    close = math_ops.logical_or(close, math_ops.eq(input, other))
    if equal_nan:
        close = math_ops.logical_or(close, math_ops.logical_and(math_ops.isnan(input), math_ops.isnan(other)))
    return close


def allclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(math_ops.all(isclose(input, other, rtol, atol, equal_nan)).item())
