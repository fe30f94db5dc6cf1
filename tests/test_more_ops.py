"""Scans, special functions, order statistics, bucketing, products, fills, graphc.linalg and packed
sequences: values against numpy/stdlib computations written here, PyTorch's errors and dtypes.

Gradients of the differentiable ones are gradchecked through tests/op_cases.py.
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter

import numpy as np
import pytest

import graphc as torch
from graphc import nn

rng = np.random.default_rng(1234)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def close(t, want, **kw):
    got = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.testing.assert_allclose(got, np.asarray(want), **{"rtol": 1e-10, "atol": 1e-12, **kw})


def grads(fn, *arrays):
    xs = [t64(a, True) for a in arrays]
    out = fn(*xs)
    out = out[0] if isinstance(out, tuple) else out
    return torch.autograd.grad(out.sum(), xs)


# ---- scans ------------------------------------------------------------------------------------

def test_cumprod_values_dtypes_and_exact_gradient_at_zeros():
    x = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [1.5, -2.0, 0.5, 4.0, 1.0]])
    want = np.array([[np.prod(r[:i + 1]) for i in range(5)] for r in x])
    close(torch.cumprod(t64(x), 1), want)
    close(t64(x).cumprod(dim=-1), want)
    # d/dx_j sum_i prod_{k<=i} x_k, by brute force; with zeros there is no 0/0 (no exp/log inside)
    g, = grads(lambda t: torch.cumprod(t, 1), x)
    brute = [[sum(np.prod(np.delete(r[:i + 1], j)) for i in range(j, 5)) for j in range(5)] for r in x]
    close(g, brute)
    assert np.isfinite(g.numpy()).all()
    ints = torch.cumprod(torch.tensor([[1, 2, 3], [0, 4, 5]], dtype=torch.int32), 1)
    assert ints.dtype == torch.int64 and ints.tolist() == [[1, 2, 6], [0, 0, 0]]
    assert torch.cumprod(torch.tensor([True, False, True]), 0).tolist() == [1, 0, 0]
    assert torch.cumprod(torch.tensor([1, 2]), 0, dtype=torch.float32).dtype == torch.float32
    y = t64([1.0, 2.0, 3.0])
    y.cumprod_(0)
    close(y, [1, 2, 6])
    close(torch.cumprod(t64(4.0), 0), 4.0)


def test_logcumsumexp_is_stable():
    x = np.array([[-1000.0, 0.0, 1000.0, 999.0], [1.0, -np.inf, 2.0, -np.inf]])
    want = np.empty_like(x)
    for r in range(2):
        acc = -np.inf
        for i in range(4):
            m = max(acc, x[r, i])
            acc = m + math.log(math.exp(acc - m) + math.exp(x[r, i] - m)) if m > -np.inf else -np.inf
            want[r, i] = acc
    close(torch.logcumsumexp(t64(x), 1), want)
    assert torch.logcumsumexp(t64(x, True), 1).grad_fn.name() == "LogcumsumexpBackward0"
    close(torch.logcumsumexp(t64([-np.inf, -np.inf]), 0), [-np.inf, -np.inf])
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        torch.logcumsumexp(torch.tensor([1, 2]), 0)


def _running(x, better):
    vals, idx = [], []
    best = 0
    for i, v in enumerate(x):
        b = x[best]
        if math.isnan(v) or (not math.isnan(b) and (better(v, b) or v == b)):
            best = i
        vals.append(x[best])
        idx.append(best)
    return vals, idx


@pytest.mark.parametrize("name,better", [("cummax", lambda a, b: a > b), ("cummin", lambda a, b: a < b)])
def test_cummax_cummin_ties_and_nan(name, better):
    rows = [[1.0, 3.0, 2.0, 3.0, 0.5], [2.0, 2.0, 1.0, 5.0, 5.0], [1.0, np.nan, 2.0, np.nan, 0.0]]
    res = getattr(torch, name)(t64(rows), dim=1)
    assert type(res).__name__ == name and res.indices.dtype == torch.int64
    for r, row in enumerate(rows):
        vals, idx = _running(row, better)
        np.testing.assert_array_equal(res.values[r].numpy(), vals)
        assert res.indices[r].tolist() == idx
    ints = getattr(torch.tensor([[3, 1, 3]]), name)(-1)
    assert ints.values.dtype == torch.int64 and ints.indices.tolist() == [_running([3, 1, 3], better)[1]]
    g, = grads(lambda t: getattr(torch, name)(t, 0).values, [1.0, 3.0, 2.0, 4.0])
    want = np.zeros(4)
    for i in _running([1.0, 3.0, 2.0, 4.0], better)[1]:
        want[i] += 1
    close(g, want)


def test_diff():
    x = rng.standard_normal((3, 5))
    close(torch.diff(t64(x)), x[:, 1:] - x[:, :-1])
    d2 = x[1:] - x[:-1]
    close(torch.diff(t64(x), n=2, dim=0), d2[1:] - d2[:-1])
    pre, app = rng.standard_normal((3, 1)), rng.standard_normal((3, 2))
    full = np.concatenate([pre, x, app], 1)
    close(t64(x).diff(prepend=t64(pre), append=t64(app)), full[:, 1:] - full[:, :-1])
    assert torch.diff(torch.tensor([True, False, False, True])).tolist() == [True, False, True]
    assert torch.diff(torch.tensor([1, 4, 9]), n=2).tolist() == [2]
    assert tuple(torch.diff(torch.arange(5.0), n=7).shape) == (0,)
    with pytest.raises(RuntimeError, match="at least one-dimensional"):
        torch.diff(t64(1.0))
    with pytest.raises(RuntimeError, match="same dimension as input"):
        torch.diff(t64(x), dim=0, append=t64(np.zeros(5)))


# ---- pointwise and special functions ----------------------------------------------------------

def test_logaddexp_and_xlogy_special_values():
    a = [1.0, -1000.0, -np.inf, np.inf, 2.0, 800.0]
    b = [2.0, -1000.0, -np.inf, 3.0, 2.0, -800.0]
    want = [math.log(math.exp(1) + math.exp(2)), -1000 + math.log(2), -np.inf, np.inf, 2 + math.log(2), 800.0]
    close(torch.logaddexp(t64(a), t64(b)), want)
    close(torch.logaddexp2(t64([1.0, 3.0]), t64(3.0)), [math.log2(2 + 8), 4.0])
    with pytest.raises(NotImplementedError, match="logaddexp"):
        torch.logaddexp(torch.tensor([1]), torch.tensor([2]))
    x = [0.0, 0.0, 0.0, 1.0, 0.0, 2.0]
    y = [0.0, -1.0, np.nan, 0.0, np.inf, 3.0]
    close(torch.xlogy(t64(x), t64(y)), [0.0, 0.0, np.nan, -np.inf, 0.0, 2 * math.log(3)])
    close(torch.xlogy(2, t64([3.0])), [2 * math.log(3)])
    assert torch.xlogy(torch.tensor([0, 1]), torch.tensor([2, 3])).dtype == torch.float32
    # PyTorch's gradient conventions: d/dx is log(y) at x == 0 unless y <= 0
    xs, ys = t64([0.0, 0.0, 1.5], True), t64([2.0, 0.0, 3.0], True)
    gx, gy = torch.autograd.grad(torch.xlogy(xs, ys).sum(), [xs, ys])
    close(gx, [math.log(2), 0.0, math.log(3)])
    close(gy[[0, 2]], [0.0, 0.5])
    close(torch.special.xlog1py(t64([0.0, 0.0, 2.0]), t64([-1.0, 1.0, 3.0])), [0.0, 0.0, 2 * math.log(4)])
    v = t64([0.5, 2.0])
    v.xlogy_(t64([4.0, 0.5]))
    close(v, [0.5 * math.log(4), 2 * math.log(0.5)])


def test_float_power():
    r = torch.float_power(torch.tensor([2, 3]), 3)
    assert r.dtype == torch.float64 and r.tolist() == [8.0, 27.0]
    assert torch.float_power(torch.tensor([2.0], dtype=torch.float32), torch.tensor([2])).dtype == torch.float64
    assert math.isnan(torch.float_power(torch.tensor([-8.0]), 1 / 3).item())
    with pytest.raises(RuntimeError, match="has dtype Float but the operation's result requires dtype Double"):
        torch.zeros(2).float_power_(2)
    z = t64([2.0, 3.0])
    assert z.float_power_(2) is z and z.tolist() == [4.0, 9.0]


def _digamma(x):
    # psi(x) = lim (lgamma(x + h) - lgamma(x - h)) / 2h, fine for a few digits; exact values below
    return (math.lgamma(x + 1e-5) - math.lgamma(x - 1e-5)) / 2e-5


def test_gamma_family():
    xs = [0.5, 1.0, 3.0, 7.25, -2.5]
    close(torch.lgamma(t64(xs)), [math.lgamma(v) for v in xs])
    close(torch.lgamma(t64([0.0, -1.0])), [np.inf, np.inf])
    assert torch.lgamma(torch.tensor([1, 2])).dtype == torch.float32
    euler = 0.5772156649015329
    close(torch.digamma(t64([1.0, 0.5, 2.0])), [-euler, -euler - 2 * math.log(2), 1 - euler])
    close(torch.digamma(t64([3.3, 0.7])), [_digamma(3.3), _digamma(0.7)], rtol=1e-7)
    d0 = torch.digamma(t64([0.0, -1.0]))
    assert d0[0].item() == -np.inf and math.isnan(d0[1].item())
    close(torch.special.psi(t64([1.0])), [-euler])
    x = np.array([0.7, 2.5, 6.0])
    # recurrences psi_n(x + 1) = psi_n(x) + (-1)^n n! / x^(n+1), and trigamma(1) = pi^2 / 6
    for n in (1, 2, 3):
        lhs = torch.polygamma(n, t64(x + 1)).numpy() - torch.polygamma(n, t64(x)).numpy()
        close(lhs, (-1) ** n * math.factorial(n) / x ** (n + 1), rtol=1e-9)
    close(torch.polygamma(1, t64([1.0])), [math.pi ** 2 / 6])
    close(t64([1.0]).polygamma(1), [math.pi ** 2 / 6])
    with pytest.raises(RuntimeError, match="negative n"):
        torch.polygamma(-1, t64([1.0]))
    a = np.array([2.5, 3.0])
    close(torch.mvlgamma(t64(a), 2), [math.lgamma(v) + math.lgamma(v - 0.5) + 0.5 * math.log(math.pi) for v in a])
    close(torch.special.multigammaln(t64(a), 1), [math.lgamma(v) for v in a])
    v = t64([0.5, 2.0])
    v.lgamma_()
    close(v, [math.lgamma(0.5), 0.0])


def test_erfinv_and_special_namespace():
    y = np.array([-0.9, -0.2, 0.0, 0.5, 0.999])
    inv = torch.erfinv(t64(y))
    close([math.erf(v) for v in inv.numpy()], y, rtol=1e-12)
    close(torch.erfinv(t64([-1.0, 1.0])), [-np.inf, np.inf])
    assert math.isnan(torch.erfinv(t64([2.0])).item())
    S = torch.special
    close(S.ndtr(t64([-1.0, 0.0, 0.5])), [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-1.0, 0.0, 0.5)])
    p = np.array([0.1, 0.5, 0.9])
    close(S.ndtr(S.ndtri(t64(p))), p, rtol=1e-12)
    close(S.entr(t64([-1.0, 0.0, 0.5])), [-np.inf, 0.0, -0.5 * math.log(0.5)])
    close(S.expit(t64([0.0])), [0.5])
    close(S.gammaln(t64([4.0])), [math.log(6)])
    close(S.erfinv(t64([0.0])), [0.0])
    close(torch.sinc(t64([0.0, 0.5, -1.5])), [1.0, math.sin(math.pi / 2) / (math.pi / 2),
                                               math.sin(-1.5 * math.pi) / (-1.5 * math.pi)])
    close(torch.logit(t64([0.0, 0.25, 1.0]), eps=0.1), [math.log(0.1 / 0.9), math.log(1 / 3), math.log(9)])
    close(torch.logit(t64([0.0, 1.0])), [-np.inf, np.inf])


# ---- order statistics -------------------------------------------------------------------------

def _lower_median(row):
    order = sorted(range(len(row)), key=lambda i: row[i])  # stable
    k = order[(len(row) - 1) // 2]
    return row[k], k


def test_median_lower_median_and_indices():
    rows = [[3.0, 1.0, 2.0, 2.0], [5.0, 4.0, 4.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    res = torch.median(t64(rows), 1)
    assert type(res).__name__ == "median"
    for r, row in enumerate(rows):
        v, k = _lower_median(row)
        assert res.values[r].item() == v and res.indices[r].item() == k
    x = rng.standard_normal((4, 6))
    kept = torch.median(t64(x), 0, keepdim=True)
    assert tuple(kept.values.shape) == (1, 6)
    close(kept.values[0], np.sort(x, 0)[1])
    assert torch.median(t64(x)).item() == np.sort(x.ravel())[(x.size - 1) // 2]
    assert torch.median(torch.tensor([3, 1, 2])).item() == 2
    assert math.isnan(torch.median(t64([])).item())
    nan_row = torch.median(t64([[3.0, np.nan, 1.0, np.nan], [1.0, 2.0, 3.0, 4.0]]), 1)
    assert math.isnan(nan_row.values[0].item()) and nan_row.indices.tolist() == [1, 1]
    # median(): the gradient is shared by the elements equal to the median; median(dim): one index
    g, = grads(torch.median, [1.0, 2.0, 2.0, 3.0])
    close(g, [0.0, 0.5, 0.5, 0.0])
    g, = grads(lambda t: torch.median(t, 1).values, [[1.0, 2.0, 2.0, 3.0]])
    close(g, [[0.0, 1.0, 0.0, 0.0]])
    zero_d = torch.median(t64(5.0), 0)
    assert zero_d.values.item() == 5.0 and zero_d.indices.item() == 0


def test_nanmedian_and_mode():
    x = t64([[3.0, np.nan, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    res = torch.nanmedian(x, 1)
    assert res.values.tolist() == [2.0, 2.0] and res.indices.tolist() == [3, 1]
    assert torch.nanmedian(x).item() == 2.0
    rows = [[1.0, 2.0, 2.0, 3.0, 1.0], [4.0, 4.0, 1.0, 1.0, 3.0], [7.0, 7.0, 7.0, 0.0, 0.0]]
    m = torch.mode(t64(rows), 1)
    for r, row in enumerate(rows):
        counts = Counter(row)
        top = max(counts.values())
        best = min(v for v, c in counts.items() if c == top)   # the smallest of the most frequent
        assert m.values[r].item() == best
        assert m.indices[r].item() == max(i for i, v in enumerate(row) if v == best)  # its last occurrence
    col = torch.tensor([[1, 2, 2, 3, 1], [4, 4, 1, 1, 3]]).mode(0, keepdim=True)
    assert col.values.tolist() == [[1, 2, 1, 1, 1]] and col.indices.tolist() == [[0, 0, 1, 1, 0]]


# ---- counting and bucketing -------------------------------------------------------------------

def test_bincount():
    data = [0, 1, 1, 3, 7, 3, 3]
    c = Counter(data)
    out = torch.bincount(torch.tensor(data))
    assert out.dtype == torch.int64 and out.tolist() == [c[i] for i in range(8)]
    w = [0.5, 1.0, 2.0, 1.0, -1.0, 0.25, 0.25]
    want = [sum(wi for d, wi in zip(data, w) if d == i) for i in range(10)]
    close(torch.bincount(torch.tensor(data), weights=t64(w), minlength=10), want)
    assert torch.bincount(torch.tensor([1]), weights=torch.tensor([1.0])).dtype == torch.float32
    assert torch.bincount(torch.tensor([0, 1]), weights=torch.tensor([1, 2])).dtype == torch.float64
    assert torch.tensor([2, 2]).bincount().tolist() == [0, 0, 2]
    assert torch.bincount(torch.tensor([], dtype=torch.int64)).tolist() == []
    with pytest.raises(RuntimeError, match="1-d non-negative integral"):
        torch.bincount(torch.tensor([0, -1]))
    with pytest.raises(NotImplementedError, match="'Float'"):
        torch.bincount(torch.tensor([0.0]))


def _histogram(values, bins, lo, hi):
    out = [0.0] * bins
    for v in values:
        if not math.isnan(v) and lo <= v <= hi:
            out[min(int((v - lo) * bins / (hi - lo)), bins - 1)] += 1
    return out


def test_histc():
    x = [1.0, 2.0, 1.0, 4.0, 5.0, 0.5, 3.0, -1.0, np.nan]
    close(torch.histc(t64(x), bins=4, min=0, max=3), _histogram(x, 4, 0, 3))
    finite = [v for v in x if not math.isnan(v)]
    close(torch.histc(t64(x), bins=5), _histogram(x, 5, min(finite), max(finite)))
    close(torch.histc(torch.tensor([2.0, 2.0]), bins=4), [0.0, 0.0, 2.0, 0.0])  # widened to [1, 3]
    y = rng.standard_normal(200).astype(np.float32)
    h = torch.tensor(y).histc(bins=7, min=-1, max=1)
    assert h.dtype == torch.float32
    close(h, np.histogram(y, bins=7, range=(-1, 1))[0], rtol=0, atol=1.0)  # edges may round differently
    assert h.sum().item() == ((y >= -1) & (y <= 1)).sum()
    with pytest.raises(NotImplementedError, match="'Long'"):
        torch.histc(torch.tensor([1, 2]), bins=4)
    with pytest.raises(RuntimeError, match="max must be larger than min"):
        torch.histc(t64([1.0]), bins=2, min=4, max=0)


def test_searchsorted_and_bucketize():
    seq = [1, 3, 5, 7, 9]
    vals = [[3, 6, 9], [0, 10, 5]]
    left = torch.searchsorted(torch.tensor(seq), torch.tensor(vals))
    assert left.dtype == torch.int64
    assert left.tolist() == [[bisect.bisect_left(seq, v) for v in row] for row in vals]
    right = torch.searchsorted(torch.tensor(seq), torch.tensor(vals), right=True)
    assert right.tolist() == [[bisect.bisect_right(seq, v) for v in row] for row in vals]
    assert torch.searchsorted(torch.tensor(seq), torch.tensor(vals), side="right").tolist() == right.tolist()
    rows = [[1, 3, 5, 7, 9], [2, 4, 6, 8, 10]]
    nd = torch.searchsorted(torch.tensor(rows), torch.tensor(vals), out_int32=True)
    assert nd.dtype == torch.int32
    assert nd.tolist() == [[bisect.bisect_left(s, v) for v in row] for s, row in zip(rows, vals)]
    s = torch.searchsorted(torch.tensor(seq), 4)
    assert s.ndim == 0 and s.item() == 2
    assert torch.searchsorted(torch.tensor([5.0, 1, 3]), torch.tensor([2.0, 6]),
                              sorter=torch.tensor([1, 2, 0])).tolist() == [1, 3]
    assert torch.searchsorted(torch.tensor([1.0, 3.0]), torch.tensor([2])).tolist() == [1]
    b = torch.bucketize(torch.tensor(vals), torch.tensor(seq), right=True)
    assert b.tolist() == right.tolist()
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
        torch.searchsorted(torch.tensor(seq), torch.tensor([1]), side="left", right=True)
    with pytest.raises(RuntimeError, match="first N-1 dimensions"):
        torch.searchsorted(torch.tensor([[1, 3, 5]]), torch.tensor([[1], [2]]))


# ---- products and distances -------------------------------------------------------------------

def test_tensordot_kron_cross():
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((4, 2, 5))
    want = np.einsum("ijk,jkl->il", a, b)
    close(torch.tensordot(t64(a), t64(b)), want)
    close(torch.tensordot(t64(a), t64(b.transpose(1, 0, 2)), dims=([1, 2], [1, 0])), want)
    close(torch.tensordot(t64(a), t64(b), dims=torch.tensor([[1, 2], [0, 1]])), want)
    assert tuple(torch.tensordot(t64(a), t64(b), dims=0).shape) == (3, 4, 2, 4, 2, 5)
    with pytest.raises(RuntimeError, match="contracted dimensions need to match"):
        torch.tensordot(t64(a), t64(b), dims=([0], [0]))
    p, q = np.array([[1, 2], [3, 4]]), np.array([[0, 1], [1, 0]])
    k = torch.kron(torch.tensor(p), torch.tensor(q))
    assert k.tolist() == [[p[i // 2, j // 2] * q[i % 2, j % 2] for j in range(4)] for i in range(4)]
    assert torch.kron(torch.ones(2, 3), torch.ones(4)).shape == (2, 12)
    u, v = rng.standard_normal((4, 3)), rng.standard_normal((1, 3))

    def np_cross(x, y):
        return np.stack([x[..., 1] * y[..., 2] - x[..., 2] * y[..., 1], x[..., 2] * y[..., 0] - x[..., 0] * y[..., 2],
                         x[..., 0] * y[..., 1] - x[..., 1] * y[..., 0]], -1)
    close(torch.linalg.cross(t64(u), t64(v)), np_cross(u, v))
    close(t64(u.T).cross(t64(np.repeat(v, 4, 0).T), dim=0), np_cross(u, v).T)
    with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
        d = torch.cross(t64(u[:3]), t64(u[1:]))  # the first dimension of size 3: dim 0
    close(d, np_cross(u[:3].T, u[1:].T).T)
    with pytest.raises(RuntimeError, match="dimension -1 must have length 3. Got 2 and 2"):
        torch.linalg.cross(torch.ones(2), torch.ones(2))


def test_cdist():
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    for p in (2.0, 1.0, 0.5, 3.0, np.inf, 0.0):
        want = [[(np.abs(x - y).max() if p == np.inf else (np.abs(x - y) != 0).sum() if p == 0
                  else (np.abs(x - y) ** p).sum() ** (1 / p)) for y in b] for x in a]
        close(torch.cdist(t64(a), t64(b), p=p), want)
    batched = torch.cdist(t64(rng.standard_normal((2, 5, 3))), t64(b))
    assert tuple(batched.shape) == (2, 5, 4)
    # zero distances get a zero gradient (not nan), as in PyTorch
    g, = grads(lambda x: torch.cdist(x, x), a)
    assert np.isfinite(g.numpy()).all()
    with pytest.raises(RuntimeError, match="X1 and X2 must have the same number of columns"):
        torch.cdist(torch.ones(3, 2), torch.ones(3, 3))
    with pytest.raises(RuntimeError, match="only supports at least 2D tensors, X1 got: 1D"):
        torch.cdist(torch.ones(2), torch.ones(3, 2))
    with pytest.raises(RuntimeError, match="floating-point dtypes, X1 got: Long"):
        torch.cdist(torch.ones(2, 2, dtype=torch.long), torch.ones(3, 2, dtype=torch.long))


def test_trapezoid():
    y = rng.standard_normal((3, 5))
    close(torch.trapezoid(t64(y)), [sum((r[i] + r[i + 1]) / 2 for i in range(4)) for r in y])
    x = np.array([0.0, 0.5, 2.0])
    close(torch.trapezoid(t64(y), t64(x), dim=0),
          sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(2)))
    close(torch.trapz(t64(y), dx=0.5), 0.5 * torch.trapezoid(t64(y)).numpy())
    r = torch.trapezoid(torch.tensor([1, 5, 10]), dx=2)
    assert r.dtype == torch.float32 and r.item() == 21.0
    assert torch.trapezoid(torch.tensor([1.0, 5.0, 10.0]), torch.tensor([1, 3, 6])).item() == 28.5
    close(torch.cumulative_trapezoid(t64([1.0, 5.0, 10.0])), [3.0, 10.5])
    with pytest.raises(RuntimeError, match="one `x` value for each sample point"):
        torch.trapezoid(torch.ones(3, 4), torch.arange(5.0))


# ---- shapes and fills -------------------------------------------------------------------------

def test_atleast_block_diag_cartesian_prod_tri_indices():
    assert torch.atleast_1d(t64(1.0)).shape == (1,)
    assert torch.atleast_2d(torch.tensor([1, 2])).shape == (1, 2)
    assert torch.atleast_3d(torch.tensor([1, 2])).shape == (1, 2, 1)
    assert torch.atleast_3d(torch.ones(2, 3)).shape == (2, 3, 1)
    assert torch.atleast_3d(t64(1.0)).shape == (1, 1, 1)
    big = torch.ones(2, 3, 4, 5)
    assert torch.atleast_3d(big) is big
    pair = torch.atleast_2d(t64(1.0), torch.tensor([1]))
    assert isinstance(pair, tuple) and [tuple(p.shape) for p in pair] == [(1, 1), (1, 1)]
    assert isinstance(torch.atleast_1d([torch.tensor(1)]), tuple)
    bd = torch.block_diag(torch.tensor([[1, 2]]), torch.tensor(3.0), torch.tensor([4, 5]))
    assert bd.dtype == torch.float32
    assert bd.tolist() == [[1, 2, 0, 0, 0], [0, 0, 3, 0, 0], [0, 0, 0, 4, 5]]
    assert torch.block_diag().shape == (1, 0)
    cp = torch.cartesian_prod(torch.tensor([1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7]))
    assert cp.tolist() == [list(t) for t in itertools.product([1, 2], [3, 4, 5], [6, 7])]
    assert torch.cartesian_prod(torch.tensor([1, 2])).tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.cartesian_prod(torch.tensor([1]), torch.tensor([1.0]))
    for row, col, off in ((3, 4, 1), (4, 3, -1), (4, 4, 0), (2, 5, -3)):
        lo = [(i, j) for i in range(row) for j in range(col) if j - i <= off]
        up = [(i, j) for i in range(row) for j in range(col) if j - i >= off]
        tl, tu = torch.tril_indices(row, col, off), torch.triu_indices(row, col, off)
        assert tl.dtype == torch.int64 and tl.shape == (2, len(lo))
        assert list(zip(*tl.tolist())) == lo and list(zip(*tu.tolist())) == up


def test_index_fill():
    x = rng.standard_normal((2, 3))
    want = x.copy()
    want[:, [2, 0]] = 5.0
    close(torch.index_fill(t64(x), 1, torch.tensor([-1, 0]), 5.0), want)
    assert torch.zeros(2, 3, dtype=torch.long).index_fill(1, torch.tensor([2]), 1.7).tolist() == [[0, 0, 1]] * 2
    close(t64(x).index_fill(1, torch.tensor(2), t64(7.0))[:, 2], [7.0, 7.0])
    y = t64(x)
    version = y._version
    assert y.index_fill_(0, torch.tensor([1]), -1.0) is y and y._version == version + 1
    close(y[1], [-1.0] * 3)
    with pytest.raises(RuntimeError, match="Index has to be a vector/scalar"):
        t64(x).index_fill(1, torch.tensor([[2]]), 1.0)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        t64(x).index_fill(1, torch.tensor([3]), 1.0)
    with pytest.raises(RuntimeError, match="only supports a 0-dimensional value tensor"):
        t64(x).index_fill(1, torch.tensor([2]), t64([1.0, 2.0]))


def test_masked_scatter_and_put():
    out = torch.zeros(2, 3).masked_scatter(torch.tensor([True, False, True]), torch.arange(10.0))
    assert out.tolist() == [[0.0, 0.0, 1.0], [2.0, 0.0, 3.0]]
    x, src = rng.standard_normal((3, 4)), rng.standard_normal(12)
    mask = rng.random((3, 4)) < 0.5
    want = x.copy()
    want[mask] = src[:mask.sum()]
    close(t64(x).masked_scatter(torch.tensor(mask), t64(src)), want)
    xs, ss = t64(x, True), t64(src, True)
    gx, gs = torch.autograd.grad(xs.masked_scatter(torch.tensor(mask), ss).sum(), [xs, ss])
    close(gx, ~mask)
    close(gs, np.arange(12) < mask.sum())
    y = t64(x)
    y.masked_scatter_(torch.tensor(mask), t64(src))
    close(y, want)
    with pytest.raises(RuntimeError, match="Number of elements of source < number of ones in mask"):
        torch.zeros(2, 3).masked_scatter(torch.tensor([True, False, True]), torch.arange(3.0))
    with pytest.raises(RuntimeError, match="only supports boolean masks, but got mask with dtype Long"):
        torch.zeros(2, 3).masked_scatter(torch.tensor([1, 0, 1]), torch.arange(10.0))
    with pytest.raises(RuntimeError, match="expected self and source to have same dtypes"):
        torch.zeros(2, 3).masked_scatter(torch.tensor([True, False, True]), torch.arange(10))

    p = torch.zeros(2, 3)
    assert p.put_(torch.tensor([0, -1, 2]), torch.tensor([1.0, 2, 3])) is p
    assert p.tolist() == [[1.0, 0.0, 3.0], [0.0, 0.0, 2.0]]
    acc = torch.zeros(2, 3).put(torch.tensor([[0, 0], [2, 5]]), torch.tensor([[1.0, 2], [3, 4]]), accumulate=True)
    assert acc.tolist() == [[3.0, 0.0, 3.0], [0.0, 0.0, 4.0]]
    with pytest.raises(IndexError, match="tried to access index 6 on a tensor of 6 elements"):
        torch.zeros(2, 3).put_(torch.tensor([0, 6]), torch.tensor([1.0, 2]))
    with pytest.raises(IndexError, match="source.numel\\(\\) = 3, index.numel\\(\\) = 2"):
        torch.zeros(2, 3).put_(torch.tensor([0, 1]), torch.tensor([1.0, 2, 3]))


# ---- graphc.linalg ----------------------------------------------------------------------------

def _leibniz_det(a):
    n = a.shape[0]
    total = 0.0
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        total += (-1) ** inversions * math.prod(a[i, perm[i]] for i in range(n))
    return total


def _well(*shape):
    return rng.standard_normal(shape) + 3 * np.eye(shape[-1])


def test_inv_det_slogdet():
    a = _well(2, 4, 4)
    inv = torch.linalg.inv(t64(a))
    close(inv.numpy() @ a, np.broadcast_to(np.eye(4), (2, 4, 4)), atol=1e-12)
    close(torch.inverse(t64(a[0])), inv[0])
    close(t64(a[0]).inverse(), inv[0])
    dets = [_leibniz_det(m) for m in a]
    close(torch.linalg.det(t64(a)), dets)
    close(torch.det(t64(a[1])), dets[1])
    neg = a[0] * np.array([1.0, 1.0, 1.0, -1.0])
    sign, logabs = torch.linalg.slogdet(t64(neg))
    assert sign.item() == np.sign(_leibniz_det(neg))
    close(logabs, math.log(abs(_leibniz_det(neg))))
    assert math.isnan(torch.logdet(t64(neg)).item())
    singular = t64([[1.0, 2.0], [2.0, 4.0]])
    assert torch.linalg.det(singular).item() == 0.0
    s = torch.slogdet(singular)
    assert s.sign.item() == 0 and s.logabsdet.item() == -np.inf
    assert torch.linalg.det(torch.ones(3, 0, 0)).tolist() == [1.0, 1.0, 1.0]
    assert torch.linalg.inv(torch.ones(3, 0, 0)).shape == (3, 0, 0)
    assert torch.linalg.inv(torch.eye(2)).dtype == torch.float32
    # gradients: d det(A) = det(A) A^-T, d log|det A| = A^-T
    g, = grads(torch.linalg.det, a[0])
    close(g, dets[0] * np.linalg.inv(a[0]).T, rtol=1e-9)
    g, = grads(lambda m: torch.linalg.slogdet(m).logabsdet, a[0])
    close(g, np.linalg.inv(a[0]).T, rtol=1e-9)


def test_linalg_errors():
    L = torch.linalg
    assert issubclass(L.LinAlgError, RuntimeError)
    with pytest.raises(L.LinAlgError, match=r"^linalg.inv: The diagonal element 2 is zero, the inversion could "
                                            "not be completed because the input matrix is singular."):
        L.inv(t64([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(L.LinAlgError, match=r"linalg.inv: \(Batch element 1\): The diagonal element 2 is zero"):
        L.inv(t64([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [2.0, 4.0]]]))
    with pytest.raises(RuntimeError, match="A must be batches of square matrices, but they are 2 by 3 matrices"):
        L.inv(torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="linalg.inv: Expected a floating point or complex tensor as input. Got Long"):
        L.inv(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="Low precision dtypes not supported. Got Half"):
        L.inv(torch.ones(2, 2, dtype=torch.float16))
    with pytest.raises(RuntimeError, match="linalg.det: The input tensor A must have at least 2 dimensions."):
        L.det(torch.ones(3))
    with pytest.raises(L.LinAlgError, match=r"\(Batch element 1\): The factorization could not be completed because "
                                            r"the input is not positive-definite \(the leading minor of order 2"):
        L.cholesky(t64([[[4.0, 2.0], [2.0, 3.0]], [[1.0, 2.0], [2.0, 1.0]]]))
    with pytest.raises(L.LinAlgError, match="torch.linalg.solve: The solver failed because the input matrix is singular."):
        L.solve(t64([[1.0, 2.0], [2.0, 4.0]]), t64([1.0, 1.0]))
    with pytest.raises(RuntimeError, match=r"Incompatible shapes of A and B for the equation AX = B \(3x3 and 2x1\)"):
        L.solve(torch.eye(3), torch.ones(2))
    with pytest.raises(RuntimeError, match="Expected A and B to have the same dtype, but found A of type Double and B "
                                           "of type Float instead"):
        L.solve(torch.eye(2, dtype=torch.float64), torch.ones(2))
    with pytest.raises(RuntimeError, match="qr received unrecognized mode 'x'"):
        L.qr(torch.ones(3, 2), mode="x")
    with pytest.raises(RuntimeError, match="Expected UPLO argument to be 'L' or 'U', but got X"):
        L.eigh(torch.eye(2), UPLO="X")
    with pytest.raises(RuntimeError, match="linalg.matrix_power: A must be batches of square matrices"):
        L.matrix_power(torch.ones(2, 3), 2)
    # decompositions whose gradient PyTorch refuses
    a = t64(rng.standard_normal((3, 2)), True)
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > ncols"):
        L.qr(a, mode="complete").Q.sum().backward()
    with pytest.raises(RuntimeError, match="which is not computed when mode='r'"):
        L.qr(a, mode="r").R.sum().backward()


def test_solve_and_solve_triangular():
    a, b = _well(2, 3, 3), rng.standard_normal((3, 2))
    x = torch.linalg.solve(t64(a), t64(b))
    assert x.shape == (2, 3, 2)
    close(a @ x.numpy(), np.broadcast_to(b, (2, 3, 2)), atol=1e-12)
    v = torch.linalg.solve(t64(a), t64(b[:, 0]))           # a vector right-hand side (n,)
    assert v.shape == (2, 3)
    close(np.einsum("bij,bj->bi", a, v.numpy()), np.broadcast_to(b[:, 0], (2, 3)), atol=1e-12)
    vb = torch.linalg.solve(t64(a), t64(b.T))              # (batch, n): a batch of vectors
    close(np.einsum("bij,bj->bi", a, vb.numpy()), b.T, atol=1e-12)
    xl = torch.linalg.solve(t64(a[0]), t64(b.T), left=False)  # X A = B
    close(xl.numpy() @ a[0], b.T, atol=1e-12)
    assert torch.linalg.solve(torch.eye(2).expand(3, 2, 2), torch.ones(2, 1, 2, 2)).shape == (2, 3, 2, 2)
    t = torch.linalg.solve_triangular(t64(a[0]), t64(b), upper=True)
    close(np.triu(a[0]) @ t.numpy(), b, atol=1e-12)
    tu = torch.linalg.solve_triangular(t64(a[0]), t64(b), upper=False, unitriangular=True)
    close((np.tril(a[0], -1) + np.eye(3)) @ tu.numpy(), b, atol=1e-12)


def test_cholesky_qr():
    m = rng.standard_normal((2, 4, 4))
    spd = m @ m.transpose(0, 2, 1) + 4 * np.eye(4)
    L = torch.linalg.cholesky(t64(spd)).numpy()
    assert np.allclose(np.triu(L, 1), 0) and (np.diagonal(L, 0, 1, 2) > 0).all()
    close(L @ L.transpose(0, 2, 1), spd, atol=1e-12)
    Up = torch.linalg.cholesky(t64(spd), upper=True)
    close(Up, L.transpose(0, 2, 1))
    close(torch.cholesky(t64(spd[0])), L[0])
    close(t64(spd[0]).cholesky(upper=True), L[0].T)
    ex = torch.linalg.cholesky_ex(t64([[1.0, 2.0], [2.0, 1.0]]))
    assert ex.info.item() == 2 and ex.info.dtype == torch.int32
    for shape, mode in (((5, 3), "reduced"), ((5, 3), "complete"), ((3, 5), "reduced"), ((2, 4, 4), "reduced")):
        a = rng.standard_normal(shape)
        q, r = torch.linalg.qr(t64(a), mode=mode)
        q, r = q.numpy(), r.numpy()
        k = q.shape[-1]
        close(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(k), q.shape[:-2] + (k, k)), atol=1e-12)
        assert np.allclose(np.tril(r, -1), 0)
        close(q @ r, a, atol=1e-12)
    q, r = torch.linalg.qr(t64(rng.standard_normal((5, 3))), mode="r")
    assert q.shape == (0,) and r.shape == (3, 3)
    old = torch.qr(t64(rng.standard_normal((4, 2))), some=False)
    assert type(old).__name__ == "qr" and old.Q.shape == (4, 4) and old.R.shape == (4, 2)


def test_svd_eigh():
    a = rng.standard_normal((2, 5, 3))
    U, S, Vh = torch.linalg.svd(t64(a), full_matrices=False)
    assert U.shape == (2, 5, 3) and S.shape == (2, 3) and Vh.shape == (2, 3, 3)
    close((U.numpy() * S.numpy()[:, None, :]) @ Vh.numpy(), a, atol=1e-12)
    s = S.numpy()
    assert (s[:, :-1] >= s[:, 1:]).all() and (s >= 0).all()
    # the singular values are the square roots of the eigenvalues of A^T A
    close(np.sort(s ** 2, -1), np.sort([np.roots(np.poly(m.T @ m)).real for m in a], -1), rtol=1e-8)
    close(torch.linalg.svdvals(t64(a)), s)
    Uf, Sf, Vhf = torch.linalg.svd(t64(a[0]))
    assert Uf.shape == (5, 5) and Vhf.shape == (3, 3)
    close(Uf.numpy().T @ Uf.numpy(), np.eye(5), atol=1e-12)
    old = torch.svd(t64(a[0]))
    assert type(old).__name__ == "svd" and old.V.shape == (3, 3)
    close((old.U.numpy() * old.S.numpy()) @ old.V.numpy().T, a[0], atol=1e-12)
    assert not torch.svd(t64(a[0]), compute_uv=False).U.numpy().any()
    m = rng.standard_normal((4, 4))
    sym = m + m.T
    w, V = torch.linalg.eigh(t64(sym))
    w, V = w.numpy(), V.numpy()
    assert (np.diff(w) > 0).all()
    close(sym @ V, V * w, atol=1e-12)
    close(V.T @ V, np.eye(4), atol=1e-12)
    close(torch.linalg.eigvalsh(t64(sym)), w)
    # UPLO: only that triangle is read
    close(torch.linalg.eigvalsh(t64(np.triu(sym)), UPLO="U"), w)
    close(torch.linalg.eigvalsh(t64(np.tril(sym))), w)


def test_matrix_rank_pinv_matrix_power():
    L = torch.linalg
    assert L.matrix_rank(t64([[1.0, 2.0], [2.0, 4.0]])).item() == 1
    low = rng.standard_normal((3, 5, 2)) @ rng.standard_normal((3, 2, 4))
    r = L.matrix_rank(t64(low))
    assert r.dtype == torch.int64 and r.tolist() == [2, 2, 2]
    d = torch.tensor(np.diag([1.0, 0.5, 1e-9]), dtype=torch.float32)  # rtol = eps * n
    assert L.matrix_rank(d).item() == 2 and L.matrix_rank(d, hermitian=True).item() == 2
    assert L.matrix_rank(torch.eye(3), atol=0.5, rtol=0.0).item() == 3
    assert L.matrix_rank(t64(np.diag([1.0, 0.5, 0.2])), atol=0.3).item() == 2
    a = rng.standard_normal((4, 3))
    x = L.pinv(t64(a)).numpy()
    # the Moore-Penrose conditions
    close(a @ x @ a, a, atol=1e-12)
    close(x @ a @ x, x, atol=1e-12)
    close((a @ x).T, a @ x, atol=1e-12)
    close((x @ a).T, x @ a, atol=1e-12)
    dd = t64(np.diag([2.0, 0.5, 1e-2]))
    want = np.diag([0.5, 2.0, 0.0])
    close(L.pinv(dd, atol=0.1), want)
    close(L.pinv(dd, rtol=0.1), want)
    close(torch.pinverse(dd, rcond=0.1), want)
    close(L.pinv(dd, hermitian=True), np.diag([0.5, 2.0, 100.0]))
    m = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    close(L.matrix_power(t64(m), 3), m @ m @ m)
    close(t64(m).matrix_power(-2), np.linalg.inv(m @ m), rtol=1e-9)
    ints = torch.tensor([[1, 2], [3, 4]])
    assert L.matrix_power(ints, 3).tolist() == [[37, 54], [81, 118]]
    assert L.matrix_power(ints, 0).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(RuntimeError, match="Expected a floating point"):
        L.matrix_power(ints, -1)
    close(L.multi_dot([t64(a[:, 0]), t64(a), t64(m)]), a[:, 0] @ a @ m)
    close(L.vecdot(t64(a), t64(a[0])), a @ a[0])


def test_new_ops_compile_like_eager():
    def f(x, a):
        y = torch.cumprod(x, 1).sum() + torch.logcumsumexp(x, 1).sum() + torch.cummax(x, 1).values.sum()
        y = y + torch.median(x, 1).values.sum() + torch.lgamma(x.abs() + 1).sum() + torch.cdist(x, x).sum()
        y = y + torch.linalg.inv(a).sum() + torch.linalg.det(a) + torch.linalg.solve(a, x[:, :3].mT).sum()
        y = y + torch.linalg.eigvalsh(a + a.mT).sum() + torch.linalg.svdvals(a).sum() + torch.linalg.qr(a).R.sum()
        return y, torch.histc(x, 5, -1, 1), torch.searchsorted(torch.tensor([-0.5, 0.0, 0.5]), x)

    x = t64(rng.standard_normal((3, 5)), True)
    a = t64(_well(3, 3), True)
    eager = f(x, a)
    compiled = torch.compile(f, fullgraph=True)(x, a)
    for e, c in zip(eager, compiled):
        close(c, e.detach().numpy(), rtol=1e-9)
    for e, c in zip(torch.autograd.grad(eager[0], [x, a]), torch.autograd.grad(compiled[0], [x, a])):
        close(c, e.numpy(), rtol=1e-8)


# ---- packed sequences -------------------------------------------------------------------------

def test_pad_sequence_padding_side_error():
    with pytest.raises(RuntimeError, match="Expected padding_side to be one of left or right, but got middle."):
        nn.utils.rnn.pad_sequence([torch.ones(2)], padding_side="middle")


def test_rnn_packed_input_gives_packed_output_and_per_sequence_final_state():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 4, batch_first=True).double()
    w_ih, w_hh = rnn.weight_ih_l0.detach().numpy(), rnn.weight_hh_l0.detach().numpy()
    b = rnn.bias_ih_l0.detach().numpy() + rnn.bias_hh_l0.detach().numpy()
    lengths = [5, 3, 2]  # sorted: enforce_sorted=True
    x = rng.standard_normal((3, 5, 3))
    h0 = rng.standard_normal((1, 3, 4))
    packed = nn.utils.rnn.pack_padded_sequence(t64(x), torch.tensor(lengths), batch_first=True)
    out, h_n = rnn(packed, t64(h0))
    assert isinstance(out, nn.utils.rnn.PackedSequence)
    assert out.batch_sizes.tolist() == [3, 3, 2, 1, 1] and out.sorted_indices is None
    padded, lens = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, padding_value=-7.0)
    assert lens.tolist() == lengths
    for i, n in enumerate(lengths):
        h = h0[0, i]
        for step in range(n):
            h = np.tanh(w_ih @ x[i, step] + w_hh @ h + b)
            close(padded[i, step], h, atol=1e-12)
        close(padded[i, n:], np.full((5 - n, 4), -7.0))
        close(h_n[0, i], h, atol=1e-12)     # the state after the sequence's own last step


def test_grad_fn_names():
    x = t64(np.eye(3) + 1, True)
    names = {
        "CumprodBackward0": torch.cumprod(x, 0), "LogcumsumexpBackward0": torch.logcumsumexp(x, 0),
        "CummaxBackward0": torch.cummax(x, 0).values, "CumminBackward0": torch.cummin(x, 0).values,
        "LogaddexpBackward0": torch.logaddexp(x, x), "XlogyBackward0": torch.xlogy(x, x),
        "LgammaBackward0": torch.lgamma(x), "DigammaBackward0": torch.digamma(x),
        "PolygammaBackward0": torch.polygamma(1, x), "ErfinvBackward0": torch.erfinv(x / 3),
        "MedianBackward0": torch.median(x), "MedianBackward1": torch.median(x, 0).values,
        "CdistBackward0": torch.cdist(x, x), "LinalgInvExBackward0": torch.linalg.inv(x),
        "LinalgDetBackward0": torch.linalg.det(x), "LinalgSolveExBackward0": torch.linalg.solve(x, x[0]),
        "LinalgCholeskyExBackward0": torch.linalg.cholesky(x), "LinalgEighBackward0": torch.linalg.eigvalsh(x),
        "LinalgSvdBackward0": torch.linalg.svdvals(x), "LinalgQrBackward0": torch.linalg.qr(x).R,
        "SpecialXlog1PyBackward0": torch.special.xlog1py(x, x),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name
