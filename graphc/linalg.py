"""graphc.linalg: the norms (differentiable, built from primitives)."""
from __future__ import annotations

from . import math_ops
from .tensors import Tensor


def vector_norm(x: Tensor, ord: float = 2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    return math_ops.norm(x, ord, dim, keepdim, dtype)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    if ord != "fro":
        raise NotImplementedError(f"linalg.matrix_norm(ord={ord!r}) needs singular values or column sums; "
                                  "graphc provides ord='fro'")
    return math_ops.norm(A, 2, dim, keepdim, dtype)


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if isinstance(ord, str):
        return matrix_norm(A, ord, dim if dim is not None else (-2, -1), keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
