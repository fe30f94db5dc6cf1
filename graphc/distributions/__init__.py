"""graphc.distributions: the common parts of ``torch.distributions`` (Normal, Bernoulli,
Categorical, Uniform, Independent and kl_divergence here; Beta, Gamma, Dirichlet, ... and the
transforms in their own modules, named as PyTorch's), written with graphc tensor ops, so
log_prob, entropy and rsample are differentiable."""
from __future__ import annotations

import math
import numbers

import graphc

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "ContinuousBernoulli", "Dirichlet",
           "Distribution", "ExpRelaxedCategorical", "Exponential", "ExponentialFamily", "FisherSnedecor", "Gamma",
           "GeneralizedPareto", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "InverseGamma",
           "Kumaraswamy", "LKJCholesky", "Laplace", "LogNormal", "LogisticNormal", "LogitRelaxedBernoulli",
           "LowRankMultivariateNormal", "MixtureSameFamily", "Multinomial", "MultivariateNormal",
           "NegativeBinomial", "Normal", "OneHotCategorical", "OneHotCategoricalStraightThrough", "Pareto",
           "Poisson", "RelaxedBernoulli", "RelaxedOneHotCategorical", "StudentT", "TransformedDistribution",
           "Uniform", "VonMises", "Weibull", "Wishart", "biject_to", "constraint_registry", "constraints",
           "kl_divergence", "register_kl", "transform_to", "transforms", "utils"]


from . import constraints, transforms  # noqa: E402
from .distribution import Distribution, _as_tensor, _broadcast_all, _LocScale, _ProbsOrLogits, _size  # noqa: E402
from .exp_family import ExponentialFamily  # noqa: E402
from .dirichlet import Beta, Dirichlet  # noqa: E402
from .exponential import Exponential, Laplace  # noqa: E402
from .gamma import Chi2, Gamma  # noqa: E402
from .multivariate_normal import MultivariateNormal  # noqa: E402
from .poisson import Binomial, Poisson  # noqa: E402
from .transformed_distribution import LogNormal, TransformedDistribution  # noqa: E402
from .transforms import *  # noqa: E402,F401,F403
from .continuous import Cauchy, Gumbel, HalfCauchy, HalfNormal, InverseGamma, Pareto, StudentT, Weibull  # noqa: E402


class Normal(_LocScale, ExponentialFamily):
    _mean_carrier_measure = 0

    @property
    def _natural_params(self):
        return (self.loc / self.scale.pow(2), -0.5 * self.scale.pow(2).reciprocal())

    def _log_normalizer(self, x, y):
        return -0.25 * x.pow(2) / y + 0.5 * graphc.log(-math.pi / y)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = graphc.randn(shape, dtype=self.loc.dtype)
        return self.loc + eps * self.scale

    def sample(self, sample_shape=()):
        with graphc.no_grad():
            return graphc.normal(self.loc.expand(self._extended_shape(sample_shape)),
                                 self.scale.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        var = self.scale ** 2
        log_scale = math.log(self.scale) if isinstance(self.scale, numbers.Real) else self.scale.log()
        return -((value - self.loc) ** 2) / (2 * var) - log_scale - math.log(math.sqrt(2 * math.pi))

    def cdf(self, value):
        return 0.5 * (1 + graphc.erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def icdf(self, value):
        return self.loc + self.scale * graphc.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + graphc.log(self.scale)


class Bernoulli(_ProbsOrLogits, ExponentialFamily):
    _mean_carrier_measure = 0
    _expand_params = ("probs", "logits")

    @property
    def _natural_params(self):
        return (graphc.logit(self.probs),)

    def _log_normalizer(self, x):
        return graphc.log1p(graphc.exp(x))

    arg_names = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._param = self._set_param(probs, logits)
        super().__init__(() if isinstance(probs if probs is not None else logits, numbers.Number)
                         else self._param.size())

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        with graphc.no_grad():
            return graphc.bernoulli(self.probs.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        logits, value = graphc.broadcast_tensors(self.logits, _as_tensor(value, self.logits))
        return -graphc.nn.functional.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return graphc.nn.functional.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")


class Categorical(_ProbsOrLogits):
    arg_names = ("probs", "logits")
    _is_binary = False
    _expand_params = ("probs", "logits")

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._num_events = self._num_events
        return new

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
            self._param = self.probs
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
            self._param = self.logits
        self._num_events = self._param.size()[-1]
        super().__init__(self._param.size()[:-1])

    @property
    def param_shape(self):
        return self._param.size()

    @property
    def mean(self):
        return graphc.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    @property
    def variance(self):
        return graphc.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    def sample(self, sample_shape=()):
        sample_shape = _size(sample_shape)
        probs_2d = self.probs.reshape(-1, self._num_events)
        n = 1
        for s in sample_shape:
            n *= s
        with graphc.no_grad():
            samples_2d = graphc.multinomial(probs_2d, n, True).T
        return samples_2d.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value):
        value = value.long().unsqueeze(-1)
        value, log_pmf = graphc.broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        min_real = graphc.finfo(self.logits.dtype).min
        logits = graphc.clamp(self.logits, min=min_real)
        p_log_p = logits * self.probs
        return -p_log_p.sum(-1)

    def enumerate_support(self, expand=True):
        n = self._num_events
        values = graphc.arange(n).view((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values


class Uniform(Distribution):
    has_rsample = True
    arg_names = ("low", "high")
    _expand_params = ("low", "high")

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = _broadcast_all(low, high)
        batch = () if isinstance(low, numbers.Number) and isinstance(high, numbers.Number) else self.low.size()
        super().__init__(batch)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def mode(self):
        return graphc.full_like(self.high, float("nan"))

    @property
    def stddev(self):
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self):
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        rand = graphc.rand(shape, dtype=self.low.dtype)
        return self.low + rand * (self.high - self.low)

    def log_prob(self, value):
        value = _as_tensor(value, self.low)
        lb = self.low.le(value).type_as(self.low)
        ub = self.high.gt(value).type_as(self.low)
        return graphc.log(lb.mul(ub)) - graphc.log(self.high - self.low)

    def cdf(self, value):
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value):
        return value * (self.high - self.low) + self.low

    def entropy(self):
        return graphc.log(self.high - self.low)


class Independent(Distribution):
    def __init__(self, base_distribution, reinterpreted_batch_ndims: int, validate_args=None):
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        event_dim = reinterpreted_batch_ndims + len(base_distribution.event_shape)
        super().__init__(shape[:len(shape) - event_dim], shape[len(shape) - event_dim:])

    def expand(self, batch_shape, _instance=None):
        new = _instance if _instance is not None else Independent.__new__(type(self))
        batch = tuple(batch_shape)
        new.base_dist = self.base_dist.expand(batch + tuple(self.event_shape[:self.reinterpreted_batch_ndims]))
        new.reinterpreted_batch_ndims = self.reinterpreted_batch_ndims
        Distribution.__init__(new, batch, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    has_rsample = property(lambda self: self.base_dist.has_rsample)
    mean = property(lambda self: self.base_dist.mean)
    mode = property(lambda self: self.base_dist.mode)
    variance = property(lambda self: self.base_dist.variance)

    def _sum_rightmost(self, x):
        n = self.reinterpreted_batch_ndims
        return x.reshape(tuple(x.shape[:x.dim() - n]) + (-1,)).sum(-1) if n > 0 else x

    def sample(self, sample_shape=()):
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value):
        return self._sum_rightmost(self.base_dist.log_prob(value))

    def entropy(self):
        return self._sum_rightmost(self.base_dist.entropy())

    def __repr__(self) -> str:
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


from .discrete import (Geometric, Multinomial, NegativeBinomial, OneHotCategorical,  # noqa: E402  (uses Categorical)
                       OneHotCategoricalStraightThrough)
from .mixture import (ExpRelaxedCategorical, FisherSnedecor, LogitRelaxedBernoulli, MixtureSameFamily,  # noqa: E402
                      RelaxedBernoulli, RelaxedOneHotCategorical)
from . import utils  # noqa: E402
from .kl import kl_divergence, register_kl  # noqa: E402  (its pairs name the classes above)
from .continuous_bernoulli import ContinuousBernoulli  # noqa: E402
from .generalized_pareto import GeneralizedPareto  # noqa: E402
from .kumaraswamy import Kumaraswamy  # noqa: E402
from .logistic_normal import LogisticNormal  # noqa: E402
from .lowrank_multivariate_normal import LowRankMultivariateNormal  # noqa: E402
from .von_mises import VonMises  # noqa: E402
from .wishart import Wishart  # noqa: E402
from .lkj_cholesky import LKJCholesky  # noqa: E402
from . import constraint_registry  # noqa: E402
from .constraint_registry import biject_to, transform_to  # noqa: E402

# PyTorch's torch.distributions.<file> paths (``from torch.distributions.normal import Normal``)
# where graphc's files group classes differently: each such path is a module of PyTorch's names.
_MODULE_PATHS = {
    "bernoulli": ["Bernoulli"], "beta": ["Beta"], "binomial": ["Binomial"], "categorical": ["Categorical"],
    "cauchy": ["Cauchy"], "chi2": ["Chi2"], "fishersnedecor": ["FisherSnedecor"], "geometric": ["Geometric"],
    "gumbel": ["Gumbel"], "half_cauchy": ["HalfCauchy"], "half_normal": ["HalfNormal"], "independent": ["Independent"],
    "inverse_gamma": ["InverseGamma"], "laplace": ["Laplace"],
    "log_normal": ["LogNormal"], "mixture_same_family": ["MixtureSameFamily"], "multinomial": ["Multinomial"],
    "negative_binomial": ["NegativeBinomial"], "normal": ["Normal"],
    "one_hot_categorical": ["OneHotCategorical", "OneHotCategoricalStraightThrough"], "pareto": ["Pareto"],
    "relaxed_bernoulli": ["LogitRelaxedBernoulli", "RelaxedBernoulli"],
    "relaxed_categorical": ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"], "studentT": ["StudentT"],
    "uniform": ["Uniform"], "weibull": ["Weibull"],
}


def _register_module_paths() -> None:
    import sys
    import types
    for path, names in _MODULE_PATHS.items():
        mod = types.ModuleType(f"{__name__}.{path}", f"PyTorch's torch.distributions.{path}: {', '.join(names)}.")
        for name in names:
            setattr(mod, name, globals()[name])
        mod.__all__ = list(names)
        sys.modules[mod.__name__] = mod
        globals()[path] = mod


_register_module_paths()
