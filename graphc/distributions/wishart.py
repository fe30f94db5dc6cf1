"""Wishart(df, covariance_matrix | precision_matrix | scale_tril): positive-definite p x p matrices,
S = L A A^T L^T with L the scale's Cholesky factor and A Bartlett's lower-triangular factor
(sqrt of Chi2(df - i) on the diagonal, standard normals below), so samples are reparameterized
in df (through the Gamma's implicit gradient) and in the scale."""
from __future__ import annotations

import math
import numbers
import warnings

import graphc

from . import constraints
from .exp_family import ExponentialFamily
from .gamma import Chi2
from .multivariate_normal import cholesky_parametrized
from .utils import vec_to_tril_matrix

__all__ = ["Wishart"]

_LOG_2 = math.log(2)


def _mvdigamma(x, p: int):
    if not bool(x.gt((p - 1) / 2).all()):
        raise AssertionError("Wrong domain for multivariate digamma function.")
    return graphc.digamma(x.unsqueeze(-1) - graphc.arange(p, dtype=x.dtype, device=x.device).div(2)).sum(-1)


class Wishart(ExponentialFamily):
    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self):
        return {"covariance_matrix": constraints.positive_definite, "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky, "df": constraints.greater_than(self.event_shape[-1] - 1)}

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise AssertionError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        param = given[0]
        if param.dim() < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional leading batch dimensions")
        if isinstance(df, numbers.Number):
            batch_shape = tuple(param.shape[:-2])
            self.df = graphc.tensor(df, dtype=param.dtype, device=param.device)
        else:
            batch_shape = tuple(graphc.broadcast_shapes(tuple(param.shape[:-2]), tuple(df.shape)))
            self.df = df.expand(batch_shape)
        p = param.shape[-1]
        # a number df is checked as a number (no tensor read: compiled code keeps its graph)
        df_min = df if isinstance(df, numbers.Number) else self.df.min()
        if bool(df_min <= p - 1):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        name = "scale_tril" if scale_tril is not None else (
            "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        setattr(self, name, param.expand(batch_shape + (p, p)))
        if bool(df_min < p):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur for "
                          "ndim - 1 < df < ndim.", stacklevel=2)
        super().__init__(batch_shape, (p, p), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = graphc.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = graphc.linalg.cholesky(graphc.linalg.inv(precision_matrix))
        self._set_chi2()

    def _set_chi2(self) -> None:
        p = self._event_shape[-1]
        offsets = graphc.arange(p, dtype=self.df.dtype, device=self.df.device)
        # df - i > 0 for every i < p: __init__ checked df > p - 1
        self._dist_chi2 = Chi2(df=self.df.unsqueeze(-1) - offsets.expand(tuple(self._batch_shape) + (p,)),
                               validate_args=False)

    def __getattr__(self, name):
        # the two matrices not given, computed from the Cholesky factor on first use
        return cholesky_parametrized(self, name, tuple(self._batch_shape) + tuple(self._event_shape))

    def expand(self, batch_shape, _instance=None):
        new = self._expanded(batch_shape, ("df", "scale_tril", "covariance_matrix", "precision_matrix"), _instance)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(
            tuple(batch_shape) + tuple(self._event_shape))
        new._set_chi2()
        return new

    def _df_matrix(self, x):
        return x.reshape(tuple(self._batch_shape) + (1, 1))

    @property
    def mean(self):
        return self._df_matrix(self.df) * self.covariance_matrix

    @property
    def mode(self):
        factor = self.df - self._event_shape[-1] - 1
        return self._df_matrix(graphc.where(factor <= 0, math.nan, factor)) * self.covariance_matrix

    @property
    def variance(self):
        v = self.covariance_matrix
        diag_v = v.diagonal(dim1=-2, dim2=-1)
        return self._df_matrix(self.df) * (v.pow(2) + diag_v.unsqueeze(-1) * diag_v.unsqueeze(-2))

    def _bartlett_sampling(self, sample_shape):
        p = self._event_shape[-1]
        diag = self._dist_chi2.rsample(sample_shape).sqrt()
        diag = diag.clamp(min=graphc.finfo(diag.dtype).eps)
        below = graphc.randn(tuple(sample_shape) + tuple(self._batch_shape) + (p * (p - 1) // 2,),
                             dtype=diag.dtype, device=diag.device)
        chol = self._unbroadcasted_scale_tril @ (vec_to_tril_matrix(below, diag=-1) + graphc.diag_embed(diag))
        return chol @ chol.mT

    def rsample(self, sample_shape=(), max_try_correction=None):
        """Bartlett samples; a draw that is numerically singular is redrawn (up to
        ``max_try_correction`` times, default 10), with a warning, as PyTorch does."""
        max_try_correction = 10 if max_try_correction is None else max_try_correction
        sample = self._bartlett_sampling(sample_shape)
        singular = ~self.support.check(sample.detach())
        if bool(singular.any()):
            warnings.warn("Singular sample detected.", stacklevel=2)
            for _ in range(max_try_correction):
                sample = graphc.where(singular[..., None, None], self._bartlett_sampling(sample_shape), sample)
                singular = ~self.support.check(sample.detach())
                if not bool(singular.any()):
                    break
        return sample

    def _log_det_scale_half(self):
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        self._checked(value)
        nu, p = self.df, self._event_shape[-1]
        return (-nu * (p * _LOG_2 / 2 + self._log_det_scale_half()) - graphc.mvlgamma(nu / 2, p=p)
                + (nu - p - 1) / 2 * graphc.linalg.slogdet(value).logabsdet
                - graphc.cholesky_solve(value, self._unbroadcasted_scale_tril).diagonal(dim1=-2, dim2=-1).sum(-1) / 2)

    def entropy(self):
        nu, p = self.df, self._event_shape[-1]
        return ((p + 1) * (p * _LOG_2 / 2 + self._log_det_scale_half()) + graphc.mvlgamma(nu / 2, p=p)
                - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p=p) + nu * p / 2)

    @property
    def _natural_params(self):
        nu, p = self.df, self._event_shape[-1]
        return -self.precision_matrix / 2, (nu - p - 1) / 2

    def _log_normalizer(self, x, y):
        p = self._event_shape[-1]
        return ((y + (p + 1) / 2) * (-graphc.linalg.slogdet(-2 * x).logabsdet + _LOG_2 * p)
                + graphc.mvlgamma(y + (p + 1) / 2, p=p))
