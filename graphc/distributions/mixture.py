"""MixtureSameFamily (a Categorical over the rightmost batch dimension of one component
distribution), the relaxed (Concrete / Gumbel-softmax) Bernoulli and one-hot Categorical, and
FisherSnedecor, as PyTorch's."""
from __future__ import annotations

import math

import graphc
import graphc.nn.functional as F

from . import Categorical, constraints
from .distribution import Distribution, _all_numbers, _broadcast_all, _ProbsOrLogits, _uniform
from .gamma import Gamma
from .transformed_distribution import TransformedDistribution
from .transforms import ExpTransform, SigmoidTransform

__all__ = ["ExpRelaxedCategorical", "FisherSnedecor", "LogitRelaxedBernoulli", "MixtureSameFamily", "RelaxedBernoulli",
           "RelaxedOneHotCategorical"]


class MixtureSameFamily(Distribution):
    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError("The Mixture distribution needs to be an  instance of torch.distributions.Categorical")
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution need to be an instance of "
                             "torch.distributions.Distribution")
        self._mixture_distribution, self._component_distribution = mixture_distribution, component_distribution
        mdbs, cdbs = tuple(mixture_distribution.batch_shape), tuple(component_distribution.batch_shape)[:-1]
        for size1, size2 in zip(reversed(mdbs), reversed(cdbs)):
            if size1 != 1 and size2 != 1 and size1 != size2:
                raise ValueError(f"`mixture_distribution.batch_shape` ({mdbs}) is not compatible with "
                                 f"`component_distribution.batch_shape`({cdbs})")
        km, kc = mixture_distribution.logits.shape[-1], component_distribution.batch_shape[-1]
        if km != kc:
            raise ValueError(f"`mixture_distribution component` ({km}) does not equal "
                             f"`component_distribution.batch_shape[-1]` ({kc})")
        self._num_component = km
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(cdbs, component_distribution.event_shape, validate_args=validate_args)

    mixture_distribution = property(lambda self: self._mixture_distribution)
    component_distribution = property(lambda self: self._component_distribution)

    @constraints.dependent_property
    def support(self):
        return constraints.MixtureSameFamilyConstraint(self._component_distribution.support)

    def _pad(self, x):
        return x.unsqueeze(-1 - self._event_ndims)

    def _pad_mixture_dimensions(self, x):
        """Mixture weights shaped to broadcast against the components' event dims."""
        return x.reshape(tuple(x.shape) + (1,) * self._event_ndims)

    @property
    def mean(self):
        probs = self._pad_mixture_dimensions(self._mixture_distribution.probs)
        return (probs * self._component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self):
        probs = self._pad_mixture_dimensions(self._mixture_distribution.probs)
        d = -1 - self._event_ndims
        mean_cond_var = (probs * self._component_distribution.variance).sum(d)
        var_cond_mean = (probs * (self._component_distribution.mean - self._pad(self.mean)).pow(2)).sum(d)
        return mean_cond_var + var_cond_mean

    def cdf(self, x):
        cdf_x = self._component_distribution.cdf(self._pad(x))
        return (cdf_x * self._mixture_distribution.probs).sum(-1)

    def log_prob(self, x):
        self._checked(x)
        log_prob_x = self._component_distribution.log_prob(self._pad(x))  # [S, B, K]
        log_mix_prob = graphc.log_softmax(self._mixture_distribution.logits, dim=-1)
        return graphc.logsumexp(log_prob_x + log_mix_prob, dim=-1)

    def sample(self, sample_shape=()):
        with graphc.no_grad():
            sample_len, batch_len = len(tuple(sample_shape)), len(self._batch_shape)
            gather_dim = sample_len + batch_len
            mix_sample = self._mixture_distribution.sample(sample_shape)  # [S, B]
            comp_samples = self._component_distribution.sample(sample_shape)  # [S, B, K, E]
            idx = mix_sample.reshape(tuple(mix_sample.shape) + (1,) * (self._event_ndims + 1))
            idx = idx.expand(tuple(mix_sample.shape) + (1,) + tuple(self._event_shape))
            return comp_samples.gather(gather_dim, idx).squeeze(gather_dim)


class LogitRelaxedBernoulli(_ProbsOrLogits):
    """The logit of a RelaxedBernoulli sample."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self.temperature = temperature
        param = self._set_param(probs, logits)
        super().__init__(() if _all_numbers(probs if probs is not None else logits) else param.size(),
                         validate_args=validate_args)

    def rsample(self, sample_shape=()):
        u = _uniform(self.logits, self._extended_shape(sample_shape), low=graphc.finfo(self.logits.dtype).eps)
        return (self.logits + (u.log() - (-u).log1p())) / self.temperature

    def log_prob(self, value):
        self._checked(value)
        logits, value = _broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        log_t = self.temperature.log() if isinstance(self.temperature, graphc.Tensor) else math.log(self.temperature)
        return log_t + diff - 2 * F.softplus(diff)


class RelaxedBernoulli(TransformedDistribution):
    """A Bernoulli relaxed to (0, 1) at ``temperature`` (the binary Concrete distribution)."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)

    temperature = property(lambda self: self.base_dist.temperature)
    logits = property(lambda self: self.base_dist.logits)
    probs = property(lambda self: self.base_dist.probs)


class ExpRelaxedCategorical(Distribution):
    """The log of a RelaxedOneHotCategorical sample."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        self.temperature = temperature
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    logits = property(lambda self: self._categorical.logits)
    probs = property(lambda self: self._categorical.probs)

    def rsample(self, sample_shape=()):
        u = _uniform(self.logits, self._extended_shape(sample_shape), low=graphc.finfo(self.logits.dtype).eps)
        scores = (self.logits - (-u.log()).log()) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value):
        self._checked(value)
        k = self._categorical._num_events
        t = self.temperature if isinstance(self.temperature, graphc.Tensor) else graphc.tensor(
            float(self.temperature), dtype=self.logits.dtype)
        log_scale = math.lgamma(k) + (k - 1) * t.log()
        logits, value = _broadcast_all(self.logits, value)
        score = logits - value * t
        return (score - score.logsumexp(dim=-1, keepdim=True)).sum(-1) + log_scale


class RelaxedOneHotCategorical(TransformedDistribution):
    """A one-hot Categorical relaxed to the simplex at ``temperature`` (Concrete / Gumbel-softmax)."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    temperature = property(lambda self: self.base_dist.temperature)
    logits = property(lambda self: self.base_dist.logits)
    probs = property(lambda self: self.base_dist.probs)


class FisherSnedecor(Distribution):
    """F(df1, df2) = (X1 / df1) / (X2 / df2), X_i ~ Chi2(df_i)."""
    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = _broadcast_all(df1, df2)
        self._gamma1, self._gamma2 = Gamma(self.df1 * 0.5, self.df1), Gamma(self.df2 * 0.5, self.df2)
        super().__init__(() if _all_numbers(df1, df2) else self.df1.size(), validate_args=validate_args)

    @property
    def mean(self):
        df2 = self.df2.clamp(min=2.0 + 1e-9)
        return graphc.where(self.df2 > 2, df2 / (df2 - 2), math.nan)

    @property
    def mode(self):
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return graphc.where(self.df1 > 2, mode, math.nan)

    @property
    def variance(self):
        df2 = self.df2.clamp(min=4.0 + 1e-9)
        v = 2 * df2.pow(2) * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2).pow(2) * (df2 - 4))
        return graphc.where(self.df2 > 4, v, math.nan)

    def rsample(self, sample_shape=()):
        x1 = self._gamma1.rsample(sample_shape)
        x2 = self._gamma2.rsample(sample_shape)
        tiny = graphc.finfo(x2.dtype).tiny
        return (x1 / x2.clamp(min=tiny)).clamp(min=tiny)

    def log_prob(self, value):
        self._checked(value)
        ct1, ct2 = self.df1 * 0.5, self.df2 * 0.5
        ct3 = self.df1 / self.df2
        t1 = graphc.lgamma(ct1 + ct2) - graphc.lgamma(ct1) - graphc.lgamma(ct2)
        t2 = ct1 * graphc.log(ct3) + (ct1 - 1) * graphc.log(value)
        t3 = (ct1 + ct2) * graphc.log1p(ct3 * value)
        return t1 + t2 - t3
