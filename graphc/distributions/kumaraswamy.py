"""Kumaraswamy(concentration1 a, concentration0 b): on (0, 1), cdf 1 - (1 - x^a)^b; built as
PyTorch's, a Uniform pushed through u^(1/b), 1 - ., .^(1/a) (so samples are reparameterized)."""
from __future__ import annotations

import math

import graphc

from . import constraints
from .distribution import _broadcast_all
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, PowerTransform

__all__ = ["Kumaraswamy"]

_EULER = 0.57721566490153286061


def _moments(a, b, n: int):
    """E[X^n] = b B(1 + n/a, b), through lgamma."""
    arg1 = 1 + n / a
    return b * graphc.exp(graphc.lgamma(arg1) + graphc.lgamma(b) - graphc.lgamma(arg1 + b))


class Kumaraswamy(TransformedDistribution):
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        from . import Uniform
        self.concentration1, self.concentration0 = _broadcast_all(concentration1, concentration0)
        base = Uniform(graphc.full_like(self.concentration0, 0), graphc.full_like(self.concentration0, 1),
                       validate_args=validate_args)
        super().__init__(base, [PowerTransform(exponent=self.concentration0.reciprocal()),
                                AffineTransform(loc=1.0, scale=-1.0),
                                PowerTransform(exponent=self.concentration1.reciprocal())],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new.concentration1 = self.concentration1.expand(batch_shape)
        new.concentration0 = self.concentration0.expand(batch_shape)
        return new

    @property
    def mean(self):
        return _moments(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        a, b = self.concentration1, self.concentration0
        log_mode = b.reciprocal() * (-b).log1p() - (-b * a).log1p()  # in log space, for stability
        return graphc.where((b < 1) | (a < 1), math.nan, log_mode).exp()

    @property
    def variance(self):
        return _moments(self.concentration1, self.concentration0, 2) - graphc.pow(self.mean, 2)

    def entropy(self):
        t1 = 1 - self.concentration1.reciprocal()
        t0 = 1 - self.concentration0.reciprocal()
        h0 = graphc.digamma(self.concentration0 + 1) + _EULER
        return t0 + t1 * h0 - graphc.log(self.concentration1) - graphc.log(self.concentration0)
