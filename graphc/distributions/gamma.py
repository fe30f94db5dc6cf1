"""Gamma(concentration, rate), with reparameterized samples: the gradient of a sample with
respect to the concentration is the implicit one, -dF(x; a)/da / p(x; a) (F the CDF), as PyTorch's."""
from __future__ import annotations

import numpy as np

import graphc
from graphc.autograd.function import Function
from graphc.tensors import device_tensor

from . import constraints
from .distribution import _all_numbers, _broadcast_all, _host, _host_draw
from .exp_family import ExponentialFamily

__all__ = ["Chi2", "Gamma"]


class _StandardGamma(Function):
    """Samples of Gamma(alpha, 1), one per element of ``alpha``; differentiable in ``alpha``."""

    @staticmethod
    def forward(ctx, alpha):
        x = _host_draw(alpha, alpha.shape, lambda rng, shape: rng.standard_gamma(_host(alpha, shape)))
        x = x.clamp(min=graphc.finfo(alpha.dtype).tiny)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, grad):
        from scipy import special
        alpha, x = ctx.saved_tensors
        a, v = _host(alpha), _host(x)
        h = 1e-5 * np.maximum(a, 1.0)  # central difference of the CDF in a (float64: error ~1e-10)
        dF = (special.gammainc(a + h, v) - special.gammainc(np.maximum(a - h, 1e-300), v)) / (
            (a + h) - np.maximum(a - h, 1e-300))
        log_pdf = (a - 1) * np.log(v) - v - special.gammaln(a)
        dx_da = -dF / np.exp(log_pdf)
        return grad * device_tensor(dx_da.astype(alpha.dtype.np), alpha)


def _standard_gamma(alpha):
    return _StandardGamma.apply(alpha)


class Gamma(ExponentialFamily):
    _mean_carrier_measure = 0

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    _expand_params = ("concentration", "rate", "df")
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = _broadcast_all(concentration, rate)
        super().__init__(() if _all_numbers(concentration, rate) else self.concentration.size(),
                         validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = _standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        return x.clamp(min=graphc.finfo(x.dtype).tiny)

    def log_prob(self, value):
        value = graphc.as_tensor(value, dtype=self.rate.dtype)
        self._checked(value)
        c, r = self.concentration, self.rate
        return graphc.xlogy(c, r) + graphc.xlogy(c - 1, value) - r * value - graphc.lgamma(c)

    def entropy(self):
        c = self.concentration
        return c - graphc.log(self.rate) + graphc.lgamma(c) + (1.0 - c) * graphc.digamma(c)

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return graphc.lgamma(x + 1) + (x + 1) * graphc.log(-y.reciprocal())


class Chi2(Gamma):
    """Chi2(df) = Gamma(df / 2, 1 / 2)."""
    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (self.df,) = _broadcast_all(df)
        super().__init__(0.5 * self.df, 0.5, validate_args=validate_args)
