"""The numpy lowerings that are not one numpy call (issue #9): sigmoid and erf as eager mode and
generated code compute them (``ir.prims.sigmoid_values``/``erf_values``: numpy passes on large
float32 host arrays, scipy elsewhere), against float64 references with special values; compiled
equal to eager on arrays large enough for the numpy passes; the stable softplus behind logsigmoid
at its edges; reductions calling the ufunc's reduce; the lowerings benchmark's smoke run."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.special as sc

import graphc
import graphc.nn.functional as F
from graphc.ir import prims as P

REPO = Path(__file__).resolve().parents[1]
LARGE = 2 * P.NUMPY_PASSES_MIN_SIZE  # takes the numpy passes (float32)
MID = 2 * P.SIGMOID_NUMPY_PASSES_MIN_SIZE  # sigmoid's numpy passes, erf's scipy ufunc
SMALL = 64                           # takes scipy's ufunc
SPECIAL = [0.0, -0.0, 1e-38, -1e-38, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 1.0, 3.9, -3.9, 4.0, -4.0,
           20.0, -20.0, 87.0, -87.0, -88.5, -89.0, -100.0, -104.0, -110.0, 1e4, -1e4, 3e38, -3e38,
           np.inf, -np.inf, np.nan]
FLT_MIN = float(np.finfo(np.float32).tiny)


def _inputs(size: int, lo: float, hi: float) -> np.ndarray:
    """The special values, then a grid over [lo, hi]: ``size`` float32 elements in all."""
    grid = np.linspace(lo, hi, size - len(SPECIAL))
    return np.concatenate([SPECIAL, grid]).astype(np.float32)


def _assert_ulp(got, want, ulps: float, what: str) -> None:
    """Within ``ulps`` float32 ulps of the float64 reference where it is a normal float32 number,
    within FLT_MIN where it is smaller; nan exactly where the reference is nan; infinities equal."""
    got, want = got.astype(np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: nan")
    ok = ~np.isnan(want)
    got, want = got[ok], want[ok]
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"{what}: infinities")
    normal = ~inf & (np.abs(want) >= FLT_MIN)
    ulp = np.spacing(np.abs(want[normal]).astype(np.float32)).astype(np.float64)
    err = np.abs(got[normal] - want[normal]) / ulp
    assert err.max() <= ulps, f"{what}: {err.max():.1f} ulp"
    assert np.all(np.abs(got[~inf & ~normal] - want[~inf & ~normal]) <= FLT_MIN), f"{what}: tiny results"


@pytest.mark.parametrize("size", [SMALL, MID, LARGE])
def test_sigmoid_values_against_float64(size):
    x = _inputs(size, -120, 120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no floating-point warning escapes (exp overflows)
        y = P.sigmoid_values(x)
    assert y.dtype == np.float32
    _assert_ulp(y, sc.expit(x.astype(np.float64)), 4, f"sigmoid, {size} elements")
    limits = {-np.inf: 0.0, -1e4: 0.0, -110.0: 0.0, np.inf: 1.0, 1e4: 1.0, 3e38: 1.0, 0.0: 0.5}
    for v, want in limits.items():
        assert y[SPECIAL.index(v)] == want, v
    assert np.isnan(y[SPECIAL.index(np.nan)])


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_erf_values_against_float64(size):
    x = _inputs(size, -6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = P.erf_values(x)
    assert y.dtype == np.float32
    _assert_ulp(y, sc.erf(x.astype(np.float64)), 8, f"erf, {size} elements")
    # +-1 exactly once saturated (the numpy passes: from |x| = 4.09 on, 1 ulp short on [3.92, 4.09)),
    # through the overflow of their polynomial (|x| > ~6e3) to +-inf
    for v, want in {np.inf: 1.0, -np.inf: -1.0, 1e4: 1.0, -1e4: -1.0, 20.0: 1.0, -20.0: -1.0, 3e38: 1.0,
                    -3e38: -1.0}.items():
        assert y[SPECIAL.index(v)] == want, v
    assert y[1] == 0 and np.signbit(y[1])  # erf(-0.0) is -0.0 (SPECIAL[1])
    assert np.isnan(y[SPECIAL.index(np.nan)])
    # near 0 erf(x) ~ 2x/sqrt(pi): relatively accurate there too
    tiny = np.full(LARGE, 1e-30, np.float32)
    np.testing.assert_allclose(P.erf_values(tiny), 2 / np.sqrt(np.pi) * 1e-30, rtol=1e-6)


def test_erf_values_dense_float32_grid():
    """The numpy passes on every 1024th float32 value of [-6, 6] and on a geometric grid down to the
    smallest normal number (relative accuracy near 0, signs, -0.0): within 8 ulp of scipy's float64
    erf everywhere, within 5e-7 relatively where |erf| >= FLT_MIN."""
    bits = np.arange(0, np.float32(6).view(np.int32), 1024, dtype=np.int32)
    pos = np.concatenate([bits.view(np.float32), np.geomspace(FLT_MIN, 1e-3, 100_000).astype(np.float32)])
    x = np.concatenate([pos, -pos, [6.0, -6.0, 1e4, np.inf, -np.inf, np.nan]]).astype(np.float32)
    assert x.size >= LARGE and x.size > 1_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = P.erf_values(x)
    want = sc.erf(x.astype(np.float64))
    _assert_ulp(y, want, 8, "erf, dense grid")
    normal = np.abs(want) >= FLT_MIN
    rel = np.abs(y[normal] - want[normal]) / np.abs(want[normal])
    assert rel.max() <= 5e-7, rel.max()
    np.testing.assert_array_equal(np.signbit(y[:-1]), np.signbit(x[:-1]))  # -0.0 included


@pytest.mark.parametrize("fn", [P.sigmoid_values, P.erf_values], ids=["sigmoid", "erf"])
@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_out_argument_in_place_and_other_dtypes(fn, size):
    x = _inputs(size, -10, 10)
    want = fn(x)
    out = np.empty_like(x)
    assert fn(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    same = x.copy()
    assert fn(same, out=same) is same  # generated code may write over a dying operand
    np.testing.assert_array_equal(same, want)
    for dtype in (np.float64, np.float16):  # scipy's ufunc at any size
        with np.errstate(over="ignore"):  # 1e4 and beyond are inf in float16
            y = fn(x.astype(dtype))
        ref = (sc.expit if fn is P.sigmoid_values else sc.erf)(x.astype(np.float64))
        np.testing.assert_allclose(y.astype(np.float64), ref, rtol=2e-3 if dtype == np.float16 else 1e-12,
                                   atol=1e-3 if dtype == np.float16 else 0)


_SPECIAL_FNS = {
    "sigmoid": graphc.sigmoid, "erf": graphc.erf, "erfc": graphc.erfc, "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu, "softplus": F.softplus,
    "logsigmoid": F.logsigmoid, "tanh": graphc.tanh,
}


@pytest.mark.parametrize("size", [MID, LARGE])
@pytest.mark.parametrize("name", list(_SPECIAL_FNS))
def test_compiled_equals_eager_on_large_arrays(name, size):
    fn = _SPECIAL_FNS[name]
    x = graphc.from_numpy(_inputs(size, -30, 30).reshape(16, -1))
    want = fn(x).numpy()
    got = graphc.compile(fn)(x).numpy()
    if name == "gelu" and size >= P.NUMPY_PASSES_MIN_SIZE:
        # compiled, gelu is x / (1 + exp2(x H(x^2))) (lowered_rewrites): checked against float64
        # x * Phi(x), where eager's 0.5 x (1 + erf(x / sqrt 2)) cancels for x < 0 (3e-7 off)
        x64 = x.numpy().astype(np.float64)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = np.isfinite(x64)
        np.testing.assert_array_equal(got[~ok], want[~ok])  # inf and nan
        err = np.abs(got[ok] - x64[ok] * sc.ndtr(x64[ok]))
        ulp = np.spacing(np.abs(got[ok])).astype(np.float64)
        assert np.all(err <= 3 * ulp + 2e-7 * (x64[ok] < 0) + FLT_MIN), err.max()
        return
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "rsqrt", "reciprocal"])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("size", [SMALL, 1 << 18])  # 1 << 18: a kernel run in pieces
def test_rounding_and_reciprocals_compiled_equal_eager(name, dtype, size):
    """ufunc lowerings with out= on floats; integers are their own floor (exactly, beyond 2**53
    too); rsqrt and reciprocal at 0, -0, negatives, inf and nan."""
    rng = np.random.default_rng(0)
    if dtype == "int64":
        x = rng.integers(-2**62, 2**62, size, dtype=np.int64)
        x[:3] = [2**53 + 1, -(2**53 + 1), 0]
    else:
        x = (rng.standard_normal(size) * 10).astype(np.float32)
        x[:len(SPECIAL)] = SPECIAL
        x[len(SPECIAL):len(SPECIAL) + 4] = [2.5, -2.5, 0.5, -1.5]  # round half to even
    t = graphc.from_numpy(x)
    fn = getattr(graphc, name)
    want = fn(t).numpy()
    got = graphc.compile(fn)(t).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_logsigmoid_edges_and_gradients():
    """logsigmoid = -softplus(-x) through the stable softplus (one exp, one log1p): values and
    first and second derivatives against float64 references, at 0 and at the extremes."""
    v = np.array([-np.inf, -1e4, -100, -20, -1, -0.0, 0.0, 1e-8, 1, 20, 100, 1e4, np.inf], np.float64)
    x = graphc.tensor(v.astype(np.float32), requires_grad=True)
    y = F.logsigmoid(x)
    (g,) = graphc.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = graphc.autograd.grad(g.sum(), x)
    s = sc.expit(-v)
    tiny = 1e-43  # float32 subnormals (at x = 100) are this coarse
    np.testing.assert_allclose(y.detach().numpy(), -np.logaddexp(0, -v), rtol=1e-6, atol=tiny)
    np.testing.assert_allclose(g.detach().numpy(), s, rtol=1e-6, atol=tiny)
    np.testing.assert_allclose(gg.numpy(), -s * (1 - s), rtol=1e-5, atol=tiny)
    assert np.isnan(F.logsigmoid(graphc.tensor([np.nan])).numpy()).all()


@pytest.mark.parametrize("method,ufunc", [("sum", "add"), ("amax", "maximum"), ("amin", "minimum"),
                                          ("prod", "multiply")])
def test_reductions_call_the_ufunc_reduce(method, ufunc):
    # over dim 0 (a float sum over the last dim is a matrix-vector product: see below)
    x = graphc.from_numpy(np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32))
    fn = lambda t: getattr(t, method)(dim=0) if method != "amax" and method != "amin" else getattr(graphc, method)(t, dim=0)
    code = graphc.explain(graphc.compile(fn), x).code
    assert f"np.{ufunc}.reduce(" in code, code
    np.testing.assert_allclose(graphc.compile(fn)(x).numpy(), fn(x).numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int32"])
@pytest.mark.parametrize("size", [SMALL, 1 << 18])  # 1 << 18 floats: the relu inside a kernel in pieces
def test_relu_clips_floats_keeping_negative_zero(dtype, size):
    """relu of a float tensor is the clip ufunc (eager and compiled): -0.0 stays -0.0 as in
    PyTorch, nan stays nan, infinities clip as numbers; integers take np.maximum. Compared with
    PyTorch, sign of zero included, and the gradient at the special values."""
    rng = np.random.default_rng(0)
    if dtype == "int32":
        x = rng.integers(-100, 100, size).astype(np.int32)
    else:
        x = (rng.standard_normal(size) * 10).astype(dtype)
        x[:6] = [-0.0, 0.0, np.nan, np.inf, -np.inf, -1e-30]
    t = graphc.from_numpy(x)
    fn = lambda a: graphc.relu(a * 1) if size > SMALL else graphc.relu(a)
    code = graphc.explain(graphc.compile(fn), t).code
    assert ("_clip(" in code) == (dtype != "int32"), code
    want = fn(t).numpy()
    got = graphc.compile(fn)(t).numpy()
    assert got.dtype == want.dtype == x.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    torch = pytest.importorskip("torch")
    ref = torch.relu(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))  # relu(-0.0) is -0.0 in PyTorch
    if dtype == "float32":
        tg = graphc.from_numpy(x.copy()).requires_grad_()
        graphc.relu(tg).sum().backward()
        tt = torch.from_numpy(x.copy()).requires_grad_()
        torch.relu(tt).sum().backward()
        keep = ~np.isnan(x)  # at nan PyTorch's gradient is 1 (nan <= 0 is false), graphc's 0: not this test's
        np.testing.assert_array_equal(tg.grad.numpy()[keep], tt.grad.numpy()[keep])


def _rows_with_specials(shape, dtype) -> np.ndarray:
    """Normal values, with rows holding nan, +-inf, both infinities (nan), -0.0 only, huge values."""
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    rows = x.reshape(-1, shape[-1])
    rows[0, 3] = np.nan
    rows[1, 0] = np.inf
    rows[2, -1] = -np.inf
    rows[3, :2] = [np.inf, -np.inf]
    rows[4] = -0.0
    rows[5, :] = np.finfo(dtype).max / 4  # overflows to inf, as np.add.reduce does
    return x


@pytest.mark.parametrize("shape", [(16, 256), (4, 6, 33), (80, 1024)])  # (80, 1024): einsum
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_over_last_dim_as_matrix_vector_product(shape, dtype, keepdim):
    """A float sum over the last dim is ``x @ ones`` (BLAS): compiled equals eager (numpy's pairwise
    sum) and PyTorch, with nan, infinities and -0.0 rows; a transposed operand (a strided view)
    and long rows take np.add.reduce."""
    x = graphc.from_numpy(_rows_with_specials(shape, dtype))
    fn = lambda t: t.sum(dim=-1, keepdim=keepdim)
    code = graphc.explain(graphc.compile(fn), x).code
    assert "_sum_rows(" in code, code
    with np.errstate(all="ignore"):  # eager sum warns of the overflow (compiled code does not)
        want = fn(x).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow stays quiet in compiled code
        got = graphc.compile(fn)(x).numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 10, equal_nan=True)
    assert not np.signbit(got.reshape(-1)[4])  # a row of -0.0 sums to +0.0, as in numpy and PyTorch
    torch = pytest.importorskip("torch")
    ref = torch.from_numpy(x.numpy()).sum(dim=-1, keepdim=keepdim).numpy()
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * 10, equal_nan=True)

    # a strided view of the operand (a transpose): the runtime check takes np.add.reduce
    xt = x.transpose(-1, -2).contiguous()
    g = lambda t: t.transpose(-1, -2).sum(dim=-1, keepdim=keepdim)
    assert "_sum_rows(in_x0.transpose(" in graphc.explain(graphc.compile(g), xt).code
    with np.errstate(all="ignore"):
        want_t = g(xt).numpy()
    np.testing.assert_allclose(graphc.compile(g)(xt).numpy(), want_t, rtol=rtol, atol=rtol * 10, equal_nan=True)


def test_sum_rows_strided_and_long_rows_keep_the_ufunc():
    from graphc.codegen import numpy_codegen, numpy_runtime
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.testing.assert_array_equal(numpy_runtime.sum_rows(x.T, False), x.T.sum(-1))  # strided
    out = np.empty((4, 1), np.float32)
    assert numpy_runtime.sum_rows(x, True, out=out) is out
    np.testing.assert_array_equal(out, x.sum(-1, keepdims=True))
    big = np.random.default_rng(0).standard_normal((3, numpy_runtime.SUM_ROWS_BLAS_MAX // 3 + 1)).astype(np.float32)
    for keep in (False, True):  # einsum past the size where BLAS would thread
        want = big.astype(np.float64).sum(-1, keepdims=keep)
        np.testing.assert_allclose(numpy_runtime.sum_rows(big, keep), want, rtol=1e-5)
        out = np.empty(want.shape, np.float32)
        assert numpy_runtime.sum_rows(big, keep, out=out) is out
        np.testing.assert_allclose(out, want, rtol=1e-5)
    for shape, dtype, dim in [((4, numpy_codegen.SUM_ROWS_MAX + 1), np.float32, -1), ((8, 8), np.int64, -1),
                              ((8, 8), np.float32, 0), ((8, 8), np.float16, -1)]:
        t = graphc.from_numpy(np.ones(shape, dtype))
        code = graphc.explain(graphc.compile(lambda a: a.sum(dim=dim)), t).code
        assert "_sum_rows(" not in code and "np.add.reduce(" in code, (shape, dtype, dim)


@pytest.mark.parametrize("shape", [(16, 256), (4, 6, 33), (300, 1), (5, 0, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_over_last_dim_as_reduceat(shape, dtype, keepdim):
    """amax/amin over the last dim are the ufunc's reduceat at the rows' starts, compiled
    (``_reduce_rows``) and eager: equal to the ufunc's reduce, bit for bit (nan propagating, the
    reduce's pick between -0.0 and 0.0), and to PyTorch; a strided operand keeps the reduce."""
    if dtype == np.bool_:
        x = np.random.default_rng(2).random(shape) < 0.5
    elif np.issubdtype(dtype, np.integer):
        x = np.random.default_rng(2).integers(-100, 100, shape).astype(dtype)
    elif shape[-1] < 6:
        x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    else:
        x = _rows_with_specials(shape, dtype)
        rows = x.reshape(-1, shape[-1])
        rows[6, :4] = [0.0, -0.0, -0.0, 0.0]  # ties of zeros: which one the reduce returns
        rows[7, :] = -0.0
        rows[7, 5] = 0.0
    t = graphc.from_numpy(x)
    torch = pytest.importorskip("torch")
    for name, uf in (("amax", np.maximum), ("amin", np.minimum)):
        fn = lambda a: getattr(graphc, name)(a, dim=-1, keepdim=keepdim)
        want = uf.reduce(x, axis=-1, keepdims=keepdim)
        code = graphc.explain(graphc.compile(fn), t).code
        assert f"_reduce_rows(np.{uf.__name__}" in code, code
        for got in (graphc.compile(fn)(t).numpy(), fn(t).numpy()):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        if x.size and dtype != np.bool_:
            ref = getattr(torch, name)(torch.from_numpy(x), dim=-1, keepdim=keepdim).numpy()
            np.testing.assert_array_equal(graphc.compile(fn)(t).numpy(), ref)
        # a strided view of the operand (a transpose): the runtime check takes the ufunc's reduce
        g = lambda a: getattr(graphc, name)(a.transpose(-1, -2), dim=-1, keepdim=keepdim)
        if len(shape) == 2 and shape[0] > 1:
            want_t = uf.reduce(x.T, axis=-1, keepdims=keepdim)
            np.testing.assert_array_equal(graphc.compile(g)(t).numpy(), want_t)
            np.testing.assert_array_equal(g(t).numpy(), want_t)
    want = np.maximum.reduce(x, axis=-1, keepdims=True)
    out = np.empty(x.shape[:-1] + (1,), x.dtype)
    strided_out = np.empty(x.shape[:-1] + (2,), x.dtype)[..., :1]  # its ravel would be a copy
    for o in (out, strided_out):
        assert P.reduce_rows(np.maximum, x, True, out=o) is o
        np.testing.assert_array_equal(o, want)


@pytest.mark.timeout(180)
def test_lowerings_benchmark_quick_json(tmp_path):
    out = tmp_path / "lowerings.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "lowerings.py"), "--quick", "--json", str(out),
         "--only", "sigmoid,erf,add,sum,argmax,gelu,mean,chain"],
        cwd=REPO, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "summary:" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    names = {r["name"] for r in rows}
    assert {"sigmoid", "erf", "add", "sum(dim=1)", "sum(dim=0)", "argmax(dim=0)", "gelu", "mean(dim=1)", "chain"} <= names
    for r in rows:
        assert r["graphc_us"] > 0 and r["numpy_us"] > 0 and r["ratio"] > 0, r


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "bfloat16"])
@pytest.mark.parametrize("size", [(4, 5), (64, 512)])  # np.where itself below WHERE_ZERO_FROM elements
def test_where_with_a_zero_branch_is_exact(dtype, size):
    """``where(c, x, 0)`` and ``where(c, 0, x)`` on floats (relu's backward) select by bit mask:
    bit for bit np.where's result (nan, infinities and -0.0 kept, +0.0 elsewhere), broadcast and
    strided operands too; compiled relu backward equals eager."""
    from graphc.codegen.numpy_runtime import where_zero
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size).astype(dtype)
    x[0, :3] = [np.nan, -0.0, np.inf]
    c = rng.random(size) > 0.5
    c[0, :3] = True
    bits = lambda a: np.ascontiguousarray(a).view(np.uint8)
    for cond, val in [(c, x), (c[:, :1], x), (c[:, ::2], x[:, ::2])]:
        for keep in (True, False):
            want = np.where(cond, val, dtype(0)) if keep else np.where(cond, dtype(0), val)
            got = where_zero(cond, val, keep)
            assert got.dtype == val.dtype and got.shape == want.shape
            np.testing.assert_array_equal(bits(got), bits(want))


def test_relu_backward_compiled_uses_the_bit_mask_and_equals_eager():
    x = graphc.randn(64, 512, requires_grad=True)
    x.data[0, 0] = 0.0
    fn = lambda t: (t.relu() * 3).sum()
    code = graphc.explain(graphc.compile(fn), x).code
    assert "_where_zero(" in code, code
    graphc.compile(fn)(x).backward()
    got = x.grad.numpy().copy()
    x.grad = None
    fn(x).backward()
    np.testing.assert_array_equal(got, x.grad.numpy())


def test_where_with_a_negative_zero_branch_keeps_its_sign():
    """The bit product gives +0.0 where it drops x: ``where(c, x, -0.0)`` must not take that path."""
    x, c = graphc.randn(64, 512), graphc.randn(64, 512) > 0
    for fn in (lambda c, x: graphc.where(c, x, -0.0), lambda c, x: graphc.where(c, -0.0, x)):
        got, want = graphc.compile(fn)(c, x).numpy(), fn(c, x).numpy()
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        np.testing.assert_array_equal(got, want)
