"""passes/lowered_rewrites.py: after autodiff, ``a * sigmoid(z)`` with the sigmoid read nowhere
else is ``a / (1 + exp(-z))`` on large float32 arrays (one numpy pass fewer); its values equal
eager mode's within one rounding, limits included, its gradients are autodiff's of sigmoid (not of
the division, which would be NaN below z = -88), and smaller or other-typed arrays, or a sigmoid
read twice, keep sigmoid."""
import numpy as np

import graphc
import graphc.nn.functional as F


def _code(fn, *args):
    return graphc.explain(graphc.compile(fn), *args).code


def _inputs(n, rng):
    x = (rng.standard_normal(n) * 30).astype(np.float32)
    x[:7] = [-np.inf, np.inf, np.nan, -100.0, 100.0, 0.0, -0.0]
    return x


def test_silu_on_a_large_float32_array_divides_and_equals_eager():
    rng = np.random.default_rng(0)
    x = graphc.tensor(_inputs(8192, rng))
    code = _code(F.silu, x)
    assert "true_divide(" in code and "_sigmoid(" not in code and "_expit(" not in code, code
    got, want = graphc.compile(F.silu)(x).numpy(), F.silu(x).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=2.5e-7, atol=0)
    assert got[3] == 0.0 and got[4] == 100.0 and got[0] != got[0]  # -inf * 0 is nan, as eagerly


def test_a_scaled_sigmoid_and_a_swish_of_another_tensor():
    rng = np.random.default_rng(1)
    a, z = (graphc.tensor(_inputs(8192, rng)) for _ in range(2))

    def f(a, z):
        return a * graphc.sigmoid(z) + graphc.sigmoid(z * 0.5) * 3.0
    assert "_sigmoid(" not in _code(f, a, z)
    got, want = graphc.compile(f)(a, z).numpy(), f(a, z).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # each term within a rounding or two of eager's: bounded by the terms' magnitudes (they cancel)
    an, zn = a.numpy().astype(np.float64), z.numpy().astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.abs(an / (1 + np.exp(-zn))) + 3.0
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    assert np.all(np.abs(got[fin] - want[fin]) <= 4 * np.finfo(np.float32).eps * scale[fin])


def test_gradients_through_the_rewrite_stay_finite_far_below_zero():
    x = graphc.tensor(np.linspace(-120, 120, 8192, dtype=np.float32), requires_grad=True)
    graphc.compile(lambda x: F.silu(x).sum())(x).backward()
    g = x.grad.numpy().copy()
    x.grad = None
    F.silu(x).sum().backward()
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_small_arrays_other_types_and_shared_sigmoids_keep_sigmoid():
    rng = np.random.default_rng(2)
    small = graphc.tensor(_inputs(64, rng))
    assert "_expit(" in _code(F.silu, small) or "_sigmoid(" in _code(F.silu, small)
    f64 = graphc.tensor(_inputs(8192, rng).astype(np.float64))
    assert "true_divide(" not in _code(F.silu, f64)
    big = graphc.tensor(_inputs(8192, rng))

    def shared(x):
        s = graphc.sigmoid(x)
        return x * s, s
    assert "_sigmoid(" in _code(shared, big)
    got = graphc.compile(shared)(big)
    want = shared(big)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_logsigmoid_sign_flip_is_minus_abs_bit_for_bit():
    rng = np.random.default_rng(3)
    x = graphc.tensor(_inputs(8192, rng), requires_grad=True)
    code = _code(F.logsigmoid, x.detach())
    assert "np.abs(" in code and "np.greater(" not in code, code
    got = graphc.compile(F.logsigmoid)(x)
    want = F.logsigmoid(x)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    got.sum().backward()
    g = x.grad.numpy().copy()
    x.grad = None
    want.sum().backward()
    np.testing.assert_array_equal(g, x.grad.numpy())  # the backward's sign flip is untouched


def test_abs_of_a_negation_reads_the_operand():
    x = graphc.tensor(_inputs(64, np.random.default_rng(4)))

    def f(x):
        return graphc.abs(-x) * 2
    assert "np.negative(" not in _code(f, x)
    np.testing.assert_array_equal(graphc.compile(f)(x).numpy(), f(x).numpy())


def _gelu64(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return x * ndtr(x)


def test_gelu_on_a_large_float32_array_is_a_sigmoid_of_a_polynomial_within_float32_rounding():
    """Forward only (no erf saved for a backward): gelu takes the exp2 form, within 3 ulp of
    x * Phi(x) for x >= 0 and 2e-7 below (erf's form is 3e-7 off there); limits as eager's."""
    x = np.concatenate([np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30, 1e-30, -1e-30], np.float32),
                        np.linspace(-12, 12, 16384 - 9, dtype=np.float32)])
    t = graphc.tensor(x.reshape(64, 256))
    code = _code(F.gelu, t)
    assert "exp2(" in code and "_erf(" not in code, code
    got = graphc.compile(F.gelu)(t).numpy().ravel()
    assert got[0] == np.inf and np.isnan(got[1]) and np.isnan(got[2])
    assert got[3] == 0 and got[4] == 0 and np.signbit(got[4]) and got[5] == 1e30 and got[6] == 0
    assert got[7] == np.float32(5e-31) and got[8] == np.float32(-5e-31)
    want = _gelu64(x[9:])
    err = np.abs(got[9:] - want)
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert np.all(err[want >= 0] <= 3 * ulp[want >= 0]), (err / ulp)[want >= 0].max()
    assert err[want < 0].max() <= 2e-7, err[want < 0].max()
    eager = F.gelu(t).numpy().ravel()
    np.testing.assert_allclose(got[9:], eager[9:], rtol=1e-6, atol=4e-7)


def test_gelu_keeps_erf_when_its_value_is_saved_small_or_not_float32():
    rng = np.random.default_rng(3)
    x = graphc.tensor(rng.standard_normal((64, 256)).astype(np.float32), requires_grad=True)
    step = graphc.compile(lambda x: F.gelu(x).sum())
    loss = step(x)
    loss.backward()
    g = x.grad.numpy().copy()
    x.grad = None
    F.gelu(x).sum().backward()
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-6, atol=1e-7)
    small = graphc.tensor(rng.standard_normal((4, 16)).astype(np.float32))
    assert "exp2(" not in _code(F.gelu, small)
    f64 = graphc.tensor(rng.standard_normal((64, 256)))
    assert "exp2(" not in _code(F.gelu, f64)
    np.testing.assert_allclose(graphc.compile(F.gelu)(f64).numpy(), _gelu64(f64.numpy()), rtol=1e-12, atol=1e-15)

    def shared(x):  # erf read twice: the rewrite would compute it again
        e = graphc.erf(x * (1 / np.sqrt(2)))
        return x * 0.5 * (e + 1), e
    big = graphc.tensor(rng.standard_normal((64, 256)).astype(np.float32))
    assert "exp2(" not in _code(shared, big)


def _edge_floats(n: int, rng) -> np.ndarray:
    """``_inputs`` with ties at the clamp bounds and softplus thresholds below."""
    x = _inputs(n, rng)
    x[7:12] = [2.0, -1.5, 20.0, 10.0, -20.0]
    return x


def test_a_clamp_by_a_nonzero_number_is_one_clip_pass_bit_for_bit():
    x = graphc.tensor(_edge_floats(8192, np.random.default_rng(4)))
    f = lambda x: x.clamp(-1.5, 2.0)  # noqa: E731
    code = _code(f, x)
    assert "_clip(" in code and "_where" not in code and "np.where" not in code, code
    got, want = graphc.compile(f)(x).numpy(), f(x).numpy()
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))  # nan, ties, -0.0 bits
    zero = lambda x: x.clamp(max=0.0)  # noqa: E731  (a tie of -0.0 and 0.0: clip and minimum differ)
    assert "_clip(" not in _code(zero, x)
    np.testing.assert_array_equal(graphc.compile(zero)(x).numpy().view(np.uint32), zero(x).numpy().view(np.uint32))


def test_softplus_selects_with_a_maximum_within_an_ulp_and_keeps_its_gradients():
    rng = np.random.default_rng(5)
    x = graphc.tensor(_edge_floats(8192, rng))
    for beta, threshold in ((1.0, 20.0), (2.0, 20.0), (0.5, 17.0)):
        f = lambda x: F.softplus(x, beta=beta, threshold=threshold)  # noqa: E731
        code = _code(f, x)
        assert "np.maximum(" in code and "_where" not in code and "np.where" not in code, code
        got, want = graphc.compile(f)(x).numpy(), f(x).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_array_equal(got[~np.isfinite(want) & ok], want[~np.isfinite(want) & ok])
        fin = np.isfinite(want)
        assert np.all(np.abs(got[fin] - want[fin]) <= np.spacing(np.abs(want[fin]))), (beta, threshold)
    neg = lambda x: F.softplus(x, beta=-1.0)  # noqa: E731  (past the threshold x is the smaller)
    low = lambda x: F.softplus(x, beta=0.5, threshold=3.0)  # noqa: E731  (log1p(exp(3)) > 3: x in (6, 6.1) is too)
    for f in (neg, low):
        assert "np.maximum(" not in _code(f, x)
        np.testing.assert_array_equal(graphc.compile(f)(x).numpy(), f(x).numpy())
    t = graphc.tensor(np.linspace(-30, 30, 8192, dtype=np.float32), requires_grad=True)
    graphc.compile(lambda t: F.softplus(t).sum())(t).backward()
    g = t.grad.numpy().copy()
    t.grad = None
    F.softplus(t).sum().backward()
    np.testing.assert_array_equal(g, t.grad.numpy())
