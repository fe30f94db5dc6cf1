"""Gradients of every differentiable primitive, composite and common public op.

For each case of ``op_cases.CASES`` (float64 inputs):

* ``test_gradcheck``: autograd's Jacobian against central finite differences;
* ``test_forward``: the forward result against numpy;
* ``test_grad_analytic``: the vector-Jacobian product against a hand-derived numpy formula
  (this also pins PyTorch's conventions where finite differences cannot: ties, clamp boundaries,
  0 ** 0, norms of zero vectors);
* ``test_gradgradcheck``: second derivatives (create_graph=True) for the cases marked ``gradgrad``.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import graphc
from graphc.autograd import GradcheckError, gradcheck, gradgradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_cases import CASES, Case, Fixed  # noqa: E402


def _to_tensor(a):
    if isinstance(a, Fixed):
        return graphc.tensor(np.array(a.value))
    if isinstance(a, np.ndarray):
        return graphc.tensor(a.copy(), requires_grad=a.dtype.kind == "f")
    return a


def _np_arg(a):
    return np.array(a.value) if isinstance(a, Fixed) else a


def _make_inputs(case: Case):
    return tuple(_to_tensor(a) for a in case.args)


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _by_id(cases):
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize("case", _by_id([c for c in CASES if c.gradcheck]))
def test_gradcheck(case: Case):
    inputs = _make_inputs(case)
    assert any(isinstance(t, graphc.Tensor) and t.requires_grad for t in inputs)
    assert gradcheck(case.fn, inputs, eps=case.eps, atol=case.atol, rtol=case.rtol)


@pytest.mark.parametrize("case", _by_id([c for c in CASES if c.ref is not None]))
def test_forward(case: Case):
    outs = _as_tuple(case.fn(*_make_inputs(case)))
    want = _as_tuple(case.ref(*(_np_arg(a) for a in case.args)))
    assert len(outs) == len(want)
    for o, w in zip(outs, want):
        if w is None:  # an output the op leaves empty (e.g. batch_norm's batch stats in eval mode)
            assert o is None
            continue
        assert isinstance(o, graphc.Tensor)
        w = np.asarray(w)
        assert tuple(o.shape) == w.shape, (tuple(o.shape), w.shape)
        got = o.detach().numpy()
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(got, w)
        else:
            np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-6 if got.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("case", _by_id([c for c in CASES if c.grad_ref is not None]))
def test_grad_analytic(case: Case):
    inputs = _make_inputs(case)
    diff = [t for t in inputs if isinstance(t, graphc.Tensor) and t.requires_grad]
    out = next(o for o in _as_tuple(case.fn(*inputs)) if o.dtype.is_floating_point)
    rng = np.random.default_rng(7)
    g = rng.uniform(0.5, 1.5, size=tuple(out.shape)) * rng.choice([-1.0, 1.0], size=tuple(out.shape))
    g = g.astype(out.detach().numpy().dtype)
    grads = graphc.autograd.grad(out, diff, graphc.tensor(g))
    want = case.grad_ref(g, *(_np_arg(a) for a in case.args))
    assert len(grads) == len(want) == len(diff)
    for t, got, w in zip(diff, grads, want):
        assert got is not None
        assert got.dtype == t.dtype, (got.dtype, t.dtype)
        assert tuple(got.shape) == tuple(t.shape)
        tol = dict(rtol=1e-6, atol=1e-9) if t.dtype == graphc.float64 else dict(rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.numpy(), np.broadcast_to(w, tuple(t.shape)), **tol)


@pytest.mark.parametrize("case", _by_id([c for c in CASES if c.gradgrad]))
def test_gradgradcheck(case: Case):
    inputs = _make_inputs(case)
    out = _as_tuple(case.fn(*inputs))[0]
    rng = np.random.default_rng(3)
    v = graphc.tensor(rng.uniform(-1, 1, size=tuple(out.shape)), requires_grad=True)
    assert gradgradcheck(case.fn, inputs, (v,), eps=case.eps, atol=case.atol, rtol=case.rtol)


# ---- the checker itself must be able to fail -------------------------------------------------

class _WrongSquare(graphc.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x  # should be 2 * g * x


class _WrongSecondOrder(graphc.autograd.Function):
    """x ** 3 with a first derivative that is right in value but not differentiable correctly."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x.detach() * x.detach()


def test_gradcheck_detects_wrong_gradient():
    x = graphc.tensor(np.linspace(0.5, 1.5, 5), requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(_WrongSquare.apply, (x,))
    assert gradcheck(_WrongSquare.apply, (x,), raise_exception=False) is False
    assert gradcheck(lambda t: t * t, (x,))


def test_gradgradcheck_detects_wrong_second_derivative():
    x = graphc.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)
    assert gradcheck(_WrongSecondOrder.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(_WrongSecondOrder.apply, (x,))
    assert gradgradcheck(lambda t: t * t * t, (x,))


def test_gradcheck_detects_missing_gradient():
    x = graphc.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: t.detach() * t + t.detach() ** 2, (x,))
