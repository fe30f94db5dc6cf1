"""More discrete distributions: Geometric, NegativeBinomial, Multinomial, OneHotCategorical
(draws on the host; log_prob, entropy, mean and variance as PyTorch's, differentiable in the
parameters)."""
from __future__ import annotations

import graphc
import graphc.nn.functional as F

from . import Categorical, constraints
from .distribution import Distribution, _all_numbers, _broadcast_all, _host, _host_draw, _ProbsOrLogits

__all__ = ["Geometric", "Multinomial", "NegativeBinomial", "OneHotCategorical", "OneHotCategoricalStraightThrough"]


class Geometric(_ProbsOrLogits):
    """The number of failures before the first success (support 0, 1, 2, ...)."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer
    _expand_params = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args=None):
        param = self._set_param(probs, logits)
        super().__init__(() if _all_numbers(probs if probs is not None else logits) else param.size(),
                         validate_args=validate_args)

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return graphc.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        return _host_draw(self.probs, shape, lambda rng, s: rng.geometric(_host(self.probs, s)) - 1)

    def log_prob(self, value):
        self._checked(value)
        value, probs = _broadcast_all(value, self.probs)
        probs = graphc.where((probs == 1) & (value == 0), graphc.zeros_like(probs), probs)  # 0 * log(0) = 0
        return value * graphc.log1p(-probs.clamp(max=1 - graphc.finfo(probs.dtype).eps)) + self.probs.log()

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs


class NegativeBinomial(_ProbsOrLogits):
    """The number of successes (each with probability ``probs``) before ``total_count`` failures."""
    arg_constraints = {"total_count": constraints.greater_than_eq(0), "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer
    _expand_params = ("total_count", "probs", "logits")

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        param = self._set_param(probs, logits)
        self.total_count, param = _broadcast_all(total_count, param)
        self.total_count = self.total_count.type_as(param)
        self.__dict__["probs" if probs is not None else "logits"] = param
        super().__init__(param.size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.total_count * graphc.exp(self.logits)

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / graphc.sigmoid(-self.logits)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        return _host_draw(self.probs, shape, lambda rng, s: rng.negative_binomial(
            _host(self.total_count, s), 1 - _host(self.probs, s)))

    def log_prob(self, value):
        self._checked(value)
        r, logits = self.total_count, self.logits
        log_unnormalized = r * F.logsigmoid(-logits) + value * F.logsigmoid(logits)
        log_normalization = -graphc.lgamma(r + value) + graphc.lgamma(1.0 + value) + graphc.lgamma(r)
        log_normalization = graphc.where(r + value == 0.0, graphc.zeros_like(log_normalization), log_normalization)
        return log_unnormalized - log_normalization


class OneHotCategorical(Distribution):
    """A Categorical whose samples are one-hot vectors."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)
    mean = property(lambda self: self._categorical.probs)
    variance = property(lambda self: self._categorical.probs * (1 - self._categorical.probs))

    @property
    def mode(self):
        n = self._event_shape[0]
        return F.one_hot(self._categorical.probs.argmax(-1), n).to(self._categorical.probs.dtype)

    def sample(self, sample_shape=()):
        idx = self._categorical.sample(sample_shape)
        return F.one_hot(idx, self._event_shape[0]).to(self._categorical.probs.dtype)

    def log_prob(self, value):
        self._checked(value)
        return self._categorical.log_prob(value.max(-1)[1])

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True):
        n = self._event_shape[0]
        values = graphc.eye(n, dtype=self._categorical.probs.dtype).view((n,) + (1,) * len(self._batch_shape) + (n,))
        return values.expand((n,) + tuple(self._batch_shape) + (n,)) if expand else values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """One-hot samples whose gradient is the probabilities' (the straight-through estimator)."""
    has_rsample = True

    def rsample(self, sample_shape=()):
        samples = self.sample(sample_shape)
        probs = self._categorical.probs
        return samples + (probs - probs.detach())


class Multinomial(Distribution):
    """Counts of ``total_count`` draws from a Categorical(probs | logits)."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count: int = 1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        p = _host(self.probs.detach())
        p = p / p.sum(-1, keepdims=True)
        return _host_draw(self.probs, shape, lambda rng, s: rng.multinomial(self.total_count, p, size=s[:-1]))

    def log_prob(self, value):
        self._checked(value)
        logits, value = graphc.broadcast_tensors(self.logits, value)
        log_factorial_n = graphc.lgamma(value.sum(-1) + 1)
        log_factorial_xs = graphc.lgamma(value + 1).sum(-1)
        logits = graphc.where((value == 0) & (logits == -float("inf")), graphc.zeros_like(logits), logits)
        return (logits * value).sum(-1) + log_factorial_n - log_factorial_xs
