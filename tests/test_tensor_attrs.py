"""Tensor attributes and conversions: shape/size/dim/stride/contiguity/data/T/numpy/item/tolist."""
import numpy as np
import pytest

import graphc as torch


def test_shape_size_dim_numel():
    x = torch.arange(24).reshape(2, 3, 4)
    assert x.shape == (2, 3, 4) and isinstance(x.shape, torch.Size) and isinstance(x.shape, tuple)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4 and x.size(dim=0) == 2
    assert x.dim() == 3 and x.ndim == 3 and x.ndimension() == 3
    assert x.numel() == 24 and x.nelement() == 24 and torch.numel(x) == 24
    assert x.shape[1:] == (3, 4) and isinstance(x.shape[1:], torch.Size)
    assert torch.Size([2, 3]).numel() == 6
    assert repr(x.shape).endswith("Size([2, 3, 4])")
    with pytest.raises(IndexError, match="Dimension out of range \\(expected to be in range of \\[-3, 2\\], but got 3\\)"):
        x.size(3)


def test_zero_dim_attributes():
    x = torch.tensor(3.5)
    assert x.shape == () and x.dim() == 0 and x.numel() == 1 and x.stride() == ()
    assert x.item() == 3.5 and x.tolist() == 3.5


def test_strides_and_contiguity():
    x = torch.arange(24).reshape(2, 3, 4)
    assert x.stride() == (12, 4, 1) and x.stride(1) == 4 and x.stride(-1) == 1
    assert x.is_contiguous()
    xt = x.transpose(0, 2)
    assert xt.stride() == (1, 4, 12) and not xt.is_contiguous()
    c = xt.contiguous()
    assert c.is_contiguous() and c.stride() == (6, 2, 1)
    np.testing.assert_array_equal(c.numpy(), np.arange(24).reshape(2, 3, 4).transpose(2, 1, 0))
    assert x.contiguous() is x                       # already contiguous: same object
    assert x[:, ::2].stride() == (12, 8, 1)
    assert x[:, 1].storage_offset() == 4
    assert x[1, 2].storage_offset() == 20


def test_contiguous_of_view_is_a_copy():
    x = torch.arange(6.0).reshape(2, 3)
    c = x.t().contiguous()
    c[0, 0] = 100.0
    assert x[0, 0].item() == 0.0


def test_T_mT():
    x = torch.ones(2, 3)
    assert x.T.shape == (3, 2)
    assert torch.ones(2, 3, 4).T.shape == (4, 3, 2)
    assert torch.ones(2, 3, 4).mT.shape == (2, 4, 3)
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(torch.tensor(a).T.numpy(), a.T)


def test_dtype_device_flags():
    x = torch.ones(2, 3)
    assert x.dtype is torch.float32
    assert x.device == torch.device("cpu") and x.device.type == "cpu"
    assert not x.is_cuda and x.is_cpu and x.is_leaf and not x.requires_grad
    assert x.grad is None
    assert x.get_device() == -1
    assert x.element_size() == 4 and x.nbytes == 24


def test_item():
    assert torch.tensor([3]).item() == 3 and isinstance(torch.tensor([3]).item(), int)
    assert isinstance(torch.tensor(5.0).item(), float)
    assert isinstance(torch.tensor(True).item(), bool)
    assert torch.tensor([[2.5]]).item() == 2.5
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        torch.tensor([3, 4]).item()


def test_tolist():
    assert torch.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert type(torch.tensor([1, 2], dtype=torch.int32).tolist()[0]) is int
    assert torch.tensor([1.0], dtype=torch.float16).tolist() == [1.0]
    assert torch.tensor(2.5).tolist() == 2.5
    assert torch.tensor([True]).tolist() == [True]


def test_python_scalar_conversions():
    x = torch.tensor([2.5])
    assert int(x) == 2 and float(x) == 2.5 and bool(x) is True
    assert [10, 20, 30][torch.tensor(2)] == 30          # __index__ on an integer tensor
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with no values is ambiguous"):
        bool(torch.tensor([]))
    with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
        float(torch.tensor([1.5, 2.0]))
    with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
        int(torch.tensor([1, 2]))
    with pytest.raises(TypeError):
        [1, 2][torch.tensor(1.0)]


def test_len_and_iter():
    x = torch.arange(6).reshape(2, 3)
    assert len(x) == 2
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [3, 4, 5]
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(torch.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(torch.tensor(1.0))


def test_numpy_shares_memory_and_dtype():
    t = torch.tensor([1.5, 2.0])
    a = t.numpy()
    assert a.dtype == np.float32
    a[0] = 9.0
    assert t[0].item() == 9.0
    assert torch.tensor([True]).numpy().dtype == np.bool_


def test_numpy_requires_grad_error():
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad. "
                                           "Use tensor.detach\\(\\).numpy\\(\\) instead."):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    y = x * 2
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(y)


def test_data_attribute():
    x = torch.ones(2, requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.is_leaf
    d[0] = 5.0                                        # .data shares memory
    assert x[0].item() == 5.0
    x.data = torch.zeros(2)
    assert x.tolist() == [0.0, 0.0] and x.requires_grad


def test_new_factories_inherit_dtype():
    x = torch.ones(2, 3, dtype=torch.int32)
    assert x.new_zeros(2).dtype is torch.int32 and x.new_zeros(2).shape == (2,)
    assert x.new_ones((2,)).tolist() == [1, 1]
    assert x.new_full((2,), 3).tolist() == [3, 3] and x.new_full((2,), 3).dtype is torch.int32
    assert x.new_tensor([1.5]).dtype is torch.int32
    assert x.new_empty(3).shape == (3,)
    assert torch.ones(2).new_zeros(2, dtype=torch.float64).dtype is torch.float64


def test_is_tensor_and_hash():
    x = torch.ones(2)
    assert torch.is_tensor(x) and not torch.is_tensor([1])
    assert hash(x) == hash(x) and {x: 1}[x] == 1
    assert x in [x]


def test_format_zero_dim():
    assert f"{torch.tensor(2.5):.2f}" == "2.50"
