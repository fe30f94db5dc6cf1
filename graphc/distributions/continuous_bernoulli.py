"""ContinuousBernoulli(probs | logits): the density on [0, 1] proportional to p^x (1-p)^(1-x)
(Loaiza-Ganem & Cunningham, 2019). Near p = 1/2 the normalizer's closed form is 0/0, so there
(inside ``lims``) Taylor expansions stand in, as in PyTorch."""
from __future__ import annotations

import math
import numbers

import graphc
import graphc.nn.functional as F

from . import constraints
from .distribution import _broadcast_all, _clamp_probs, _ProbsOrLogits
from .exp_family import ExponentialFamily

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(_ProbsOrLogits, ExponentialFamily):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True
    _expand_params = ("probs", "logits")

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        param = self._set_param(probs, logits)
        if probs is not None:
            # checked before the clamp below (which would make any probs pass)
            if validate_args is not None and not bool(self.arg_constraints["probs"].check(self.probs).all()):
                raise ValueError("The parameter probs has invalid values")
            self.probs = param = _clamp_probs(self.probs)
        self._param, self._lims = param, lims
        super().__init__(() if isinstance(probs if probs is not None else logits, numbers.Number) else param.size(),
                         validate_args=validate_args)

    def __getattr__(self, name):
        value = super().__getattr__(name)
        if name == "probs":  # from logits: clamped away from 0 and 1, as PyTorch's
            value = self.__dict__["probs"] = _clamp_probs(value)
        return value

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._lims = self._lims
        return new

    @property
    def param_shape(self):
        return self._param.size()

    def _outside_unstable_region(self):
        return graphc.le(self.probs, self._lims[0]) | graphc.gt(self.probs, self._lims[1])

    def _cut_probs(self):
        return graphc.where(self._outside_unstable_region(), self.probs, self._lims[0] * graphc.ones_like(self.probs))

    def _cont_bern_log_norm(self):
        """The log normalizer as a function of ``probs``."""
        cut = self._cut_probs()
        below = graphc.where(graphc.le(cut, 0.5), cut, graphc.zeros_like(cut))
        above = graphc.where(graphc.ge(cut, 0.5), cut, graphc.ones_like(cut))
        log_norm = graphc.log(graphc.abs(graphc.log1p(-cut) - graphc.log(cut))) - graphc.where(
            graphc.le(cut, 0.5), graphc.log1p(-2.0 * below), graphc.log(2.0 * above - 1.0))
        x = graphc.pow(self.probs - 0.5, 2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return graphc.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut = self._cut_probs()
        mus = cut / (2.0 * cut - 1.0) + 1.0 / (graphc.log1p(-cut) - graphc.log(cut))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * graphc.pow(x, 2)) * x
        return graphc.where(self._outside_unstable_region(), mus, taylor)

    @property
    def variance(self):
        cut = self._cut_probs()
        var = cut * (cut - 1.0) / graphc.pow(1.0 - 2.0 * cut, 2) + 1.0 / graphc.pow(
            graphc.log1p(-cut) - graphc.log(cut), 2)
        x = graphc.pow(self.probs - 0.5, 2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return graphc.where(self._outside_unstable_region(), var, taylor)

    def rsample(self, sample_shape=()):
        u = graphc.rand(self._extended_shape(sample_shape), dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        self._checked(value)
        logits, value = _broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none") + self._cont_bern_log_norm()

    def cdf(self, value):
        self._checked(value)
        cut = self._cut_probs()
        cdfs = (graphc.pow(cut, value) * graphc.pow(1.0 - cut, 1.0 - value) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = graphc.where(self._outside_unstable_region(), cdfs, value)
        return graphc.where(graphc.le(value, 0.0), graphc.zeros_like(value),
                            graphc.where(graphc.ge(value, 1.0), graphc.ones_like(value), unbounded))

    def icdf(self, value):
        cut = self._cut_probs()
        return graphc.where(self._outside_unstable_region(),
                            (graphc.log1p(-cut + value * (2.0 * cut - 1.0)) - graphc.log1p(-cut))
                            / (graphc.log(cut) - graphc.log1p(-cut)), value)

    def entropy(self):
        log_probs0, log_probs1 = graphc.log1p(-self.probs), graphc.log(self.probs)
        return self.mean * (log_probs0 - log_probs1) - self._cont_bern_log_norm() - log_probs0

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        """The log normalizer as a function of the natural parameter (the logits)."""
        unstable = graphc.le(x, self._lims[0] - 0.5) | graphc.gt(x, self._lims[1] - 0.5)
        cut = graphc.where(unstable, x, (self._lims[0] - 0.5) * graphc.ones_like(x))
        log_norm = graphc.log(graphc.abs(graphc.expm1(cut))) - graphc.log(graphc.abs(cut))
        taylor = 0.5 * x + graphc.pow(x, 2) / 24.0 - graphc.pow(x, 4) / 2880.0
        return graphc.where(unstable, log_norm, taylor)
