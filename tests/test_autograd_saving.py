"""Eager autograd saves only the operands the wanted gradients read (as PyTorch does), so an
in-place write to an operand no gradient needs is allowed, and one to a needed operand is caught."""
from __future__ import annotations

import numpy as np
import pytest

import graphc


def test_assigning_a_scaled_column_into_its_own_tensor_differentiates():
    x = graphc.randn(3, 4, requires_grad=True)
    y = x.clone()
    y[:, 0] = y[:, 1] * 2  # PyTorch: fine; the mul by a scalar saves nothing of y
    y.sum().backward()
    expected = np.ones((3, 4))
    expected[:, 0] = 0  # overwritten
    expected[:, 1] = 3  # itself plus twice through column 0
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_changing_an_operand_no_gradient_reads_is_allowed():
    w = graphc.randn(3, requires_grad=True)
    data = graphc.randn(3)
    out = (w * data).sum()  # d/dw reads data; nobody wants d/ddata, which would read w
    with graphc.no_grad():
        w.add_(1.0)  # an optimizer-style update before backward: w itself is not needed
    out.backward()
    np.testing.assert_allclose(w.grad.numpy(), data.numpy())


def test_changing_an_operand_a_gradient_reads_is_an_error():
    w = graphc.randn(3, requires_grad=True)
    data = graphc.randn(3)
    out = (w * data).sum()
    data.mul_(2)  # d/dw needs the old data
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_matmul_keeps_only_what_the_weight_gradient_needs():
    x, w = graphc.randn(5, 4), graphc.randn(4, 2, requires_grad=True)
    out = (x @ w).sum()
    with graphc.no_grad():
        w.mul_(0.5)
    out.backward()
    np.testing.assert_allclose(w.grad.numpy(), np.repeat(x.numpy().sum(0)[:, None], 2, axis=1), rtol=1e-6)
