"""numpy codegen's softmax: ``exp(x - amax(x))`` whose only readers normalize it is computed by
``exp_shifted``, which leaves the max out when the whole array lies within its bound of 0 (the
softmax's normalization cancels the shift). Compiled softmax against a float64 reference and
eager, on both sides of the bound, with -inf masks, NaN and a row of -inf; forms that read the
max or the exponentials elsewhere (log_softmax, a returned exp) keep the shifted graph. The
composites hold the shift constant for autodiff (softmax, log_softmax, logsumexp)."""
import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.codegen.numpy_runtime import UNSHIFTED_EXP_BOUND, exp_shifted


def _code(fn, *args):
    return graphc.explain(graphc.compile(fn), *args).code


def _softmax64(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("scale", [3.0, 30.0, 300.0])  # within the bound, across it, far past it
@pytest.mark.parametrize("dim", [-1, 0])
def test_compiled_softmax_equals_float64_and_eager(scale, dim):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 256)) * scale).astype(np.float32)
    t = graphc.tensor(x)
    fn = lambda t: F.softmax(t, dim=dim)  # noqa: E731
    code = _code(fn, t)
    assert "_exp_shifted(" in code, code
    got = graphc.compile(fn)(t).numpy().astype(np.float64)
    want = _softmax64(x, dim)
    # float32's exp of x - max carries the difference's rounding, |x - max| * 2^-24 relatively
    # (the unshifted form does not), and results below float32's normal range are coarse
    gap = np.abs(x - x.max(axis=dim, keepdims=True)).astype(np.float64)
    bound = want * (1e-6 + gap * 2 ** -23) + 2e-45
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) / bound)
    assert np.all(np.abs(got - fn(t).numpy()) <= 2 * bound)
    np.testing.assert_allclose(got.sum(axis=dim), 1.0, rtol=1e-5)


def test_masks_nan_and_empty_rows_take_the_shifted_form_as_eager():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 256)).astype(np.float32)
    x[3, 10:] = -np.inf  # an attention mask
    x[5, :] = -np.inf  # a row with nothing left: NaN, as in PyTorch
    x[7, 4] = np.nan
    t = graphc.tensor(x)
    got = graphc.compile(lambda t: F.softmax(t, dim=-1))(t).numpy()
    want = F.softmax(t, dim=-1).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[5]).all() and np.isnan(got[7]).all()
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=0)
    assert np.all(got[3, 10:] == 0)


def test_readers_of_the_max_or_the_exponentials_keep_the_shifted_graph():
    rng = np.random.default_rng(2)
    t = graphc.tensor(rng.standard_normal((64, 256)).astype(np.float32))
    log = lambda t: F.log_softmax(t, dim=-1)  # noqa: E731  (log of the sum: not scale-free)
    assert "_exp_shifted(" not in _code(log, t)
    np.testing.assert_allclose(graphc.compile(log)(t).numpy(), log(t).numpy(), rtol=1e-6, atol=1e-6)

    def both(t):  # the exponentials themselves are returned
        e = (t - t.amax(dim=-1, keepdim=True)).exp()
        return e / e.sum(dim=-1, keepdim=True), e
    def scaled(t):  # the exponentials read unnormalized inside the kernel too
        e = (t - t.amax(dim=-1, keepdim=True)).exp()
        return e / e.sum(dim=-1, keepdim=True) + e * 0.5

    def with_sum(t):  # the sum is read besides the normalization
        e = (t - t.amax(dim=-1, keepdim=True)).exp()
        s = e.sum(dim=-1, keepdim=True)
        return e / s + s.log()
    for f in (both, scaled, with_sum):
        assert "_exp_shifted(" not in _code(f, t), f.__name__
        got, want = graphc.compile(f)(t), f(t)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6)


def test_gradients_through_a_compiled_softmax_equal_eager():
    rng = np.random.default_rng(3)
    x = graphc.tensor(rng.standard_normal((64, 256)).astype(np.float32), requires_grad=True)
    g = graphc.tensor(rng.standard_normal((64, 256)).astype(np.float32))
    graphc.compile(lambda x: (F.softmax(x, dim=-1) * g).sum())(x).backward()
    got = x.grad.numpy().copy()
    x.grad = None
    (F.softmax(x, dim=-1) * g).sum().backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_exp_shifted_is_exp_of_the_difference_up_to_a_factor_per_row():
    rng = np.random.default_rng(4)
    for hi in (UNSHIFTED_EXP_BOUND - 1, UNSHIFTED_EXP_BOUND + 1):
        x = rng.uniform(-hi, hi, (8, 32)).astype(np.float32)
        x[0, 0] = hi
        got = exp_shifted(x, (1,)).astype(np.float64)
        ref = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
        normal = got >= np.finfo(np.float32).tiny  # the shifted form's far tail is subnormal or 0
        ratio = got / ref
        first = ratio[np.arange(8), np.argmax(x, axis=1)]  # each row's max: exp(0) or exp(max)
        np.testing.assert_allclose(ratio[normal], np.broadcast_to(first[:, None], ratio.shape)[normal], rtol=2e-5)
        shifted = hi > UNSHIFTED_EXP_BOUND
        assert np.allclose(first, 1.0, rtol=1e-6) == shifted  # the unshifted form keeps exp(max)
    out = np.empty((8, 32), np.float32)
    x = rng.standard_normal((8, 32)).astype(np.float32)
    assert exp_shifted(x, (1,), out=out) is out
    np.testing.assert_allclose(out, np.exp(x), rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_the_shift_is_not_differentiated_and_gradients_match_finite_differences(name):
    """softmax, log_softmax and logsumexp hold their max shift constant for autodiff (the result
    does not depend on it): no tie mask of the max in the compiled step, and first and second
    derivatives in float64 against central differences, ties in the max included."""
    fns = {"softmax": lambda t: F.softmax(t, dim=-1), "log_softmax": lambda t: F.log_softmax(t, dim=-1),
           "logsumexp": lambda t: graphc.logsumexp(t, dim=-1, keepdim=True)}
    fn = fns[name]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5))
    x[0, 1] = x[0, 3] = x[0].max() + 0.5  # a tie for the max
    t = graphc.tensor(x, requires_grad=True)
    # first and second derivatives against central differences (gradcheck's float64 Jacobians)
    assert graphc.autograd.gradcheck(fn, (t,), eps=1e-6, atol=1e-7, rtol=1e-5)
    assert graphc.autograd.gradgradcheck(fn, (t,), eps=1e-6, atol=1e-6, rtol=1e-4)
    big = graphc.tensor(rng.standard_normal((64, 256)).astype(np.float32), requires_grad=True)
    step = graphc.compile(lambda v: fn(v).sum() if name == "logsumexp" else (fn(v) * fn(v)).sum())
    code = graphc.explain(step, big).code
    assert "b8[64,256] = eq(" not in code, code  # amax's tie mask (the -inf guard is one per row)
