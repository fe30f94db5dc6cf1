"""Exponential(rate) and Laplace(loc, scale): reparameterized samples from standard ones."""
from __future__ import annotations

import math

import graphc

from . import constraints
from .distribution import _all_numbers, _broadcast_all, _host_draw, _LocScale
from .exp_family import ExponentialFamily

__all__ = ["Exponential", "Laplace"]


class Exponential(ExponentialFamily):
    _mean_carrier_measure = 0

    arg_constraints = {"rate": constraints.positive}
    _expand_params = ("rate",)
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        (self.rate,) = _broadcast_all(rate)
        super().__init__(() if _all_numbers(rate) else self.rate.size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return graphc.zeros_like(self.rate)

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        return _host_draw(self.rate, shape, lambda rng, s: rng.standard_exponential(s)) / self.rate

    def log_prob(self, value):
        self._checked(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value):
        self._checked(value)
        return 1 - graphc.exp(-self.rate * value)

    def icdf(self, value):
        return -graphc.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - graphc.log(self.rate)

    @property
    def _natural_params(self):
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -graphc.log(-x)


class Laplace(_LocScale):
    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = graphc.finfo(self.loc.dtype).eps
        u = _host_draw(self.loc, shape, lambda rng, s: rng.uniform(-1 + eps, 1, s))  # open at -1: log1p(-1)
        return self.loc - self.scale * u.sign() * graphc.log1p(-u.abs())

    def log_prob(self, value):
        self._checked(value)
        return -graphc.log(2 * self.scale) - graphc.abs(value - self.loc) / self.scale

    def cdf(self, value):
        self._checked(value)
        return 0.5 - 0.5 * (value - self.loc).sign() * graphc.expm1(-(value - self.loc).abs() / self.scale)

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * term.sign() * graphc.log1p(-2 * term.abs())

    def entropy(self):
        return 1 + graphc.log(2 * self.scale)
