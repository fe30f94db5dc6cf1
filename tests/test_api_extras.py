"""PyTorch names graphc gained for issue #13's surface count (branch nnmisc): lazy modules, torch/amp/
cuda odds and ends, BatchNorm folding, optimizers, pooling and losses. Each is checked against
PyTorch where it is installed (same weights, same inputs), and by its defining property otherwise."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F


def _rand(*shape, seed=0):
    return torch.tensor(np.random.default_rng(seed).standard_normal(shape))


def _to_torch(pt, t):
    return pt.tensor(t.detach().numpy())


def _copy_into(pt, ours, theirs):
    """Give the PyTorch module graphc's parameters and buffers (same names)."""
    sd = {k: _to_torch(pt, v) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)


# ---- lazy modules --------------------------------------------------------------------------

LAZY_CASES = [
    ("LazyConv1d", dict(out_channels=4, kernel_size=3, padding=1), (2, 6, 7), "Conv1d", (4, 6, 3)),
    ("LazyConv2d", dict(out_channels=4, kernel_size=3, groups=2), (2, 6, 5, 5), "Conv2d", (4, 3, 3, 3)),
    ("LazyConv3d", dict(out_channels=2, kernel_size=2, bias=False), (2, 3, 3, 3, 3), "Conv3d", (2, 3, 2, 2, 2)),
    ("LazyConvTranspose1d", dict(out_channels=4, kernel_size=3, stride=2), (2, 6, 5), "ConvTranspose1d", (6, 4, 3)),
    ("LazyConvTranspose2d", dict(out_channels=4, kernel_size=2, groups=2), (2, 6, 3, 3), "ConvTranspose2d",
     (6, 2, 2, 2)),
    ("LazyConvTranspose3d", dict(out_channels=2, kernel_size=2), (1, 3, 2, 2, 2), "ConvTranspose3d", (3, 2, 2, 2, 2)),
    ("LazyBatchNorm1d", dict(), (5, 6), "BatchNorm1d", (6,)),
    ("LazyBatchNorm2d", dict(momentum=None), (3, 4, 2, 2), "BatchNorm2d", (4,)),
    ("LazyBatchNorm3d", dict(affine=False), (2, 3, 2, 2, 2), "BatchNorm3d", None),
    ("LazyInstanceNorm1d", dict(), (2, 6, 5), "InstanceNorm1d", (6,)),
    ("LazyInstanceNorm2d", dict(track_running_stats=False), (2, 3, 4, 4), "InstanceNorm2d", (3,)),
    ("LazyInstanceNorm3d", dict(bias=False), (2, 3, 2, 2, 2), "InstanceNorm3d", (3,)),
]


@pytest.mark.parametrize("name,kwargs,shape,becomes,weight_shape", LAZY_CASES, ids=[c[0] for c in LAZY_CASES])
def test_lazy_module_infers_its_shape_and_becomes_the_plain_class(name, kwargs, shape, becomes, weight_shape):
    m = getattr(nn, name)(**kwargs).double()
    assert m.has_uninitialized_params()
    x = _rand(*shape, seed=1)
    y = m(x)
    assert type(m) is getattr(nn, becomes)
    if weight_shape is None:
        assert m.weight is None
    else:
        assert tuple(m.weight.shape) == weight_shape and m.weight.dtype == torch.float64
    assert all(type(p) is nn.Parameter for p in m.parameters())
    assert y.dtype == torch.float64
    if weight_shape is None:
        return
    # and it trains: the parameters made at the first call get gradients and move
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = [p.detach().clone() for p in m.parameters()]
    (m(x) ** 2).mean().backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, m.parameters()))


@pytest.mark.parametrize("name,kwargs,shape,becomes,weight_shape", LAZY_CASES, ids=[c[0] for c in LAZY_CASES])
def test_lazy_module_equals_pytorch(name, kwargs, shape, becomes, weight_shape):
    pt = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(**kwargs).double(), getattr(pt.nn, name)(**kwargs).double()
    x = _rand(*shape, seed=2)
    ours(x), theirs(_to_torch(pt, x))
    assert str(ours) == str(theirs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    _copy_into(pt, ours, theirs)
    x2 = _rand(*shape, seed=3)
    np.testing.assert_allclose(ours(x2).detach().numpy(), theirs(_to_torch(pt, x2)).detach().numpy(), atol=1e-12)
    for k, v in ours.state_dict().items():  # running statistics too
        np.testing.assert_allclose(v.numpy(), theirs.state_dict()[k].numpy(), atol=1e-12, err_msg=k)


def test_lazy_module_errors_and_unbatched_input():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(torch.randn(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"):
        nn.LazyConv2d(4, 3)(torch.randn(5, 5))
    conv = nn.LazyConv1d(2, 1)
    assert conv(torch.randn(3, 5)).shape == (2, 5) and conv.in_channels == 3  # unbatched: channels first
    assert str(nn.LazyBatchNorm1d()) == ("LazyBatchNorm1d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                         "track_running_stats=True)")
