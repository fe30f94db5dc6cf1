"""Tensor repr in PyTorch's format (values, precision, scientific mode, summarization, suffixes).

The expected strings are PyTorch's output, with the dtype named ``graphc.<dtype>``.
"""
import pytest

import graphc
import graphc as torch

CASES = [
    ('torch.tensor([1., 2.], requires_grad=True)',
     'tensor([1., 2.], requires_grad=True)'),
    ('torch.tensor([1., 2.], requires_grad=True) * 2',
     'tensor([2., 4.], grad_fn=<MulBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True) + 2',
     'tensor([3., 4.], grad_fn=<AddBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).sum()',
     'tensor(3., grad_fn=<SumBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).mean()',
     'tensor(1.5000, grad_fn=<MeanBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).view(2, 1)',
     'tensor([[1.],\n        [2.]], grad_fn=<ViewBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True)[0]',
     'tensor(1., grad_fn=<SelectBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).clone()',
     'tensor([1., 2.], grad_fn=<CloneBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).double()',
     'tensor([1., 2.], dtype=graphc.float64, grad_fn=<ToCopyBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).exp()',
     'tensor([2.7183, 7.3891], grad_fn=<ExpBackward0>)'),
    ('torch.ones(2, 2, requires_grad=True) @ torch.ones(2, 2)',
     'tensor([[2., 2.],\n        [2., 2.]], grad_fn=<MmBackward0>)'),
    ('torch.tensor([1., 2.], requires_grad=True).detach()',
     'tensor([1., 2.])'),
    ('torch.tensor([1., 2.], dtype=torch.float64)',
     'tensor([1., 2.], dtype=graphc.float64)'),
    ('torch.tensor([1, 2])',
     'tensor([1, 2])'),
    ('torch.tensor([1, 2], dtype=torch.int32)',
     'tensor([1, 2], dtype=graphc.int32)'),
    ('torch.tensor(3.5)',
     'tensor(3.5000)'),
    ('torch.tensor(3)',
     'tensor(3)'),
    ('torch.tensor(True)',
     'tensor(True)'),
    ('torch.tensor([True, False])',
     'tensor([ True, False])'),
    ('torch.tensor([1.5, 2.25, 3.0])',
     'tensor([1.5000, 2.2500, 3.0000])'),
    ('torch.tensor([[1., 2.], [3., 4.]])',
     'tensor([[1., 2.],\n        [3., 4.]])'),
    ('torch.tensor([1e-5, 1.])',
     'tensor([1.0000e-05, 1.0000e+00])'),
    ('torch.tensor([1e10, 1.])',
     'tensor([1.0000e+10, 1.0000e+00])'),
    ('torch.tensor([123456.789])',
     'tensor([123456.7891])'),
    ('torch.tensor([0.1, 100.0])',
     'tensor([  0.1000, 100.0000])'),
    ('torch.tensor([])',
     'tensor([])'),
    ('torch.zeros(0, 3)',
     'tensor([], size=(0, 3))'),
    ('torch.zeros(0, dtype=torch.int64)',
     'tensor([], dtype=graphc.int64)'),
    ("torch.tensor([float('nan'), float('inf'), -float('inf'), 1.5])",
     'tensor([   nan,    inf,   -inf, 1.5000])'),
    ('torch.tensor([1., 2.], dtype=torch.float16)',
     'tensor([1., 2.], dtype=graphc.float16)'),
    ('torch.tensor([1, 2], dtype=torch.uint8)',
     'tensor([1, 2], dtype=graphc.uint8)'),
    ('torch.tensor(3.5, dtype=torch.float64)',
     'tensor(3.5000, dtype=graphc.float64)'),
    ('torch.arange(2000)',
     'tensor([   0,    1,    2,  ..., 1997, 1998, 1999])'),
    ('torch.arange(2000.).reshape(40, 50)',
     'tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n         4.9000e+01],\n        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n         9.9000e+01],\n        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n         1.4900e+02],\n        ...,\n        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n         1.8990e+03],\n        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n         1.9490e+03],\n        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n         1.9990e+03]])'),
    ('torch.arange(12.).reshape(2, 2, 3)',
     'tensor([[[ 0.,  1.,  2.],\n         [ 3.,  4.,  5.]],\n\n        [[ 6.,  7.,  8.],\n         [ 9., 10., 11.]]])'),
    ('torch.tensor([-1., 2.])',
     'tensor([-1.,  2.])'),
    ('torch.tensor([[1, -200, 3], [4, 5, 6]])',
     'tensor([[   1, -200,    3],\n        [   4,    5,    6]])'),
    ('torch.tensor([0.001, 0.01])',
     'tensor([0.0010, 0.0100])'),
    ('torch.tensor(1e-8)',
     'tensor(1.0000e-08)'),
    ('torch.linspace(0, 1, 20)',
     'tensor([0.0000, 0.0526, 0.1053, 0.1579, 0.2105, 0.2632, 0.3158, 0.3684, 0.4211,\n        0.4737, 0.5263, 0.5789, 0.6316, 0.6842, 0.7368, 0.7895, 0.8421, 0.8947,\n        0.9474, 1.0000])'),
    ('torch.arange(30.).reshape(3, 10) * 1.5',
     'tensor([[ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,\n         12.0000, 13.5000],\n        [15.0000, 16.5000, 18.0000, 19.5000, 21.0000, 22.5000, 24.0000, 25.5000,\n         27.0000, 28.5000],\n        [30.0000, 31.5000, 33.0000, 34.5000, 36.0000, 37.5000, 39.0000, 40.5000,\n         42.0000, 43.5000]])'),
    ('torch.tensor(5, dtype=torch.int32)',
     'tensor(5, dtype=graphc.int32)'),
    ('torch.tensor([[True, False], [False, True]])',
     'tensor([[ True, False],\n        [False,  True]])'),
    ('torch.arange(6).reshape(2, 3) * 100 - 250',
     'tensor([[-250, -150,  -50],\n        [  50,  150,  250]])'),
    ('torch.tensor([0.1234567, 12.5])',
     'tensor([ 0.1235, 12.5000])'),
]


@pytest.mark.parametrize("expr, expected", CASES, ids=[c[0] for c in CASES])
def test_repr_matches_pytorch(expr, expected):
    t = eval(expr, {"torch": torch})
    assert repr(t) == expected
    assert str(t) == expected


def test_key_forms():
    assert repr(torch.tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], requires_grad=True)"
    assert repr(torch.tensor([1.0, 2.0], requires_grad=True) * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr(torch.tensor([1.0], dtype=torch.float64)).endswith(", dtype=graphc.float64)")
    assert "dtype" not in repr(torch.tensor([1, 2]))                 # int64 has no suffix
    assert "dtype" not in repr(torch.tensor([True]))                 # nor bool
    assert repr(torch.tensor(3.5)) == "tensor(3.5000)"               # 0-dim


def test_grad_fn_names():
    x = torch.ones(2, 3, requires_grad=True)
    names = {
        "x + 1": "AddBackward0", "x - 1": "SubBackward0", "x * x": "MulBackward0", "x / 2": "DivBackward0",
        "x.sum()": "SumBackward0", "x.sum(0)": "SumBackward1", "x.mean()": "MeanBackward0",
        "x.view(6)": "ViewBackward0", "x.reshape(6)": "ViewBackward0", "x.t().reshape(6)": "UnsafeViewBackward0",
        "x.unsqueeze(0)": "UnsqueezeBackward0", "x.squeeze()": "SqueezeBackward0", "x.t()": "TBackward0",
        "x.transpose(0, 1)": "TransposeBackward0", "x.permute(1, 0)": "PermuteBackward0",
        "x.expand(2, 2, 3)": "ExpandBackward0", "x.clone()": "CloneBackward0", "x.double()": "ToCopyBackward0",
        "torch.cat([x, x])": "CatBackward0", "torch.stack([x, x])": "StackBackward0", "x @ x.t()": "MmBackward0",
        "x[0]": "SelectBackward0", "x[:, 1:]": "SliceBackward0", "x[[0]]": "IndexBackward0",
        "x[None]": "UnsqueezeBackward0", "x.max()": "MaxBackward1", "x.exp()": "ExpBackward0",
        "x.relu()": "ReluBackward0", "x.T": "PermuteBackward0", "x.flip(0)": "FlipBackward0",
        "x.index_select(0, torch.tensor([0]))": "IndexSelectBackward0", "x.split(1)[0]": "SplitBackward0",
    }
    for expr, name in names.items():
        t = eval(expr, {"torch": torch, "x": x})
        assert t.grad_fn.name() == name, expr
        assert repr(t).endswith(f"grad_fn=<{name}>)"), expr


def test_printoptions():
    try:
        torch.set_printoptions(precision=2)
        assert repr(torch.tensor([1.23456])) == "tensor([1.23])"
        torch.set_printoptions(sci_mode=True)
        assert repr(torch.tensor([1.5])) == "tensor([1.50e+00])"
    finally:
        torch.set_printoptions(profile="default")
    assert repr(torch.tensor([1.23456])) == "tensor([1.2346])"


def test_default_dtype_changes_suffix():
    old = graphc.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert repr(torch.tensor([1.5])) == "tensor([1.5000])"
        assert repr(torch.tensor([1.5], dtype=torch.float32)) == "tensor([1.5000], dtype=graphc.float32)"
    finally:
        torch.set_default_dtype(old)
