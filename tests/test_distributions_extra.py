"""The less common distributions and transforms (issue #13): LowRankMultivariateNormal,
ContinuousBernoulli, Kumaraswamy, VonMises, GeneralizedPareto, LogisticNormal, Wishart,
LKJCholesky; the structured transforms; biject_to/transform_to; ExponentialFamily.
log_prob/entropy/moments against torch.distributions (when installed) or scipy, sample moments
against the analytic ones, rsample gradients against finite differences (float64, the same
random numbers on both sides), PyTorch's validation errors."""
import importlib
import math
import warnings

import numpy as np
import pytest
from scipy import stats

import graphc as torch
from graphc.distributions import (ContinuousBernoulli, ExponentialFamily, GeneralizedPareto, Kumaraswamy,
                                  LKJCholesky, LogisticNormal, LowRankMultivariateNormal, VonMises, Wishart,
                                  biject_to, constraints, transform_to)
from graphc.distributions import transforms as T

D = torch.float64
RNG = np.random.default_rng(0)


def t(x):
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=D)


def arr(x):
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x, dtype=np.float64)


def _close(a, b, tol=1e-8):
    np.testing.assert_allclose(arr(a), arr(b), rtol=tol, atol=tol, equal_nan=True)


def _spd(*batch, n=3):
    a = RNG.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


LR_LOC, LR_W, LR_D = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3, 2)), RNG.random((2, 3)) + 0.5
W_COV, W_DF = _spd(2), [4.0, 6.5]
# name: (graphc distribution's constructor on graphc tensors, torch.distributions class name, params, value
#        to evaluate log_prob at, moments to compare)
CASES = {
    "lowrank": (LowRankMultivariateNormal, "LowRankMultivariateNormal", (LR_LOC, LR_W, LR_D),
                RNG.standard_normal((4, 2, 3)), ("mean", "variance", "mode")),
    "contbern": (ContinuousBernoulli, "ContinuousBernoulli", ([0.1, 0.4995, 0.7, 0.97],), [0.3, 0.5, 0.9, 0.01],
                 ("mean", "variance")),
    "kumaraswamy": (Kumaraswamy, "Kumaraswamy", ([0.5, 2.0, 3.0], [0.7, 1.5, 4.0]), [0.2, 0.5, 0.9],
                    ("mean", "variance", "mode")),
    "vonmises": (VonMises, "VonMises", ([0.0, 1.0, -2.0], [0.5, 4.0, 10.0]), [0.3, 2.0, -2.2],
                 ("mean", "variance", "mode")),
    "logisticnormal": (LogisticNormal, "LogisticNormal", ([[0.0, 1.0, -2.0]], [[0.5, 4.0, 1.0]]),
                       [[0.1, 0.2, 0.3, 0.4]], ()),
    "wishart": (lambda df, cov: Wishart(df, covariance_matrix=cov), "Wishart", (W_DF, W_COV), _spd(4, 2),
                ("mean", "variance", "mode")),
    "lkj": (lambda c: LKJCholesky(3, c), "LKJCholesky", ([0.5, 2.0],), None, ()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch(name):
    torch_ = pytest.importorskip("torch")
    make, tname, params, value, moments = CASES[name]
    ours = make(*[t(p) for p in params])
    tcls = getattr(torch_.distributions, tname)
    tparams = [torch_.tensor(np.asarray(p, dtype=np.float64)) for p in params]
    theirs = tcls(3, *tparams) if name == "lkj" else (
        tcls(tparams[0], covariance_matrix=tparams[1]) if name == "wishart" else tcls(*tparams))
    if value is None:
        value = theirs.sample((5,)).numpy()
    _close(ours.log_prob(t(value)), theirs.log_prob(torch_.tensor(np.asarray(value))).numpy())
    if name not in ("vonmises", "logisticnormal", "lkj"):  # PyTorch has no entropy for these
        _close(ours.entropy(), theirs.entropy().numpy())
    for m in moments:
        _close(getattr(ours, m), getattr(theirs, m).numpy())
    assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape)


def test_contbern_from_logits_and_cdf_against_torch():
    torch_ = pytest.importorskip("torch")
    logits = [-3.0, 0.001, 2.0]
    x = [0.2, 0.5, 0.8]
    ours, theirs = ContinuousBernoulli(logits=t(logits)), torch_.distributions.ContinuousBernoulli(
        logits=torch_.tensor(logits, dtype=torch_.float64))
    _close(ours.log_prob(t(x)), theirs.log_prob(torch_.tensor(x, dtype=torch_.float64)).numpy())
    _close(ours.probs, theirs.probs.numpy())
    _close(ours.cdf(t(x)), theirs.cdf(torch_.tensor(x, dtype=torch_.float64)).numpy())
    _close(ours.icdf(t(x)), theirs.icdf(torch_.tensor(x, dtype=torch_.float64)).numpy())


def test_generalized_pareto_against_scipy():
    loc, scale, xi = [0.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.2, 0.0, -0.3]
    d, ref = GeneralizedPareto(t(loc), t(scale), t(xi)), stats.genpareto(c=xi, loc=loc, scale=scale)
    x = [0.5, 2.0, 1.0]
    _close(d.log_prob(t(x)), ref.logpdf(x))
    _close(d.cdf(t(x)), ref.cdf(x))
    _close(d.icdf(t([0.1, 0.5, 0.9])), ref.ppf([0.1, 0.5, 0.9]))
    _close(d.entropy(), ref.entropy())
    mean, var = ref.stats()
    _close(d.mean, mean)
    _close(d.variance, var)
    _close(GeneralizedPareto(0.0, 1.0, 1.5).mean, math.nan)  # infinite mean: nan, as PyTorch's
    assert d.support.upper_bound[2].item() == pytest.approx(0.0 + 0.5 / 0.3)


def test_kumaraswamy_cdf_icdf_closed_form():
    a, b, x = np.array([2.0, 0.5]), np.array([3.0, 1.5]), np.array([0.3, 0.8])
    d = Kumaraswamy(t(a), t(b))
    _close(d.cdf(t(x)), 1 - (1 - x ** a) ** b)  # through the transforms' inverses and the Uniform's cdf
    _close(d.icdf(t([0.1, 0.9])), (1 - (1 - np.array([0.1, 0.9])) ** (1 / b)) ** (1 / a))
    u = torch.distributions.Uniform(t([0.0, 1.0]), t([2.0, 5.0]))
    _close(u.icdf(t([0.5, 0.25])), [1.0, 2.0])
    assert u.support.lower_bound is u.low and bool(u.support.check(t([1.0, 4.9])).all())


def test_vonmises_log_prob_against_scipy():
    loc, k, x = [0.0, 1.0, -2.0], [0.5, 4.0, 10.0], [0.3, 2.0, -2.2]
    # log I0 by A&S's polynomials (PyTorch's): ~1e-7 relative
    _close(VonMises(t(loc), t(k)).log_prob(t(x)), stats.vonmises(kappa=k, loc=loc).logpdf(x), tol=1e-6)


def _sample_mean(d, n=20000):
    torch.manual_seed(0)
    return arr(d.sample((n,)).mean(0))


@pytest.mark.parametrize("name", ["lowrank", "contbern", "kumaraswamy", "wishart"])
def test_sample_mean_matches_analytic_mean(name):
    make, _, params, _, _ = CASES[name]
    d = make(*[t(p) for p in params])
    sd = np.sqrt(arr(d.variance))
    np.testing.assert_array_less(np.abs(_sample_mean(d) - arr(d.mean)), 5 * sd / math.sqrt(20000) + 1e-12)


def test_sample_moments_of_the_rest():
    torch.manual_seed(0)
    gp = GeneralizedPareto(t([0.0, 1.0]), t([1.0, 2.0]), t([0.2, -0.3]))  # finite variance for xi < 1/2
    np.testing.assert_allclose(arr(gp.rsample((40000,)).mean(0)), arr(gp.mean), rtol=0.03)
    vm = VonMises(t([1.0, -2.5]), t([2.0, 8.0]))
    s = vm.sample((20000,))
    assert bool(((s >= -math.pi) & (s < math.pi)).all())
    circ_mean = np.arctan2(arr(s.sin().mean(0)), arr(s.cos().mean(0)))
    np.testing.assert_allclose(circ_mean, [1.0, -2.5], atol=0.03)
    # circular variance 1 - E[cos(x - loc)]
    np.testing.assert_allclose(1 - arr((s - vm.loc).cos().mean(0)), arr(vm.variance), atol=0.02)
    ln = LogisticNormal(t([0.5, -1.0]), t([1.0, 0.3]))
    x = ln.rsample((20000,))
    _close(x.sum(-1), np.ones(20000), tol=1e-12)
    y = T.StickBreakingTransform().inv(x)  # back to the Normal
    np.testing.assert_allclose(arr(y.mean(0)), [0.5, -1.0], atol=0.03)
    np.testing.assert_allclose(arr(y.std(0)), [1.0, 0.3], rtol=0.03)
    lkj = LKJCholesky(3, t([0.5, 2.0]))
    lt = lkj.sample((5000,))
    assert bool(constraints.corr_cholesky.check(lt).all())
    corr = lt @ lt.mT
    np.testing.assert_allclose(arr(corr.mean(0)), np.broadcast_to(np.eye(3), (2, 3, 3)), atol=0.04)  # E[C] = I
    # Var(C_ij) = 1 / (2 eta + d - 1) for the LKJ(eta) marginal of an off-diagonal entry
    np.testing.assert_allclose(arr(corr[:, :, 1, 0].var(0)), [1 / 3.0, 1 / 6.0], rtol=0.1)


def _fd_check(make_sample, theta, h=1e-6, tol=1e-5):
    """d sum(rsample)/d theta by autograd against central differences, on the same random numbers."""
    x = t(theta).requires_grad_()
    torch.manual_seed(3)
    make_sample(x).sum().backward()
    fd = np.zeros(len(theta))
    for i in range(len(theta)):
        vals = []
        for sgn in (1, -1):
            th = np.array(theta, dtype=np.float64)
            th[i] += sgn * h
            torch.manual_seed(3)
            vals.append(arr(make_sample(t(th)).sum()))
        fd[i] = (vals[0] - vals[1]) / (2 * h)
    np.testing.assert_allclose(arr(x.grad), fd, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["lowrank_diag", "lowrank_factor", "contbern", "kumaraswamy", "gp", "logisticnormal",
                                  "wishart"])
def test_rsample_gradient_against_finite_differences(name):
    w, d = t(LR_W[0]), t(LR_D[0])
    make, theta = {
        "lowrank_diag": (lambda p: LowRankMultivariateNormal(t(LR_LOC[0]), w, p).rsample((3,)), LR_D[0]),
        "lowrank_factor": (lambda p: LowRankMultivariateNormal(t(LR_LOC[0]), p.reshape(3, 1), d).rsample((3,)),
                           LR_W[0, :, 0]),
        "contbern": (lambda p: ContinuousBernoulli(p).rsample((4,)), [0.2, 0.7, 0.9]),
        "kumaraswamy": (lambda p: Kumaraswamy(p, p.flip(0) + 1).rsample((4,)), [0.8, 2.0]),
        "gp": (lambda p: GeneralizedPareto(p[0], p[1], p[2]).rsample((5,)), [0.5, 1.5, 0.2]),
        "logisticnormal": (lambda p: LogisticNormal(p, p.exp()).rsample((3,)).pow(2), [0.1, -0.4]),
        "wishart": (lambda p: Wishart(t(5.0), scale_tril=torch.diag_embed(p) + t(np.tril(np.ones((3, 3)), -1)))
                    .rsample((2,)), [1.0, 0.5, 2.0]),
    }[name]
    _fd_check(make, theta)


def test_log_prob_gradient_against_finite_differences():
    for make, theta, x in [
        (lambda p: VonMises(t([0.3]), p).log_prob(t([1.0, 2.5, -1.0])), [0.7], None),
        (lambda p: VonMises(t([0.3]), p).log_prob(t([1.0, 2.5, -1.0])), [5.0], None),  # the large-k polynomial
        (lambda p: LKJCholesky(3, p).log_prob(T.CorrCholeskyTransform()(t([0.3, -0.2, 0.5]))), [1.7], None),
    ]:
        _fd_check(make, theta)


def test_validation_errors_match_pytorch():
    with pytest.raises(ValueError, match="loc must be at least one-dimensional"):
        LowRankMultivariateNormal(t(0.0), t([[1.0]]), t([1.0]))
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices with shape 3 x m"):
        LowRankMultivariateNormal(t(np.zeros(3)), t(np.ones((2, 1))), t(np.ones(3)))
    with pytest.raises(ValueError, match="cov_diag must be a batch of vectors with shape"):
        LowRankMultivariateNormal(t(np.zeros(3)), t(np.ones((3, 1))), t(np.ones(2)))
    with pytest.raises(ValueError, match="Expected parameter cov_diag"):
        LowRankMultivariateNormal(t(np.zeros(3)), t(np.ones((3, 1))), t([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="The parameter probs has invalid values"):
        ContinuousBernoulli(t([1.5]), validate_args=True)
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
        ContinuousBernoulli()
    with pytest.raises(ValueError, match="Expected parameter concentration"):
        VonMises(t([0.0]), t([-1.0]))
    with pytest.raises(ValueError, match="Expected parameter concentration1"):
        Kumaraswamy(t([-1.0]), t([1.0]))
    with pytest.raises(ValueError, match=r"expected to be greater than ndim - 1 = 2"):
        Wishart(t(1.5), covariance_matrix=t(np.eye(3)))
    with pytest.raises(AssertionError, match="Exactly one of covariance_matrix or precision_matrix or scale_tril"):
        Wishart(t(4.0))
    with pytest.warns(UserWarning, match="Low df values detected"):
        Wishart(t(2.5), covariance_matrix=t(np.eye(3)))
    with pytest.raises(ValueError, match="Expected dim to be an integer greater than or equal to 2"):
        LKJCholesky(1)
    with pytest.raises(ValueError, match="to be within the support"):
        Kumaraswamy(t([1.0]), t([1.0])).log_prob(t([1.5]))
    with pytest.raises(ValueError, match="to be within the support"):
        Wishart(t(4.0), covariance_matrix=t(np.eye(2))).log_prob(t([[1.0, 2.0], [2.0, 1.0]]))


def test_wishart_precision_and_scale_tril_forms_agree():
    cov = t(W_COV[0])
    x = t(_spd(n=3))
    ref = Wishart(t(5.0), covariance_matrix=cov).log_prob(x)
    _close(Wishart(t(5.0), precision_matrix=torch.linalg.inv(cov)).log_prob(x), ref, tol=1e-10)
    _close(Wishart(t(5.0), scale_tril=torch.linalg.cholesky(cov)).log_prob(x), ref, tol=1e-10)


@pytest.mark.parametrize("name", ["lowrank", "contbern", "kumaraswamy", "vonmises", "logisticnormal", "wishart",
                                  "lkj"])
def test_expand(name):
    make, _, params, _, _ = CASES[name]
    d = make(*[t(p) for p in params])
    e = d.expand((5,) + tuple(d.batch_shape))
    assert e.batch_shape == (5,) + tuple(d.batch_shape) and e.event_shape == d.event_shape
    value = arr(d.sample())
    _close(e.log_prob(t(value)), np.broadcast_to(arr(d.log_prob(t(value))), (5,) + tuple(d.batch_shape)))
    assert e.sample((2,)).shape == (2, 5) + tuple(d.batch_shape) + tuple(d.event_shape)


EXPANDABLE = {  # graphc's other distributions whose state is just their parameters
    "Normal": lambda d: d.Normal(t([0.0, 1.0]), t([1.0, 2.0])),
    "Laplace": lambda d: d.Laplace(t([0.0, 1.0]), t([1.0, 2.0])),
    "Uniform": lambda d: d.Uniform(t([0.0, 1.0]), t([1.0, 3.0])),
    "Bernoulli": lambda d: d.Bernoulli(logits=t([0.3, -1.0])),
    "Categorical": lambda d: d.Categorical(t([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])),
    "Binomial": lambda d: d.Binomial(t([3.0, 5.0]), t([0.2, 0.6])),
    "Geometric": lambda d: d.Geometric(t([0.2, 0.6])),
    "NegativeBinomial": lambda d: d.NegativeBinomial(t([3.0, 5.0]), t([0.2, 0.6])),
    "Exponential": lambda d: d.Exponential(t([0.5, 2.0])),
    "Gamma": lambda d: d.Gamma(t([2.0, 0.5]), t([1.0, 3.0])),
    "Chi2": lambda d: d.Chi2(t([2.0, 5.0])),
    "Poisson": lambda d: d.Poisson(t([2.0, 5.0])),
    "Dirichlet": lambda d: d.Dirichlet(t([[2.0, 1.0, 0.5], [1.0, 1.0, 1.0]])),
    "HalfNormal": lambda d: d.HalfNormal(t([1.0, 2.0])),
    "HalfCauchy": lambda d: d.HalfCauchy(t([1.0, 2.0])),
    "StudentT": lambda d: d.StudentT(t([3.0, 5.0]), t([0.0, 1.0]), t([1.0, 2.0])),
    "Weibull": lambda d: d.Weibull(t([1.0, 2.0]), t([0.7, 3.0])),
    "Pareto": lambda d: d.Pareto(t([1.0, 2.0]), t([3.0, 4.0])),
    "GeneralizedPareto": lambda d: d.GeneralizedPareto(t(0.0), t(1.0), t(0.1)).expand((2,)),
    "LogNormal": lambda d: d.LogNormal(t([0.0, 1.0]), t([1.0, 0.5])),  # TransformedDistribution's expand
    "Independent": lambda d: d.Independent(d.Normal(t([[0.0, 1.0]] * 3), t([[1.0, 0.5]] * 3)), 1),
}


@pytest.mark.parametrize("name", sorted(EXPANDABLE))
def test_expand_of_the_other_distributions(name):
    d = EXPANDABLE[name](torch.distributions)
    e = d.expand((4,) + tuple(d.batch_shape))
    assert type(e) is type(d) and e.batch_shape == (4,) + tuple(d.batch_shape) and e.event_shape == d.event_shape
    x = d.sample()
    _close(e.log_prob(x), np.broadcast_to(arr(d.log_prob(x)), (4,) + tuple(d.batch_shape)))
    assert e.sample((3,)).shape == (3, 4) + tuple(d.batch_shape) + tuple(d.event_shape)
    with pytest.raises(NotImplementedError, match="Beta.expand is not implemented by graphc"):
        torch.distributions.Beta(t(1.0), t(2.0)).expand((2,))  # its state is more than its parameters


# ---- transforms ----

def _jacobian_fd(f, x, h=1e-6):
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        cols.append((arr(f(t(x + e))) - arr(f(t(x - e)))).ravel() / (2 * h))
    return np.stack(cols, axis=-1)


def test_stick_breaking_transform():
    tr = T.StickBreakingTransform()
    x = RNG.standard_normal(4)
    y = tr(t(x))
    assert bool(constraints.simplex.check(y)) and y.shape == (5,)
    _close(tr.inv(y), x, tol=1e-10)
    jac = _jacobian_fd(lambda v: tr(v)[:-1], x)  # the simplex's first K coordinates
    _close(tr.log_abs_det_jacobian(t(x), y), np.linalg.slogdet(jac)[1], tol=1e-6)
    assert tr.forward_shape((2, 4)) == (2, 5) and tr.inverse_shape((2, 5)) == (2, 4)
    assert tr == T.StickBreakingTransform() and tr.bijective and tr.codomain is constraints.simplex


def test_corr_cholesky_transform():
    tr = T.CorrCholeskyTransform()
    x = RNG.standard_normal((2, 6))
    y = tr(t(x))
    assert y.shape == (2, 4, 4) and bool(constraints.corr_cholesky.check(y).all())
    _close(tr.inv(y), x, tol=1e-10)
    # the Jacobian of x -> the strict lower triangle of y
    rows, cols = np.tril_indices(4, -1)
    jac = _jacobian_fd(lambda v: tr(v)[..., rows, cols], x[0])
    _close(tr.log_abs_det_jacobian(t(x[0]), tr(t(x[0]))), np.linalg.slogdet(jac)[1], tol=1e-6)
    with pytest.raises(ValueError, match="Input is not a flattened lower-diagonal number"):
        tr.forward_shape((5,))
    assert tr.inverse_shape((3, 3)) == (3,)


def test_positive_definite_transform():
    tr = T.PositiveDefiniteTransform()
    x = RNG.standard_normal((2, 3, 3))
    y = tr(t(x))
    assert bool(constraints.positive_definite.check(y).all())
    _close(tr.inv(y), np.tril(x), tol=1e-10)  # the lower triangle determines L L^T (diagonal through exp)


def test_cat_and_stack_transforms():
    x = t(RNG.standard_normal((3, 4)))
    cat = T.CatTransform([T.ExpTransform(), T.identity_transform, T.SigmoidTransform()], dim=1, lengths=[1, 2, 1])
    y = cat(x)
    _close(y, np.concatenate([np.exp(arr(x)[:, :1]), arr(x)[:, 1:3], 1 / (1 + np.exp(-arr(x)[:, 3:]))], axis=1))
    _close(cat.inv(y), x, tol=1e-10)
    ladj = cat.log_abs_det_jacobian(x, y)
    assert ladj.shape == (3, 4)  # elementwise parts: the slices' terms side by side
    for i in range(3):
        _close(ladj[i].sum(), np.linalg.slogdet(_jacobian_fd(cat, arr(x[i:i + 1])))[1], tol=1e-6)
    assert cat.event_dim == 0 and cat.bijective and cat.length == 4
    assert bool(cat.codomain.check(y).all()) and not bool(cat.codomain.check(-y.abs()).all())
    with pytest.raises(AssertionError, match=r"x.size\(1\) = 3 must equal length 4"):
        cat(x[:, :3])
    # an event-dim part makes the slices' terms add up
    cat_ev = T.CatTransform([T.IndependentTransform(T.ExpTransform(), 1), T.identity_transform], dim=0,
                            lengths=[2, 1])
    v = t([0.3, -0.2, 1.0])
    assert cat_ev.event_dim == 1
    _close(cat_ev.log_abs_det_jacobian(v, cat_ev(v)), 0.3 - 0.2)

    stack = T.StackTransform([T.ExpTransform(), T.AffineTransform(1.0, 3.0)], dim=1)
    x2 = t(RNG.standard_normal((4, 2)))
    y2 = stack(x2)
    _close(y2, np.stack([np.exp(arr(x2)[:, 0]), 1 + 3 * arr(x2)[:, 1]], axis=1))
    _close(stack.inv(y2), x2, tol=1e-12)
    _close(stack.log_abs_det_jacobian(x2, y2), np.stack([arr(x2)[:, 0], np.full(4, math.log(3.0))], axis=1))
    with pytest.raises(AssertionError, match="must equal len\\(transforms\\) 2"):
        stack(t(np.zeros((4, 3))))


def test_structured_transforms_against_torch():
    torch_ = pytest.importorskip("torch")
    TT = torch_.distributions.transforms
    x = RNG.standard_normal((2, 6))
    for ours, theirs in [(T.StickBreakingTransform(), TT.StickBreakingTransform()),
                         (T.CorrCholeskyTransform(), TT.CorrCholeskyTransform())]:
        y, yt = ours(t(x)), theirs(torch_.tensor(x))
        _close(y, yt.numpy(), tol=1e-12)
        _close(ours.log_abs_det_jacobian(t(x), y), theirs.log_abs_det_jacobian(torch_.tensor(x), yt).numpy())


# ---- biject_to / transform_to ----

REGISTRY_CASES = [constraints.real, constraints.positive, constraints.nonnegative, constraints.greater_than(2.0),
                  constraints.greater_than_eq(-1.0), constraints.less_than(3.0), constraints.unit_interval,
                  constraints.interval(-2.0, 5.0), constraints.half_open_interval(0.0, 4.0), constraints.simplex,
                  constraints.real_vector, constraints.independent(constraints.positive, 1),
                  constraints.corr_cholesky, constraints.cat([constraints.positive, constraints.real], -1, [2, 2]),
                  constraints.stack([constraints.unit_interval, constraints.positive, constraints.real], -1)]


@pytest.mark.parametrize("c", REGISTRY_CASES, ids=repr)
def test_biject_to_maps_onto_the_constraint_and_back(c):
    tr = biject_to(c)
    assert tr.bijective
    n = 3 if isinstance(c, constraints._Stack) else (6 if c is constraints.corr_cholesky else 4)
    x = t(RNG.standard_normal((5, n)))
    y = tr(x)
    assert bool(c.check(y).all()), (c, y)
    _close(tr.inv(y), x, tol=1e-8)
    y2 = transform_to(c)(x)
    assert bool(c.check(y2).all())


def test_transform_to_the_non_bijective_constraints():
    x = t(RNG.standard_normal((2, 3, 3)))
    assert bool(constraints.lower_cholesky.check(transform_to(constraints.lower_cholesky)(x)).all())
    assert bool(constraints.positive_definite.check(transform_to(constraints.positive_definite)(x)).all())
    assert isinstance(transform_to(constraints.simplex), T.SoftmaxTransform)
    assert isinstance(biject_to(constraints.simplex), T.StickBreakingTransform)
    assert isinstance(transform_to(constraints.unit_interval), T.SigmoidTransform)
    with pytest.raises(NotImplementedError, match="Cannot transform _LowerCholesky constraints"):
        biject_to(constraints.lower_cholesky)


def test_registry_register_and_errors():
    from graphc.distributions.constraint_registry import ConstraintRegistry

    class _Odd(constraints.Constraint):
        def check(self, value):
            return value > 0

    reg = ConstraintRegistry()
    with pytest.raises(NotImplementedError, match="Cannot transform _Odd constraints"):
        reg(_Odd())

    @reg.register(_Odd)
    def _factory(constraint):
        return T.ExpTransform()

    assert isinstance(reg(_Odd()), T.ExpTransform)
    reg.register(constraints.real, lambda c: T.identity_transform)  # an instance stands for its class
    assert reg(constraints.real) is T.identity_transform
    with pytest.raises(TypeError, match="Expected constraint to be either a Constraint subclass or instance"):
        reg.register(int, _factory)


def test_biject_to_for_a_distribution_parameter_optimises():
    # the use the registry is for: optimise an unconstrained tensor mapped onto scale's support
    scale_tr = transform_to(torch.distributions.Normal.arg_constraints["scale"])
    u = t([0.0]).requires_grad_()
    data = t(RNG.normal(0.0, 2.5, 500))
    opt = torch.optim.Adam([u], lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = -torch.distributions.Normal(0.0, scale_tr(u)).log_prob(data).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(arr(scale_tr(u)), np.sqrt(np.mean(arr(data) ** 2)), rtol=1e-2)


# ---- ExponentialFamily ----

def test_exponential_family_entropy_by_bregman_matches_closed_form():
    for d in [ContinuousBernoulli(t([0.1, 0.3, 0.8])), ContinuousBernoulli(logits=t([-2.0, 1.5])),
              Wishart(t([4.0, 6.5]), covariance_matrix=t(W_COV))]:
        assert isinstance(d, ExponentialFamily)
        _close(ExponentialFamily.entropy(d), d.entropy(), tol=1e-7)


def test_pytorchs_exponential_families_are_exponential_families():
    d = torch.distributions
    fams = [d.Normal(t([0.0, 1.0]), t([1.0, 2.0])), d.Bernoulli(t([0.2, 0.7])), d.Exponential(t([0.5, 2.0])),
            d.Gamma(t([2.0, 3.0]), t([1.0, 0.5])), d.Chi2(t([3.0]))]
    for dist in fams:  # the ones whose carrier measure PyTorch gives: Bregman entropy = closed form
        assert isinstance(dist, ExponentialFamily)
        _close(ExponentialFamily.entropy(dist), dist.entropy(), tol=1e-10)
    for dist in [d.Poisson(t([2.0])), d.Beta(t([2.0]), t([3.0])), d.Dirichlet(t([[2.0, 3.0, 1.0]]))]:
        assert isinstance(dist, ExponentialFamily)
    assert not isinstance(d.Uniform(0.0, 1.0), ExponentialFamily)


def test_kl_between_members_of_one_family_by_bregman():
    kl = torch.distributions.kl_divergence
    p, q = ContinuousBernoulli(t([0.2, 0.7])), ContinuousBernoulli(t([0.4, 0.9]))
    # against numerical integration of p log(p / q) over [0, 1]
    xs = np.linspace(0.0, 1.0, 20001)
    lp = arr(p.log_prob(t(np.broadcast_to(xs[:, None], (len(xs), 2)).copy())))
    lq = arr(q.log_prob(t(np.broadcast_to(xs[:, None], (len(xs), 2)).copy())))
    _close(kl(p, q), np.trapezoid(np.exp(lp) * (lp - lq), xs, axis=0), tol=1e-7)
    a, b = Wishart(t(5.0), covariance_matrix=t(W_COV[0])), Wishart(t(7.0), covariance_matrix=t(W_COV[1]))
    p_, s1, s2 = 3, W_COV[0], W_COV[1]  # the closed form for two Wisharts
    from scipy.special import multigammaln, psi
    n1, n2 = 5.0, 7.0
    want = (-n2 / 2 * np.linalg.slogdet(np.linalg.solve(s2, s1))[1] + n1 / 2 * (np.trace(np.linalg.solve(s2, s1)) - p_)
            + multigammaln(n2 / 2, p_) - multigammaln(n1 / 2, p_) + (n1 - n2) / 2 * sum(psi((n1 - i) / 2)
                                                                                         for i in range(p_)))
    _close(kl(a, b), want, tol=1e-8)


def test_torch_module_paths():
    for path, name in [("continuous_bernoulli", "ContinuousBernoulli"), ("exp_family", "ExponentialFamily"),
                       ("generalized_pareto", "GeneralizedPareto"), ("kumaraswamy", "Kumaraswamy"),
                       ("lkj_cholesky", "LKJCholesky"), ("logistic_normal", "LogisticNormal"),
                       ("lowrank_multivariate_normal", "LowRankMultivariateNormal"), ("von_mises", "VonMises"),
                       ("wishart", "Wishart"), ("constraint_registry", "biject_to")]:
        mod = importlib.import_module(f"graphc.distributions.{path}")
        assert getattr(mod, name) is getattr(torch.distributions, name)
    assert torch.distributions.transforms.CatTransform is torch.distributions.CatTransform


def test_readme_snippet_runs():
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### The rest of `torch.distributions`", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102  (the repository's own README)
    _close(scope["p"], [0.25] * 4, tol=1e-6)  # u = 0 is the simplex's centre (float32)
    _close(scope["scale"], np.exp([-1.0, 0.0, 2.0]), tol=1e-6)
    assert scope["w"].grad is not None and scope["w"].grad.shape == (4, 1)


def test_compiled_log_probs_match_eager():
    # no value-dependent Python with validation off (and a number df): whole graphs, gradients included
    def f(x, c, w, lr_x):
        tr = T.CorrCholeskyTransform()
        lt = tr(x)
        lp = LKJCholesky(4, c, validate_args=False).log_prob(lt).sum() + tr.log_abs_det_jacobian(x, lt).sum()
        wish = Wishart(6.0, scale_tril=torch.eye(4, dtype=D) * w.exp(), validate_args=False)  # diag(exp(w))
        lowrank = LowRankMultivariateNormal(torch.zeros(4, dtype=D), lt[0, :, :2], w.exp().repeat(2)[:4],
                                            validate_args=False)
        return lp + wish.log_prob(lt[1] @ lt[1].mT * 3).sum() + lowrank.log_prob(lr_x).sum()

    args = [t(RNG.standard_normal((3, 6))), t(1.5), t([0.1, -0.2, 0.3, 0.0]), t(RNG.standard_normal((5, 4)))]
    grads = []
    for fn in (f, torch.compile(f)):
        leaves = [a.detach().requires_grad_() for a in args]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a graph break (its warning) fails the test
            out = fn(*leaves)
        out.backward()
        grads.append((out, [a.grad for a in leaves]))
    _close(grads[1][0], grads[0][0], tol=1e-10)
    for a, b in zip(grads[1][1], grads[0][1]):
        _close(a, b, tol=1e-10)


def test_constraints_check_and_repr_as_pytorchs():
    torch_ = pytest.importorskip("torch")
    tc = torch_.distributions.constraints
    x = RNG.standard_normal((6, 3))
    mats = np.stack([np.eye(3), np.tril(np.ones((3, 3))), x[:3], _spd(n=3)])
    corr = arr(T.CorrCholeskyTransform()(t(x[:2])))
    pairs = [("positive", ()), ("nonnegative", ()), ("unit_interval", ()), ("real_vector", ()), ("simplex", ()),
             ("one_hot", ()), ("nonnegative_integer", ()), ("greater_than", (0.5,)), ("less_than", (0.2,)),
             ("interval", (-1.0, 1.0)), ("half_open_interval", (0.0, 1.0)), ("integer_interval", (0, 2)),
             ("multinomial", (3,))]
    values = [x, np.abs(x), np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [1.0, 1.0, 0.0], [2.0, 0.0, 1.0]]),
              np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])]
    for name, args in pairs:
        ours, theirs = getattr(constraints, name), getattr(tc, name)
        if args:
            ours, theirs = ours(*args), theirs(*args)
        assert repr(ours) == repr(theirs)
        for v in values:
            np.testing.assert_array_equal(arr(ours.check(t(v))), theirs.check(torch_.tensor(v)).numpy(), name)
    for name in ("lower_cholesky", "lower_triangular", "positive_definite", "corr_cholesky", "symmetric"):
        for v in (mats, corr):
            np.testing.assert_array_equal(arr(getattr(constraints, name).check(t(v))),
                                          getattr(tc, name).check(torch_.tensor(v)).numpy(), name)
    mix = constraints.MixtureSameFamilyConstraint(constraints.positive)
    assert repr(mix) == repr(tc.MixtureSameFamilyConstraint(tc.positive))
    np.testing.assert_array_equal(arr(mix.check(t(x))), tc.MixtureSameFamilyConstraint(tc.positive).check(
        torch_.tensor(x)).numpy())
