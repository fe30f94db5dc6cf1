"""Generated numpy code sums a product read nowhere else without writing it: over the last axis,
``(a * b).sum(-1)``, with one ``np.vecdot`` (``numpy_runtime.sum_products``: a layer norm's
variance, softmax's and layer norm's backward sums), and over all but the channels of (N, C,
spatial...) operands with one per image and channel (``sum_products_channels``: a batch norm's).
Values against float64 references and eager mode; the forms that must keep the product (short
runs, a product read again, an operand broadcast along the summed axes, integers) keep it."""
import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.codegen import numpy_runtime as R


def _body(fn, *args) -> list[str]:
    code = graphc.explain(graphc.compile(fn), *args).code
    return [ln.strip() for ln in code.splitlines() if ln.startswith("    ") and not ln.strip().startswith("#")]


def _t(a):
    return graphc.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keepdim", [True, False])
def test_a_products_row_sum_is_one_vecdot_and_equals_float64(dtype, keepdim):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 24, 64)).astype(dtype)
    body = _body(lambda x, y: (x * y).sum(-1, keepdim=keepdim), _t(a), _t(b))
    assert any("_sum_products(" in ln for ln in body), body
    assert not any("np.multiply(" in ln for ln in body), body  # the product is not written
    got = graphc.compile(lambda x, y: (x * y).sum(-1, keepdim=keepdim))(_t(a), _t(b)).numpy()
    want = (a.astype(np.float64) * b).sum(-1, keepdims=keepdim)
    assert got.dtype == dtype and got.shape == want.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 8)


def test_operands_broadcast_over_rows_sum_as_eager_does():
    rng = np.random.default_rng(1)
    g, w = rng.standard_normal((3, 16, 96)).astype(np.float32), rng.standard_normal(96).astype(np.float32)
    f = lambda x, v: (x * v).sum(-1)  # noqa: E731
    assert any("_sum_products(" in ln for ln in _body(f, _t(g), _t(w)))
    got = graphc.compile(f)(_t(g), _t(w)).numpy()
    np.testing.assert_allclose(got, (g.astype(np.float64) * w).sum(-1), rtol=1e-5, atol=1e-5)
    # a transposed (strided) operand
    h = rng.standard_normal((96, 16)).astype(np.float32)
    f2 = lambda x, y: (x.t() * y).sum(-1)  # noqa: E731
    got = graphc.compile(f2)(_t(h), _t(g[0])).numpy()
    np.testing.assert_allclose(got, (h.T.astype(np.float64) * g[0]).sum(-1), rtol=1e-5, atol=1e-5)


def test_forms_that_keep_the_product():
    rng = np.random.default_rng(2)
    long_, short = _t(rng.standard_normal((8, 64)).astype(np.float32)), _t(rng.standard_normal((8, 16)).astype(np.float32))
    col = _t(rng.standard_normal((8, 1)).astype(np.float32))
    cases = {
        "short rows": (lambda x: (x * x).sum(-1), (short,)),
        "product read again": (lambda x: ((x * x).sum(-1, keepdim=True) + x * x), (long_,)),
        "operand broadcast along the summed axis": (lambda x, c: (x * c).sum(-1), (long_, col)),
        "another axis": (lambda x: (x * x).sum(0), (long_,)),
        "integers": (lambda x: (x * x).sum(-1), (_t(np.arange(8 * 64).reshape(8, 64) % 7),)),
    }
    for name, (f, args) in cases.items():
        body = _body(f, *args)
        assert not any("_sum_products(" in ln for ln in body), (name, body)
        got, want = graphc.compile(f)(*args).numpy(), f(*args).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_layer_norm_and_softmax_training_sums_match_eager():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 128)).astype(np.float32)
    w, b = rng.standard_normal(128).astype(np.float32), rng.standard_normal(128).astype(np.float32)

    def run(fn):
        xs, ws, bs = (graphc.tensor(v, requires_grad=True) for v in (x, w, b))
        out = fn(xs, ws, bs)
        (out * graphc.from_numpy(np.linspace(-1, 1, 128, dtype=np.float32))).sum().backward()
        return [out.detach().numpy()] + [t.grad.numpy() for t in (xs, ws, bs)]

    block = lambda x, w, b: F.softmax(F.layer_norm(x, (128,), w, b), -1)  # noqa: E731
    compiled = graphc.compile(block)
    assert any("_sum_products(" in ln for ln in _body(block, _t(x), _t(w), _t(b)))
    for got, want in zip(run(compiled), run(block)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_sum_products_itself():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((5, 40)), rng.standard_normal((1, 40))
    want = (a * b).sum(-1, keepdims=True)
    np.testing.assert_allclose(R.sum_products(a, b, True), want, rtol=1e-12)
    out = np.empty((5, 1))
    assert R.sum_products(a, b, True, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-12)
    flat = np.empty(5)
    assert R.sum_products(a, b, False, out=flat) is flat
    np.testing.assert_allclose(flat, want[:, 0], rtol=1e-12)


@pytest.mark.parametrize("keepdim", [True, False])
def test_a_products_sum_over_all_but_the_channels_is_one_vecdot_per_image_and_channel(keepdim):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 8, 4, 6, 6)).astype(np.float32)
    f = lambda x, y: (x * y).sum((0, 2, 3), keepdim=keepdim)  # noqa: E731
    assert any("_sum_products_channels(" in ln for ln in _body(f, _t(a), _t(b)))
    got = graphc.compile(f)(_t(a), _t(b)).numpy()
    want = (a.astype(np.float64) * b).sum((0, 2, 3), keepdims=keepdim)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a strided operand (the spatial axes swapped) takes the product and sum_channels
    f2 = lambda x, y: (x.transpose(2, 3) * y).sum((0, 2, 3), keepdim=keepdim)  # noqa: E731
    got = graphc.compile(f2)(_t(a), _t(b)).numpy()
    want = (a.transpose(0, 1, 3, 2).astype(np.float64) * b).sum((0, 2, 3), keepdims=keepdim)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_channel_sums_that_keep_the_product():
    rng = np.random.default_rng(6)
    small = _t(rng.standard_normal((8, 4, 4, 4)).astype(np.float32))   # 16 spatial elements
    x = _t(rng.standard_normal((8, 4, 6, 6)).astype(np.float32))
    w = _t(rng.standard_normal((4, 1, 1)).astype(np.float32))
    for name, (f, args) in {"short runs": (lambda x: (x * x).sum((0, 2, 3)), (small,)),
                            "a broadcast operand": (lambda x, w: (x * w).sum((0, 2, 3)), (x, w))}.items():
        assert not any("_sum_products_channels(" in ln for ln in _body(f, *args)), name
        np.testing.assert_allclose(graphc.compile(f)(*args).numpy(), f(*args).numpy(), rtol=1e-5, atol=1e-5)


def test_batch_norm_training_step_matches_eager():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 8, 6, 6)).astype(np.float32)

    def run(fn):
        graphc.manual_seed(0)
        bn = graphc.nn.BatchNorm2d(8)
        xs = graphc.tensor(x, requires_grad=True)
        out = fn(bn, xs)
        (out * out).sum().backward()
        return [out.detach().numpy(), xs.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy(),
                bn.running_var.numpy()]

    step = lambda bn, x: bn(x)  # noqa: E731
    assert any("_sum_products_channels(" in ln for ln in _body(lambda x: graphc.nn.functional.batch_norm(
        x, None, None, training=True), _t(x)))
    for got, want in zip(run(graphc.compile(step)), run(step)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_sum_products_channels_itself():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((2, 3, 5, 4, 9))
    want = (a * b).sum((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(R.sum_products_channels(a, b, True), want, rtol=1e-12)
    out = np.empty(5)
    assert R.sum_products_channels(a, b, False, out=out) is out
    np.testing.assert_allclose(out, want.ravel(), rtol=1e-12)
    np.testing.assert_allclose(R.sum_products_channels(a.transpose(0, 1, 3, 2), b.transpose(0, 1, 3, 2), False),
                               want.ravel(), rtol=1e-12)


def test_operands_stay_live_until_the_sum_that_reads_them():
    # the sum reads the product's operands, not the product: nodes between them (sin, + 1 here)
    # must not be planned over those operands' buffers (the memory plan's statement_reads)
    def f(x, y):
        p = x.exp() * y.exp()
        q = x.sin() + 1.0
        return p.sum(-1) + q.amax(-1)

    def g(x, y):  # the same over the channels
        p = x.exp() * y.exp()
        q = x.sin() + 1.0
        return p.sum((0, 2, 3)) + q.amax((0, 2, 3))

    rng = np.random.default_rng(9)
    for fn, shape in ((f, (8, 64)), (g, (4, 3, 6, 6))):
        x, y = (_t(rng.standard_normal(shape).astype(np.float32)) for _ in range(2))
        assert any("_sum_products" in ln for ln in _body(fn, x, y))
        np.testing.assert_allclose(graphc.compile(fn)(x, y).numpy(), fn(x, y).numpy(), rtol=1e-5, atol=1e-5)


def test_empty_batches_sum_to_zeros():
    for shape, dims in (((0, 3, 8, 8), (0, 2, 3)), ((0, 64), (-1,))):
        x = _t(np.zeros(shape, np.float32))
        got = graphc.compile(lambda a, b: (a * b).sum(dims))(x, x).numpy()
        np.testing.assert_array_equal(got, np.zeros(got.shape, np.float32))
        assert got.shape == ((3,) if len(shape) == 4 else (0,))
