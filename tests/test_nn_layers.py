"""Every torch.nn layer: output shapes, parameter names/shapes and default init ranges, values
against independent numpy implementations (tests/nn_reference.py), gradients by gradcheck in
float64, and train/eval behaviour."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.autograd import gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_reference as ref  # noqa: E402

RNG = np.random.default_rng(1234)


def rand(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


def t64(a, requires_grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def npy(t):
    return t.detach().numpy()


def close(t, expected, tol=1e-8):
    np.testing.assert_allclose(npy(t), expected, rtol=tol, atol=tol)


def params_np(m):
    return {k: v.detach().numpy().astype(np.float64) for k, v in m.state_dict().items()}


def check_grads(m, *inputs, atol=1e-5):
    """gradcheck over the (float64) inputs and every parameter of the module."""
    m = m.double()
    xs = tuple(t64(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
               for a in inputs)
    ps = tuple(p for p in m.parameters() if p.requires_grad)
    n = len(xs)
    assert gradcheck(lambda *args: m(*args[:n]), xs + ps, atol=atol)


def in_bound(t, bound):
    a = npy(t)
    assert np.all(np.abs(a) <= bound + 1e-7), (a.min(), a.max(), bound)
    # and they actually spread over the range (not all zeros/constant)
    assert a.std() > bound / 10


# ---- Linear / Bilinear / Identity / Flatten ---------------------------------------------------------

def test_linear_shapes_init_values():
    torch.manual_seed(0)
    m = nn.Linear(20, 30)
    assert tuple(m.weight.shape) == (30, 20) and tuple(m.bias.shape) == (30,)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    in_bound(m.weight, 1 / math.sqrt(20))
    in_bound(m.bias, 1 / math.sqrt(20))
    assert m.weight.dtype == torch.float32
    m = m.double()
    x = rand(2, 5, 20)
    close(m(t64(x)), x @ params_np(m)["weight"].T + params_np(m)["bias"])
    assert tuple(nn.Linear(20, 30)(torch.ones(20)).shape) == (30,)
    nb = nn.Linear(4, 2, bias=False)
    assert nb.bias is None and [n for n, _ in nb.named_parameters()] == ["weight"]
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(4x2 and 3x2\)"):
        nn.Linear(3, 2)(torch.zeros(4, 2))


def test_linear_dtype_argument():
    assert nn.Linear(2, 2, dtype=torch.float64).weight.dtype == torch.float64


def test_linear_gradcheck():
    check_grads(nn.Linear(3, 2), rand(4, 3))
    check_grads(nn.Linear(3, 2, bias=False), rand(2, 2, 3))


def test_bilinear():
    torch.manual_seed(0)
    m = nn.Bilinear(3, 4, 2).double()
    assert tuple(m.weight.shape) == (2, 3, 4)
    in_bound(m.weight, 1 / math.sqrt(3))
    a, b = rand(5, 3), rand(5, 4)
    p = params_np(m)
    close(m(t64(a), t64(b)), np.einsum("ni,kij,nj->nk", a, p["weight"], b) + p["bias"])
    check_grads(nn.Bilinear(2, 3, 2), rand(3, 2), rand(3, 3))


def test_identity_flatten_unflatten():
    x = torch.zeros(2, 3, 4, 5)
    assert nn.Identity(54, unused="x")(x) is x
    assert tuple(nn.Flatten()(x).shape) == (2, 60)
    assert tuple(nn.Flatten(0, 2)(x).shape) == (24, 5)
    assert tuple(nn.Flatten(-2)(x).shape) == (2, 3, 20)
    assert tuple(nn.Unflatten(1, (3, 4))(torch.zeros(2, 12, 5)).shape) == (2, 3, 4, 5)
    assert tuple(nn.Unflatten(-1, [2, 3])(torch.zeros(4, 6)).shape) == (4, 2, 3)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Unflatten(1, (3, 4))) == "Unflatten(dim=1, unflattened_size=(3, 4))"
    v = rand(2, 6)
    close(nn.Unflatten(1, (2, 3))(t64(v)), v.reshape(2, 2, 3))


# ---- convolution ------------------------------------------------------------------------------------

CONV2D_CASES = [
    dict(args=(3, 4, 3), kw={}, shape=(2, 3, 6, 5)),
    dict(args=(4, 6, (3, 2)), kw=dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), shape=(2, 4, 7, 6)),
    dict(args=(3, 3, 3), kw=dict(padding=1, groups=3, bias=False), shape=(1, 3, 5, 5)),
    dict(args=(2, 4, 3), kw=dict(padding="same"), shape=(1, 2, 5, 6)),
    dict(args=(2, 2, 4), kw=dict(padding="same", dilation=2), shape=(1, 2, 7, 6)),
    dict(args=(2, 3, 2), kw=dict(padding="valid", stride=3), shape=(2, 2, 7, 8)),
]


def _pads2d(m):
    if m.padding == "same":
        out = []
        for k, d in zip(m.kernel_size, m.dilation):
            total = d * (k - 1)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    if m.padding == "valid":
        return ((0, 0), (0, 0))
    return tuple((p, p) for p in m.padding)


@pytest.mark.parametrize("case", CONV2D_CASES, ids=lambda c: f"{c['args']}-{c['kw']}")
def test_conv2d_against_direct_loop(case):
    torch.manual_seed(0)
    m = nn.Conv2d(*case["args"], **case["kw"]).double()
    x = rand(*case["shape"])
    p = params_np(m)
    want = ref.conv2d(x, p["weight"], p.get("bias"), m.stride, _pads2d(m), m.dilation, m.groups)
    y = m(t64(x))
    assert tuple(y.shape) == want.shape
    close(y, want)
    if m.padding == "same":
        assert tuple(y.shape[2:]) == tuple(x.shape[2:])


def test_conv2d_params_and_init():
    torch.manual_seed(0)
    m = nn.Conv2d(4, 6, (3, 2), groups=2)
    assert tuple(m.weight.shape) == (6, 2, 3, 2) and tuple(m.bias.shape) == (6,)
    fan_in = 2 * 3 * 2
    in_bound(m.weight, 1 / math.sqrt(fan_in))
    in_bound(m.bias, 1 / math.sqrt(fan_in))
    assert m.kernel_size == (3, 2) and m.stride == (1, 1) and m.padding == (0, 0)
    assert repr(m) == "Conv2d(4, 6, kernel_size=(3, 2), stride=(1, 1), groups=2)"
    assert repr(nn.Conv1d(2, 2, 3, padding="same", bias=False)) == \
        "Conv1d(2, 2, kernel_size=(3,), stride=(1,), padding=same, bias=False)"
    assert repr(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")) == \
        "Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), padding_mode=reflect)"


def test_conv2d_unbatched_and_errors():
    m = nn.Conv2d(3, 2, 3)
    assert tuple(m(torch.zeros(3, 5, 5)).shape) == (2, 3, 3)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 2, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(3, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        nn.Conv2d(3, 2, 3, padding="full")
    with pytest.raises(RuntimeError, match="expected input.* to have 3 channels, but got 2 channels instead"):
        m(torch.zeros(1, 2, 5, 5))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        m(torch.zeros(1, 3, 2, 5))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes(mode):
    torch.manual_seed(0)
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    m = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode).double()
    x = rand(2, 2, 5, 6)
    p = params_np(m)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)), mode=np_mode)
    close(m(t64(x)), ref.conv2d(xp, p["weight"], p["bias"]))
    m1 = nn.Conv1d(2, 2, 4, padding="same", padding_mode=mode).double()  # asymmetric (1, 2)
    x1 = rand(1, 2, 7)
    p1 = params_np(m1)
    close(m1(t64(x1)), ref.conv1d(np.pad(x1, ((0, 0), (0, 0), (1, 2)), mode=np_mode), p1["weight"], p1["bias"]))


CONV1D_CASES = [
    dict(args=(3, 4, 3), kw={}, shape=(2, 3, 9)),
    dict(args=(4, 6, 3), kw=dict(stride=2, padding=1, dilation=2, groups=2), shape=(2, 4, 11)),
    dict(args=(3, 2, 4), kw=dict(padding="same", bias=False), shape=(1, 3, 8)),
    dict(args=(3, 2, 2), kw=dict(padding="valid"), shape=(3, 8)),
]


@pytest.mark.parametrize("case", CONV1D_CASES, ids=lambda c: f"{c['args']}-{c['kw']}")
def test_conv1d_against_direct_loop(case):
    torch.manual_seed(0)
    m = nn.Conv1d(*case["args"], **case["kw"]).double()
    x = rand(*case["shape"])
    unbatched = x.ndim == 2
    xb = x[None] if unbatched else x
    p = params_np(m)
    if m.padding == "same":
        total = m.dilation[0] * (m.kernel_size[0] - 1)
        pad = (total // 2, total - total // 2)
    elif m.padding == "valid":
        pad = (0, 0)
    else:
        pad = (m.padding[0], m.padding[0])
    want = ref.conv1d(xb, p["weight"], p.get("bias"), m.stride[0], pad, m.dilation[0], m.groups)
    close(m(t64(x)), want[0] if unbatched else want)


def test_conv_gradcheck():
    check_grads(nn.Conv2d(4, 2, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), rand(1, 4, 4, 5))
    check_grads(nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect"), rand(1, 2, 5))
    check_grads(nn.Conv2d(1, 1, 2, padding="same", bias=False), rand(1, 1, 3, 3))


CONVT_CASES = [
    dict(args=(3, 4, 3), kw={}, shape=(2, 3, 3, 4)),
    dict(args=(4, 6, 3), kw=dict(stride=2, padding=1, output_padding=1, groups=2), shape=(1, 4, 3, 3)),
    dict(args=(2, 3, (3, 2)), kw=dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2), bias=False),
         shape=(1, 2, 3, 3)),
    dict(args=(2, 2, 3), kw=dict(stride=2, dilation=2, output_padding=1), shape=(1, 2, 2, 3)),
]


@pytest.mark.parametrize("case", CONVT_CASES, ids=lambda c: f"{c['args']}-{c['kw']}")
def test_conv_transpose2d_against_scatter(case):
    torch.manual_seed(0)
    m = nn.ConvTranspose2d(*case["args"], **case["kw"]).double()
    x = rand(*case["shape"])
    p = params_np(m)
    want = ref.conv_transpose2d(x, p["weight"], p.get("bias"), m.stride, m.padding, m.output_padding,
                                m.groups, m.dilation)
    y = m(t64(x))
    assert tuple(y.shape) == want.shape
    close(y, want)


def test_conv_transpose2d_params_output_size_and_gradcheck():
    torch.manual_seed(0)
    m = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert tuple(m.weight.shape) == (4, 3, 3, 3)  # (in, out/groups, kh, kw)
    in_bound(m.weight, 1 / math.sqrt(3 * 9))     # fan_in is computed from dim 1 for transposed weights
    m2 = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    assert tuple(m2(torch.zeros(1, 2, 4, 4)).shape) == (1, 3, 7, 7)
    assert tuple(m2(torch.zeros(1, 2, 4, 4), output_size=[8, 8]).shape) == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="requested an output size of"):
        m2(torch.zeros(1, 2, 4, 4), output_size=[10, 10])
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    assert repr(nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, groups=2)) == \
        "ConvTranspose2d(2, 4, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1), groups=2)"
    check_grads(nn.ConvTranspose2d(2, 2, 2, stride=2, padding=1, output_padding=1, groups=2), rand(1, 2, 2, 3))
    check_grads(nn.ConvTranspose1d(2, 1, 3, stride=2), rand(1, 2, 3))


def test_conv_transpose_is_adjoint_of_conv():
    # <conv(x), y> == <x, conv_transpose(y)> with the same weight
    x, y, w = rand(1, 2, 8, 7), rand(1, 3, 4, 4), rand(3, 2, 3, 2)
    a = (F.conv2d(t64(x), t64(w), stride=2, padding=1) * t64(y)).sum().item()
    b = (t64(x) * F.conv_transpose2d(t64(y), t64(w), stride=2, padding=1, output_padding=1)).sum().item()
    assert abs(a - b) < 1e-9


# ---- pooling ----------------------------------------------------------------------------------------

MAXPOOL_CASES = [
    dict(k=(2, 2), s=(2, 2), p=(0, 0), d=(1, 1), ceil=False, shape=(2, 3, 6, 7)),
    dict(k=(3, 3), s=(2, 2), p=(1, 1), d=(1, 1), ceil=False, shape=(1, 2, 7, 6)),
    dict(k=(3, 3), s=(2, 2), p=(0, 0), d=(1, 1), ceil=True, shape=(1, 2, 8, 7)),
    dict(k=(3, 3), s=(2, 2), p=(1, 1), d=(1, 1), ceil=True, shape=(1, 1, 6, 6)),
    dict(k=(2, 3), s=(2, 1), p=(1, 1), d=(2, 1), ceil=True, shape=(1, 2, 7, 8)),
]


@pytest.mark.parametrize("case", MAXPOOL_CASES, ids=str)
def test_maxpool2d_values_indices(case):
    x = rand(*case["shape"])
    m = nn.MaxPool2d(case["k"], case["s"], case["p"], case["d"], return_indices=True, ceil_mode=case["ceil"])
    y, idx = m(t64(x))
    want, want_idx = ref.max_pool2d(x, case["k"], case["s"], case["p"], case["d"], case["ceil"])
    assert tuple(y.shape) == want.shape
    close(y, want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    assert idx.dtype == torch.int64


def test_maxpool_defaults_gradient_and_1d():
    m = nn.MaxPool2d(2)
    assert m.stride == 2 and repr(m) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    x = t64(rand(1, 1, 4, 4), requires_grad=True)
    m(x).sum().backward()
    g = npy(x.grad)
    # exactly one 1 per 2x2 window, at its maximum
    assert g.sum() == 4 and set(np.unique(g)) == {0.0, 1.0}
    check_grads(nn.MaxPool2d(2, 1, 1), rand(1, 2, 3, 3))
    x1 = rand(2, 3, 8)
    y, idx = nn.MaxPool1d(3, 2, 1, return_indices=True)(t64(x1))
    want, want_idx = ref.max_pool2d(x1[:, :, None, :], (1, 3), (1, 2), (0, 1))
    close(y, want[:, :, 0])
    np.testing.assert_array_equal(idx.numpy(), want_idx[:, :, 0])
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        nn.MaxPool2d(2, padding=2)(torch.zeros(1, 1, 4, 4))


AVGPOOL_CASES = [
    dict(k=(3, 3), s=(2, 2), p=(1, 1), ceil=False, cip=True, div=None, shape=(2, 2, 7, 6)),
    dict(k=(3, 3), s=(2, 2), p=(1, 1), ceil=False, cip=False, div=None, shape=(2, 2, 7, 6)),
    dict(k=(3, 3), s=(2, 2), p=(1, 1), ceil=True, cip=True, div=None, shape=(1, 2, 8, 7)),
    dict(k=(3, 3), s=(2, 2), p=(1, 1), ceil=True, cip=False, div=None, shape=(1, 2, 8, 7)),
    dict(k=(2, 2), s=(2, 2), p=(0, 0), ceil=True, cip=True, div=None, shape=(1, 1, 5, 5)),
    dict(k=(3, 2), s=(2, 2), p=(0, 1), ceil=True, cip=True, div=2, shape=(1, 1, 6, 6)),
]


@pytest.mark.parametrize("case", AVGPOOL_CASES, ids=str)
def test_avgpool2d(case):
    x = rand(*case["shape"])
    m = nn.AvgPool2d(case["k"], case["s"], case["p"], case["ceil"], case["cip"], case["div"])
    want = ref.avg_pool2d(x, case["k"], case["s"], case["p"], case["ceil"], case["cip"], case["div"])
    y = m(t64(x))
    assert tuple(y.shape) == want.shape
    close(y, want)


def test_avgpool_gradcheck_and_1d():
    check_grads(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), rand(1, 1, 4, 5))
    x = rand(2, 3, 8)
    want = ref.avg_pool2d(x[:, :, None, :], (1, 3), (1, 2), (0, 1), True, True)[:, :, 0]
    close(nn.AvgPool1d(3, 2, 1, ceil_mode=True)(t64(x)), want)
    assert repr(nn.AvgPool1d(2)) == "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))"


@pytest.mark.parametrize("in_hw,out_hw", [((6, 6), (2, 3)), ((7, 5), (3, 4)), ((5, 5), (1, 1)), ((4, 9), (4, 2))])
def test_adaptive_avg_pool2d(in_hw, out_hw):
    x = rand(2, 3, *in_hw)
    close(nn.AdaptiveAvgPool2d(out_hw)(t64(x)), ref.adaptive_avg_pool2d(x, out_hw))


def test_adaptive_pools_misc():
    x = rand(2, 3, 5, 7)
    close(nn.AdaptiveAvgPool2d((None, 3))(t64(x)), ref.adaptive_avg_pool2d(x, (5, 3)))
    close(nn.AdaptiveAvgPool2d(2)(t64(x[0])), ref.adaptive_avg_pool2d(x, (2, 2))[0])
    y, idx = nn.AdaptiveMaxPool2d((3, 2), return_indices=True)(t64(x))
    close(y, ref.adaptive_max_pool2d(x, (3, 2)))
    flat = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2).reshape(y.shape),
                                  npy(y))
    x1 = rand(2, 7)
    close(nn.AdaptiveAvgPool1d(3)(t64(x1)), ref.adaptive_avg_pool2d(x1[None, :, None, :], (1, 3))[0, :, 0])
    check_grads(nn.AdaptiveAvgPool2d((2, 3)), rand(1, 1, 5, 4))


# ---- normalization ----------------------------------------------------------------------------------

def test_layer_norm_values_params_gradcheck():
    m = nn.LayerNorm(5)
    assert tuple(m.weight.shape) == (5,) and tuple(m.bias.shape) == (5,)
    np.testing.assert_array_equal(npy(m.weight), np.ones(5))
    np.testing.assert_array_equal(npy(m.bias), np.zeros(5))
    m = m.double()
    with torch.no_grad():
        m.weight.copy_(t64(rand(5)))
        m.bias.copy_(t64(rand(5)))
    x = rand(2, 3, 5)
    close(m(t64(x)), ref.layer_norm(x, npy(m.weight), npy(m.bias)))
    m2 = nn.LayerNorm((3, 5), eps=1e-3, elementwise_affine=False).double()
    assert list(m2.parameters()) == []
    flat = x.reshape(2, 15)
    close(m2(t64(x)), ref.layer_norm(flat, 1.0, 0.0, eps=1e-3).reshape(2, 3, 5))
    assert nn.LayerNorm(4, bias=False).bias is None
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"
    check_grads(nn.LayerNorm(4), rand(2, 4))
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\]"):
        nn.LayerNorm(4)(torch.zeros(2, 3))


def test_group_norm():
    m = nn.GroupNorm(2, 6).double()
    with torch.no_grad():
        m.weight.copy_(t64(rand(6)))
        m.bias.copy_(t64(rand(6)))
    x = rand(3, 6, 2, 2)
    g = x.reshape(3, 2, -1)
    normed = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    close(m(t64(x)), normed * npy(m.weight)[:, None, None] + npy(m.bias)[:, None, None])
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by num_groups \(3\)"):
        nn.GroupNorm(3, 4)
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    check_grads(nn.GroupNorm(2, 4), rand(2, 4, 3))


def _bn_reference_train(x, axes):
    mean = x.mean(axis=axes)
    var_b = x.var(axis=axes)
    n = x.size // x.shape[1]
    shape = [1] * x.ndim
    shape[1] = -1
    y = (x - mean.reshape(shape)) / np.sqrt(var_b.reshape(shape) + 1e-5)
    return y, mean, var_b * n / (n - 1)


@pytest.mark.parametrize("cls,shape,axes", [(nn.BatchNorm1d, (4, 3), (0,)), (nn.BatchNorm1d, (4, 3, 5), (0, 2)),
                                            (nn.BatchNorm2d, (2, 3, 4, 5), (0, 2, 3))])
def test_batch_norm_train_running_stats_eval(cls, shape, axes):
    m = cls(3, momentum=0.3).double()
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rand(*shape) * (step + 1) + step
        y = m(t64(x))
        want, mean, var_u = _bn_reference_train(x, axes)
        close(y, want)                                   # normalized with the biased batch variance
        rm = 0.7 * rm + 0.3 * mean                       # running stats use momentum and unbiased var
        rv = 0.7 * rv + 0.3 * var_u
        close(m.running_mean, rm)
        close(m.running_var, rv)
        assert m.num_batches_tracked.item() == step + 1
        assert m.num_batches_tracked.dtype == torch.int64
    m.eval()
    x = rand(*shape)
    bshape = [1] * len(shape)
    bshape[1] = -1
    close(m(t64(x)), (x - rm.reshape(bshape)) / np.sqrt(rv.reshape(bshape) + 1e-5))
    assert m.num_batches_tracked.item() == 3  # eval does not count


def test_batch_norm_momentum_none_is_cumulative_average():
    m = nn.BatchNorm1d(2, momentum=None).double()
    xs = [rand(5, 2) + i for i in range(3)]
    for x in xs:
        m(t64(x))
    close(m.running_mean, np.mean([x.mean(0) for x in xs], axis=0))
    close(m.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0))


def test_batch_norm_no_tracking_affine_errors_and_grad():
    m = nn.BatchNorm2d(3, affine=False, track_running_stats=False).double()
    assert list(m.parameters()) == [] and list(m.buffers()) == []
    assert m.running_mean is None
    x = rand(2, 3, 2, 2)
    m.eval()  # without running stats, eval still normalizes with the batch statistics
    close(m(t64(x)), _bn_reference_train(x, (0, 2, 3))[0])
    assert repr(nn.BatchNorm2d(3)) == \
        "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        nn.BatchNorm2d(3)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(torch.zeros(1, 3))
    check_grads(nn.BatchNorm1d(2), rand(4, 2))
    check_grads(nn.BatchNorm2d(2).eval(), rand(2, 2, 2, 2))
    bn = nn.BatchNorm1d(2)
    bn(torch.randn(4, 2))
    bn.reset_running_stats()
    np.testing.assert_array_equal(npy(bn.running_mean), [0, 0])
    np.testing.assert_array_equal(npy(bn.running_var), [1, 1])
    assert bn.num_batches_tracked.item() == 0


def test_instance_norm_and_rms_norm():
    x = rand(2, 3, 4, 4)
    flat = x.reshape(2, 3, -1)
    want = ((flat - flat.mean(-1, keepdims=True)) / np.sqrt(flat.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    close(nn.InstanceNorm2d(3)(t64(x)), want)
    close(nn.InstanceNorm1d(3)(t64(x[0].reshape(3, 16))), want[0].reshape(3, 16))  # unbatched
    m = nn.InstanceNorm2d(3, affine=True, track_running_stats=True).double()
    m(t64(x))
    close(m.running_mean, 0.1 * flat.mean(-1).mean(0))
    close(m.running_var, 0.9 + 0.1 * flat.var(-1, ddof=1).mean(0))
    r = nn.RMSNorm(4, eps=1e-6).double()
    v = rand(2, 4)
    close(r(t64(v)), v / np.sqrt((v ** 2).mean(-1, keepdims=True) + 1e-6))
    check_grads(nn.RMSNorm(3), rand(2, 3))


# ---- dropout ----------------------------------------------------------------------------------------

def test_dropout_train_and_eval():
    torch.manual_seed(0)
    m = nn.Dropout(0.3)
    x = torch.ones(200, 50)
    y = npy(m(x))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    m.eval()
    assert m(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(npy(nn.Dropout(1.0)(torch.ones(5))), np.zeros(5))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"


def test_dropout_gradient_uses_same_mask():
    torch.manual_seed(3)
    x = torch.ones(10, 10, requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), npy(y))  # d(mask*x/(1-p))/dx is the same scaled mask


def test_dropout2d_zeroes_whole_channels():
    torch.manual_seed(0)
    y = npy(nn.Dropout2d(0.5)(torch.ones(8, 16, 3, 3)))
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.8
    x = torch.ones(2, 3)
    assert nn.AlphaDropout(0.5).eval()(x) is x


# ---- embedding --------------------------------------------------------------------------------------

def test_embedding_values_padding_idx_and_grad():
    torch.manual_seed(0)
    m = nn.Embedding(10, 3, padding_idx=2)
    w = npy(m.weight).copy()
    np.testing.assert_array_equal(w[2], np.zeros(3))
    assert 0.5 < w.std() < 1.5  # N(0, 1) init
    idx = torch.tensor([[1, 2, 2], [0, 9, 1]])
    out = m(idx)
    assert tuple(out.shape) == (2, 3, 3)
    np.testing.assert_array_equal(npy(out), w[npy(idx)])
    (out * torch.arange(18.0).reshape(2, 3, 3)).sum().backward()
    g = npy(m.weight.grad)
    np.testing.assert_array_equal(g[2], np.zeros(3))            # padding row gets no gradient
    np.testing.assert_allclose(g[1], [0 + 15, 1 + 16, 2 + 17])  # repeated indices accumulate
    np.testing.assert_array_equal(g[3], np.zeros(3))
    assert nn.Embedding(5, 2, padding_idx=-1).padding_idx == 4
    with pytest.raises(IndexError, match="index out of range in self"):
        m(torch.tensor([10]))
    assert repr(m) == "Embedding(10, 3, padding_idx=2)"


def test_embedding_from_pretrained_and_max_norm():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    e = nn.Embedding.from_pretrained(w)
    assert not e.weight.requires_grad
    np.testing.assert_array_equal(npy(e(torch.tensor([1]))), [[3.0, 4.0]])
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad
    e2 = nn.Embedding(3, 2, max_norm=1.0)
    with torch.no_grad():
        e2.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]))
    out = npy(e2(torch.tensor([0, 1])))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.3, 0.4]], rtol=1e-5)
    np.testing.assert_allclose(npy(e2.weight)[2], [6.0, 8.0])  # rows not looked up are left alone


# ---- activations ------------------------------------------------------------------------------------

def _erf(x):
    return np.vectorize(math.erf)(x)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    (nn.CELU(0.5), lambda x: np.maximum(0, x) + np.minimum(0, 0.5 * (np.exp(x / 0.5) - 1))),
    (nn.SELU(), lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    (nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    (nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.Hardtanh(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
    (nn.Hardsigmoid(), lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (nn.LogSigmoid(), lambda x: -np.log1p(np.exp(-x))),
    (nn.Softplus(), lambda x: np.log1p(np.exp(x))),
    (nn.Softplus(beta=2.0, threshold=1.0), lambda x: np.where(2 * x > 1.0, x, np.log1p(np.exp(2 * x)) / 2)),
    (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    (nn.Tanhshrink(), lambda x: x - np.tanh(x)),
    (nn.Threshold(0.1, 20.0), lambda x: np.where(x > 0.1, x, 20.0)),
    (nn.Softmax(dim=1), lambda x: ref.softmax(x, 1)),
    (nn.Softmin(dim=0), lambda x: ref.softmax(-x, 0)),
    (nn.LogSoftmax(dim=-1), lambda x: ref.log_softmax(x, -1)),
    (nn.GLU(), lambda x: x[:, :3] / (1 + np.exp(-x[:, 3:]))),
    (nn.GLU(0), lambda x: x[:2] / (1 + np.exp(-x[2:]))),
    (nn.PReLU(), lambda x: np.where(x > 0, x, 0.25 * x)),
]


@pytest.mark.parametrize("module,formula", ACTIVATIONS, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_values(module, formula):
    x = rand(4, 6) * 3
    x[0, :3] = [0.0, -3.0, 3.0]  # include 0 and the hard-activation corners
    close(module.double()(t64(x)), formula(x), tol=1e-7)


@pytest.mark.parametrize("module,formula", ACTIVATIONS, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_gradcheck(module, formula):
    # stay away from kinks (0, +-3, clip bounds, thresholds) where finite differences are meaningless
    x = np.array([[-2.3, -1.2, -0.35, 0.45, 1.3, 2.2], [-0.8, 0.2, 0.9, -1.7, 2.6, -2.6]])
    check_grads(module, x)


def test_prelu_per_channel_and_repr():
    m = nn.PReLU(3).double()
    with torch.no_grad():
        m.weight.copy_(t64([0.1, 0.2, 0.3]))
    x = rand(2, 3, 4)
    close(m(t64(x)), np.where(x > 0, x, np.array([0.1, 0.2, 0.3])[:, None] * x))
    assert repr(m) == "PReLU(num_parameters=3)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)"


def test_inplace_activation_modifies_input():
    x = t64([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    np.testing.assert_array_equal(npy(x), [0.0, 2.0])
    np.testing.assert_array_equal(npy(y), [0.0, 2.0])
    a = t64([-1.0, 2.0], requires_grad=True)
    b = a * 1
    nn.LeakyReLU(0.5, inplace=True)(b).sum().backward()
    np.testing.assert_array_equal(npy(a.grad), [0.5, 1.0])


# ---- recurrent layers -------------------------------------------------------------------------------

def _rnn_np(m, x, h0=None, c0=None):
    return ref.rnn(m.mode if m.mode in ("LSTM", "GRU") else "RNN", x, params_np(m), m.hidden_size,
                   m.num_layers, m.bidirectional, h0, c0,
                   getattr(m, "nonlinearity", "tanh"))


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_rnn_parameters_and_init(cls):
    torch.manual_seed(0)
    m = cls(3, 4, num_layers=2, bidirectional=True)
    gates = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}[cls]
    expected = []
    for layer in range(2):
        for sfx in ("", "_reverse"):
            in_size = 3 if layer == 0 else 8
            expected += [(f"weight_ih_l{layer}{sfx}", (gates * 4, in_size)),
                         (f"weight_hh_l{layer}{sfx}", (gates * 4, 4)),
                         (f"bias_ih_l{layer}{sfx}", (gates * 4,)), (f"bias_hh_l{layer}{sfx}", (gates * 4,))]
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == expected
    for p in m.parameters():
        in_bound(p, 1 / math.sqrt(4))
    assert [n for n, _ in cls(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(1, False, False), (2, True, True), (2, False, False)])
def test_rnn_values_against_equations(cls, num_layers, bidirectional, batch_first):
    torch.manual_seed(0)
    m = cls(3, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first).double()
    x = rand(5, 2, 3)  # (T, N, I)
    D = 2 if bidirectional else 1
    h0, c0 = rand(num_layers * D, 2, 4), rand(num_layers * D, 2, 4)
    inp = t64(x.transpose(1, 0, 2) if batch_first else x)
    is_lstm = cls is nn.LSTM
    out, hn = m(inp, (t64(h0), t64(c0)) if is_lstm else t64(h0))
    want_out, want_h, want_c = _rnn_np(m, x, h0, c0 if is_lstm else None)
    if batch_first:
        want_out = want_out.transpose(1, 0, 2)
    assert tuple(out.shape) == want_out.shape == ((2, 5, 4 * D) if batch_first else (5, 2, 4 * D))
    close(out, want_out)
    if is_lstm:
        hn, cn = hn
        close(cn, want_c)
    close(hn, want_h)  # h_n is (layers*dirs, N, H) even with batch_first
    # zero initial state by default
    out0 = m(inp)[0]
    close(out0, _rnn_np(m, x)[0].transpose(1, 0, 2) if batch_first else _rnn_np(m, x)[0])


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_rnn_unbatched_and_relu(cls):
    torch.manual_seed(0)
    m = cls(3, 2, num_layers=2).double()
    x = rand(4, 3)
    out, hn = m(t64(x))
    if cls is nn.LSTM:
        hn, cn = hn
        assert tuple(cn.shape) == (2, 2)
    assert tuple(out.shape) == (4, 2) and tuple(hn.shape) == (2, 2)
    want = _rnn_np(m, x[:, None, :])
    close(out, want[0][:, 0])
    close(hn, want[1][:, 0])
    if cls is nn.RNN:
        r = nn.RNN(3, 2, 1, "relu").double()
        assert r.nonlinearity == "relu"
        close(r(t64(x))[0], _rnn_np(r, x[:, None, :])[0][:, 0])


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_rnn_gradcheck(cls):
    torch.manual_seed(0)
    m = cls(2, 2, num_layers=2, bidirectional=True, batch_first=True)
    check_grads(m, rand(1, 3, 2))


def test_rnn_cells():
    torch.manual_seed(0)
    x, h, c = rand(2, 3), rand(2, 4), rand(2, 4)
    lstm = nn.LSTMCell(3, 4).double()
    assert [(n, tuple(p.shape)) for n, p in lstm.named_parameters()] == [
        ("weight_ih", (16, 3)), ("weight_hh", (16, 4)), ("bias_ih", (16,)), ("bias_hh", (16,))]
    p = {k + "_l0": v for k, v in params_np(lstm).items()}
    h1, c1 = lstm(t64(x), (t64(h), t64(c)))
    _, wh, wc = ref.rnn("LSTM", x[None], p, 4, h0=h[None], c0=c[None])
    close(h1, wh[0])
    close(c1, wc[0])
    gru = nn.GRUCell(3, 4).double()
    p = {k + "_l0": v for k, v in params_np(gru).items()}
    close(gru(t64(x), t64(h)), ref.rnn("GRU", x[None], p, 4, h0=h[None])[1][0])
    close(gru(t64(x)), ref.rnn("GRU", x[None], p, 4)[1][0])  # zero state by default
    cell = nn.RNNCell(3, 4, nonlinearity="relu").double()
    p = {k + "_l0": v for k, v in params_np(cell).items()}
    close(cell(t64(x[0])), ref.rnn("RNN", x[None, :1], p, 4, nonlinearity="relu")[1][0, 0])  # unbatched
    check_grads(nn.GRUCell(2, 2), rand(2, 2), rand(2, 2))


def test_rnn_errors_and_repr():
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        nn.LSTM(3, 4)(torch.zeros(5, 2, 2))
    with pytest.raises(RuntimeError, match="Expected hidden size \\(1, 2, 4\\), got \\[2, 2, 4\\]"):
        nn.GRU(3, 4)(torch.zeros(5, 2, 3), torch.zeros(2, 2, 4))
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.5)
    assert repr(nn.LSTM(2, 3)) == "LSTM(2, 3)"
    assert repr(nn.GRU(2, 3, 2, batch_first=True, bidirectional=True, dropout=0.5)) == \
        "GRU(2, 3, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)"
    assert repr(nn.LSTMCell(2, 3)) == "LSTMCell(2, 3)"


def test_rnn_dropout_only_in_training():
    torch.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5).double()
    x = t64(rand(4, 2, 3))
    m.eval()
    a, b = m(x)[0], m(x)[0]
    np.testing.assert_array_equal(npy(a), npy(b))
    close(a, _rnn_np(m, npy(x))[0])
    m.train()
    assert not np.allclose(npy(m(x)[0]), npy(a))


# ---- attention and transformers ---------------------------------------------------------------------

def _mha_np(m, q, k, v, **kw):
    p = params_np(m)
    return ref.mha_from_state(p, "", q, k, v, m.num_heads, **kw)


def test_mha_parameters():
    m = nn.MultiheadAttention(4, 2)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (12, 4)), ("in_proj_bias", (12,)), ("out_proj.weight", (4, 4)), ("out_proj.bias", (4,))]
    np.testing.assert_array_equal(npy(m.in_proj_bias), np.zeros(12))
    np.testing.assert_array_equal(npy(m.out_proj.bias), np.zeros(4))
    in_bound(m.in_proj_weight, math.sqrt(6 / (12 + 4)))  # xavier_uniform on the (3E, E) matrix
    m2 = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, bias=False)
    assert [(n, tuple(p.shape)) for n, p in m2.named_parameters()] == [
        ("q_proj_weight", (4, 4)), ("k_proj_weight", (4, 3)), ("v_proj_weight", (4, 5)), ("out_proj.weight", (4, 4))]
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(5, 2)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_values_masks_and_weights(batch_first):
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 2, batch_first=batch_first).double()
    with torch.no_grad():
        m.in_proj_bias.copy_(t64(rand(12)))
        m.out_proj.bias.copy_(t64(rand(4)))
    q, k, v = rand(3, 2, 4), rand(5, 2, 4), rand(5, 2, 4)

    def run(**kw):
        tr = (lambda a: t64(a.transpose(1, 0, 2))) if batch_first else t64
        out, w = m(tr(q), tr(k), tr(v), **kw)
        return (npy(out).transpose(1, 0, 2) if batch_first else npy(out)), (None if w is None else npy(w))

    out, w = run()
    want, want_w = _mha_np(m, q, k, v)
    np.testing.assert_allclose(out, want, atol=1e-10)
    np.testing.assert_allclose(w, want_w, atol=1e-10)
    assert w.shape == (2, 3, 5)
    np.testing.assert_allclose(w.sum(-1), np.ones((2, 3)))
    # per-head weights
    _, w_heads = run(average_attn_weights=False)
    np.testing.assert_allclose(w_heads, _mha_np(m, q, k, v, average=False)[1], atol=1e-10)
    np.testing.assert_allclose(w_heads.mean(1), w, atol=1e-12)
    # boolean mask: True = not allowed to attend
    bm = RNG.uniform(size=(3, 5)) > 0.6
    bm[:, 0] = False
    out, w = run(attn_mask=torch.tensor(bm))
    want, want_w = _mha_np(m, q, k, v, attn_mask=bm)
    np.testing.assert_allclose(out, want, atol=1e-10)
    assert np.all(w[:, bm] == 0)
    # float mask is added to the scores
    fm = rand(3, 5)
    np.testing.assert_allclose(run(attn_mask=t64(fm))[0], _mha_np(m, q, k, v, attn_mask=fm)[0], atol=1e-10)
    fm3 = rand(4, 3, 5)  # (N * num_heads, L, S)
    np.testing.assert_allclose(run(attn_mask=t64(fm3))[0], _mha_np(m, q, k, v, attn_mask=fm3)[0], atol=1e-10)
    # key padding mask, combined with an attention mask; need_weights=False returns None
    kpm = np.array([[False, False, True, False, True], [False, True, False, False, False]])
    out, w = run(key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(bm), need_weights=False)
    assert w is None
    np.testing.assert_allclose(out, _mha_np(m, q, k, v, attn_mask=bm, key_padding_mask=kpm)[0], atol=1e-10)
    _, w = run(key_padding_mask=torch.tensor(kpm))
    assert np.all(w[0][:, [2, 4]] == 0) and np.all(w[1][:, 1] == 0)


def test_mha_unbatched_kdim_vdim_and_gradcheck():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 2).double()
    q, k = rand(3, 4), rand(5, 4)
    out, w = m(t64(q), t64(k), t64(k))
    want, want_w = _mha_np(m, q[:, None], k[:, None], k[:, None])
    assert tuple(out.shape) == (3, 4) and tuple(w.shape) == (3, 5)
    close(out, want[:, 0])
    close(w, want_w[0])
    m2 = nn.MultiheadAttention(4, 2, kdim=3, vdim=5).double()
    p = params_np(m2)
    b = p["in_proj_bias"]
    q, k, v = rand(3, 2, 4), rand(6, 2, 3), rand(6, 2, 5)
    want = ref.mha(q, k, v, 2, p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"], b[:4], b[4:8], b[8:],
                   p["out_proj.weight"], p["out_proj.bias"])[0]
    close(m2(t64(q), t64(k), t64(v))[0], want)
    small = nn.MultiheadAttention(2, 2)
    x = rand(2, 1, 2)
    check_grads(small, x, x, x)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(t64(rand(3, 1, 4)), t64(rand(3, 1, 4)), t64(rand(3, 1, 4)), is_causal=True)


def test_generate_square_subsequent_mask():
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    expected = np.triu(np.full((4, 4), -np.inf), 1)
    np.testing.assert_array_equal(npy(mask), expected)
    assert mask.dtype == torch.float32
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_values(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, norm_first=norm_first).double()
    assert [n for n, _ in layer.named_children()] == ["self_attn", "linear1", "dropout", "linear2", "norm1",
                                                      "norm2", "dropout1", "dropout2"]
    layer.eval()
    x = rand(5, 2, 8)
    p = params_np(layer)
    close(layer(t64(x)), ref.encoder_layer(x, p, 2, norm_first))
    cm = np.triu(np.full((5, 5), -np.inf), 1)
    kpm = np.array([[False] * 4 + [True], [False] * 5])
    y = layer(t64(x), src_mask=t64(cm), src_key_padding_mask=torch.tensor(kpm))
    close(y, ref.encoder_layer(x, p, 2, norm_first, mask=cm, kpm=kpm))
    y2 = layer(t64(x), src_mask=t64(cm), is_causal=True)
    close(y2, ref.encoder_layer(x, p, 2, norm_first, mask=cm))
    # batch_first
    bf = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=norm_first).double().eval()
    bf.load_state_dict(layer.state_dict())
    close(bf(t64(x.transpose(1, 0, 2))), ref.encoder_layer(x, p, 2, norm_first).transpose(1, 0, 2))


def test_transformer_eval_determinism_and_train_dropout():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = torch.randn(4, 2, 8)
    layer.eval()
    np.testing.assert_array_equal(npy(layer(x)), npy(layer(x)))
    layer.train()
    assert not np.allclose(npy(layer(x)), npy(layer(x)))


def test_transformer_encoder_stack_clones_and_norm():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)).double().eval()
    assert len(enc.layers) == 2 and enc.layers[0] is not enc.layers[1] and enc.layers[0] is not layer
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    keys = list(enc.state_dict())
    assert keys[0] == "layers.0.self_attn.in_proj_weight" and keys[-1] == "norm.bias"
    with torch.no_grad():
        enc.layers[1].linear1.weight.mul_(2)  # make the layers differ
    x = rand(5, 2, 8)
    p = params_np(enc)
    h = ref.encoder_layer(x, p, 2, prefix="layers.0.")
    h = ref.encoder_layer(h, p, 2, prefix="layers.1.")
    close(enc(t64(x)), ref.layer_norm(h, p["norm.weight"], p["norm.bias"]))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_layer_values(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, 16, norm_first=norm_first).double().eval()
    x, mem = rand(4, 2, 8), rand(5, 2, 8)
    tm = np.triu(np.full((4, 4), -np.inf), 1)
    p = params_np(layer)
    close(layer(t64(x), t64(mem), tgt_mask=t64(tm)), ref.decoder_layer(x, mem, p, 2, norm_first, tgt_mask=tm))
    dec = nn.TransformerDecoder(layer, 2).double().eval()
    p = params_np(dec)
    h = ref.decoder_layer(x, mem, p, 2, norm_first, prefix="layers.0.")
    close(dec(t64(x), t64(mem)), ref.decoder_layer(h, mem, p, 2, norm_first, prefix="layers.1."))


def test_transformer_full_model():
    torch.manual_seed(0)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16)
    model.eval()
    src, tgt = torch.randn(5, 3, 8), torch.randn(4, 3, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    out = model(src, tgt, tgt_mask=mask)
    assert tuple(out.shape) == (4, 3, 8)
    np.testing.assert_array_equal(npy(out), npy(model(src, tgt, tgt_mask=mask)))
    # the output is the decoder over the encoder's memory
    mem = model.encoder(src)
    np.testing.assert_allclose(npy(out), npy(model.decoder(tgt, mem, tgt_mask=mask)), rtol=1e-6, atol=1e-6)
    # every matrix was re-initialized with xavier_uniform
    w = model.encoder.layers[0].linear1.weight
    in_bound(w, math.sqrt(6 / (8 + 16)))
    assert [n for n, _ in model.named_children()] == ["encoder", "decoder"]
    bf = nn.Transformer(8, 2, 1, 1, 16, batch_first=True, norm_first=True).eval()
    assert tuple(bf(torch.randn(3, 5, 8), torch.randn(3, 4, 8)).shape) == (3, 4, 8)
    assert tuple(model(torch.randn(5, 8), torch.randn(4, 8)).shape) == (4, 8)  # unbatched
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(torch.zeros(3, 2, 8), torch.zeros(3, 1, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        model(torch.zeros(3, 2, 5), torch.zeros(3, 2, 5))


def test_transformer_layer_gradcheck():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(2, 1, dim_feedforward=3, dropout=0.0)
    check_grads(layer, rand(2, 1, 2))


# ---- packed sequences -------------------------------------------------------------------------------

def test_pad_pack_sequence_utilities():
    U = nn.utils.rnn
    a, b, c = t64(rand(4, 2)), t64(rand(2, 2)), t64(rand(3, 2))
    padded = U.pad_sequence([a, b, c])
    assert tuple(padded.shape) == (4, 3, 2)
    close(padded[:, 1], np.concatenate([npy(b), np.zeros((2, 2))]))
    left = U.pad_sequence([a, b], batch_first=True, padding_value=-1.0, padding_side="left")
    close(left[1], np.concatenate([-np.ones((2, 2)), npy(b)]))
    packed = U.pack_sequence([a, c, b])  # already sorted by length
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), [3, 3, 2, 1])
    # time-major: step 0 of every sequence, then step 1, ...
    close(packed.data[:3], np.stack([npy(a)[0], npy(c)[0], npy(b)[0]]))
    out, lengths = U.pad_packed_sequence(packed, batch_first=True, total_length=5)
    assert tuple(out.shape) == (3, 5, 2)
    np.testing.assert_array_equal(lengths.numpy(), [4, 3, 2])
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        U.pack_sequence([b, a])
    unsorted = U.pack_sequence([b, a, c], enforce_sorted=False)
    np.testing.assert_array_equal(unsorted.sorted_indices.numpy(), [1, 2, 0])
    back = U.unpack_sequence(unsorted)
    for x, y in zip(back, [b, a, c]):
        close(x, npy(y))


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_rnn_on_packed_sequence_matches_per_sequence_runs(cls):
    torch.manual_seed(0)
    m = cls(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    lengths = [2, 5, 3]
    x = rand(3, 5, 3)
    packed = nn.utils.rnn.pack_padded_sequence(t64(x), lengths, batch_first=True, enforce_sorted=False)
    out, h = m(packed)
    if cls is nn.LSTM:
        h = h[0]
    padded, lens = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    np.testing.assert_array_equal(lens.numpy(), lengths)
    for i, n in enumerate(lengths):
        want_out, want_h, _ = _rnn_np(m, x[i, :n, None, :])   # the sequence alone, without its padding
        close(padded[i, :n], want_out[:, 0])
        close(padded[i, n:], np.zeros((5 - n, 8)))
        close(h[:, i], want_h[:, 0])


# ---- padding, shuffles, misc layers -----------------------------------------------------------------

@pytest.mark.parametrize("cls,np_mode", [(nn.ZeroPad2d, "constant"), (nn.ReflectionPad2d, "reflect"),
                                         (nn.ReplicationPad2d, "edge"), (nn.CircularPad2d, "wrap")])
def test_padding_layers(cls, np_mode):
    x = rand(2, 3, 4, 5)
    m = cls((1, 2, 3, 0))  # (left, right, top, bottom)
    assert m.padding == (1, 2, 3, 0)
    close(m(t64(x)), np.pad(x, ((0, 0), (0, 0), (3, 0), (1, 2)), mode=np_mode))
    assert cls(2).padding == (2, 2, 2, 2)
    x1 = rand(2, 4)
    m1 = {"constant": nn.ConstantPad1d(2, 3.5), "reflect": nn.ReflectionPad1d(2), "edge": nn.ReplicationPad1d(2),
          "wrap": nn.CircularPad1d(2)}[np_mode]
    kw = {"constant_values": 3.5} if np_mode == "constant" else {}
    close(m1(t64(x1)), np.pad(x1, ((0, 0), (2, 2)), mode=np_mode, **kw))
    assert repr(nn.ZeroPad2d(1)) == "ZeroPad2d((1, 1, 1, 1))"
    assert repr(nn.ConstantPad1d(1, 2.0)) == "ConstantPad1d(padding=(1, 1), value=2.0)"


def test_pixel_shuffle_unshuffle_channel_shuffle():
    x = rand(2, 8, 3, 4)
    y = nn.PixelShuffle(2)(t64(x))
    assert tuple(y.shape) == (2, 2, 6, 8)
    # out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w]
    want = np.zeros((2, 2, 6, 8))
    for c in range(2):
        for i in range(2):
            for j in range(2):
                want[:, c, i::2, j::2] = x[:, c * 4 + i * 2 + j]
    close(y, want)
    close(nn.PixelUnshuffle(2)(y), x)
    cs = nn.ChannelShuffle(2)(t64(rand(1, 6, 2) * 0 + np.arange(6)[None, :, None]))
    close(cs[0, :, 0], [0, 3, 1, 4, 2, 5])


def test_shrink_rrelu_softmax2d_lppool_lrn_upsampling():
    x = rand(2, 3, 4, 5) * 2
    close(nn.Hardshrink(0.7).double()(t64(x)), np.where(np.abs(x) > 0.7, x, 0))
    close(nn.Softshrink(0.7).double()(t64(x)), np.sign(x) * np.maximum(np.abs(x) - 0.7, 0))
    close(nn.Softmax2d()(t64(x)), ref.softmax(x, 1))
    r = nn.RReLU(0.1, 0.3)
    close(r.eval()(t64(x)), np.where(x >= 0, x, 0.2 * x))
    torch.manual_seed(0)
    slopes = npy(r.train()(t64(-np.ones((50, 50))))) * -1
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    pos = np.abs(x) + 0.1
    close(nn.LPPool2d(2, 2)(t64(pos)), np.sqrt((pos[:, :, :4, :4] ** 2).reshape(2, 3, 2, 2, 2, 2).sum(axis=(3, 5))))
    v = rand(2, 5, 3)
    sq = np.pad(v ** 2, ((0, 0), (1, 1), (0, 0)))
    div = (1.0 + 1e-2 / 3 * (sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:])) ** 0.75
    close(nn.LocalResponseNorm(3, alpha=1e-2)(t64(v)), v / div)
    up = nn.UpsamplingBilinear2d(scale_factor=2)(t64([[[[0.0, 3.0]]]]))
    close(up, [[[[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]]]])  # align_corners=True
    close(nn.UpsamplingNearest2d(size=(2, 4))(t64([[[[0.0, 3.0]]]])), [[[[0, 0, 3, 3], [0, 0, 3, 3]]]])


def test_max_unpool_inverts_max_pool():
    x = rand(1, 2, 4, 6)
    y, idx = nn.MaxPool2d(2, return_indices=True)(t64(x))
    u = nn.MaxUnpool2d(2)(y, idx)
    assert tuple(u.shape) == (1, 2, 4, 6)
    keep = np.zeros_like(x, dtype=bool)
    np.put_along_axis(keep.reshape(1, 2, -1), idx.numpy().reshape(1, 2, -1), True, axis=2)
    close(u, np.where(keep, x, 0.0))
    assert repr(nn.MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"


def test_conv_transpose3d_adjoint_and_cosine_pairwise_modules():
    x, y, w = rand(1, 2, 4, 3, 4), rand(1, 3, 2, 1, 2), rand(3, 2, 2, 2, 2)
    a = (F.conv3d(t64(x), t64(w), stride=2) * t64(y)).sum().item()
    m = nn.ConvTranspose3d(3, 2, 2, stride=2, output_padding=(0, 1, 0), bias=False).double()
    with torch.no_grad():
        m.weight.copy_(t64(w))
    b = (t64(x) * m(t64(y))).sum().item()
    assert abs(a - b) < 1e-9
    u, v = rand(4, 3), rand(4, 3)
    close(nn.CosineSimilarity(dim=1)(t64(u), t64(v)),
          (u * v).sum(1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1))
    close(nn.PairwiseDistance(p=1)(t64(u), t64(v)), np.abs(u - v + 1e-6).sum(1))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(mode):
    torch.manual_seed(0)
    bag = nn.EmbeddingBag(10, 3, mode=mode).double()
    w = npy(bag.weight)
    idx, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4, 4])
    out = bag(torch.tensor(idx), torch.tensor(offsets))
    red = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
    want = [red(w[idx[0:4]], 0), np.zeros(3), red(w[idx[4:]], 0)]  # an empty bag gives zeros
    close(out, np.stack(want))
    out2 = bag(torch.tensor([[1, 2, 2], [3, 4, 5]]))  # 2-D input: fixed-length bags
    close(out2, np.stack([red(w[[1, 2, 2]], 0), red(w[[3, 4, 5]], 0)]))
    if mode == "sum":
        psw = rand(8)
        close(bag(torch.tensor(idx), torch.tensor(offsets), per_sample_weights=t64(psw))[0],
              (w[idx[:4]] * psw[:4, None]).sum(0))
    assert repr(bag) == f"EmbeddingBag(10, 3, mode='{mode}')"


def test_more_gradchecks():
    idx = torch.tensor([[0, 3, 3], [4, 1, 0]])
    assert gradcheck(lambda w: F.embedding(idx, w), (t64(rand(5, 2), True),))
    check_grads(nn.InstanceNorm1d(2, affine=True), rand(2, 2, 4))
    check_grads(nn.MaxPool1d(3, 2, 1, ceil_mode=True), rand(1, 2, 6))
    check_grads(nn.AvgPool1d(3, 2, 1), rand(1, 2, 6))
    check_grads(nn.LocalResponseNorm(2), rand(1, 3, 4))
    check_grads(nn.PixelShuffle(2), rand(1, 4, 2, 2))
    check_grads(nn.ReflectionPad2d((1, 0, 2, 1)), rand(1, 1, 3, 3))


def test_lstm_proj_size():
    torch.manual_seed(0)
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2).double()
    shapes = dict((n, tuple(p.shape)) for n, p in m.named_parameters())
    assert shapes["weight_hh_l0"] == (20, 2) and shapes["weight_hr_l0"] == (2, 5)
    assert shapes["weight_ih_l1_reverse"] == (20, 4)
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    x, h0, c0 = rand(4, 2, 3), rand(4, 2, 2), rand(4, 2, 5)
    out, (hn, cn) = m(t64(x), (t64(h0), t64(c0)))
    want_out, want_h, want_c = _rnn_np(m, x, h0, c0)
    assert tuple(out.shape) == (4, 2, 4) and tuple(hn.shape) == (4, 2, 2) and tuple(cn.shape) == (4, 2, 5)
    close(out, want_out)
    close(hn, want_h)
    close(cn, want_c)
    assert repr(nn.LSTM(3, 5, proj_size=2)) == "LSTM(3, 5, proj_size=2)"
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 5, proj_size=5)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(3, 5, proj_size=2)


def test_mha_bias_kv_zero_attn_and_functional_form():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True).double()
    assert [n for n, _ in m.named_parameters()] == ["in_proj_weight", "in_proj_bias", "bias_k", "bias_v",
                                                    "out_proj.weight", "out_proj.bias"]
    assert tuple(m.bias_k.shape) == (1, 1, 4)
    q, k = rand(3, 2, 4), rand(5, 2, 4)
    fm = rand(3, 5)
    kpm = np.array([[False, False, True, False, True], [False, True, False, False, False]])
    p = params_np(m)
    out, w = m(t64(q), t64(k), t64(k), attn_mask=t64(fm), key_padding_mask=torch.tensor(kpm))
    E = 4
    want, want_w = ref.mha(q, k, k, 2, p["in_proj_weight"][:E], p["in_proj_weight"][E:2 * E],
                           p["in_proj_weight"][2 * E:], p["in_proj_bias"][:E], p["in_proj_bias"][E:2 * E],
                           p["in_proj_bias"][2 * E:], p["out_proj.weight"], p["out_proj.bias"], attn_mask=fm,
                           key_padding_mask=kpm, bias_k=p["bias_k"][0, 0], bias_v=p["bias_v"][0, 0], zero_attn=True)
    close(out, want)
    assert tuple(w.shape) == (2, 3, 7)
    close(w, want_w)
    # the functional form with the module's weights
    plain = nn.MultiheadAttention(4, 2).double()
    o2, w2 = F.multi_head_attention_forward(t64(q), t64(k), t64(k), 4, 2, plain.in_proj_weight, plain.in_proj_bias,
                                            None, None, False, 0.0, plain.out_proj.weight, plain.out_proj.bias,
                                            average_attn_weights=False)
    o3, w3 = plain(t64(q), t64(k), t64(k), average_attn_weights=False)
    close(o2, npy(o3))
    close(w2, npy(w3))


def test_mha_fully_masked_query():
    # a batch element whose keys are all padded: need_weights=False (PyTorch's SDPA path) gives 0 rows
    m = nn.MultiheadAttention(4, 2).double()
    x = t64(rand(3, 2, 4))
    kpm = torch.tensor([[True, True, True], [False, False, False]])
    out, _ = m(x, x, x, key_padding_mask=kpm, need_weights=False)
    close(out[:, 0], np.broadcast_to(npy(m.out_proj.bias), (3, 4)))
    assert np.all(np.isfinite(npy(out)))
