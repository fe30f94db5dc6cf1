"""Numbers an elementwise op reads in generated numpy code are 0-d arrays of the op's dtype, made
once when the code loads (a Python number costs numpy a type resolution per call), and small
sigmoids call scipy's expit directly: same results as eager mode, in every float dtype."""
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
