"""What a CNN training step runs on the numpy backend. Max pooling over windows that tile the
input (kernel == stride, no padding, no dilation: the common case) is a running maximum over the
window offsets (``passes/nn_decompositions.py``); the numpy backend lowers ``where(c, x, 0)`` as a
bit multiply, a running-max step as np.maximum, and materializes copies C-contiguous
(``codegen/numpy_codegen.py``), moving a view's contiguous rows as single items, as a
concatenation does (``codegen/numpy_runtime.py``); unfold/fold (im2col/col2im, ``ir/prims.py``) against their
definition and each other. Values and gradients compiled vs eager, vs float64 finite
differences, and ties, NaN and infinities vs PyTorch (where installed)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.codegen import numpy_runtime

nan, inf = math.nan, math.inf

# (spatial dims, input spatial shape, kernel): square, rectangular, cropped (odd sizes), 1-d, 3-d
TILING = [(2, (8, 8), 2), (2, (6, 9), (2, 3)), (2, (7, 5), 2), (1, (9,), 3), (3, (4, 4, 6), 2)]
POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _value_and_grad(pool, x: np.ndarray, g: np.ndarray, kernel, compiled: bool):
    t = graphc.tensor(x, requires_grad=True)

    def fn(t, g):
        y = pool(t, kernel)
        (y * g).sum().backward()
        return y.detach()
    run = graphc.compile(fn) if compiled else fn
    y = run(t, graphc.tensor(g))
    return y.numpy(), t.grad.numpy()


def _ties(shape, rng) -> np.ndarray:
    """Small integers: many windows hold their maximum more than once."""
    return rng.integers(-2, 3, shape).astype(np.float32)


@pytest.mark.parametrize("nsp,size,kernel", TILING)
def test_compiled_equals_eager_with_ties(nsp, size, kernel):
    rng = np.random.default_rng(0)
    x = _ties((2, 3) + size, rng)
    x.reshape(-1)[::7] = nan
    x.reshape(-1)[3::11] = -inf
    k = (kernel,) * nsp if isinstance(kernel, int) else kernel
    out = tuple(s // kk for s, kk in zip(size, k))
    g = rng.standard_normal((2, 3) + out).astype(np.float32)
    ye, ge = _value_and_grad(POOL[nsp], x, g, kernel, compiled=False)
    yc, gc = _value_and_grad(POOL[nsp], x, g, kernel, compiled=True)
    assert ye.shape == (2, 3) + out
    np.testing.assert_array_equal(yc, ye)
    np.testing.assert_array_equal(gc, ge)
    # each window's gradient lands on exactly one element; rows/columns past the last window get none
    assert np.count_nonzero(ge) == np.count_nonzero(g)


@pytest.mark.parametrize("nsp,size,kernel", TILING[:2] + TILING[3:])
def test_gradient_matches_finite_differences(nsp, size, kernel):
    rng = np.random.default_rng(1)
    x = rng.permutation(np.prod(size) * 2).reshape((1, 2) + size).astype(np.float64) / 7.0  # no ties
    t = graphc.tensor(x, requires_grad=True)
    assert graphc.autograd.gradcheck(lambda a: POOL[nsp](a, kernel), (t,), eps=1e-6, atol=1e-6)


def test_signed_zero_ties_compiled_equal_eager():
    """The running maximum lowers to np.maximum where eager mode runs np.where: on -0.0 and 0.0
    in one window both keep the first, as PyTorch's scan does."""
    x = np.array([[[[-0.0, 0.0, 0.0, -0.0], [0.0, 0.0, -0.0, -0.0]]]], np.float32)
    g = np.ones((1, 1, 1, 2), np.float32)
    ye, ge = _value_and_grad(F.max_pool2d, x, g, 2, compiled=False)
    yc, gc = _value_and_grad(F.max_pool2d, x, g, 2, compiled=True)
    np.testing.assert_array_equal(np.signbit(ye), [[[[True, False]]]])
    np.testing.assert_array_equal(np.signbit(yc), np.signbit(ye))
    np.testing.assert_array_equal(gc, ge)
    np.testing.assert_array_equal(ge, [[[[1, 0, 1, 0], [0, 0, 0, 0]]]])


def test_window_maximum_and_gradient_rules():
    """PyTorch's rules, written out: the first maximum of a window wins ties; a NaN is the
    maximum, and of several NaNs the last wins; an all -inf window gives its first element."""
    x = np.array([[[[3, 3, nan, 1, -inf, -inf],
                    [1, 3, 2, nan, -inf, -inf]]]], np.float32)
    for compiled in (False, True):
        y, g = _value_and_grad(F.max_pool2d, x, np.ones((1, 1, 1, 3), np.float32), 2, compiled)
        np.testing.assert_array_equal(y, [[[[3, nan, -inf]]]])
        np.testing.assert_array_equal(g, [[[[1, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0]]]])


def _torch_cases():
    rng = np.random.default_rng(2)
    a = _ties((2, 3, 8, 8), rng)
    a.reshape(-1)[::5] = nan
    a.reshape(-1)[2::9] = -inf
    a.reshape(-1)[4::13] = inf
    return [(a, 2, None, 0, False), (a[..., :7, :7], (2, 2), None, 0, False),
            (a, 3, 2, 1, False), (a[..., :7, :7], 2, 2, 0, True)]  # the last two: the general path


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("compiled", [False, True])
def test_ties_nan_and_indices_match_torch(case, compiled):
    torch = pytest.importorskip("torch")
    x, k, s, p, ceil = _torch_cases()[case]
    rng = np.random.default_rng(3)
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = torch.nn.functional.max_pool2d(tx, k, s, p, ceil_mode=ceil, return_indices=True)
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    gx = graphc.tensor(x, requires_grad=True)

    def fn(a, gg):
        y = F.max_pool2d(a, k, s, p, ceil_mode=ceil)
        (y * gg).sum().backward()
        return y.detach()
    run = graphc.compile(fn, fullgraph=True) if compiled else fn
    y = run(gx, graphc.tensor(g))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    if not compiled:  # return_indices reads the values on the host: a graph break when compiled
        _, idx = F.max_pool2d(graphc.tensor(x), k, s, p, ceil_mode=ceil, return_indices=True)
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    if case < 2:  # the tiling path sends each gradient where PyTorch does, NaN windows included
        np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    else:  # the general path: same where no window holds a NaN
        clean = ~np.isnan(x)
        np.testing.assert_allclose(gx.grad.numpy()[clean], tx.grad.numpy()[clean], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch,size,kernel", [(16, (8, 8), (2, 2)), (32, (6, 9), (2, 3))])
def test_large_tiles_copy_their_offsets_and_match_torch(batch, size, kernel):
    """Past COPY_WINDOW_OFFSETS_FROM elements each window offset's slice is copied before the
    running maximum reads it: values and gradients still those of PyTorch, ties, NaN (the last of
    a window wins) and infinities included."""
    torch = pytest.importorskip("torch")
    from graphc.passes.nn_decompositions import COPY_WINDOW_OFFSETS_FROM
    rng = np.random.default_rng(7)
    x = _ties((batch, 16) + size, rng)
    x.reshape(-1)[::7] = nan
    x.reshape(-1)[3::11] = -inf
    x.reshape(-1)[5::13] = inf
    assert x.size // math.prod(kernel) >= COPY_WINDOW_OFFSETS_FROM  # the offsets of both dims are copied
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, kernel)
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    gx = graphc.tensor(x, requires_grad=True)

    def fn(a, gg):
        y = F.max_pool2d(a, kernel)
        (y * gg).sum().backward()
        return y.detach()
    assert "_copy(" in graphc.explain(fn, graphc.tensor(x, requires_grad=True), graphc.tensor(g)).code
    y = graphc.compile(fn, fullgraph=True)(gx, graphc.tensor(g))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("batch", [2, 16])  # offsets read as strided slices, then as copies
def test_inference_pool_computes_no_masks(batch):
    """Without a gradient the running maximum's masks are read by nothing: the code is one
    np.maximum per step, no compare or NaN test, and the values those of eager mode (ties, NaN,
    infinities)."""
    rng = np.random.default_rng(8)
    x = _ties((batch, 16, 8, 8), rng)
    x.reshape(-1)[::7] = nan
    x.reshape(-1)[3::11] = -inf
    x.reshape(-1)[5::13] = inf

    def fn(a):
        return F.max_pool2d(F.relu(a), 2)
    code = graphc.explain(fn, graphc.tensor(x)).code
    lines = [ln for ln in code.splitlines() if not ln.lstrip().startswith("#")]
    assert sum("np.maximum(" in ln for ln in lines) == 2
    assert not any(op in ln for ln in lines for op in ("np.greater(", "np.isnan(", "np.logical_or("))
    np.testing.assert_array_equal(graphc.compile(fn)(graphc.tensor(x)).numpy(), fn(graphc.tensor(x)).numpy())


def test_tiling_step_has_no_argmax_gather_or_scatter():
    """The compiled step of a max pool over 2x2 tiles reads its windows as slices: no unfold, no
    argmax or gather forward, no fold or scatter backward, and no np.where left for the masks."""
    x = graphc.randn(4, 3, 8, 8, requires_grad=True)

    def fn(a):
        y = F.max_pool2d(F.relu(a), 2)
        y.sum().backward()
        return y.detach()
    d = graphc.explain(fn, x)
    code = d.code if hasattr(d, "code") else str(d)
    # code lines only: comments name source files, whose path may hold any of these words
    lines = [ln.split("#")[0] for ln in code.splitlines() if not ln.lstrip().startswith("#")]
    for name in ("unfold", "'argmax'", "'gather'", "'fold'", "scatter", "add.at"):
        assert not any(name in ln for ln in lines), name
    # backward: two masks per step of the running maximum (one step along each dim: where_zero
    # and its other half, where_rest), and relu's
    assert sum("_where_zero(" in ln for ln in lines) == 2 + 1
    assert sum("_where_rest(" in ln for ln in lines) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_where_with_zero_branch_keeps_ieee_specials(dtype):
    x = np.array([[1.5, -0.0, nan, inf, -inf, -2.0]], dtype)
    c = np.array([[True, True, True, False, True, False]])
    for keep in (True, False):
        want = np.where(c, x, 0) if keep else np.where(c, 0, x)
        got = numpy_runtime.where_zero(c, x, keep)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    # the condition broadcasts against x, as np.where's
    c2 = np.array([[True], [False]])
    np.testing.assert_array_equal(numpy_runtime.where_zero(c2, x, True), np.where(c2, x, 0))


def test_compiled_where_zero_equals_eager():
    x = graphc.tensor([[1.0, nan, inf, -inf, -3.0, 0.5]])
    m = graphc.tensor([[True, False, False, True, False, True]])

    def fn(x, m):
        return graphc.where(m, x, 0.0) + graphc.where(m, 0.0, x * 2)
    np.testing.assert_array_equal(graphc.compile(fn)(x, m).numpy(), fn(x, m).numpy())


@pytest.mark.parametrize("n", [6, 3000])  # below and past where_zero's np.where size
def test_where_pair_halves_bit_exact(n):
    """``where(m, x, 0)`` then ``where(m, 0, x)`` in one kernel: the second is the xor of x's and
    the first's bits (where_rest), as eager mode's where gives them: NaN payloads, infinities and
    -0.0 kept, +0.0 in the dropped places."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal(n).astype(np.float32)
    x[:6] = [nan, -0.0, inf, -inf, 0.0, -nan]
    m = rng.random(n) < 0.5
    m[:6] = [False, False, True, False, True, True]

    def fn(x, m):
        y = x * 2
        return graphc.where(m, y, 0.0), graphc.where(m, 0.0, y)
    assert "_where_rest(" in graphc.explain(fn, graphc.tensor(x), graphc.tensor(m)).code
    got = graphc.compile(fn)(graphc.tensor(x), graphc.tensor(m))
    want = fn(graphc.tensor(x), graphc.tensor(m))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy().view(np.uint32), w.numpy().view(np.uint32))
    y = x * 2
    np.testing.assert_array_equal(want[1].numpy().view(np.uint32), np.where(m, np.float32(0), y).view(np.uint32))


def test_materialized_copy_is_c_contiguous():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4).transpose(2, 0, 1)
    fresh = numpy_runtime.copy_c(a)
    assert fresh.flags.c_contiguous and np.array_equal(fresh, a)
    out = np.empty(a.shape, np.float32)
    assert numpy_runtime.copy_c(a, out) is out and np.array_equal(out, a)


def _strided_views(rng, shape, dtype):
    """Every view of a larger array picking, along each axis, all of a range or every other element."""
    base = (rng.standard_normal(tuple(2 * s + 1 for s in shape)) * 3).astype(dtype)
    picks = [[slice(1, s + 1), slice(0, 2 * s, 2)] for s in shape]
    return [base[sl] for sl in itertools.product(*picks)]


@pytest.mark.parametrize("items_from", [0, numpy_runtime.ITEMS_FROM])  # the items path on small arrays too
@pytest.mark.parametrize("shape", [(5, 2, 4), (3, 1, 4, 2), (4, 3), (2, 3, 1, 1), (2, 0, 3), (64, 8, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.bool_, np.int16])
def test_copy_of_strided_views_into_planned_buffer(shape, dtype, items_from, monkeypatch):
    """The copy of a view whose innermost axes are one contiguous run (a pooling window offset's
    rows) moves those runs as single items: the same elements as numpy's copy, for any dtype."""
    monkeypatch.setattr(numpy_runtime, "ITEMS_FROM", items_from)
    for view in _strided_views(np.random.default_rng(4), shape, dtype):
        out = np.full(view.shape, 7, dtype)
        assert numpy_runtime.copy_c(view, out) is out
        np.testing.assert_array_equal(out, view)


@pytest.mark.parametrize("items_from", [0, numpy_runtime.ITEMS_FROM])
@pytest.mark.parametrize("shape", [(5, 2, 4), (3, 1, 4, 2), (2, 3, 1, 1), (4, 3), (64, 8, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.bool_])
def test_concat_into_planned_buffer_equals_numpy(shape, dtype, items_from, monkeypatch):
    """Concatenation along each axis, operands contiguous or strided views, into a planned buffer:
    the rows after the axis go as single items where they are contiguous."""
    monkeypatch.setattr(numpy_runtime, "ITEMS_FROM", items_from)
    rng = np.random.default_rng(5)
    for axis in range(len(shape)):
        for view in _strided_views(rng, shape, dtype):
            whole = (rng.standard_normal(shape) > 0).astype(dtype)
            expected = np.concatenate((whole, view, whole), axis=axis)
            out = np.zeros(expected.shape, dtype)
            assert numpy_runtime.concat((whole, view, whole), axis, out=out) is out
            np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("shape,k,s,p,d", [
    ((2, 16, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),  # a conv layer's col2im
    ((2, 3, 7, 6), (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2)),
    ((1, 3, 5, 5), (3, 3), (3, 3), ((2, 2), (2, 2)), (2, 2)),  # windows that skip input positions
    ((2, 1, 5), (3,), (1,), ((1, 1),), (1,)),
    ((1, 2, 4, 4, 5), (2, 2, 3), (2, 1, 1), ((0, 1), (1, 0), (0, 0)), (1, 1, 1)),
    ((5, 3, 6, 6), (3, 3), (2, 1), ((1, 1), (0, 2)), (1, 1))])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("chunk_images", [None, 2])
def test_unfold_and_fold_are_adjoint(shape, k, s, p, d, channels_last, chunk_images, monkeypatch):
    """<unfold(x), c> == <x, fold(c)> for windows in either memory layout, and unfold reads the
    windows it should (against np.pad and plain indexing); also with the batch run in chunks of
    two images (the cache-sized chunks of large layers; batch 5 leaves a short last chunk)."""
    from graphc.ir import prims as P
    if chunk_images is not None:
        image_bytes = 8 * shape[1] * int(np.prod(k))  # one float64 image's windows, over positions
        out_sp = [(n + lo + hi - dd * (kk - 1) - 1) // st + 1 for n, kk, st, (lo, hi), dd in zip(shape[2:], k, s, p, d)]
        monkeypatch.setattr(P, "_WINDOW_CHUNK_BYTES", chunk_images * image_bytes * int(np.prod(out_sp)))
        assert len(P._batch_chunks(np, shape[0], image_bytes * int(np.prod(out_sp)))) == -(-shape[0] // chunk_images)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    u = P.unfold.impl(x, kernel=k, stride=s, padding=p, dilation=d, value=-1.5)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(p), constant_values=-1.5)
    for pos in np.ndindex(*u.shape[2:]):
        out, off = pos[:len(k)], pos[len(k):]
        src = tuple(o * st + f * dd for o, st, f, dd in zip(out, s, off, d))
        np.testing.assert_array_equal(u[(slice(None), slice(None)) + pos], xp[(slice(None), slice(None)) + src])
    c = rng.standard_normal(u.shape)
    if channels_last:  # the layout of conv's backward product
        c = np.moveaxis(np.ascontiguousarray(np.moveaxis(c, 1, 1 + len(k))), 1 + len(k), 1)
    u0 = P.unfold.impl(x, kernel=k, stride=s, padding=p, dilation=d)
    f = P.fold.impl(c, size=shape[2:], kernel=k, stride=s, padding=p, dilation=d)
    assert f.shape == shape and f.flags.c_contiguous
    np.testing.assert_allclose((x * f).sum(), (u0 * c).sum(), rtol=1e-10)


@pytest.mark.parametrize("shape", [(64, 32, 8, 8), (4, 3, 5), (2, 5, 300, 300), (3, 0, 4)])
@pytest.mark.parametrize("keepdims", [True, False])
@pytest.mark.parametrize("planned", [False, True])
def test_channel_sum(shape, keepdims, planned):
    """A batch norm's per-channel sum (BLAS products with ones; einsum when large), against a
    float64 sum; a strided view takes numpy's reduction."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) + 2).astype(np.float32)
    axes = (0,) + tuple(range(2, len(shape)))
    want = x.astype(np.float64).sum(axes, keepdims=keepdims)
    out = np.empty(want.shape, np.float32) if planned else None
    got = numpy_runtime.sum_channels(x, keepdims, out)
    assert got.shape == want.shape and got.dtype == np.float32 and (out is None or got is out)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-3)
    view = x[:, ::-1]
    flipped = want[:, ::-1] if keepdims else want[::-1]
    np.testing.assert_allclose(numpy_runtime.sum_channels(view, keepdims), flipped, rtol=2e-6, atol=1e-3)


def test_batch_norm_step_compiled_equals_eager():
    """BatchNorm2d's forward and backward reduce over (N, H, W): the compiled step (channel sums
    as BLAS products) equals eager mode's."""
    graphc.manual_seed(0)
    bn = graphc.nn.BatchNorm2d(6)
    x = graphc.randn(8, 6, 5, 5, requires_grad=True)
    g = graphc.randn(8, 6, 5, 5)

    def fn(x):
        y = bn(x)
        (y * g).sum().backward()
        return y.detach()
    ye = fn(x)
    ge, gw = x.grad.clone(), bn.weight.grad.clone()
    x.grad, bn.weight.grad, bn.bias.grad = None, None, None
    compiled = graphc.compile(fn)
    yc = compiled(x)
    np.testing.assert_allclose(yc.numpy(), ye.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), ge.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.weight.grad.numpy(), gw.numpy(), rtol=1e-4, atol=1e-5)
    assert "_sum_channels(" in graphc.explain(compiled, x).code


def test_where_greater_without_nan_test_is_not_a_maximum():
    """where(x > y, x, y) on floats keeps y where x is NaN (np.maximum would not): only the
    running max's form with ``| isnan(x)`` lowers to np.maximum."""
    x = graphc.tensor([nan, 1.0, 2.0, nan])
    y = graphc.tensor([1.0, nan, 3.0, nan])

    def plain(x, y):
        return graphc.where(x > y, x, y)

    def running(x, y):
        return graphc.where((x > y) | graphc.isnan(x), x, y)
    for fn in (plain, running):
        np.testing.assert_array_equal(graphc.compile(fn)(x, y).numpy(), fn(x, y).numpy())
    assert "np.maximum(" not in graphc.explain(plain, x, y).code
    assert "np.maximum(" in graphc.explain(running, x, y).code
    ints = graphc.tensor([3, -1, 2]), graphc.tensor([1, 5, 2])
    np.testing.assert_array_equal(graphc.compile(plain)(*ints).numpy(), [3, 5, 2])
