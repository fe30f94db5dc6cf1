"""``x @ W.T`` with few rows of ``x`` is generated as ``_matmul_nt``: ``(W @ x.T).T`` copied into
the planned buffer (faster in OpenBLAS for those shapes). Its values equal the float64 product,
other operands take ``np.matmul`` unchanged, and a compiled Linear layer (forward and gradients)
that takes it equals eager mode."""
import numpy as np
import pytest

import graphc
from graphc.codegen import numpy_codegen
from graphc.codegen.numpy_runtime import matmul_nt


def _close_to_float64(got, a, b):
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bound = 4 * np.finfo(got.dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert got.shape == ref.shape and np.all(np.abs(got - ref) <= bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_nt_of_a_transposed_weight_is_the_product(dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((16, 64)).astype(dtype), rng.standard_normal((256, 64)).astype(dtype)
    out = np.full((16, 256), np.nan, dtype)
    assert matmul_nt(x, w.T, out=out) is out
    _close_to_float64(out, x, w.T)
    fresh = matmul_nt(x, w.T)
    assert fresh.flags.c_contiguous and np.array_equal(fresh, out)


def test_matmul_nt_of_other_operands_is_numpys_matmul():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((16, 64)).astype(np.float32), rng.standard_normal((64, 256)).astype(np.float32)
    out = np.empty((16, 256), np.float32)
    matmul_nt(x, w, out=out)  # w is not a transposed view: numpy's product, bit for bit
    assert np.array_equal(out, np.matmul(x, w))
    strided = rng.standard_normal((256, 128)).astype(np.float32)[:, ::2]  # (256, 64), not transposable
    assert np.array_equal(matmul_nt(x, strided.T), np.matmul(x, strided.T))


def test_only_few_row_shapes_take_it():
    assert numpy_codegen.matmul_nt_pays(16, 64, 256) and numpy_codegen.matmul_nt_pays(64, 784, 512)
    assert not numpy_codegen.matmul_nt_pays(512, 64, 64)   # many rows: numpy's product is faster
    assert not numpy_codegen.matmul_nt_pays(64, 64, 256)   # short inner dimension
    assert not numpy_codegen.matmul_nt_pays(16, 64, 10)    # few columns


def test_compiled_linear_takes_it_and_equals_eager():
    rng = np.random.default_rng(2)
    graphc.manual_seed(0)
    lin = graphc.nn.Linear(64, 256)
    x = graphc.tensor(rng.standard_normal((16, 64)), dtype=graphc.float32, requires_grad=True)

    def f(x):
        return (lin(x) * lin(x)).sum()
    code = graphc.explain(graphc.compile(f), x).code
    assert "_matmul_nt(" in code, code
    loss = graphc.compile(f)(x)
    loss.backward()
    got = (loss.item(), x.grad.numpy().copy(), lin.weight.grad.numpy().copy())
    x.grad = None
    lin.zero_grad()
    ref = f(x)
    ref.backward()
    np.testing.assert_allclose(got[0], ref.item(), rtol=1e-5)
    np.testing.assert_allclose(got[1], x.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[2], lin.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
