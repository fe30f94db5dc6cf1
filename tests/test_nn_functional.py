"""graphc.nn.functional extras: softmax family, dropout, pad, one_hot, normalize,
scaled_dot_product_attention, interpolate, unfold/fold, against values derived independently."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

import graphc as torch
import graphc.nn.functional as F
from graphc.autograd import gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_reference as ref  # noqa: E402

RNG = np.random.default_rng(11)


def rand(*shape):
    return RNG.standard_normal(shape)


def t64(a, requires_grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def close(t, expected, tol=1e-9):
    np.testing.assert_allclose(t.detach().numpy(), expected, rtol=tol, atol=tol)


# ---- softmax family ---------------------------------------------------------------------------------

def test_softmax_log_softmax_softmin():
    x = rand(2, 3, 4)
    for dim in (0, 1, 2, -1):
        close(F.softmax(t64(x), dim), ref.softmax(x, dim))
        close(F.log_softmax(t64(x), dim=dim), ref.log_softmax(x, dim))
        close(F.softmin(t64(x), dim), ref.softmax(-x, dim))
    big = np.array([1000.0, 0.0, -1000.0])
    close(F.softmax(t64(big), 0), [1.0, 0.0, 0.0])
    close(F.log_softmax(t64(big), 0), [0.0, -1000.0, -2000.0])
    y = F.softmax(torch.tensor([[1.0, 2.0]]), dim=1, dtype=torch.float64)
    assert y.dtype == torch.float64
    assert gradcheck(lambda a: F.log_softmax(a, 1), (t64(rand(2, 3), True),))


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax has been deprecated"):
        y = F.softmax(t64(rand(2, 3)))
    close(y.sum(1), np.ones(2))  # dim=1 for 2-D input


# ---- dropout ----------------------------------------------------------------------------------------

def test_functional_dropout():
    torch.manual_seed(0)
    x = torch.ones(100, 100)
    assert F.dropout(x, 0.5, training=False) is x
    y = F.dropout(x, 0.2).numpy()  # training=True is the functional default
    assert abs((y == 0).mean() - 0.2) < 0.02
    np.testing.assert_allclose(y[y != 0], 1.25, rtol=1e-6)
    np.testing.assert_allclose(y.mean(), 1.0, atol=0.03)  # unbiased in expectation
    torch.manual_seed(5)
    a = F.dropout(x, 0.5).numpy()
    torch.manual_seed(5)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)  # reproducible under manual_seed
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout(x, -0.1)
    z = torch.ones(4)
    F.dropout(z, 1.0, inplace=True)
    np.testing.assert_array_equal(z.numpy(), np.zeros(4))


# ---- pad --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,np_mode", [("constant", "constant"), ("reflect", "reflect"),
                                          ("replicate", "edge"), ("circular", "wrap")])
def test_pad_modes(mode, np_mode):
    x = rand(2, 3, 4, 5)
    # (left, right) of the last dim first, then (top, bottom)
    close(F.pad(t64(x), (1, 2, 2, 1), mode=mode), np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 2)), mode=np_mode))
    x3 = rand(2, 3, 4)
    close(F.pad(t64(x3), (2, 3), mode=mode), np.pad(x3, ((0, 0), (0, 0), (2, 3)), mode=np_mode))
    assert gradcheck(lambda a: F.pad(a, (1, 2), mode=mode), (t64(rand(1, 2, 4), True),))


def test_pad_values_by_hand_and_errors():
    x = t64([[1.0, 2.0, 3.0]])
    close(F.pad(x, (2, 1), mode="reflect"), [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]])
    close(F.pad(x[None], (2, 1), mode="replicate"), [[[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]])
    close(F.pad(x[None], (2, 1), mode="circular"), [[[2.0, 3.0, 1.0, 2.0, 3.0, 1.0]]])
    close(F.pad(x, (1, 0, 0, 1), value=9.0), [[9.0, 1.0, 2.0, 3.0], [9.0, 9.0, 9.0, 9.0]])
    close(F.pad(x, (-1, 1)), [[2.0, 3.0, 0.0]])  # negative padding crops
    x4 = rand(1, 1, 2, 3)
    close(F.pad(t64(x4), (0, 0, 0, 0, 1, 1)), np.pad(x4, ((0, 0), (1, 1), (0, 0), (0, 0))))
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(RuntimeError, match="Padding size should be less than the corresponding input dimension"):
        F.pad(t64(rand(1, 1, 3)), (3, 0), mode="reflect")


# ---- one_hot / normalize ----------------------------------------------------------------------------

def test_one_hot():
    idx = np.array([[0, 3], [4, 1]])
    y = F.one_hot(torch.tensor(idx), 5)
    assert y.dtype == torch.int64 and tuple(y.shape) == (2, 2, 5)
    np.testing.assert_array_equal(y.numpy(), np.eye(5, dtype=np.int64)[idx])
    assert tuple(F.one_hot(torch.tensor([0, 2])).shape) == (2, 3)  # num_classes inferred as max + 1
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        F.one_hot(torch.tensor([0, 4]), 3)
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor"):
        F.one_hot(torch.tensor([0.0]), 3)


def test_normalize():
    x = rand(3, 4)
    close(F.normalize(t64(x)), x / np.linalg.norm(x, axis=1, keepdims=True))
    close(F.normalize(t64(x), p=1, dim=0), x / np.abs(x).sum(0, keepdims=True))
    close(F.normalize(t64(np.zeros((2, 3)))), np.zeros((2, 3)))  # eps avoids 0/0
    close(F.normalize(t64([3.0, 4.0]), dim=0), [0.6, 0.8])
    assert gradcheck(lambda a: F.normalize(a, dim=-1), (t64(rand(2, 3), True),))


def test_cosine_similarity_and_pairwise_distance():
    a, b = rand(4, 3), rand(4, 3)
    close(F.cosine_similarity(t64(a), t64(b)),
          (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    close(F.pairwise_distance(t64(a), t64(b)), np.linalg.norm(a - b + 1e-6, axis=1))


# ---- scaled dot product attention ---------------------------------------------------------------

def sdpa_ref(q, k, v, mask=None, causal=False, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    L, S = s.shape[-2:]
    if causal:
        mask = np.tril(np.ones((L, S), dtype=bool))
    if mask is not None:
        s = s + (np.where(mask, 0.0, -np.inf) if mask.dtype == bool else mask)  # bool: True = take part
    return ref.softmax(s, -1) @ v


def test_sdpa_plain_causal_and_masks():
    q, k, v = rand(2, 3, 4, 5), rand(2, 3, 6, 5), rand(2, 3, 6, 7)
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v)), sdpa_ref(q, k, v))
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True), sdpa_ref(q, k, v, causal=True))
    # the causal mask is the lower triangle: the first query sees only the first key
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True).numpy()
    np.testing.assert_allclose(out[..., 0, :], v[..., 0, :], atol=1e-12)
    bm = RNG.uniform(size=(4, 6)) > 0.4
    bm[:, 0] = True
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=torch.tensor(bm)), sdpa_ref(q, k, v, bm))
    fm = rand(4, 6)
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=t64(fm), scale=0.3),
          sdpa_ref(q, k, v, fm, scale=0.3))
    close(F.scaled_dot_product_attention(t64(q[0]), t64(k[0]), t64(v[0])), sdpa_ref(q[0], k[0], v[0]))
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=torch.tensor(bm), is_causal=True)


def test_sdpa_gqa_dropout_and_gradcheck():
    q, k, v = rand(1, 4, 3, 2), rand(1, 2, 5, 2), rand(1, 2, 5, 3)
    close(F.scaled_dot_product_attention(t64(q), t64(k), t64(v), enable_gqa=True),
          sdpa_ref(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1)))
    torch.manual_seed(0)
    a = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), dropout_p=0.5, enable_gqa=True)
    assert tuple(a.shape) == (1, 4, 3, 3)
    mask = t64(rand(2, 3))
    assert gradcheck(lambda a_, b_, c_: F.scaled_dot_product_attention(a_, b_, c_, attn_mask=mask),
                     (t64(rand(1, 2, 2), True), t64(rand(1, 3, 2), True), t64(rand(1, 3, 2), True)))


# ---- interpolate ------------------------------------------------------------------------------------

def linear_src(o, n, align_corners, scale_factor=None):
    d = np.arange(o, dtype=np.float64)
    if align_corners:
        return d * ((n - 1) / (o - 1) if o > 1 else 0.0)
    scale = 1 / scale_factor if scale_factor else n / o
    return np.maximum((d + 0.5) * scale - 0.5, 0.0)


def bilinear_ref(x, out_hw, align_corners, scale_factor=None):
    n_, c, h, w = x.shape
    oh, ow = out_hw
    ys = linear_src(oh, h, align_corners, scale_factor)
    xs = linear_src(ow, w, align_corners, scale_factor)
    out = np.zeros((n_, c, oh, ow))
    for i, sy in enumerate(ys):
        y0 = min(int(np.floor(sy)), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for j, sx in enumerate(xs):
            x0 = min(int(np.floor(sx)), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = x[:, :, y0, x0] * (1 - fx) + x[:, :, y0, x1] * fx
            bot = x[:, :, y1, x0] * (1 - fx) + x[:, :, y1, x1] * fx
            out[:, :, i, j] = top * (1 - fy) + bot * fy
    return out


def test_interpolate_linear_by_hand():
    x = t64([[[0.0, 10.0]]])
    close(F.interpolate(x, size=4, mode="linear", align_corners=True), [[[0.0, 10 / 3, 20 / 3, 10.0]]])
    close(F.interpolate(x, size=4, mode="linear", align_corners=False), [[[0.0, 2.5, 7.5, 10.0]]])
    close(F.interpolate(x, scale_factor=2, mode="linear"), [[[0.0, 2.5, 7.5, 10.0]]])
    close(F.interpolate(t64([[[0.0, 1.0, 2.0]]]), size=5), [[[0.0, 0.0, 1.0, 1.0, 2.0]]])  # nearest: floor(d*3/5)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("out_hw", [(7, 3), (2, 2), (8, 10)])
def test_interpolate_bilinear(align_corners, out_hw):
    x = rand(2, 3, 4, 5)
    y = F.interpolate(t64(x), size=out_hw, mode="bilinear", align_corners=align_corners)
    close(y, bilinear_ref(x, out_hw, align_corners))


def test_interpolate_bilinear_scale_factor_and_gradcheck():
    x = rand(1, 2, 3, 4)
    # with scale_factor (no recompute) the source scale is 1/scale_factor, not in/out
    y = F.interpolate(t64(x), scale_factor=1.7, mode="bilinear")
    assert tuple(y.shape) == (1, 2, 5, 6)
    close(y, bilinear_ref(x, (5, 6), False, scale_factor=1.7))
    y2 = F.interpolate(t64(x), scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)
    close(y2, bilinear_ref(x, (5, 6), False))
    assert gradcheck(lambda a: F.interpolate(a, size=(3, 5), mode="bilinear", align_corners=True),
                     (t64(rand(1, 1, 2, 3), True),))


def test_interpolate_nearest():
    x = rand(1, 2, 4, 5)
    y = F.interpolate(t64(x), size=(7, 3))
    rows = np.minimum(np.floor(np.arange(7) * 4 / 7).astype(int), 3)
    cols = np.minimum(np.floor(np.arange(3) * 5 / 3).astype(int), 4)
    close(y, x[:, :, rows][:, :, :, cols])
    y2 = F.interpolate(t64(x), scale_factor=2)
    close(y2, x.repeat(2, axis=2).repeat(2, axis=3))
    y3 = F.interpolate(t64(x), size=(7, 3), mode="nearest-exact")
    rows = np.minimum(np.floor((np.arange(7) + 0.5) * 4 / 7).astype(int), 3)
    cols = np.minimum(np.floor((np.arange(3) + 0.5) * 5 / 3).astype(int), 4)
    close(y3, x[:, :, rows][:, :, :, cols])
    close(torch.nn.Upsample(scale_factor=2)(t64(x)), x.repeat(2, axis=2).repeat(2, axis=3))
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(t64(x), size=(2, 2), align_corners=True)
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(t64(x), size=2, scale_factor=2)


def test_interpolate_area_is_adaptive_average():
    x = rand(1, 1, 4, 6)
    close(F.interpolate(t64(x), size=(2, 3), mode="area"), x.reshape(1, 1, 2, 2, 3, 2).mean(axis=(3, 5)))


# ---- unfold / fold ----------------------------------------------------------------------------------

def test_unfold_fold():
    x = rand(2, 3, 4, 5)
    cols = F.unfold(t64(x), kernel_size=(2, 3), padding=1, stride=(2, 1)).numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = (4 + 2 - 2) // 2 + 1, (5 + 2 - 3) // 1 + 1
    assert cols.shape == (2, 3 * 6, oh * ow)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, 2 * i:2 * i + 2, j:j + 3].reshape(2, -1)  # channel-major, then kernel rows
            np.testing.assert_allclose(cols[:, :, i * ow + j], patch)
    # fold sums overlapping patches back: fold(unfold(x)) == x * (number of windows covering each pixel)
    ones = np.ones((1, 1, 4, 5))
    cover = F.fold(F.unfold(t64(ones), 2), (4, 5), 2).numpy()
    close(F.fold(F.unfold(t64(x), 2), (4, 5), 2), x * cover)
    np.testing.assert_array_equal(cover[0, 0, :, 0], [1, 2, 2, 1])
