"""Tensor creation: tensor/as_tensor/from_numpy, filled and ranged tensors, *_like, random tensors.

Expected values are PyTorch's documented behaviour, written out explicitly or computed with numpy.
"""
import numpy as np
import pytest

import graphc as torch


# ---- torch.tensor: dtype inference from Python data -----------------------------------------

@pytest.mark.parametrize("data, dtype", [
    ([1, 2], torch.int64),
    ([1, 2.0], torch.float32),          # bool < int64 < default float
    ([True, 1], torch.int64),
    ([True, False], torch.bool),
    (3.5, torch.float32),
    (7, torch.int64),
    (True, torch.bool),
    ([[1, 2], [3, 4.5]], torch.float32),
    ([], torch.float32),
    ((1, 2, 3), torch.int64),
    (range(4), torch.int64),
    (np.array([1.0, 2.0]), torch.float64),   # numpy float64 stays float64
    (np.float64(2.0), torch.float64),
    (np.array([1, 2], dtype=np.int32), torch.int32),
    (np.array([1, 2], dtype=np.uint8), torch.uint8),
    (np.array([True]), torch.bool),
])
def test_tensor_dtype_inference(data, dtype):
    t = torch.tensor(data)
    assert t.dtype is dtype
    np.testing.assert_array_equal(t.numpy(), np.array(list(data) if isinstance(data, range) else data))


def test_tensor_values_and_shape():
    t = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert t.shape == (2, 3)
    assert t.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert torch.tensor(3.5).shape == ()
    assert torch.tensor([]).shape == (0,)
    assert torch.tensor([range(2), range(2)]).tolist() == [[0, 1], [0, 1]]


def test_tensor_explicit_dtype_and_copy():
    a = np.array([1.0, 2.0])
    t = torch.tensor(a, dtype=torch.float16)
    assert t.dtype is torch.float16
    t2 = torch.tensor(a)
    a[0] = 100.0
    assert t2[0].item() == 1.0  # torch.tensor always copies


def test_tensor_from_tensors_list():
    t = torch.tensor([torch.tensor(1.0), torch.tensor(2.0)])
    assert t.dtype is torch.float32 and t.tolist() == [1.0, 2.0]


def test_tensor_from_tensor_warns_and_copies():
    src = torch.tensor([1.0, 2.0])
    with pytest.warns(UserWarning, match="recommended to use sourceTensor.detach\\(\\).clone\\(\\)"):
        t = torch.tensor(src)
    t[0] = 5.0
    assert src[0].item() == 1.0


@pytest.mark.parametrize("data, exc, msg", [
    ([[1, 2], [3]], ValueError, "expected sequence of length 2 at dim 1 (got 1)"),
    ([[[1], [2]], [[1], [2, 3]]], ValueError, "expected sequence of length 1 at dim 2 (got 2)"),
    ([[1, 2], 3], TypeError, "not a sequence"),
    ("abc", TypeError, "new(): invalid data type 'str'"),
    ([1, "a"], TypeError, "new(): invalid data type 'str'"),
    (None, RuntimeError, "Could not infer dtype of NoneType"),
    ({1: 2}, RuntimeError, "Could not infer dtype of dict"),
    (2 ** 70, ValueError, "Overflow when unpacking long long"),
])
def test_tensor_bad_data(data, exc, msg):
    with pytest.raises(exc) as info:
        torch.tensor(data)
    assert msg in str(info.value)


def test_tensor_out_of_range_for_dtype():
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8 without overflow"):
        torch.tensor([300], dtype=torch.uint8)


def test_requires_grad_only_for_float():
    assert torch.tensor([1.0, 2.0], requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        torch.zeros(2, dtype=torch.int64, requires_grad=True)


# ---- memory sharing with numpy --------------------------------------------------------------

def test_from_numpy_shares_memory_both_ways():
    a = np.arange(4, dtype=np.float32)
    t = torch.from_numpy(a)
    assert t.dtype is torch.float32
    a[0] = 10.0
    assert t[0].item() == 10.0          # numpy write -> tensor
    t[1] = 20.0
    assert a[1] == 20.0                 # tensor write -> numpy
    t.add_(1)
    np.testing.assert_array_equal(a, [11.0, 21.0, 3.0, 4.0])


def test_as_tensor_shares_memory_when_dtype_matches():
    a = np.array([1, 2, 3])
    t = torch.as_tensor(a)
    assert t.dtype is torch.int64
    a[2] = 30
    assert t.tolist() == [1, 2, 30]
    t[0] = -1
    assert a[0] == -1
    c = torch.as_tensor(a, dtype=torch.float32)  # a dtype change must copy
    a[1] = 99
    assert c[1].item() == 2.0


def test_as_tensor_of_tensor_is_identity():
    t = torch.tensor([1.0])
    assert torch.as_tensor(t) is t
    assert torch.as_tensor(t, dtype=torch.float64).dtype is torch.float64
    assert torch.as_tensor([1, 2]).dtype is torch.int64


def test_numpy_shares_memory():
    t = torch.zeros(3)
    a = t.numpy()
    a[0] = 5.0
    assert t[0].item() == 5.0
    t[1] = 7.0
    assert a[1] == 7.0


def test_from_numpy_errors():
    with pytest.raises(TypeError, match="expected np.ndarray"):
        torch.from_numpy([1, 2])
    with pytest.raises(TypeError, match="can't convert np.ndarray of type"):
        torch.from_numpy(np.array(["a"]))


# ---- filled tensors -------------------------------------------------------------------------

@pytest.mark.parametrize("fn, value", [(torch.zeros, 0), (torch.ones, 1)])
@pytest.mark.parametrize("size_args", [((2, 3),), (2, 3), ([2, 3],), (torch.Size([2, 3]),)])
def test_zeros_ones_size_forms(fn, value, size_args):
    t = fn(*size_args)
    assert t.shape == (2, 3) and t.dtype is torch.float32
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value, np.float32))


def test_zeros_dtype_and_zero_dim():
    assert torch.zeros(2, dtype=torch.int32).dtype is torch.int32
    assert torch.zeros(()).shape == () and torch.zeros(()).item() == 0.0
    assert torch.zeros(0, 3).shape == (0, 3)
    assert torch.ones(2, 3, dtype=torch.float16).dtype is torch.float16
    assert torch.empty(2, 3).shape == (2, 3) and torch.empty(2, 3).dtype is torch.float32


def test_size_errors():
    with pytest.raises(RuntimeError, match="negative"):
        torch.zeros(2, -1)
    with pytest.raises(TypeError):
        torch.zeros(2.5)


@pytest.mark.parametrize("fill, dtype", [(3, torch.int64), (3.0, torch.float32), (True, torch.bool)])
def test_full_infers_dtype_from_fill_value(fill, dtype):
    t = torch.full((2,), fill)
    assert t.dtype is dtype and t.tolist() == [fill, fill]


def test_full_explicit_dtype():
    t = torch.full([2, 2], 7, dtype=torch.float32)
    assert t.dtype is torch.float32 and t.tolist() == [[7.0, 7.0], [7.0, 7.0]]


# ---- arange / linspace / eye ----------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, expected, dtype", [
    ((5,), {}, np.arange(5), torch.int64),
    ((1, 4), {}, np.arange(1, 4), torch.int64),
    ((10, 0, -3), {}, np.array([10, 7, 4, 1]), torch.int64),
    ((5.0,), {}, np.arange(5.0), torch.float32),          # any float argument -> default dtype
    ((0, 1, 0.25), {}, np.arange(0, 1, 0.25), torch.float32),
    ((1, 4), {"dtype": torch.float32}, np.arange(1.0, 4.0), torch.float32),
    ((0, 5, 2), {"dtype": torch.int32}, np.arange(0, 5, 2), torch.int32),
])
def test_arange(args, kwargs, expected, dtype):
    t = torch.arange(*args, **kwargs)
    assert t.dtype is dtype
    np.testing.assert_allclose(t.numpy(), expected)


def test_arange_length_matches_ceil():
    assert torch.arange(0.0, 1.0, 0.1).shape == (10,)
    assert torch.arange(torch.tensor(4)).tolist() == [0, 1, 2, 3]


def test_arange_errors():
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        torch.arange(0, 5, 0)
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step sign"):
        torch.arange(0, -5, 1)
    with pytest.raises(RuntimeError, match="not implemented for 'Bool'"):
        torch.arange(3, dtype=torch.bool)


def test_linspace():
    t = torch.linspace(0, 1, 5)
    assert t.dtype is torch.float32
    np.testing.assert_allclose(t.numpy(), np.linspace(0, 1, 5))
    assert torch.linspace(0, 1, 1).tolist() == [0.0]
    assert torch.linspace(-1, 1, 0).shape == (0,)
    assert torch.linspace(0, 10, 5, dtype=torch.int64).tolist() == [0, 2, 5, 7, 10]


def test_eye():
    np.testing.assert_array_equal(torch.eye(3).numpy(), np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(torch.eye(2, 3).numpy(), np.eye(2, 3))
    assert torch.eye(3, dtype=torch.int64).dtype is torch.int64


# ---- *_like ---------------------------------------------------------------------------------

def test_like_functions_keep_shape_and_dtype():
    src = torch.tensor([[1, 2, 3]], dtype=torch.int32)
    for fn, val in ((torch.zeros_like, 0), (torch.ones_like, 1)):
        t = fn(src)
        assert t.shape == (1, 3) and t.dtype is torch.int32 and t.tolist() == [[val] * 3]
    e = torch.empty_like(torch.ones(2, 3, dtype=torch.float64))
    assert e.shape == (2, 3) and e.dtype is torch.float64
    assert torch.ones_like(torch.tensor([1.0, 2]), dtype=torch.int32).dtype is torch.int32
    # full_like keeps the input's dtype: an int tensor truncates the float fill value
    assert torch.full_like(torch.tensor([1, 2]), 2.7).tolist() == [2, 2]
    r = torch.rand_like(torch.ones(2, 2, dtype=torch.float64))
    assert r.shape == (2, 2) and r.dtype is torch.float64
    assert torch.randn_like(torch.ones(4)).shape == (4,)
    ri = torch.randint_like(torch.ones(50), 10)
    assert ri.dtype is torch.float32 and 0 <= ri.min().item() and ri.max().item() < 10


# ---- random ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda g: torch.rand(3, 4, generator=g),
    lambda g: torch.randn(3, 4, generator=g),
    lambda g: torch.randint(0, 10, (5,), generator=g),
    lambda g: torch.randperm(8, generator=g),
    lambda g: torch.normal(0.0, 1.0, size=(3,), generator=g),
])
def test_random_reproducible_with_generator(make):
    a = make(torch.Generator().manual_seed(123))
    b = make(torch.Generator().manual_seed(123))
    c = make(torch.Generator().manual_seed(124))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())


def test_random_reproducible_with_manual_seed():
    torch.manual_seed(7)
    a, ai, ap = torch.randn(5), torch.randint(0, 100, (5,)), torch.randperm(10)
    torch.manual_seed(7)
    b, bi, bp = torch.randn(5), torch.randint(0, 100, (5,)), torch.randperm(10)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(ai.numpy(), bi.numpy())
    np.testing.assert_array_equal(ap.numpy(), bp.numpy())
    assert not np.array_equal(torch.randn(5).numpy(), a.numpy())


def test_generator_is_independent_of_global_state():
    g = torch.Generator().manual_seed(5)
    a = torch.rand(4, generator=g)
    torch.manual_seed(0)
    torch.rand(10)
    g2 = torch.Generator().manual_seed(5)
    np.testing.assert_array_equal(a.numpy(), torch.rand(4, generator=g2).numpy())


def test_random_value_ranges_and_dtypes():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(10000, generator=g)
    assert u.dtype is torch.float32 and 0.0 <= u.min().item() and u.max().item() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.02
    n = torch.randn(10000, generator=g)
    assert abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1.0) < 0.05
    assert torch.rand(2, dtype=torch.float64).dtype is torch.float64
    r = torch.randint(3, 10, (1000,), generator=g)
    assert r.dtype is torch.int64 and r.min().item() >= 3 and r.max().item() <= 9
    assert torch.randint(10, (3,)).shape == (3,)                       # randint(high, size)
    assert torch.randint(3, 10, (2, 2), dtype=torch.int32).dtype is torch.int32
    p = torch.randperm(20, generator=g)
    assert p.dtype is torch.int64 and sorted(p.tolist()) == list(range(20))
    m = torch.normal(5.0, 2.0, size=(10000,), generator=g)
    assert abs(m.mean().item() - 5.0) < 0.1 and abs(m.std().item() - 2.0) < 0.1
    nt = torch.normal(torch.zeros(3), torch.ones(3))
    assert nt.shape == (3,) and nt.dtype is torch.float32


def test_negative_sizes():
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        torch.randperm(-1)
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0, got -1"):
        torch.eye(-1)


def test_random_errors():
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        torch.rand(2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        torch.randn(2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="from=5 >= to=5"):
        torch.randint(5, 5, (2,))
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        torch.normal(0.0, -1.0, size=(2,))


def test_rng_state_roundtrip():
    state = torch.get_rng_state()
    a = torch.rand(3)
    torch.set_rng_state(state)
    np.testing.assert_array_equal(torch.rand(3).numpy(), a.numpy())


def test_legacy_tensor_constructor():
    assert torch.Tensor([1, 2]).dtype is torch.float32
    assert torch.Tensor(2, 3).shape == (2, 3)
    assert torch.FloatTensor([1]).dtype is torch.float32
    assert torch.LongTensor([1]).dtype is torch.int64


@pytest.mark.parametrize("make", [
    lambda *s: torch.zeros(*s), lambda *s: torch.ones(*s), lambda *s: torch.empty(*s),
    lambda *s: torch.full(s, 1.5), lambda *s: torch.rand(*s), lambda *s: torch.randn(*s),
    lambda *s: torch.randn(*s, generator=torch.Generator()), lambda *s: torch.randint(0, 5, s),
    lambda *s: torch.randint(5, s), lambda *s: torch.normal(0.0, 1.0, s), lambda *s: torch.Tensor(*s),
    lambda *s: torch.zeros(2).new_zeros(s), lambda *s: torch.zeros(2).new_empty(s),
    lambda *s: torch.zeros(2).new_full(s, 2.0), lambda *s: torch.zeros(2).new_ones(*s),
    lambda *s: torch.randn(*s, dtype=torch.int64), lambda *s: torch.randint(5, 5, s),
], ids=["zeros", "ones", "empty", "full", "rand", "randn", "randn-generator", "randint", "randint-high",
        "normal", "Tensor", "new_zeros", "new_empty", "new_full", "new_ones", "randn-int", "randint-empty-range"])
def test_negative_dimension_gives_pytorchs_message(make):
    # PyTorch: RuntimeError: Trying to create tensor with negative dimension -1: [-1, 3]
    with pytest.raises(RuntimeError, match=r"^Trying to create tensor with negative dimension -1: \[-1, 3\]$"):
        make(-1, 3)
    with pytest.raises(RuntimeError, match=r"^Trying to create tensor with negative dimension -2: \[4, -2, -5\]$"):
        make(4, -2, -5)        # the first negative size, as PyTorch reports it


def test_negative_dimension_inside_a_compiled_function():
    f = torch.compile(lambda x: x + torch.randn(-1, 3))
    with pytest.raises(RuntimeError, match=r"negative dimension -1: \[-1, 3\]"):
        f(torch.ones(3))


def test_logspace_negative_steps():
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        torch.logspace(0, 1, -1)
