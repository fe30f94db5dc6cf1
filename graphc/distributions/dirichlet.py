"""Dirichlet(concentration) and Beta(concentration1, concentration0), reparameterized through
Gamma samples (x_i = g_i / sum g, g_i ~ Gamma(a_i, 1))."""
from __future__ import annotations

import numbers

import graphc

from . import constraints
from .distribution import _broadcast_all
from .exp_family import ExponentialFamily
from .gamma import _standard_gamma

__all__ = ["Beta", "Dirichlet"]


class Dirichlet(ExponentialFamily):
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    _expand_params = ("concentration",)
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    def rsample(self, sample_shape=()):
        g = _standard_gamma(self.concentration.expand(self._extended_shape(sample_shape)))
        x = g / g.sum(-1, keepdim=True)
        return x.clamp(min=graphc.finfo(x.dtype).tiny, max=1 - graphc.finfo(x.dtype).eps)

    def log_prob(self, value):
        self._checked(value)
        c = self.concentration
        return graphc.xlogy(c - 1.0, value).sum(-1) + graphc.lgamma(c.sum(-1)) - graphc.lgamma(c).sum(-1)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        cm1 = (self.concentration - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        mask = (self.concentration < 1).all(dim=-1)
        return graphc.where(mask.unsqueeze(-1), graphc.nn.functional.one_hot(
            mode.argmax(dim=-1), self.concentration.shape[-1]).to(mode.dtype), mode)

    @property
    def variance(self):
        con0 = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (con0 - self.concentration) / (con0.pow(2) * (con0 + 1))

    def entropy(self):
        c = self.concentration
        k, a0 = c.shape[-1], c.sum(-1)
        return (graphc.lgamma(c).sum(-1) - graphc.lgamma(a0) - (k - a0) * graphc.digamma(a0)
                - ((c - 1.0) * graphc.digamma(c)).sum(-1))

    @property
    def _natural_params(self):
        return (self.concentration,)

    def _log_normalizer(self, x):
        return x.lgamma().sum(-1) - graphc.lgamma(x.sum(-1))


class Beta(ExponentialFamily):
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        if isinstance(concentration1, numbers.Real) and isinstance(concentration0, numbers.Real):
            c = graphc.tensor([float(concentration1), float(concentration0)])
        else:
            concentration1, concentration0 = _broadcast_all(concentration1, concentration0)
            c = graphc.stack([concentration1, concentration0], -1)
        self._dirichlet = Dirichlet(c, validate_args=validate_args)
        self.concentration1, self.concentration0 = c[..., 0], c[..., 1]
        super().__init__(self._dirichlet.batch_shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()):
        return self._dirichlet.rsample(sample_shape).select(-1, 0)

    def log_prob(self, value):
        self._checked(value)
        heads_tails = graphc.stack([value, 1.0 - value], -1)
        return self._dirichlet.log_prob(heads_tails)

    def entropy(self):
        return self._dirichlet.entropy()

    @property
    def _natural_params(self):
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x, y):
        return graphc.lgamma(x) + graphc.lgamma(y) - graphc.lgamma(x + y)
