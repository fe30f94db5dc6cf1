"""A stack of matrices times one matrix runs as one matrix product in numpy code when the stack's
rows are one matrix in memory (numpy would make one BLAS call per matrix of the stack); results
equal numpy's float64 product whichever way the call is written."""
from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.ir.printer import parse_graph
from graphc.runtime import backends


def _body(code: str) -> list[str]:
    """The generated lines that call np.matmul (comments left out)."""
    return [ln.strip() for ln in code.splitlines() if "np.matmul(" in ln and not ln.strip().startswith("#")]


# (a's shape, how a is viewed, b's shape, whether the product is one (rows, k) @ (k, n) call; the
# others are checked for their values only: a backend may copy a view first, then flatten the copy)
CASES = [
    ((4, 5, 6), None, (6, 3), True),
    ((2, 3, 5, 6), None, (1, 6, 3), True),
    ((4, 5, 6), None, (6,), True),                       # a vector b: one matrix-vector product
    ((4, 6, 5), "transpose", (6, 3), False),             # each matrix transposed
    ((4, 7, 6), "slice", (6, 3), False),                 # rows 0..4 of each matrix: gaps between matrices
    ((1, 5, 6), "expand", (6, 3), False),                # a broadcast stack: rows repeat, no view
    ((4, 5, 6), None, (4, 6, 3), False),                 # b a stack too: a batched product
]


def _operand(a: graphc.Tensor, view: str | None) -> graphc.Tensor:
    if view == "transpose":
        return a.transpose(1, 2)
    if view == "slice":
        return a[:, :5]
    if view == "expand":
        return a.expand(4, 5, 6)
    return a * 1.0


@pytest.mark.parametrize("a_shape,view,b_shape,one", CASES)
@pytest.mark.parametrize("as_output", [True, False])
def test_stack_times_matrix_equals_numpy(a_shape, view, b_shape, one, as_output):
    """``as_output``: the product is the graph's result (numpy's own array) or an intermediate
    (written with out= into a planned buffer)."""
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal(a_shape), rng.standard_normal(b_shape)

    def fn(a, b):
        y = _operand(a, view) @ b
        return y if as_output else y * 2.0
    ta, tb = graphc.tensor(a0), graphc.tensor(b0)
    a_ref = {None: lambda: a0, "transpose": lambda: a0.transpose(0, 2, 1), "slice": lambda: a0[:, :5],
             "expand": lambda: np.broadcast_to(a0, (4, 5, 6))}[view]()
    want = a_ref @ b0 * (1.0 if as_output else 2.0)
    got = graphc.compile(fn)(ta, tb).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    calls = _body(graphc.explain(fn, ta, tb).code)
    assert len(calls) == 1
    if one:
        rows = int(np.prod(want.shape[:-1] if len(b_shape) > 1 else want.shape))
        assert f".reshape(({rows}, {a_shape[-1]}))" in calls[0]


def test_conv_forward_product_is_one_matrix_product():
    """conv's im2col product: the windows of every image at once, (N*OH*OW, C*kh*kw) @ (C*kh*kw, OC),
    written into the output buffer seen as that one matrix."""
    x = graphc.randn(4, 16, 8, 8, requires_grad=True)
    w = graphc.randn(32, 16, 3, 3, requires_grad=True)

    def step(x, w):
        y = F.conv2d(x, w, padding=1)
        (y * y).sum().backward()
        return y.detach()
    code = graphc.explain(step, x, w).code
    assert re.search(r"np\.matmul\(\w+\.reshape\(\(4, 1, 16, 8, 8, 3, 3\)\)[^\n]*\.reshape\(\(256, 144\)\), "
                     r"[^\n]*\.reshape\(\(144, 32\)\), out=\w+\.reshape\(\(256, 32\)\)\)", code)


@pytest.mark.parametrize("dims,one", [((0, 1, 2), True), ((0, 2, 1), False), ((1, 0, 2), False)])
def test_only_a_stack_whose_rows_are_one_matrix_is_flattened(dims, one):
    """A permuted stack (each matrix transposed, or the stack's axis moved) has no (rows, k) view:
    reshaping it would copy it on every call, so it stays a batched product (numpy's values either way)."""
    shape = tuple((4, 5, 6)[d] for d in np.argsort(dims))
    g = parse_graph(textwrap.dedent(f"""
        graph f(%x: f64[{','.join(map(str, shape))}], %w: f64[6,3]) {{
          %0: f64[{','.join(map(str, shape))}] = exp(%x)
          %1: f64[4,5,6] = permute(%0) dims=[{','.join(map(str, dims))}]
          %2: f64[4,5,3] = matmul(%1, %w)
          %3: f64[4,5,3] = neg(%2)
          return %3
        }}
    """))
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(shape), rng.standard_normal((6, 3))
    compiled = backends.get("numpy", "cpu").compile(g, "k")
    np.testing.assert_allclose(compiled([x, w])[0], -(np.exp(x).transpose(dims) @ w), rtol=1e-12, atol=1e-12)
    assert (".reshape((20, 6))" in compiled.source) == one
