"""KL divergences KL(p || q) between distributions, one function per pair of types, found by
``kl_divergence`` through ``register_kl``'s registry (as torch.distributions.kl)."""
from __future__ import annotations

import graphc
import graphc.nn.functional as F

from . import Bernoulli, Categorical, Independent, Normal, Uniform
from .dirichlet import Beta, Dirichlet
from .exponential import Exponential, Laplace
from .gamma import Gamma
from .multivariate_normal import MultivariateNormal
from .poisson import Poisson

__all__ = ["kl_divergence", "register_kl"]

_KL_REGISTRY = {}


def register_kl(type_p, type_q):
    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        return fn
    return decorator


def kl_divergence(p, q):
    for (tp, tq), fn in _KL_REGISTRY.items():
        if isinstance(p, tp) and isinstance(q, tq):
            return fn(p, q)
    raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                              f"{type(q).__name__}")


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    sp = F.softplus
    t1 = p.probs * (sp(-q.logits) - sp(-p.logits))
    t1 = graphc.where(q.probs == 0, graphc.full_like(t1, float("inf")), t1)
    t1 = graphc.where(p.probs == 0, graphc.zeros_like(t1), t1)
    t2 = (1 - p.probs) * (sp(q.logits) - sp(p.logits))
    t2 = graphc.where(q.probs == 1, graphc.full_like(t2, float("inf")), t2)
    t2 = graphc.where(p.probs == 1, graphc.zeros_like(t2), t2)
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = graphc.where(q.probs == 0, graphc.full_like(t, float("inf")), t)
    t = graphc.where(p.probs == 0, graphc.zeros_like(t), t)
    return t.sum(-1)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return graphc.where((q.low > p.low) | (q.high < p.high), graphc.full_like(result, float("inf")), result)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return p._sum_rightmost(kl_divergence(p.base_dist, q.base_dist))


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    t1 = q.concentration * graphc.log(p.rate / q.rate)
    t2 = graphc.lgamma(q.concentration) - graphc.lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * graphc.digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    sum_p, sum_q = p.concentration.sum(-1), q.concentration.sum(-1)
    t1 = graphc.lgamma(sum_p) - graphc.lgamma(sum_q)
    t2 = (graphc.lgamma(p.concentration) - graphc.lgamma(q.concentration)).sum(-1)
    t3 = p.concentration - q.concentration
    t4 = graphc.digamma(p.concentration) - graphc.digamma(sum_p).unsqueeze(-1)
    return t1 - t2 + (t3 * t4).sum(-1)


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    return _kl_dirichlet_dirichlet(p._dirichlet, q._dirichlet)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return -graphc.log(rate_ratio) + rate_ratio - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return -graphc.log(scale_ratio) + loc_abs_diff / q.scale + scale_ratio * graphc.exp(-loc_abs_diff / p.scale) - 1


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (graphc.log(p.rate) - graphc.log(q.rate)) - (p.rate - q.rate)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    """(tr(Sq^-1 Sp) + |Lq^-1 (mq - mp)|^2 - n) / 2 + log det Lq - log det Lp."""
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    n = p.event_shape[0]
    Lp, Lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    shape = graphc.broadcast_shapes(tuple(Lp.shape[:-2]), tuple(Lq.shape[:-2]), tuple(p.loc.shape[:-1]),
                                    tuple(q.loc.shape[:-1]))
    Lp, Lq = Lp.expand(tuple(shape) + (n, n)), Lq.expand(tuple(shape) + (n, n))
    m = graphc.linalg.solve_triangular(Lq, Lp, upper=False)  # Lq^-1 Lp: its squared norm is the trace
    d = graphc.linalg.solve_triangular(Lq, (q.loc - p.loc).expand(tuple(shape) + (n,)).unsqueeze(-1), upper=False)
    half_log_det = Lq.diagonal(dim1=-2, dim2=-1).log().sum(-1) - Lp.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return half_log_det + 0.5 * (m.pow(2).sum((-2, -1)) + d.pow(2).sum((-2, -1)) - n)


# the fallback for two members of one exponential family (registered last, so any closed form
# above wins): the Bregman divergence of the log normalizer, by autograd
from .distribution import _sum_rightmost  # noqa: E402
from .exp_family import ExponentialFamily  # noqa: E402


@register_kl(ExponentialFamily, ExponentialFamily)
def _kl_expfamily_expfamily(p, q):
    if type(p) is not type(q):
        raise NotImplementedError("The cross KL-divergence between different exponential families cannot be "
                                  "computed using Bregman divergences")
    p_nparams = [n.detach().requires_grad_() for n in p._natural_params]
    q_nparams = q._natural_params
    with graphc.enable_grad():
        lg_normal = p._log_normalizer(*p_nparams)
        gradients = graphc.autograd.grad(lg_normal.sum(), p_nparams, create_graph=True)
    result = q._log_normalizer(*q_nparams) - lg_normal
    for pnp, qnp, g in zip(p_nparams, q_nparams, gradients):
        result = result - _sum_rightmost((qnp - pnp) * g, len(q.event_shape))
    return result
