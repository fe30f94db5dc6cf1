"""The distributions beyond Normal/Bernoulli/Categorical/Uniform: log_prob against scipy.stats,
moments against scipy, samples' moments, reparameterized gradients, validation errors, and the
transforms (Jacobians against finite differences in float64)."""
import numpy as np
import pytest
from scipy import stats

import graphc as torch
from graphc.distributions import (Beta, Binomial, Cauchy, Chi2, Dirichlet, Exponential, Gamma, Geometric, Gumbel,
                                  HalfCauchy, HalfNormal, InverseGamma, Laplace, LogNormal, Multinomial,
                                  MultivariateNormal, NegativeBinomial, Normal, OneHotCategorical, Pareto, Poisson,
                                  StudentT, TransformedDistribution, Weibull, transforms as T)

D = torch.float64


def t(x):
    return torch.tensor(x, dtype=D)


def _close(a, b, tol=1e-8):
    np.testing.assert_allclose(np.asarray(a.detach().numpy() if hasattr(a, "detach") else a, dtype=np.float64),
                               np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


# (graphc distribution, the same in scipy.stats, points to evaluate)
CASES = {
    "gamma": (lambda: Gamma(t([0.5, 2.0, 7.5]), t([1.0, 3.0, 0.5])),
              stats.gamma(a=[0.5, 2.0, 7.5], scale=1 / np.array([1.0, 3.0, 0.5])), [0.3, 1.2, 9.0]),
    "chi2": (lambda: Chi2(t([1.0, 4.0])), stats.chi2(df=[1.0, 4.0]), [0.7, 3.0]),
    "beta": (lambda: Beta(t([0.7, 2.0]), t([1.5, 5.0])), stats.beta(a=[0.7, 2.0], b=[1.5, 5.0]), [0.2, 0.35]),
    "exponential": (lambda: Exponential(t([0.5, 4.0])), stats.expon(scale=[2.0, 0.25]), [0.1, 1.5]),
    "laplace": (lambda: Laplace(t([0.0, -1.0]), t([1.0, 0.3])), stats.laplace(loc=[0.0, -1.0], scale=[1.0, 0.3]),
                [0.4, -1.7]),
    "lognormal": (lambda: LogNormal(t([0.0, 1.0]), t([1.0, 0.5])),
                  stats.lognorm(s=[1.0, 0.5], scale=np.exp([0.0, 1.0])), [0.5, 3.0]),
    "poisson": (lambda: Poisson(t([0.5, 3.0])), stats.poisson(mu=[0.5, 3.0]), [0.0, 4.0]),
    "binomial": (lambda: Binomial(t([5.0, 10.0]), t([0.3, 0.9])), stats.binom(n=[5, 10], p=[0.3, 0.9]), [2.0, 9.0]),
    "gumbel": (lambda: Gumbel(t([0.0, 1.0]), t([1.0, 2.0])), stats.gumbel_r(loc=[0, 1], scale=[1, 2]), [0.3, -2.0]),
    "halfnormal": (lambda: HalfNormal(t([1.0, 2.0])), stats.halfnorm(scale=[1, 2]), [0.3, 2.0]),
    "studentt": (lambda: StudentT(t([3.0, 5.0]), t([0.0, 1.0]), t([1.0, 2.0])),
                 stats.t(df=[3, 5], loc=[0, 1], scale=[1, 2]), [0.3, -2.0]),
    "weibull": (lambda: Weibull(t([1.0, 2.0]), t([0.7, 3.0])), stats.weibull_min(c=[0.7, 3.0], scale=[1, 2]),
                [0.3, 2.0]),
    "pareto": (lambda: Pareto(t([1.0, 2.0]), t([3.0, 4.0])), stats.pareto(b=[3, 4], scale=[1, 2]), [1.3, 2.5]),
    "inversegamma": (lambda: InverseGamma(t([3.0, 4.0]), t([1.0, 2.0])), stats.invgamma(a=[3, 4], scale=[1, 2]),
                     [0.3, 2.0]),
    "geometric": (lambda: Geometric(t([0.3, 0.6])), stats.geom(p=[0.3, 0.6], loc=-1), [0.0, 3.0]),
    "negativebinomial": (lambda: NegativeBinomial(t([3.0, 5.0]), t([0.3, 0.6])),
                         stats.nbinom(n=[3, 5], p=[0.7, 0.4]), [2.0, 4.0]),
}
DISCRETE = ("poisson", "binomial", "geometric", "negativebinomial")


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_prob_mean_variance_against_scipy(name):
    make, ref, x = CASES[name]
    d = make()
    logp = ref.logpmf(x) if name in DISCRETE else ref.logpdf(x)
    _close(d.log_prob(t(x)), logp)
    _close(d.mean, ref.mean())
    _close(d.variance, ref.var(), 1e-7)


@pytest.mark.parametrize("name", ["gamma", "chi2", "beta", "exponential", "laplace", "lognormal", "gumbel",
                                  "halfnormal", "studentt", "weibull", "pareto", "inversegamma", "geometric"])
def test_entropy_against_scipy(name):
    make, ref, _ = CASES[name]
    _close(make().entropy(), ref.entropy(), 1e-7)


def test_binomial_entropy_needs_one_total_count():
    _close(Binomial(t([6.0, 6.0]), t([0.3, 0.9])).entropy(), stats.binom(n=6, p=[0.3, 0.9]).entropy())
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count"):
        CASES["binomial"][0]().entropy()


def test_heavy_tailed_and_vector_discrete_against_scipy():
    c, ref = Cauchy(t([0.0, 1.0]), t([1.0, 2.0])), stats.cauchy(loc=[0, 1], scale=[1, 2])
    _close(c.log_prob(t([0.3, -2.0])), ref.logpdf([0.3, -2.0]))
    _close(c.entropy(), ref.entropy())
    _close(c.cdf(t([0.3, -2.0])), ref.cdf([0.3, -2.0]))
    hc = HalfCauchy(t([1.0, 2.0]))
    _close(hc.log_prob(t([0.3, 2.0])), stats.halfcauchy(scale=[1, 2]).logpdf([0.3, 2.0]))
    assert np.isneginf(HalfNormal(t(1.0), validate_args=False).log_prob(t(-1.0)).item())
    m = Multinomial(5, t([0.2, 0.3, 0.5]))
    _close(m.log_prob(t([1.0, 1.0, 3.0])), stats.multinomial(5, [0.2, 0.3, 0.5]).logpmf([1, 1, 3]))
    s = m.sample((50,))
    assert s.shape == (50, 3) and bool((s.sum(-1) == 5).all())
    o = OneHotCategorical(t([0.2, 0.3, 0.5]))
    _close(o.log_prob(t([0.0, 1.0, 0.0])), np.log(0.3))
    _close(o.entropy(), stats.multinomial(1, [0.2, 0.3, 0.5]).entropy())
    assert bool((o.sample((20,)).sum(-1) == 1).all())


def test_dirichlet_and_multivariate_normal_against_scipy():
    a = np.array([0.8, 2.0, 3.5])
    x = np.array([0.2, 0.3, 0.5])
    d = Dirichlet(t(a))
    _close(d.log_prob(t(x)), stats.dirichlet(a).logpdf(x))
    _close(d.entropy(), stats.dirichlet(a).entropy())
    _close(d.mean, stats.dirichlet(a).mean())
    _close(d.variance, stats.dirichlet(a).var())
    cov = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    loc = np.array([0.5, -1.0, 2.0])
    pts = np.array([[0.1, 0.2, 0.3], [1.0, -2.0, 2.5]])
    ref = stats.multivariate_normal(loc, cov)
    for kw in ({"covariance_matrix": t(cov)}, {"precision_matrix": t(np.linalg.inv(cov))},
               {"scale_tril": t(np.linalg.cholesky(cov))}):
        m = MultivariateNormal(t(loc), **kw)
        _close(m.log_prob(t(pts)), ref.logpdf(pts))
        _close(m.entropy(), ref.entropy())
        _close(m.covariance_matrix, cov)
        _close(m.variance, np.diag(cov))
    batched = MultivariateNormal(t(np.stack([loc, loc + 1])), t(cov))
    assert batched.batch_shape == (2,) and batched.event_shape == (3,)
    _close(batched.log_prob(t(pts)), [ref.logpdf(pts[0]), stats.multivariate_normal(loc + 1, cov).logpdf(pts[1])])


def test_samples_have_the_right_moments_and_shapes():
    torch.manual_seed(0)
    n = 40000
    for make, ref, _ in (CASES["gamma"], CASES["beta"], CASES["laplace"], CASES["poisson"], CASES["binomial"],
                         CASES["exponential"], CASES["gumbel"], CASES["halfnormal"], CASES["weibull"],
                         CASES["geometric"], CASES["negativebinomial"], CASES["inversegamma"]):
        d = make()
        s = d.sample((n,))
        assert s.shape == (n,) + tuple(d.batch_shape)
        sd = np.sqrt(ref.var())
        np.testing.assert_array_less(np.abs(s.mean(0).numpy() - ref.mean()), 5 * sd / np.sqrt(n) + 1e-12)
    m = MultivariateNormal(t([1.0, -1.0]), t([[1.0, 0.8], [0.8, 2.0]]))
    s = m.rsample((n,))
    np.testing.assert_allclose(np.cov(s.numpy().T), [[1.0, 0.8], [0.8, 2.0]], atol=0.06)
    dir_s = Dirichlet(t([1.0, 2.0, 3.0])).sample((5,))
    _close(dir_s.sum(-1), np.ones(5))


def test_gamma_rsample_gradient_is_the_implicit_one():
    """E[x] = a / r for x ~ Gamma(a, r), so the mean of d x / d a over many samples is 1 / r; and
    d x / d r = -x / r exactly."""
    torch.manual_seed(1)
    a = t([0.7, 3.0]).requires_grad_()
    r = t([2.0, 0.5]).requires_grad_()
    x = Gamma(a, r).rsample((20000,))
    x.sum().backward()
    np.testing.assert_allclose(a.grad.numpy() / 20000, 1 / np.array([2.0, 0.5]), rtol=0.03)
    np.testing.assert_allclose(r.grad.numpy(), -x.detach().sum(0).numpy() / np.array([2.0, 0.5]), rtol=1e-9)


def test_beta_and_dirichlet_rsample_are_differentiable():
    torch.manual_seed(2)
    a = t([2.0]).requires_grad_()
    b = t([3.0]).requires_grad_()
    Beta(a, b).rsample((20000,)).mean().backward()  # d/da of a / (a + b) = b / (a + b)^2 = 0.12
    np.testing.assert_allclose(a.grad.numpy(), [0.12], rtol=0.08)
    np.testing.assert_allclose(b.grad.numpy(), [-0.08], rtol=0.08)


def test_log_prob_gradients_match_finite_differences():
    def check(make, value):
        p = t([1.3, 0.7]).requires_grad_()
        make(p).log_prob(value).sum().backward()
        eps = 1e-6
        for i in range(2):
            hi, lo = p.detach().clone(), p.detach().clone()
            hi[i] += eps
            lo[i] -= eps
            fd = (make(hi).log_prob(value).sum() - make(lo).log_prob(value).sum()).item() / (2 * eps)
            assert abs(p.grad[i].item() - fd) < 1e-6, (make, i)
    check(lambda p: Gamma(p, p * 2), t([0.5, 2.0]))
    check(lambda p: Beta(p, p + 1), t([0.3, 0.6]))
    check(lambda p: Laplace(p, p), t([0.1, 2.0]))
    check(lambda p: LogNormal(p, p), t([0.5, 2.0]))
    check(lambda p: Binomial(t([4.0, 6.0]), logits=p), t([1.0, 5.0]))
    check(lambda p: Poisson(p), t([2.0, 0.0]))
    check(lambda p: StudentT(p + 2, p, p), t([0.5, -1.0]))
    check(lambda p: Weibull(p, p + 1), t([0.5, 2.0]))
    check(lambda p: NegativeBinomial(p * 3, logits=p - 1), t([1.0, 4.0]))


def test_validation_errors_as_pytorch():
    with pytest.raises(ValueError, match=r"Expected parameter concentration \(Tensor of shape \(2,\)\) of "
                                         r"distribution Gamma.*GreaterThan\(lower_bound=0.0\)"):
        Gamma(t([-1.0, 2.0]), t(1.0))
    with pytest.raises(ValueError, match=r"Expected value argument .* within the support "
                                         r"\(GreaterThanEq\(lower_bound=0.0\)\) of the distribution Exponential"):
        Exponential(t(1.0)).log_prob(t(-1.0))
    with pytest.raises(ValueError, match="constraint Interval\\(lower_bound=0.0, upper_bound=1.0\\)"):
        Binomial(3, t(1.5))
    with pytest.raises(ValueError, match="IntegerInterval"):
        Binomial(3, t(0.5)).log_prob(t(4.0))
    with pytest.raises(ValueError, match="`concentration` parameter must be at least one-dimensional."):
        Dirichlet(t(1.0))
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix or precision_matrix or scale_tril"):
        MultivariateNormal(t([0.0, 0.0]))
    with pytest.raises(ValueError, match="PositiveDefinite"):
        MultivariateNormal(t([0.0, 0.0]), t([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="scale"):
        LogNormal(0.0, -1.0)
    Gamma(t([-1.0]), t(1.0), validate_args=False)  # validation off: accepted, as PyTorch


# ---- transforms -----------------------------------------------------------------------------

def _jacobian_fd(f, x, eps=1e-6):
    x = x.detach()
    cols = []
    for i in range(x.numel()):
        hi, lo = x.clone().reshape(-1), x.clone().reshape(-1)
        hi[i] += eps
        lo[i] -= eps
        cols.append(((f(hi.reshape(x.shape)) - f(lo.reshape(x.shape))) / (2 * eps)).reshape(-1).numpy())
    return np.stack(cols, 1)


@pytest.mark.parametrize("tr, x", [
    (T.ExpTransform(), [-0.5, 1.2]),
    (T.SigmoidTransform(), [-2.0, 0.3]),
    (T.TanhTransform(), [-1.0, 0.4]),
    (T.SoftplusTransform(), [-1.0, 2.0]),
    (T.AffineTransform(1.5, -2.0), [0.2, 3.0]),
    (T.PowerTransform(2.5), [0.4, 1.7]),
    (T.ComposeTransform([T.AffineTransform(0.5, 2.0), T.ExpTransform()]), [0.1, -0.4]),
])
def test_elementwise_transforms_invert_and_their_jacobian_matches_finite_differences(tr, x):
    x = t(x)
    y = tr(x)
    _close(tr.inv(y), x.numpy(), 1e-9)
    jac = _jacobian_fd(tr, x)
    _close(tr.log_abs_det_jacobian(x, y), np.log(np.abs(np.diag(jac))), 1e-6)


def test_event_transforms():
    x = t([[0.3, -1.2], [0.5, 0.7]])
    lc = T.LowerCholeskyTransform()
    L = lc(x)
    assert torch.distributions.constraints.lower_cholesky.check(L).item()
    _close(lc.inv(L), np.tril(x.numpy()))  # the upper part is dropped
    sm = T.SoftmaxTransform()
    _close(sm(t([1.0, 2.0, 3.0])), np.exp([1.0, 2, 3]) / np.exp([1.0, 2, 3]).sum())
    r = T.ReshapeTransform((2, 2), (4,))
    assert r(x).shape == (4,) and r.inv(r(x)).shape == (2, 2)
    ind = T.IndependentTransform(T.ExpTransform(), 1)
    _close(ind.log_abs_det_jacobian(x, ind(x)), x.sum(-1).numpy())
    assert T.identity_transform(x) is x
    cdf = T.CumulativeDistributionTransform(Normal(t(0.0), t(1.0)))
    _close(cdf(t([0.0])), [0.5])


def test_parameterless_transforms_are_equal_and_hash_alike():
    assert T.ExpTransform() == T.ExpTransform()
    assert len({T.ExpTransform(), T.ExpTransform()}) == 1
    assert T.ExpTransform() != T.SigmoidTransform()
    assert len({T.ExpTransform(), T.SigmoidTransform(), T.TanhTransform(), T.SoftplusTransform(),
                T.AbsTransform(), T.SoftmaxTransform(), T.LowerCholeskyTransform()}) == 7


def test_transformed_distribution_log_prob_and_samples():
    base = Normal(t([0.0, 1.0]), t([1.0, 0.5]))
    td = TransformedDistribution(base, [T.AffineTransform(2.0, 3.0), T.ExpTransform()])
    # y = exp(2 + 3 x): log y ~ Normal(2 + 3 loc, 3 scale), so y is log-normal
    ref = stats.lognorm(s=3 * np.array([1.0, 0.5]), scale=np.exp(2 + 3 * np.array([0.0, 1.0])))
    _close(td.log_prob(t([1.5, 30.0])), ref.logpdf([1.5, 30.0]))
    _close(td.cdf(t([1.5, 30.0])), ref.cdf([1.5, 30.0]))
    assert td.rsample((7,)).shape == (7, 2) and td.has_rsample
    sig = TransformedDistribution(Normal(t(0.0), t(1.0)), T.SigmoidTransform())  # logit-normal
    y = 0.3
    _close(sig.log_prob(t(y)), stats.norm.logpdf(np.log(y / (1 - y))) - np.log(y * (1 - y)))
    mvn = TransformedDistribution(MultivariateNormal(t([0.0, 0.0]), t(np.eye(2))), T.ExpTransform())
    assert mvn.event_shape == (2,) and mvn.log_prob(t([1.0, 2.0])).shape == ()


def test_mixture_same_family_against_the_weighted_sum():
    from graphc.distributions import Categorical, Independent, MixtureSameFamily
    mix = MixtureSameFamily(Categorical(t([0.3, 0.7])), Normal(t([-1.0, 2.0]), t([0.5, 1.5])))
    x = np.array([0.1, -1.2, 3.0])
    ref = np.log(0.3 * stats.norm(-1, 0.5).pdf(x) + 0.7 * stats.norm(2, 1.5).pdf(x))
    _close(mix.log_prob(t(x)), ref)
    _close(mix.mean, 0.3 * -1 + 0.7 * 2)
    _close(mix.variance, 0.3 * (0.25 + 1) + 0.7 * (2.25 + 4) - (0.3 * -1 + 0.7 * 2) ** 2)
    _close(mix.cdf(t(x)), 0.3 * stats.norm(-1, 0.5).cdf(x) + 0.7 * stats.norm(2, 1.5).cdf(x))
    torch.manual_seed(4)
    s = mix.sample((20000,))
    assert s.shape == (20000,) and abs(s.mean().item() - 1.1) < 0.05
    gmm2d = MixtureSameFamily(Categorical(t([0.5, 0.5])), Independent(Normal(t([[0.0, 0.0], [5.0, 5.0]]),
                                                                              t([[1.0, 1.0], [1.0, 1.0]])), 1))
    assert gmm2d.event_shape == (2,) and gmm2d.sample((3,)).shape == (3, 2)
    with pytest.raises(ValueError, match="instance of torch.distributions.Categorical"):
        MixtureSameFamily(Normal(t(0.0), t(1.0)), Normal(t([0.0]), t([1.0])))


def test_relaxed_distributions_follow_the_concrete_density():
    """Maddison et al.'s Concrete density, written out, against log_prob."""
    from graphc.distributions import RelaxedBernoulli, RelaxedOneHotCategorical
    T, logit = 0.7, 0.4
    a = np.exp(logit)
    y = np.array([0.3, 0.8])
    dens = T * a * y ** (-T - 1) * (1 - y) ** (-T - 1) / (a * y ** (-T) + (1 - y) ** (-T)) ** 2
    _close(RelaxedBernoulli(t(T), logits=t([logit, logit])).log_prob(t(y)), np.log(dens))
    p, T = np.array([0.2, 0.3, 0.5]), 0.5
    x = np.array([0.1, 0.6, 0.3])
    dens = 2 * T ** 2 * np.prod(p * x ** (-T - 1)) / np.sum(p * x ** (-T)) ** 3
    ro = RelaxedOneHotCategorical(t(T), probs=t(p))
    _close(ro.log_prob(t(x)), np.log(dens))
    s = ro.rsample((5,))
    _close(s.sum(-1), np.ones(5))
    logits = t([0.1, -0.3, 0.5]).requires_grad_()
    RelaxedOneHotCategorical(t(T), logits=logits).rsample((10,))[:, 0].sum().backward()
    assert logits.grad is not None and np.isfinite(logits.grad.numpy()).all()


def test_fisher_snedecor_against_scipy():
    from graphc.distributions import FisherSnedecor
    f, ref = FisherSnedecor(t([3.0, 5.0]), t([6.0, 10.0])), stats.f(dfn=[3, 5], dfd=[6, 10])
    _close(f.log_prob(t([0.5, 2.0])), ref.logpdf([0.5, 2.0]))
    _close(f.mean, ref.mean())
    _close(f.variance, ref.var())


def test_module_paths_and_utils_as_pytorch():
    import importlib
    for path, name in (("normal", "Normal"), ("categorical", "Categorical"), ("beta", "Beta"), ("gamma", "Gamma"),
                       ("relaxed_categorical", "RelaxedOneHotCategorical"), ("kl", "kl_divergence"),
                       ("transformed_distribution", "TransformedDistribution"), ("multivariate_normal",
                                                                                  "MultivariateNormal")):
        assert getattr(importlib.import_module(f"graphc.distributions.{path}"), name) is \
            getattr(torch.distributions, name), path
    from graphc.distributions.utils import logits_to_probs, probs_to_logits
    p = t([0.2, 0.3, 0.5])
    _close(logits_to_probs(probs_to_logits(p)), p.numpy())
    _close(probs_to_logits(t([0.25]), is_binary=True), [np.log(1 / 3)])


def test_one_hot_straight_through_passes_the_probabilities_gradient():
    from graphc.distributions import OneHotCategoricalStraightThrough
    probs = t([0.2, 0.8]).requires_grad_()
    s = OneHotCategoricalStraightThrough(probs=probs).rsample((4,))
    assert bool((s.detach().sum(-1) == 1).all())
    (s * t([1.0, 2.0])).sum().backward()
    # d/dp of c . (p / sum p) with c = 4 * [1, 2] (4 samples): c - c . p (probs are normalized, as PyTorch's)
    c = np.array([4.0, 8.0])
    _close(probs.grad, c - c @ np.array([0.2, 0.8]))


@pytest.mark.parametrize("make_p, make_q, ref_p, ref_q, lo, hi", [
    (lambda: Gamma(t(2.0), t(1.5)), lambda: Gamma(t(3.0), t(0.7)), stats.gamma(2.0, scale=1 / 1.5),
     stats.gamma(3.0, scale=1 / 0.7), 0, np.inf),
    (lambda: Beta(t(2.0), t(3.0)), lambda: Beta(t(1.5), t(1.2)), stats.beta(2, 3), stats.beta(1.5, 1.2), 0, 1),
    (lambda: Exponential(t(2.0)), lambda: Exponential(t(0.5)), stats.expon(scale=0.5), stats.expon(scale=2.0),
     0, np.inf),
    (lambda: Laplace(t(0.0), t(1.0)), lambda: Laplace(t(1.0), t(2.0)), stats.laplace(0, 1), stats.laplace(1, 2),
     -60, 60),
])
def test_kl_divergence_against_numerical_integration(make_p, make_q, ref_p, ref_q, lo, hi):
    from scipy import integrate
    want = integrate.quad(lambda x: ref_p.pdf(x) * (ref_p.logpdf(x) - ref_q.logpdf(x)), lo, hi, limit=200,
                          points=None if np.isinf(hi) else [0.0, 1.0])[0]
    _close(torch.distributions.kl_divergence(make_p(), make_q()), want, 1e-6)


def test_kl_divergence_closed_forms():
    kl = torch.distributions.kl_divergence
    _close(kl(Poisson(t(2.0)), Poisson(t(3.0))),
           sum(stats.poisson(2).pmf(k) * (stats.poisson(2).logpmf(k) - stats.poisson(3).logpmf(k)) for k in range(80)))
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 0.5])
    torch.manual_seed(5)
    x = Dirichlet(t(a)).sample((200000,)).numpy()
    mc = np.mean(stats.dirichlet(a).logpdf(x.T) - stats.dirichlet(b).logpdf(x.T))
    assert abs(kl(Dirichlet(t(a)), Dirichlet(t(b))).item() - mc) < 0.02
    S1 = np.array([[2.0, 0.3], [0.3, 1.0]])
    S2 = np.array([[1.0, -0.2], [-0.2, 0.5]])
    m1, m2 = np.array([0.5, -1.0]), np.array([0.0, 1.0])
    want = 0.5 * (np.trace(np.linalg.inv(S2) @ S1) + (m2 - m1) @ np.linalg.inv(S2) @ (m2 - m1) - 2
                  + np.log(np.linalg.det(S2) / np.linalg.det(S1)))
    _close(kl(MultivariateNormal(t(m1), t(S1)), MultivariateNormal(t(m2), t(S2))), want)
    with pytest.raises(NotImplementedError, match="cross KL-divergence between different exponential families"):
        kl(Gamma(t(1.0), t(1.0)), Beta(t(1.0), t(1.0)))  # PyTorch's message: both are exponential families
    with pytest.raises(NotImplementedError, match="No KL"):
        kl(Cauchy(t(0.0), t(1.0)), Beta(t(1.0), t(1.0)))
