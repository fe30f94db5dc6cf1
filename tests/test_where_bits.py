"""``where(c, x, y)`` of real floats on 2048 elements or more is generated as ``_where_bits``: a
select of the operands' bits in three integer passes instead of np.where's branching loop. Its
results are np.where's bit for bit (-0.0, infinities and NaN payloads included) for arrays and
numbers, broadcast operands and a result buffer shared with either operand; compiled programs
that take it equal eager mode."""
import numpy as np
import pytest

import graphc
from graphc.codegen.numpy_runtime import where_bits


def _special_values(dtype, n, rng):
    v = rng.standard_normal(n).astype(dtype)
    v[:6] = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40 if dtype == np.float64 else 0.5], dtype)
    return v


def _bits(a):
    return np.asarray(a).view(np.dtype(f"u{np.asarray(a).dtype.itemsize}"))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_arrays_and_numbers_select_exact_bits(dtype):
    rng = np.random.default_rng(0)
    x, y = _special_values(dtype, 4096, rng), _special_values(dtype, 4096, rng)[::-1].copy()
    y[100:101] = np.frombuffer((_bits(np.array([np.nan], dtype)) ^ 1).tobytes(), dtype)  # another NaN payload
    c = rng.random(4096) < 0.5
    for a, b in ((x, y), (x, -0.0), (-0.0, y), (2.5, y), (x, float("inf"))):
        got = where_bits(c, a, b)
        want = np.where(c, np.asarray(a, dtype), np.asarray(b, dtype))
        assert got.dtype == dtype and np.array_equal(_bits(got), _bits(want))


def test_broadcast_operands_and_condition():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 1)).astype(np.float32)
    y = rng.standard_normal((1, 128)).astype(np.float32)
    c = rng.random((64, 128)) < 0.3
    assert np.array_equal(where_bits(c, x, y), np.where(c, x, y))
    row_c = rng.random(128) < 0.5
    big = rng.standard_normal((64, 128)).astype(np.float32)
    assert np.array_equal(where_bits(row_c, big, 0.25), np.where(row_c, big, np.float32(0.25)))


@pytest.mark.parametrize("over", ["x", "y", "both"])
def test_a_result_buffer_shared_with_an_operand(over):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(4096).astype(np.float32), rng.standard_normal(4096).astype(np.float32)
    c = rng.random(4096) < 0.5
    if over == "both":
        want = x.copy()
        got = where_bits(c, x, x, out=x)
    else:
        want = np.where(c, x, y)
        got = where_bits(c, x, y, out=x if over == "x" else y)
    assert got is (y if over == "y" else x) and np.array_equal(got, want)


def _code(fn, *args):
    return graphc.explain(graphc.compile(fn), *args).code


def test_large_float_wheres_take_it_and_small_ones_stay_numpys():
    rng = np.random.default_rng(3)
    big = graphc.tensor(rng.standard_normal(4096) * 30, dtype=graphc.float32)
    small = graphc.tensor(rng.standard_normal(16) * 30, dtype=graphc.float32)

    def f(x):
        return graphc.where(x > 20, x, graphc.exp(x * 0.01))
    assert "_where_bits(" in _code(f, big)
    assert "_where_bits(" not in _code(f, small) and "_where_into(" in _code(f, small)
    for t in (big, small):
        assert np.array_equal(graphc.compile(f)(t).numpy(), f(t).numpy())


def test_compiled_leaky_relu_and_its_gradient_equal_eager():
    rng = np.random.default_rng(4)
    x = graphc.tensor((rng.standard_normal((64, 64)) * 15).astype(np.float32), requires_grad=True)
    fn = graphc.nn.functional.leaky_relu  # (softplus's select is a maximum now: lowered_rewrites)
    assert "_where_bits(" in _code(fn, x.detach())
    got = graphc.compile(fn)(x)
    got.sum().backward()
    g = x.grad.numpy().copy()
    x.grad = None
    want = fn(x)
    want.sum().backward()
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-6, atol=1e-7)
