"""MultivariateNormal(loc, covariance_matrix | precision_matrix | scale_tril), kept as its
Cholesky factor ``scale_tril`` L (cov = L L^T): samples loc + L eps, log_prob by a triangular
solve."""
from __future__ import annotations

import math

import graphc

from . import constraints
from .distribution import Distribution

__all__ = ["MultivariateNormal"]


def cholesky_parametrized(dist, name: str, shape: tuple):
    """``scale_tril``, ``covariance_matrix`` or ``precision_matrix`` of ``dist`` (of ``shape``),
    computed from its Cholesky factor ``_unbroadcasted_scale_tril`` on first use and kept: the
    ``__getattr__`` of the distributions parametrized by one of the three (AttributeError for
    any other name)."""
    d = dist.__dict__
    if "_unbroadcasted_scale_tril" not in d or name not in ("scale_tril", "covariance_matrix", "precision_matrix"):
        raise AttributeError(name)
    lt = d["_unbroadcasted_scale_tril"]
    if name == "scale_tril":
        value = lt.expand(shape)
    elif name == "covariance_matrix":
        value = (lt @ lt.mT).expand(shape)
    else:
        value = graphc.cholesky_inverse(lt).expand(shape)
    d[name] = value
    return value


class MultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        matrix = given[0]
        if matrix.dim() < 2:
            name = ("covariance_matrix" if covariance_matrix is not None else
                    "precision_matrix" if precision_matrix is not None else "scale_tril")
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch dimensions")
        batch_shape = graphc.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        n = loc.shape[-1]
        if covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(tuple(batch_shape) + (n, n))
        elif precision_matrix is not None:
            self.precision_matrix = precision_matrix.expand(tuple(batch_shape) + (n, n))
        else:
            self.scale_tril = scale_tril.expand(tuple(batch_shape) + (n, n))
        self.loc = loc.expand(tuple(batch_shape) + (n,))
        super().__init__(batch_shape, (n,), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = graphc.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = graphc.linalg.cholesky(graphc.linalg.inv(precision_matrix))

    def __getattr__(self, name):
        # the two matrices not given, computed from L once, on first use
        return cholesky_parametrized(self, name, tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = graphc.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        self._checked(value)
        diff = value - self.loc
        L = self._unbroadcasted_scale_tril
        shape = graphc.broadcast_shapes(tuple(L.shape[:-2]), tuple(diff.shape[:-1]))
        n = self._event_shape[0]
        z = graphc.linalg.solve_triangular(L.expand(tuple(shape) + (n, n)),
                                           diff.expand(tuple(shape) + (n,)).unsqueeze(-1), upper=False)
        m = z.squeeze(-1).pow(2).sum(-1)
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self):
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h.expand(self._batch_shape) if len(self._batch_shape) else h
