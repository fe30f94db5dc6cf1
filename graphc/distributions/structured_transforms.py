"""Transforms whose events have structure (as in torch.distributions.transforms): vectors to the
simplex (StickBreakingTransform), to Cholesky factors of correlation matrices
(CorrCholeskyTransform), matrices to positive-definite ones (PositiveDefiniteTransform), and the
functors applying one transform per slice (CatTransform, StackTransform). Written with graphc ops,
so ``__call__``, ``inv`` and ``log_abs_det_jacobian`` are differentiable."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import graphc
import graphc.nn.functional as F

from . import constraints
from .distribution import _sum_rightmost
from .transforms import LowerCholeskyTransform, Transform, _ParameterlessTransform
from .utils import tril_matrix_to_vec, vec_to_tril_matrix

__all__ = ["CatTransform", "CorrCholeskyTransform", "PositiveDefiniteTransform", "StackTransform",
           "StickBreakingTransform"]


def _clipped_sigmoid(x):
    finfo = graphc.finfo(x.dtype)
    return graphc.clamp(graphc.sigmoid(x), min=finfo.tiny, max=1.0 - finfo.eps)


def _stick_offset(x):
    """K, K-1, ..., 1 for a K-vector: the shift that makes x = 0 map to the simplex's centre."""
    return x.shape[-1] + 1 - x.new_ones(x.shape[-1]).cumsum(-1)


def _too_few_dims(shape, n: int) -> None:
    if len(shape) < n:
        raise ValueError("Too few dimensions on input")


class StickBreakingTransform(_ParameterlessTransform):
    """Unconstrained K-vectors to the (K+1)-simplex by stick breaking: an iterated sigmoid
    (bijective, unlike SoftmaxTransform)."""
    domain, codomain, bijective = constraints.real_vector, constraints.simplex, True

    def _call(self, x):
        z = _clipped_sigmoid(x - _stick_offset(x).log())
        z_cumprod = (1 - z).cumprod(-1)
        return F.pad(z, [0, 1], value=1) * F.pad(z_cumprod, [1, 0], value=1)

    def _inverse(self, y):
        y_crop = y[..., :-1]
        offset = y.shape[-1] - y.new_ones(y_crop.shape[-1]).cumsum(-1)
        # clamped: the remaining stick can round to <= 0 when y[-1] ~ 0
        sf = graphc.clamp(1 - y_crop.cumsum(-1), min=graphc.finfo(y.dtype).tiny)
        return y_crop.log() - sf.log() + offset.log()

    def log_abs_det_jacobian(self, x, y):
        x = x - _stick_offset(x).log()
        return (-x + F.logsigmoid(x) + y[..., :-1].log()).sum(-1)  # 1 - sigmoid(x) = exp(-x) sigmoid(x)

    def forward_shape(self, shape):
        _too_few_dims(shape, 1)
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        _too_few_dims(shape, 1)
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class CorrCholeskyTransform(_ParameterlessTransform):
    """Unconstrained vectors of length D(D-1)/2 to Cholesky factors of D x D correlation matrices:
    each row of the strict lower triangle goes through tanh and a signed stick breaking, so rows
    have unit norm (Stan's construction)."""
    domain, codomain, bijective = constraints.real_vector, constraints.corr_cholesky, True

    def _call(self, x):
        eps = graphc.finfo(x.dtype).eps
        r = vec_to_tril_matrix(graphc.tanh(x).clamp(min=-1 + eps, max=1 - eps), diag=-1)
        # y = sign(r) sqrt(z cumprod(1 - z)) with z = r^2, i.e. r * sqrt(cumprod(1 - r^2)) shifted
        z1m_cumprod_sqrt = (1 - r ** 2).sqrt().cumprod(-1)
        r = r + graphc.eye(r.shape[-1], dtype=r.dtype, device=r.device)
        return r * F.pad(z1m_cumprod_sqrt[..., :-1], [1, 0], value=1)

    def _inverse(self, y):
        y_cumsum = 1 - graphc.cumsum(y * y, dim=-1)
        y_cumsum_shifted = F.pad(y_cumsum[..., :-1], [1, 0], value=1)
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(y_cumsum_shifted, diag=-1).sqrt()
        return (t.log1p() - t.neg().log1p()) / 2  # atanh

    def log_abs_det_jacobian(self, x, y):
        # of x and the flattened strict lower triangle of y (the spaces' dimensions differ)
        y1m_cumsum_tril = tril_matrix_to_vec(1 - (y * y).cumsum(dim=-1), diag=-2)
        stick_breaking_logdet = 0.5 * y1m_cumsum_tril.log().sum(-1)
        tanh_logdet = -2 * (x + F.softplus(-2 * x) - math.log(2.0)).sum(dim=-1)
        return stick_breaking_logdet + tanh_logdet

    def forward_shape(self, shape):
        _too_few_dims(shape, 1)
        n = shape[-1]
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattened lower-diagonal number")
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        _too_few_dims(shape, 2)
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        d = shape[-1]
        return tuple(shape[:-2]) + (d * (d - 1) // 2,)


class PositiveDefiniteTransform(_ParameterlessTransform):
    """Unconstrained square matrices to positive-definite ones: L L^T, L = LowerCholeskyTransform(x)."""
    domain, codomain = constraints.independent(constraints.real, 2), constraints.positive_definite

    def _call(self, x):
        x = LowerCholeskyTransform()(x)
        return x @ x.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(graphc.linalg.cholesky(y))


def _check_slices(name: str, t, dim: int, length: int, what: str) -> None:
    if not -t.dim() <= dim < t.dim():
        raise AssertionError(f"dim {dim} out of range for {name} with {t.dim()} dimensions")
    if t.size(dim) != length:
        raise AssertionError(f"{name}.size({dim}) = {t.size(dim)} must equal {what} {length}")


class _PerSlice(Transform):
    """A sequence of transforms, one per slice along ``dim`` (CatTransform's and StackTransform's
    common parts)."""

    def __init__(self, tseq: Sequence[Transform], dim: int, cache_size: int) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise AssertionError("All elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms, self.dim = list(tseq), dim

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)


class CatTransform(_PerSlice):
    """``tseq[i]`` on the i-th slice of length ``lengths[i]`` along ``dim``, as ``torch.cat``
    joins them (``lengths`` defaults to ones)."""

    def __init__(self, tseq: Sequence[Transform], dim: int = 0, lengths: Optional[Sequence[int]] = None,
                 cache_size: int = 0) -> None:
        super().__init__(tseq, dim, cache_size)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.transforms)
        if len(self.lengths) != len(self.transforms):
            raise AssertionError(f"lengths ({len(self.lengths)}) must match transforms ({len(self.transforms)})")

    @property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @property
    def length(self) -> int:
        return sum(self.lengths)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else CatTransform(self.transforms, self.dim, self.lengths,
                                                                        cache_size)

    def _slices(self, t):
        start = 0
        for length in self.lengths:
            yield t.narrow(self.dim, start, length)
            start += length

    def _call(self, x):
        _check_slices("x", x, self.dim, self.length, "length")
        return graphc.cat([t(s) for t, s in zip(self.transforms, self._slices(x))], dim=self.dim)

    def _inverse(self, y):
        _check_slices("y", y, self.dim, self.length, "length")
        return graphc.cat([t.inv(s) for t, s in zip(self.transforms, self._slices(y))], dim=self.dim)

    def log_abs_det_jacobian(self, x, y):
        _check_slices("x", x, self.dim, self.length, "length")
        _check_slices("y", y, self.dim, self.length, "length")
        event_dim = self.event_dim
        parts = [_sum_rightmost(t.log_abs_det_jacobian(xs, ys), event_dim - t.event_dim)
                 for t, xs, ys in zip(self.transforms, self._slices(x), self._slices(y))]
        dim = (self.dim - x.dim() if self.dim >= 0 else self.dim) + event_dim
        if dim < 0:  # ``dim`` is a batch dim of the Jacobian: the slices' terms sit side by side
            return graphc.cat(parts, dim=dim)
        total = parts[0]  # an event dim: the slices' terms add up
        for p in parts[1:]:
            total = total + p
        return total

    domain = property(lambda self: constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths))
    codomain = property(lambda self: constraints.cat([t.codomain for t in self.transforms], self.dim,
                                                     self.lengths))


class StackTransform(_PerSlice):
    """``tseq[i]`` on the i-th slice along ``dim``, as ``torch.stack`` joins them."""

    def __init__(self, tseq: Sequence[Transform], dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(tseq, dim, cache_size)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else StackTransform(self.transforms, self.dim, cache_size)

    def _slice(self, z):
        return [z.select(self.dim, i) for i in range(z.size(self.dim))]

    def _call(self, x):
        _check_slices("x", x, self.dim, len(self.transforms), "len(transforms)")
        return graphc.stack([t(s) for s, t in zip(self._slice(x), self.transforms)], dim=self.dim)

    def _inverse(self, y):
        _check_slices("y", y, self.dim, len(self.transforms), "len(transforms)")
        return graphc.stack([t.inv(s) for s, t in zip(self._slice(y), self.transforms)], dim=self.dim)

    def log_abs_det_jacobian(self, x, y):
        _check_slices("x", x, self.dim, len(self.transforms), "len(transforms)")
        _check_slices("y", y, self.dim, len(self.transforms), "len(transforms)")
        return graphc.stack([t.log_abs_det_jacobian(xs, ys)
                             for xs, ys, t in zip(self._slice(x), self._slice(y), self.transforms)], dim=self.dim)

    domain = property(lambda self: constraints.stack([t.domain for t in self.transforms], self.dim))
    codomain = property(lambda self: constraints.stack([t.codomain for t in self.transforms], self.dim))
