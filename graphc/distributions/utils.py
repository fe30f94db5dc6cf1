"""Helpers distributions share (as torch.distributions.utils)."""
from __future__ import annotations

import functools

import numpy as np

import graphc

from .distribution import _broadcast_all, _clamp_probs

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]

broadcast_all, clamp_probs = _broadcast_all, _clamp_probs


def logits_to_probs(logits, is_binary: bool = False):
    return graphc.sigmoid(logits) if is_binary else graphc.softmax(logits, dim=-1)


def probs_to_logits(probs, is_binary: bool = False):
    ps = _clamp_probs(probs)
    return graphc.log(ps) - graphc.log1p(-ps) if is_binary else graphc.log(ps)


class lazy_property:  # noqa: N801  (PyTorch's name)
    """A property computed on first access and then stored on the instance."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        functools.update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


def _tril_selector(n: int, diag: int, like):
    """The 0/1 matrix (len(tril), n * n) that places a row-order vector of the lower triangle
    (``diag`` as ``torch.tril``'s) into a flattened n x n matrix: a matmul, so differentiable."""
    rows, cols = np.tril_indices(n, k=diag)
    sel = np.zeros((len(rows), n * n))
    sel[np.arange(len(rows)), rows * n + cols] = 1.0
    return graphc.tensor(sel, dtype=like.dtype, device=like.device)


def vec_to_tril_matrix(vec, diag: int = 0):
    """A vector (or batch of them) of a lower triangle's entries, in row order, as D x D matrices."""
    m = vec.shape[-1]
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * m + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    if abs(round(n) - n) > graphc.finfo(vec.dtype).eps:
        raise ValueError(f"The size of last dimension is {m} which cannot be expressed as "
                         "the lower triangular part of a square D x D matrix.")
    n = round(n)
    flat = vec @ _tril_selector(n, diag, vec)
    return flat.reshape(tuple(vec.shape[:-1]) + (n, n))


def tril_matrix_to_vec(mat, diag: int = 0):
    """The lower triangle (``diag`` as ``torch.tril``'s) of D x D matrices as row-order vectors."""
    n = mat.shape[-1]
    if mat.shape[-2] != n:
        raise ValueError("Input matrix must be square.")
    if not -n <= diag < n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    return mat.reshape(tuple(mat.shape[:-2]) + (n * n,)) @ _tril_selector(n, diag, mat).mT
