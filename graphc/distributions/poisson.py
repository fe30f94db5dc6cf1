"""Poisson(rate) and Binomial(total_count, probs | logits): counts drawn on the host (no rsample,
as in PyTorch); log_prob differentiable in the parameters."""
from __future__ import annotations

import graphc

from . import constraints
from .distribution import _all_numbers, _broadcast_all, _host, _host_draw, _ProbsOrLogits
from .exp_family import ExponentialFamily

__all__ = ["Binomial", "Poisson"]


class Poisson(ExponentialFamily):
    arg_constraints = {"rate": constraints.nonnegative}
    _expand_params = ("rate",)
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = _broadcast_all(rate)
        super().__init__(() if _all_numbers(rate) else self.rate.size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        return _host_draw(self.rate, shape, lambda rng, s: rng.poisson(_host(self.rate, s)))

    def log_prob(self, value):
        self._checked(value)
        rate, value = _broadcast_all(self.rate, value)
        return value.xlogy(rate) - rate - graphc.lgamma(value + 1)


def _clamp_by_zero(x):
    # x.clamp(min=0) with gradient 1/2 at 0, as PyTorch's
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2

    @property
    def _natural_params(self):
        return (graphc.log(self.rate),)

    def _log_normalizer(self, x):
        return graphc.exp(x)


class Binomial(_ProbsOrLogits):
    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True
    _expand_params = ("total_count", "probs", "logits")

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        param = probs if probs is not None else logits
        self.total_count, p = _broadcast_all(total_count, param)
        self.total_count = self.total_count.type_as(p)
        if probs is not None:
            self.probs = p
        else:
            self.logits = p
        super().__init__(() if _all_numbers(total_count, param) else p.size(), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        return _host_draw(self.probs, shape, lambda rng, s: rng.binomial(
            _host(self.total_count, s).astype("int64"), _host(self.probs, s)))

    def log_prob(self, value):
        self._checked(value)
        n, logits = self.total_count, self.logits
        log_factorial_n = graphc.lgamma(n + 1)
        log_factorial_k = graphc.lgamma(value + 1)
        log_factorial_nmk = graphc.lgamma(n - value + 1)
        # n * log(1 + exp(logits)), stable for either sign of logits
        normalize_term = (n * _clamp_by_zero(logits) + n * graphc.log1p(graphc.exp(-graphc.abs(logits)))
                          - log_factorial_n)
        return value * logits - log_factorial_k - log_factorial_nmk - normalize_term

    def enumerate_support(self, expand: bool = True):
        total_count = int(self.total_count.max().item())
        if not bool((self.total_count == total_count).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = graphc.arange(1 + total_count, dtype=self.probs.dtype).view((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values

    def entropy(self):
        values = self.enumerate_support(expand=False)
        log_prob = self.log_prob(values)
        return -(graphc.exp(log_prob) * log_prob).sum(0)
