"""unfold's declared memory layout (``Primitive.layout``): the numpy schedule reads conv's im2col
windows straight from unfold's buffer, with no copy, and compiled conv still equals eager."""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.codegen import numpy_codegen
from graphc.codegen.schedule import ExternCall
from graphc.codegen.scheduler import build_schedule
from graphc.codegen.triton_codegen import TARGET as TRITON
from graphc.ir import prims as P
from graphc.ir.dtypes import float64
from graphc.ir.graph import Graph
from graphc.ir.primitive import TensorType


@pytest.mark.parametrize("shape,k", [((2, 3, 6, 5), (3, 2)), ((2, 4, 7), (3,)), ((1, 2, 4, 4, 5), (2, 2, 3))])
def test_declared_layout_is_the_layout_unfold_returns(shape, k):
    """The fact on the record against the implementation: element strides sorted by the declared
    order are C order over the dims taken in that order."""
    nsp = len(k)
    u = P.unfold.impl(np.zeros(shape), kernel=k, stride=(1,) * nsp, padding=((1, 1),) * nsp, dilation=(1,) * nsp)
    order = P.unfold.layout(u.ndim)
    assert sorted(order) == list(range(u.ndim))
    strides = [u.strides[d] // u.itemsize for d in order]
    want = np.cumprod((1,) + tuple(u.shape[d] for d in order[:0:-1]))[::-1]
    assert strides == list(want)
    assert order != tuple(range(u.ndim))  # channels after the window positions: not C order


# (stride, padding, dilation, groups)
CONVS = [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2), ((2, 1), (0, 1), (1, 2), 4)]


@pytest.mark.parametrize("stride,padding,dilation,groups", CONVS)
def test_compiled_conv2d_forward_backward_equals_eager(stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 8, 9, 7))
    w0 = rng.standard_normal((8, 8 // groups, 3, 3))
    b0 = rng.standard_normal(8)

    def step(x, w, b):
        y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        (y * y).sum().backward()  # the gradient reaches fold (input) and the weight product
        return y.detach()

    results = []
    for run in (step, graphc.compile(step)):
        ts = [graphc.tensor(a, requires_grad=True) for a in (x0, w0, b0)]
        y = run(*ts)
        results.append([y.numpy()] + [t.grad.numpy() for t in ts])
    for got, want in zip(*results[::-1]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_cnn_step_reads_unfold_buffer_without_copy():
    x = graphc.randn(4, 16, 8, 8, requires_grad=True)
    w = graphc.randn(32, 16, 3, 3, requires_grad=True)

    def step(x, w):
        y = F.conv2d(x, w, padding=1)
        y.sum().backward()
        return y.detach()
    code = graphc.explain(step, x, w).code
    # the forward's windows, then the output gradient's (the input gradient as a transposed conv)
    unfolded = re.findall(r"(\w+) = _fix\(_impl\['unfold'\]", code)
    assert len(unfolded) == 2 and "_impl['fold']" not in code
    body = [ln for ln in code.splitlines() if not ln.lstrip().startswith("#")]
    for v, products in zip(unfolded, (2, 1)):
        assert not [ln for ln in body if f"_copy({v}" in ln or f"np.array({v}" in ln]
        # forward: its product and the weight gradient's read the windows in place; backward: one
        assert sum("np.matmul(" in ln and re.search(rf"\b{v}\.", ln) is not None for ln in body) == products


def _unfold_then_matmul_operand() -> Graph:
    """unfold, then the permute + reshape conv's forward product reads (as a kernel's input)."""
    g = Graph("im2col")
    x = g.add_input(TensorType((2, 4, 5, 5), float64))
    u = g.add_node(P.unfold, [x], dict(kernel=(3, 3), stride=(1, 1), padding=((1, 1), (1, 1)),
                                       dilation=(1, 1)))
    p = g.add_node(P.permute, [u], dict(dims=(0, 2, 3, 4, 5, 1)))
    r = g.add_node(P.reshape, [p], dict(shape=(2, 25, 36)))
    g.set_outputs([g.add_node(P.neg, [r], {})])
    return g


@pytest.mark.parametrize("target,copies", [(numpy_codegen.TARGET, 0), (TRITON, 1)])
def test_schedule_takes_the_layout_only_where_the_backend_keeps_it(target, copies):
    """numpy uses a library result as returned: the windows are read in place. Triton copies it
    onto the device in C order (``_dev``): its schedule keeps C-order strides and copies before
    the reshape, so its kernels read the right elements."""
    s = build_schedule(_unfold_then_matmul_operand(), target)
    ext = next(st for st in s.steps if isinstance(st, ExternCall))
    kernels = s.kernels()
    assert sum(k.comment.startswith("contiguous copy") for k in kernels) == copies
    arg = kernels[-1].args[0].access
    if copies == 0:
        assert arg.buffer == ext.out and arg.strides == (900, 36, 1)
