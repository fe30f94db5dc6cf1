"""Whole-tensor comparisons: equal, allclose, isclose (PyTorch's semantics and defaults)."""
from __future__ import annotations

from graphc.ir import dtypes as dt

from . import math_ops
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
    if input.dtype is dt.bool_ or not input.dtype.is_floating_point:
        return math_ops.eq(input, other) if rtol == 0 and atol == 0 else math_ops.le(
            math_ops.abs(math_ops.sub(input.double(), other if not isinstance(other, Tensor) else other.double())),
            math_ops.add(math_ops.mul(math_ops.abs(other if not isinstance(other, Tensor) else other.double()), rtol), atol))
    close = math_ops.le(math_ops.abs(math_ops.sub(input, other)),
                        math_ops.add(math_ops.mul(math_ops.abs(other if isinstance(other, Tensor) else input * 0 + other), rtol), atol))
    close = math_ops.logical_or(close, math_ops.eq(input, other))
    if equal_nan:
        close = math_ops.logical_or(close, math_ops.logical_and(math_ops.isnan(input), math_ops.isnan(
            other if isinstance(other, Tensor) else input * 0 + other)))
    return close


def allclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(math_ops.all(isclose(input, other, rtol, atol, equal_nan)).item())
