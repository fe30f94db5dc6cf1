"""DLPack: zero-copy exchange with numpy and (when installed) PyTorch, checked with writes."""
import numpy as np
import pytest

import graphc
from graphc.utils import dlpack


def test_numpy_from_graphc_shares_memory():
    t = graphc.arange(12.0).reshape(3, 4)
    a = np.from_dlpack(t)
    assert a.dtype == np.float32 and a.shape == (3, 4)
    a[1, 2] = -7.0
    assert t[1, 2].item() == -7.0
    t.add_(1.0)
    assert a[0, 0] == 1.0


def test_graphc_from_numpy_shares_memory_and_keeps_strides():
    a = np.arange(20, dtype=np.int64).reshape(4, 5)
    view = a[:, 1::2]  # strided
    t = graphc.from_dlpack(view)
    assert t.dtype is graphc.int64 and tuple(t.shape) == (4, 2)
    np.testing.assert_array_equal(t.numpy(), view)
    t[0, 0] = 100
    assert a[0, 1] == 100
    a[3, 3] = -1
    assert t[3, 1].item() == -1


def test_a_view_exports_its_own_window():
    t = graphc.zeros(4, 6)
    v = t[1:3, ::2]
    a = np.from_dlpack(v)
    assert a.shape == (2, 3)
    a[...] = 5
    assert t.sum().item() == 30 and t[1, 0].item() == 5 and t[1, 1].item() == 0


def test_device_and_requires_grad():
    t = graphc.ones(3, requires_grad=True)
    assert t.__dlpack_device__() == (1, 0)
    with pytest.raises(RuntimeError, match=r"Can't export tensors that require gradient, use tensor.detach\(\)"):
        np.from_dlpack(t)
    a = np.from_dlpack(t.detach())
    a[0] = 3.0
    assert t[0].item() == 3.0  # detach() shares memory, as in PyTorch


def test_legacy_capsules_and_graphc_to_graphc():
    t = graphc.tensor([1.0, 2.0, 3.0])
    u = dlpack.from_dlpack(dlpack.to_dlpack(t))
    t[1] = 9.0  # numpy imports a legacy (unversioned) capsule read-only; the memory is shared
    assert u[1].item() == 9.0
    w = graphc.from_dlpack(t)
    w[2] = 8.0
    assert t[2].item() == 8.0
    with pytest.raises(TypeError, match="__dlpack__"):
        graphc.from_dlpack([1, 2, 3])


def test_bool_dtype_round_trip():
    a = np.array([True, False, True])
    t = graphc.from_dlpack(a)
    assert t.dtype is graphc.bool and t.tolist() == [True, False, True]


def test_with_pytorch_both_ways():
    torch = pytest.importorskip("torch")
    t = graphc.arange(6.0).reshape(2, 3)
    pt = torch.from_dlpack(t)
    assert pt.dtype == torch.float32 and tuple(pt.shape) == (2, 3)
    pt[0, 1] = 42.0
    assert t[0, 1].item() == 42.0
    t.mul_(2.0)
    assert pt[1, 2].item() == 10.0

    src = torch.arange(8, dtype=torch.float64).reshape(2, 4)[:, 1:3]
    g = graphc.from_dlpack(src)
    assert g.dtype is graphc.float64 and tuple(g.shape) == (2, 2)
    g[1, 1] = -3.0
    assert src[1, 1].item() == -3.0
    src[0, 0] = 11.0
    assert g[0, 0].item() == 11.0
    src = torch.ones(2, dtype=torch.int32)
    from_capsule = graphc.utils.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(src))
    src[0] = 4
    assert from_capsule.tolist() == [4, 1]
    with pytest.raises(RuntimeError, match="require gradient"):
        torch.from_dlpack(graphc.ones(2, requires_grad=True))
