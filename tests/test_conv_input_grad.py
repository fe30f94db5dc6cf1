"""Compiled convolutions against a plain numpy convolution in float64: values, and the gradients of
input and weight against finite differences. A stride-1 convolution's input gradient is computed
as a transposed convolution (``passes/lowered_rewrites.py``); strides, dilations, groups and
paddings past k - 1 keep fold (col2im). Two channels or more take unfold's one-copy path, one
channel its per-offset copies."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _pads(padding, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    if padding == "same":  # PyTorch: the odd one of the total on the high side
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))
    return tuple((padding, padding) for _ in kernel)


def _conv_ref(x, w, stride, padding, dilation, groups):
    """Direct convolution: one product per kernel offset over the padded input."""
    kernel = w.shape[2:]
    nsp = len(kernel)
    xp = np.pad(x, ((0, 0), (0, 0)) + _pads(padding, kernel, dilation))
    out = [(xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nsp)]
    cg, og = w.shape[1], w.shape[0] // groups
    y = np.zeros((x.shape[0], w.shape[0]) + tuple(out))
    for offs in np.ndindex(*kernel):
        sl = tuple(slice(o * dilation[i], o * dilation[i] + stride[i] * (out[i] - 1) + 1, stride[i])
                   for i, o in enumerate(offs))
        for gi in range(groups):
            win = xp[(slice(None), slice(gi * cg, (gi + 1) * cg)) + sl]
            y[:, gi * og:(gi + 1) * og] += np.einsum("nc...,oc->no...", win, w[(slice(gi * og, (gi + 1) * og),
                                                                              slice(None)) + offs])
    return y


def _fd_grad(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f`` at ``a``, one element at a time."""
    g = np.zeros_like(a)
    for i in np.ndindex(*a.shape):
        old = a[i]
        a[i] = old + eps
        hi = f()
        a[i] = old - eps
        lo = f()
        a[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


# (x shape, weight shape, stride, padding, dilation, groups, input gradient as a transposed conv)
CASES = [
    ((2, 1, 6, 5), (4, 1, 3, 3), 1, 0, 1, 1, True),     # one channel (conv1 of the CNN)
    ((2, 3, 6, 7), (5, 3, 3, 3), 1, 1, 1, 1, True),
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 2, 1, 1, True),     # padding k - 1: the gradient's unfold has none
    ((2, 9, 5, 6), (3, 9, 2, 3), 1, "same", 1, 1, True),  # (0, 1) padding on the even kernel's dim
    ((2, 8, 5, 5), (12, 8, 3, 3), 1, 1, 1, 1, True),    # more output channels than input
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 3, 1, 1, False),    # padding past k - 1: fold
    ((2, 8, 7, 6), (3, 8, 3, 3), 2, 1, 1, 1, False),    # stride 2
    ((2, 8, 7, 7), (3, 8, 3, 3), 1, 2, 2, 1, False),    # dilation 2
    ((2, 4, 6, 6), (4, 2, 3, 3), 1, 1, 1, 2, False),    # groups 2
    ((2, 3, 9), (4, 3, 4), 1, 1, 1, 1, True),           # conv1d
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), 1, 1, 1, 1, True),  # conv3d
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups,transposed", CASES)
def test_compiled_conv_values_and_gradients(xs, ws, stride, padding, dilation, groups, transposed):
    nsp = len(ws) - 2
    st, dil = (stride,) * nsp, (dilation,) * nsp
    rng = np.random.default_rng(1)
    x0, w0 = rng.standard_normal(xs), rng.standard_normal(ws)
    want_y = _conv_ref(x0, w0, st, padding, dil, groups)
    r = rng.standard_normal(want_y.shape)  # the loss sum(y * r) weighs every output differently

    def step(x, w):
        y = CONV[nsp](x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
        (y * graphc.tensor(r)).sum().backward()
        return y.detach()
    ts = [graphc.tensor(a, requires_grad=True) for a in (x0, w0)]
    y = graphc.compile(step)(*ts)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-10, atol=1e-10)
    loss = lambda: float((_conv_ref(x0, w0, st, padding, dil, groups) * r).sum())  # noqa: E731
    np.testing.assert_allclose(ts[0].grad.numpy(), _fd_grad(loss, x0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ts[1].grad.numpy(), _fd_grad(loss, w0), rtol=1e-6, atol=1e-7)
    code = graphc.explain(step, *[graphc.tensor(a, requires_grad=True) for a in (x0, w0)]).code
    assert ("_impl['fold']" not in code) == transposed


def _input_grad(x, w):
    return graphc.func.grad(lambda x: (F.conv2d(x, w, padding=1) ** 2).sum())(x)


def test_compiled_double_backward_through_conv_equals_eager():
    """The gradient of a function of the input gradient: its own backward unfolds and folds again;
    the rewrite runs on the whole lowered graph, after autodiff."""
    rng = np.random.default_rng(2)
    x0, w0 = graphc.tensor(rng.standard_normal((2, 3, 6, 6))), graphc.tensor(rng.standard_normal((4, 3, 3, 3)))

    def step(x, w):
        return graphc.func.grad(lambda w: (_input_grad(x, w) ** 2).sum())(w)
    np.testing.assert_allclose(graphc.compile(step, fullgraph=True)(x0, w0).numpy(), step(x0, w0).numpy(),
                               rtol=1e-10, atol=1e-10)


def test_compiled_vmap_of_conv_input_grad_equals_eager():
    """vmap joins its batch to conv's N inside unfold and fold (their batching rules): the product
    then has another shape, so this input gradient keeps fold; the values must not change."""
    rng = np.random.default_rng(3)
    xs, w0 = graphc.tensor(rng.standard_normal((3, 2, 3, 6, 6))), graphc.tensor(rng.standard_normal((4, 3, 3, 3)))

    def step(xs, w):
        return graphc.func.vmap(_input_grad, in_dims=(0, None))(xs, w)
    np.testing.assert_allclose(graphc.compile(step, fullgraph=True)(xs, w0).numpy(), step(xs, w0).numpy(),
                               rtol=1e-10, atol=1e-10)
