"""dtypes and PyTorch's type promotion, conversions (.to/.float/.type ...), default dtype."""
import numpy as np
import pytest

import graphc as torch

ALL = [torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
       torch.uint8, torch.bool]
NP = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64, torch.int8: np.int8,
      torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64, torch.uint8: np.uint8,
      torch.bool: np.bool_}


@pytest.fixture
def restore_default_dtype():
    old = torch.get_default_dtype()
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("d", ALL)
def test_every_dtype_roundtrips_through_numpy(d):
    t = torch.ones(2, 2, dtype=d)
    assert t.dtype is d
    assert t.numpy().dtype == NP[d]
    assert torch.from_numpy(np.zeros(3, dtype=NP[d])).dtype is d
    assert t.element_size() == np.dtype(NP[d]).itemsize


def test_dtype_aliases_and_properties():
    assert torch.float is torch.float32 and torch.double is torch.float64 and torch.half is torch.float16
    assert torch.long is torch.int64 and torch.int is torch.int32 and torch.short is torch.int16
    assert torch.float32.is_floating_point and not torch.int32.is_floating_point
    assert not torch.bool.is_floating_point
    assert torch.float64.itemsize == 8
    assert torch.is_floating_point(torch.tensor([1.0])) and not torch.is_floating_point(torch.tensor([1]))
    assert torch.tensor([1, 2]).is_floating_point() is False
    assert torch.finfo(torch.float32).eps == float(np.finfo(np.float32).eps)
    assert torch.finfo(torch.float16).max == 65504.0
    assert torch.iinfo(torch.int8).min == -128 and torch.iinfo(torch.uint8).max == 255


# ---- promotion ------------------------------------------------------------------------------

def T(values, dtype=None):
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize("make, expected", [
    (lambda: T([1, 2]) + 2.5, torch.float32),                               # int tensor + float scalar
    (lambda: T([1.0, 2.0]) + T(2.0, torch.float64), torch.float32),         # 0-dim doesn't win in-category
    (lambda: T([1, 2], torch.int32) + 5, torch.int32),                      # python int keeps int32
    (lambda: T([1], torch.uint8) + T([1], torch.int8), torch.int16),
    (lambda: T([True]) + T([True]), torch.bool),
    (lambda: T([4, 3]) / T([2, 2]), torch.float32),                         # true division -> float
    (lambda: T([4, 3]) / 2, torch.float32),
    (lambda: T([4, 3]) // 2, torch.int64),
    (lambda: T([1], torch.int8) + T(1000), torch.int8),                     # 0-dim int doesn't upcast
    (lambda: T([1], torch.int8) + T([1000]), torch.int64),
    (lambda: T([1.0], torch.float16) + 1.0, torch.float16),
    (lambda: T([1.0], torch.float16) + T([1.0]), torch.float32),
    (lambda: T([True]) + 1, torch.int64),
    (lambda: T([True]) + 1.5, torch.float32),
    (lambda: T([True]) * T(2, torch.int32), torch.int32),                   # higher category 0-dim wins
    (lambda: T(1, torch.int32) + T(1.0, torch.float64), torch.float64),
    (lambda: T([1], torch.int32) + T(1.0, torch.float64), torch.float64),   # 0-dim float of higher category
    (lambda: T([1], torch.int32) + 1.0, torch.float32),                     # python float -> default dtype
    (lambda: T([1, 2]) + T([1.5], torch.float64), torch.float64),
    (lambda: T([2], torch.int32) ** 2, torch.int32),
    (lambda: T([2]) ** 0.5, torch.float32),
    (lambda: 2 ** T([1, 2]), torch.int64),
    (lambda: 2.0 ** T([1, 2]), torch.float32),
    (lambda: T([1, 2]) < 2, torch.bool),
    (lambda: T([1, 2], torch.int32).sqrt(), torch.float32),
    (lambda: T([1, 2], torch.float16).exp(), torch.float16),
    (lambda: T([1, 2], torch.int32).abs(), torch.int32),
])
def test_promotion(make, expected):
    assert make().dtype is expected


@pytest.mark.parametrize("a, b, expected", [
    (torch.uint8, torch.int8, torch.int16),
    (torch.int32, torch.float16, torch.float16),
    (torch.bool, torch.uint8, torch.uint8),
    (torch.int64, torch.float32, torch.float32),
    (torch.float16, torch.float64, torch.float64),
    (torch.int16, torch.int32, torch.int32),
])
def test_promote_types(a, b, expected):
    assert torch.promote_types(a, b) is expected
    assert torch.promote_types(b, a) is expected


def test_result_type_and_can_cast():
    assert torch.result_type(torch.tensor([1]), 1.0) is torch.float32
    assert torch.result_type(torch.tensor([1], dtype=torch.int32), 1) is torch.int32
    assert not torch.can_cast(torch.float32, torch.int32)
    assert torch.can_cast(torch.int32, torch.float32)


def test_promoted_values():
    assert (T([True, False]) + T([True, True])).tolist() == [True, True]   # bool add is logical or
    assert (T([4, 3]) / T([2, 2])).tolist() == [2.0, 1.5]
    assert (T([-7, 7]) // 2).tolist() == [-4, 3]                           # floor division
    assert (T([-7, 7]) % 3).tolist() == [2, 1]                             # sign of divisor
    assert (T([-7.0, 7.0]) % 3).tolist() == [2.0, 1.0]
    assert (T([1], torch.uint8) - 2).tolist() == [255]                     # wraps like C
    assert (T([100], torch.int8) + 100).tolist() == [-56]


def test_python_int_wraps_to_integer_dtype():
    assert (T([1], torch.int8) + 1000).tolist() == [-23]               # C-style wrap-around
    assert (T([1], torch.uint8) + 256).tolist() == [1]
    i = T([1, 2], torch.int32)
    assert (i + 2 ** 40).tolist() == [1, 2] and (i + 2 ** 40).dtype is torch.int32
    assert (i * 2 ** 33).tolist() == [0, 0]
    i.add_(2 ** 40)
    assert i.tolist() == [1, 2]


def test_reduction_dtypes():
    assert T([1, 2]).sum().dtype is torch.int64
    assert T([True, True]).sum().item() == 2
    assert T([1, 2], torch.int8).sum().dtype is torch.int64      # integer sums accumulate in int64
    assert T([1, 2], torch.int8).prod().dtype is torch.int64
    assert T([1, 2], torch.uint8).cumsum(0).dtype is torch.int64
    assert T([1, 2], torch.float16).sum().dtype is torch.float16
    assert T([1, 2]).max().dtype is torch.int64
    assert T([1, 2]).sum(dtype=torch.float32).dtype is torch.float32


def test_integer_errors():
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        T([2]) ** -1
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        T([3]) // 0
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        T([3]) % T([0])
    assert (T([3.0]) // 0).tolist() == [float("inf")]
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
        T([1, 2]).mean()
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool tensors"):
        T([True]) - T([True])
    with pytest.raises(RuntimeError, match="Negation, the `-` operator, on a bool tensor"):
        -T([True])


def test_bitwise_dtype_rules():
    assert (T([1, 2]) & T([3, 1])).tolist() == [1, 0]
    assert (~T([True, False])).tolist() == [False, True]
    assert (~T([1, 2])).tolist() == [-2, -3]
    assert (T([True, False]) ^ True).tolist() == [False, True]
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        T([1.0, 2.0]) & T([3, 1])
    with pytest.raises(TypeError, match="only implemented on integer and Boolean-type tensors"):
        ~T([1.0, 2.0])


# ---- conversions ----------------------------------------------------------------------------

@pytest.mark.parametrize("method, dtype", [
    ("float", torch.float32), ("double", torch.float64), ("half", torch.float16),
    ("long", torch.int64), ("int", torch.int32), ("short", torch.int16), ("char", torch.int8),
    ("byte", torch.uint8), ("bool", torch.bool),
])
def test_cast_methods(method, dtype):
    t = getattr(T([0.0, 1.9, 2.1]), method)()
    assert t.dtype is dtype
    np.testing.assert_array_equal(t.numpy(), np.array([0.0, 1.9, 2.1], np.float32).astype(NP[dtype]))


def test_to_dtype():
    x = T([1.7, -1.7, 0.0])
    assert x.to(torch.int32).tolist() == [1, -1, 0]                   # truncation toward zero
    assert x.to(torch.bool).tolist() == [True, True, False]
    assert x.to(dtype=torch.float16).dtype is torch.float16
    assert x.to(torch.float32) is x                                   # no-op returns self
    c = x.to(torch.float32, copy=True)
    assert c is not x and c.tolist() == x.tolist()
    assert T([1, 2]).to(T([1.0])).dtype is torch.float32              # to(other)
    assert T([1, 2]).to("cpu", torch.float64).dtype is torch.float64
    assert T([1, 2]).to(torch.device("cpu")).dtype is torch.int64
    assert T([1, 2]).type_as(T([1.0])).dtype is torch.float32
    with pytest.raises(TypeError):
        T([1, 2]).to(foo=1)


def test_cast_same_dtype_returns_self():
    x = T([1.0])
    assert x.float() is x
    y = T([1])
    assert y.long() is y


def test_type_method():
    assert T([1, 2]).type().endswith(".LongTensor")
    assert T([1.0]).type().endswith(".FloatTensor")
    assert T([1.0]).double().type().endswith(".DoubleTensor")
    assert T([True]).type().endswith(".BoolTensor")
    assert T([1, 2]).type(torch.float64).dtype is torch.float64
    assert T([1, 2]).type("torch.DoubleTensor").dtype is torch.float64
    assert T([1, 2]).type("torch.IntTensor").dtype is torch.int32


def test_set_default_dtype(restore_default_dtype):
    torch.set_default_dtype(torch.float64)
    assert torch.get_default_dtype() is torch.float64
    assert torch.tensor([1.5]).dtype is torch.float64
    assert torch.zeros(2).dtype is torch.float64
    assert torch.arange(0.0, 1.0, 0.5).dtype is torch.float64
    assert (torch.tensor([1, 2]) / 2).dtype is torch.float64
    assert torch.tensor([1, 2]).dtype is torch.int64                  # ints are unaffected
    assert repr(torch.tensor([1.5])) == "tensor([1.5000])"            # the default shows no dtype
    torch.set_default_dtype(torch.float32)
    assert torch.tensor([1.5]).dtype is torch.float32
    with pytest.raises(TypeError):
        torch.set_default_dtype(torch.int32)
