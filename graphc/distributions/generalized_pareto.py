"""GeneralizedPareto(loc, scale, concentration xi): survival (1 + xi z)^(-1/xi), z = (x - loc)/scale,
the exponential at xi = 0; support [loc, inf) for xi >= 0, [loc, loc - scale/xi] for xi < 0.
Samples are reparameterized through the inverse cdf."""
from __future__ import annotations

import math
import numbers

import graphc

from . import constraints
from .distribution import _all_numbers, _broadcast_all, Distribution

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True
    _expand_params = ("loc", "scale", "concentration")

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = _broadcast_all(loc, scale, concentration)
        super().__init__(() if _all_numbers(loc, scale, concentration) else self.loc.size(),
                         validate_args=validate_args)

    def _safe_concentration(self):
        """(xi == 0, xi with its zeros replaced by 1): the xi = 0 limit is taken separately."""
        eq_zero = graphc.isclose(self.concentration, graphc.zeros_like(self.concentration))
        return eq_zero, graphc.where(eq_zero, graphc.ones_like(self.concentration), self.concentration)

    def rsample(self, sample_shape=()):
        u = graphc.rand(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u)

    def log_prob(self, value):
        self._checked(value)
        z = (value - self.loc) / self.scale
        eq_zero, xi = self._safe_concentration()
        y = 1 / xi + graphc.ones_like(z)
        where_nonzero = graphc.where(y == 0, y, y * graphc.log1p(xi * z))
        log_scale = math.log(self.scale) if isinstance(self.scale, numbers.Real) else self.scale.log()
        return -log_scale - graphc.where(eq_zero, z, where_nonzero)

    def log_survival_function(self, value):
        self._checked(value)
        z = (value - self.loc) / self.scale
        eq_zero, xi = self._safe_concentration()
        return graphc.where(eq_zero, -z, -graphc.log1p(xi * z) / xi)

    def log_cdf(self, value):
        return graphc.log1p(-graphc.exp(self.log_survival_function(value)))

    def cdf(self, value):
        return graphc.exp(self.log_cdf(value))

    def icdf(self, value):
        eq_zero, xi = self._safe_concentration()
        logu = graphc.log1p(-value)
        return graphc.where(eq_zero, self.loc - self.scale * logu,
                            self.loc + self.scale / xi * graphc.expm1(-xi * logu))

    @property
    def mean(self):
        valid = self.concentration < 1
        xi = graphc.where(valid, self.concentration, 0.5)
        return graphc.where(valid, self.loc + self.scale / (1 - xi), math.nan)

    @property
    def variance(self):
        valid = self.concentration < 0.5
        xi = graphc.where(valid, self.concentration, 0.25)
        return graphc.where(valid, self.scale ** 2 / ((1 - xi) ** 2 * (1 - 2 * xi)), math.nan)

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        return graphc.broadcast_to(graphc.log(self.scale) + self.concentration + 1, tuple(self._batch_shape))

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        upper = graphc.where(self.concentration < 0, self.loc - self.scale / self.concentration, math.inf)
        return constraints.interval(self.loc, upper)
