"""More continuous distributions with closed forms: HalfNormal, Cauchy, HalfCauchy, Gumbel,
StudentT, Weibull, Pareto, InverseGamma (reparameterized samples from uniform, normal or gamma
draws; log_prob, entropy, mean and variance as PyTorch's)."""
from __future__ import annotations

import math

import graphc

from . import constraints
from .distribution import Distribution, _all_numbers, _broadcast_all, _LocScale, _uniform
from .gamma import Gamma, _standard_gamma

__all__ = ["Cauchy", "Gumbel", "HalfCauchy", "HalfNormal", "InverseGamma", "Pareto", "StudentT", "Weibull"]

_EULER = 0.57721566490153286061


class Cauchy(_LocScale):
    @property
    def mean(self):
        return graphc.full(self._extended_shape(), math.nan, dtype=self.loc.dtype)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return graphc.full(self._extended_shape(), math.inf, dtype=self.loc.dtype)

    def rsample(self, sample_shape=()):
        u = _uniform(self.loc, self._extended_shape(sample_shape))
        return self.loc + self.scale * graphc.tan(math.pi * (u - 0.5))

    def log_prob(self, value):
        z = (self._checked(value) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - graphc.log1p(z * z)

    def cdf(self, value):
        return graphc.atan((self._checked(value) - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value):
        return graphc.tan(math.pi * (value - 0.5)) * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()


class Gumbel(_LocScale):
    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2) * math.pi ** 2 / 6

    def rsample(self, sample_shape=()):
        u = _uniform(self.loc, self._extended_shape(sample_shape))
        return self.loc - self.scale * graphc.log(-graphc.log(u))

    def log_prob(self, value):
        z = (self._checked(value) - self.loc) / self.scale
        return -(z + graphc.exp(-z)) - self.scale.log()

    def cdf(self, value):
        return graphc.exp(-graphc.exp(-(self._checked(value) - self.loc) / self.scale))

    def entropy(self):
        return self.scale.log() + (1 + _EULER)


class HalfNormal(Distribution):
    """|X| for X ~ Normal(0, scale)."""
    arg_constraints = {"scale": constraints.positive}
    _expand_params = ("scale",)
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = _broadcast_all(scale)
        super().__init__(() if _all_numbers(scale) else self.scale.size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self):
        return graphc.zeros_like(self.scale)

    @property
    def variance(self):
        return self.scale.pow(2) * (1 - 2 / math.pi)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        return (graphc.randn(shape, dtype=self.scale.dtype, device=self.scale.device) * self.scale).abs()

    def log_prob(self, value):
        self._checked(value)
        z = value / self.scale
        lp = math.log(2) - 0.5 * math.log(2 * math.pi) - self.scale.log() - 0.5 * z * z
        return graphc.where(value >= 0, lp, -math.inf)

    def cdf(self, value):
        return graphc.erf(value / (self.scale * math.sqrt(2)))

    def entropy(self):
        return 0.5 * math.log(math.pi * math.e / 2) + self.scale.log()


class HalfCauchy(Distribution):
    """|X| for X ~ Cauchy(0, scale)."""
    arg_constraints = {"scale": constraints.positive}
    _expand_params = ("scale",)
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = _broadcast_all(scale)
        super().__init__(() if _all_numbers(scale) else self.scale.size(), validate_args=validate_args)

    @property
    def mean(self):
        return graphc.full(self._extended_shape(), math.inf, dtype=self.scale.dtype)

    @property
    def mode(self):
        return graphc.zeros_like(self.scale)

    @property
    def variance(self):
        return graphc.full(self._extended_shape(), math.inf, dtype=self.scale.dtype)

    def rsample(self, sample_shape=()):
        u = _uniform(self.scale, self._extended_shape(sample_shape))
        return (self.scale * graphc.tan(math.pi * (u - 0.5))).abs()

    def log_prob(self, value):
        self._checked(value)
        z = value / self.scale
        lp = math.log(2 / math.pi) - self.scale.log() - graphc.log1p(z * z)
        return graphc.where(value >= 0, lp, -math.inf)

    def cdf(self, value):
        return 2 * graphc.atan(value / self.scale) / math.pi

    def entropy(self):
        return math.log(2 * math.pi) + self.scale.log()


class StudentT(Distribution):
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    _expand_params = ("df", "loc", "scale")
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = _broadcast_all(df, loc, scale)
        super().__init__(() if _all_numbers(df, loc, scale) else self.df.size(), validate_args=validate_args)

    @property
    def mean(self):
        return graphc.where(self.df > 1, self.loc, math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        v = self.scale.pow(2) * self.df / (self.df - 2)
        return graphc.where(self.df > 2, v, graphc.where(self.df > 1, math.inf, math.nan))

    def rsample(self, sample_shape=()):
        # X = loc + scale * Z / sqrt(G / df), Z ~ Normal(0, 1), G ~ Chi2(df) = 2 Gamma(df / 2)
        shape = self._extended_shape(sample_shape)
        z = graphc.randn(shape, dtype=self.df.dtype, device=self.df.device)
        g = 2 * _standard_gamma((0.5 * self.df).expand(shape))
        return self.loc + self.scale * z * graphc.rsqrt(g / self.df)

    def log_prob(self, value):
        self._checked(value)
        y = (value - self.loc) / self.scale
        df = self.df
        z = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + graphc.lgamma(0.5 * df)
             - graphc.lgamma(0.5 * (df + 1.0)))
        return -0.5 * (df + 1.0) * graphc.log1p(y * y / df) - z

    def entropy(self):
        df = self.df
        lbeta = graphc.lgamma(0.5 * df) + math.lgamma(0.5) - graphc.lgamma(0.5 * (df + 1))
        return (self.scale.log() + 0.5 * (df + 1) * (graphc.digamma(0.5 * (df + 1)) - graphc.digamma(0.5 * df))
                + 0.5 * df.log() + lbeta)


class Weibull(Distribution):
    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    _expand_params = ("scale", "concentration")
    support = constraints.positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = _broadcast_all(scale, concentration)
        super().__init__(() if _all_numbers(scale, concentration) else self.scale.size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * graphc.exp(graphc.lgamma(1 + self.concentration.reciprocal()))

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k).clamp(min=0) ** k.reciprocal()

    @property
    def variance(self):
        k = self.concentration
        return self.scale.pow(2) * (graphc.exp(graphc.lgamma(1 + 2 / k)) - graphc.exp(2 * graphc.lgamma(1 + 1 / k)))

    def rsample(self, sample_shape=()):
        u = _uniform(self.scale, self._extended_shape(sample_shape))
        return self.scale * (-graphc.log1p(-u)) ** self.concentration.reciprocal()

    def log_prob(self, value):
        self._checked(value)
        k, lam = self.concentration, self.scale
        z = value / lam
        return (k / lam).log() + (k - 1) * z.log() - z ** k

    def cdf(self, value):
        return 1 - graphc.exp(-((value / self.scale) ** self.concentration))

    def entropy(self):
        k = self.concentration
        return _EULER * (1 - k.reciprocal()) + (self.scale / k).log() + 1


class Pareto(Distribution):
    arg_constraints = {"scale": constraints.positive, "alpha": constraints.positive}
    _expand_params = ("scale", "alpha")
    has_rsample = True

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = _broadcast_all(scale, alpha)
        super().__init__(() if _all_numbers(scale, alpha) else self.scale.size(), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)
        return graphc.where(self.alpha > 1, a * self.scale / (a - 1), math.inf)

    @property
    def mode(self):
        return self.scale

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)
        return graphc.where(self.alpha > 2, self.scale.pow(2) * a / ((a - 1).pow(2) * (a - 2)), math.inf)

    def rsample(self, sample_shape=()):
        u = _uniform(self.scale, self._extended_shape(sample_shape))
        return self.scale * u.pow(-self.alpha.reciprocal())

    def log_prob(self, value):
        self._checked(value)
        return self.alpha.log() + self.alpha * self.scale.log() - (self.alpha + 1) * value.log()

    def cdf(self, value):
        return 1 - (self.scale / value).pow(self.alpha)

    def entropy(self):
        return (self.scale / self.alpha).log() + (1 + self.alpha.reciprocal())


class InverseGamma(Distribution):
    """1 / X for X ~ Gamma(concentration, rate)."""
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = _broadcast_all(concentration, rate)
        self._gamma = Gamma(self.concentration, self.rate, validate_args=validate_args)
        super().__init__(self._gamma.batch_shape, validate_args=validate_args)

    @property
    def mean(self):
        c = self.concentration
        return graphc.where(c > 1, self.rate / (c - 1).clamp(min=1e-300), math.inf)

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        c = self.concentration
        v = self.rate.pow(2) / ((c - 1).pow(2) * (c - 2))
        return graphc.where(c > 2, v, math.inf)

    def rsample(self, sample_shape=()):
        return self._gamma.rsample(sample_shape).reciprocal()

    def log_prob(self, value):
        self._checked(value)
        return self._gamma.log_prob(value.reciprocal()) - 2 * value.log()

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + graphc.lgamma(c) - (1 + c) * graphc.digamma(c)
