"""Small lowerings of the numpy code generator: a concat writes into its planned workspace buffer;
numbers an elementwise op reads are 0-d arrays of the op's dtype, made once when the code loads (a
Python number costs numpy a type resolution per call); small sigmoids call scipy's expit directly;
an int64 arange is numpy's. Same results as eager mode."""
from __future__ import annotations

import numpy as np
import pytest

import graphc


@pytest.mark.parametrize("dtype", [graphc.float16, graphc.float32, graphc.float64])
def test_number_operands_become_typed_constants_with_eager_results(dtype):
    def f(x):
        return ((1 - x) * 2.5 + 1e-8) / 3, x.sigmoid() - 0.5, (x + float("inf")).clamp(max=7), x * float("nan")

    x = graphc.from_numpy(np.linspace(-3, 3, 24, dtype=np.float64).reshape(4, 6)).to(dtype)
    out = graphc.explain(f, x)
    code = out.code
    assert f"= np.full((), 1, np.{np.dtype(dtype.np).name})" in code
    assert "np.subtract(1," not in code  # the literal became that constant
    # 24 elements: scipy's one pass called directly (float16 goes through float32, as eagerly)
    assert ("_expit(" in code) == (dtype is not graphc.float16)
    compiled = graphc.compile(f)(x)
    eager = f(x)
    for c, e in zip(compiled, eager):
        assert c.dtype == e.dtype
        np.testing.assert_array_equal(c.numpy(), e.numpy())


def test_int64_arange_of_a_one_hot_is_numpys_own_and_gradients_match_eager():
    # cross_entropy's gradient compares the class indices, an int64 arange made after autodiff
    # (so not constant-folded), with the targets
    graphc.manual_seed(0)
    model = graphc.nn.Linear(4, 7)
    x = graphc.from_numpy(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    y = graphc.from_numpy(np.array([0, 6, 3, 3, 1]))

    def f(x, y):
        model.zero_grad()
        loss = graphc.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach()

    code = graphc.explain(f, x, y).code
    assert "np.arange(0, 7, 1, dtype=np.int64)" in code and "_impl['arange']" not in code
    lc = graphc.compile(f, fullgraph=True)(x, y)
    gc = model.weight.grad.numpy().copy()
    le = f(x, y)
    np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gc, model.weight.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_an_intermediate_concat_is_written_into_the_workspace_and_an_output_one_is_its_own():
    def f(a, b):
        stacked = graphc.cat([a, b * 2], dim=0)  # read again below: a workspace buffer
        return (stacked * 3).sum(0), graphc.cat([a, b], dim=1)  # the second is returned as is

    a = graphc.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = graphc.from_numpy(np.ones((2, 3), np.float32))
    code = graphc.explain(f, a, b).code
    assert code.count("_concat(") == 2 and code.count(", 0, out=") == 1
    compiled = graphc.compile(f)
    r1, r2 = compiled(a, b)
    s1, s2 = compiled(a, b)  # the workspace is reused by the second call: results are the caller's own
    for c, e in zip((r1, r2), f(a, b)):
        np.testing.assert_array_equal(c.numpy(), e.numpy())
    assert not np.shares_memory(r2.numpy(), s2.numpy()) and not np.shares_memory(r1.numpy(), s1.numpy())
