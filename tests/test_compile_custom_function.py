"""Custom ``autograd.Function``s under graphc.compile: the forward is traced inline and the user's
``backward`` is traced as the VJP of its outputs (as PyTorch 2 compiles them), with
save_for_backward / saved_tensors, needs_input_grad, once_differentiable, mark_non_differentiable,
set_materialize_grads, setup_context and non-tensor arguments. Compiled results and gradients equal
eager ones, and gradients match finite differences in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.autograd import Function, gradcheck, once_differentiable
from graphc.compiler.api import GraphBreakError


class LegendrePolynomial3(Function):
    """PyTorch's custom-Function tutorial (polynomial_custom_function.py)."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


class ScaledMul(Function):
    """Two tensor inputs and a Python scale; gradients only where needs_input_grad asks."""

    @staticmethod
    def forward(ctx, a, b, scale):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = g * b * ctx.scale if ctx.needs_input_grad[0] else None
        gb = g * a * ctx.scale if ctx.needs_input_grad[1] else None
        return ga, gb, None


class ExpWithMask(Function):
    """Two outputs, one marked non-differentiable; backward once_differentiable."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        mask = x > 0
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(y)
        return y, mask

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, gmask):
        y, = ctx.saved_tensors
        return gy * y


class SinCos(Function):
    """Two differentiable outputs; set_materialize_grads(False) and setup_context style."""

    @staticmethod
    def forward(x):
        return x.sin(), x.cos()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, gs, gc):
        x, = ctx.saved_tensors
        out = graphc.zeros_like(x)
        if gs is not None:
            out = out + gs * x.cos()
        if gc is not None:
            out = out - gc * x.sin()
        return out


def _x(*shape, seed=0):
    return graphc.tensor(np.random.default_rng(seed).uniform(-1, 1, shape), dtype=graphc.float64, requires_grad=True)


def _grads(fn, *xs):
    for x in xs:
        x.grad = None
    out = fn(*xs)
    out.backward()
    return out.detach().numpy(), [None if x.grad is None else x.grad.numpy() for x in xs]


@pytest.mark.parametrize("fn", [
    lambda x: LegendrePolynomial3.apply(x).pow(2).sum(),
    lambda x: ScaledMul.apply(x, x.sin(), 2.5).sum(),
    lambda x: (ExpWithMask.apply(x)[0] * ExpWithMask.apply(x)[1].to(x.dtype)).sum(),
    lambda x: (SinCos.apply(x)[0] * 3).sum() + SinCos.apply(x * 2)[1].sum(),
], ids=["legendre", "two-inputs-and-scale", "non-differentiable-output", "two-outputs-setup-context"])
def test_compiled_custom_function_equals_eager_and_finite_differences(fn):
    compiled = graphc.compile(fn, fullgraph=True)  # no graph break
    x = _x(3, 4)
    (ve, ge), (vc, gc) = _grads(fn, x), _grads(compiled, x)
    np.testing.assert_allclose(vc, ve, rtol=1e-12)
    np.testing.assert_allclose(gc[0], ge[0], rtol=1e-12)
    assert gradcheck(compiled, (x,))


def test_needs_input_grad_is_seen_by_the_traced_backward():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(ctx.needs_input_grad)
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g * 2, (g * 3 if ctx.needs_input_grad[1] else None)

    a, b = _x(3), graphc.ones(3, dtype=graphc.float64)  # b needs no gradient
    graphc.compile(lambda a, b: Probe.apply(a, b).sum(), fullgraph=True)(a, b).backward()
    assert seen == [(True, False)]
    np.testing.assert_array_equal(a.grad.numpy(), np.full(3, 2.0))  # the user's backward, not mul's VJP


def test_no_grad_call_traces_only_the_forward():
    x = _x(4)
    with graphc.no_grad():
        out = graphc.compile(lambda x: LegendrePolynomial3.apply(x), fullgraph=True)(x)
    assert not out.requires_grad
    np.testing.assert_allclose(out.numpy(), 0.5 * (5 * x.detach().numpy() ** 3 - 3 * x.detach().numpy()))


def test_training_step_with_custom_function_compiles_into_one_graph():
    """The tutorial's model y = a + b P3(c + d x), trained by a compiled step (backward inside)."""
    xs = graphc.linspace(-math.pi, math.pi, 200, dtype=graphc.float64)
    ys = graphc.sin(xs)

    def make():
        return [graphc.full((), v, dtype=graphc.float64, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)]

    def step(params, opt):
        a, b, c, d = params
        opt.zero_grad()
        loss = (a + b * LegendrePolynomial3.apply(c + d * xs) - ys).pow(2).sum()
        loss.backward()
        opt.step()
        return loss.detach()

    pe, pc = make(), make()
    oe, oc = graphc.optim.SGD(pe, lr=5e-6), graphc.optim.SGD(pc, lr=5e-6)
    cstep = graphc.compile(lambda: step(pc, oc), fullgraph=True)
    for _ in range(5):
        le, lc = step(pe, oe), cstep()
        assert lc.item() == pytest.approx(le.item(), rel=1e-10)
    for p, q in zip(pe, pc):
        assert q.item() == pytest.approx(p.item(), rel=1e-10)


def test_custom_function_in_a_compiled_module():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4).double()

        def forward(self, x):
            return LegendrePolynomial3.apply(self.lin(x)).sum()

    m = M()
    x = _x(2, 4)
    m(x).backward()
    want = m.lin.weight.grad.numpy().copy()
    m.zero_grad()
    graphc.compile(m, fullgraph=True)(x).backward()
    np.testing.assert_allclose(m.lin.weight.grad.numpy(), want, rtol=1e-12)


def test_mark_dirty_is_a_graph_break_naming_the_function():
    class AddOneInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(GraphBreakError, match="AddOneInPlace modifies inputs in place"):
        graphc.compile(lambda x: AddOneInPlace.apply(x * 1), fullgraph=True)(_x(3))


def test_wrong_number_of_gradients_raises_pytorchs_error():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        graphc.compile(lambda x: Bad.apply(x, x).sum())(_x(3))


def test_gradient_of_the_wrong_shape_raises_pytorchs_error():
    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:2]

    for run in (lambda f: f, lambda f: graphc.compile(f)):
        with pytest.raises(RuntimeError, match=r"returned an invalid gradient at index 0 - got \[2\] but expected shape "
                                               r"compatible with \[3\]"):
            run(lambda x: WrongShape.apply(x).sum())(_x(3)).backward()


@pytest.mark.triton
def test_custom_function_on_the_triton_backend():
    pytest.importorskip("triton")

    def fn(x):
        return LegendrePolynomial3.apply(x).pow(2).sum() + SinCos.apply(x)[1].sum()

    x = graphc.randn(3, 4, requires_grad=True)
    fn(x).backward()
    want, x.grad = x.grad.numpy().copy(), None
    graphc.compile(fn, backend="triton", fullgraph=True)(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5, atol=1e-6)


def test_custom_function_under_graphc_func_transforms():
    """vmap(grad(f)) (per-sample gradients), grad(vmap(f)) and their compiled form use the user's
    backward, batched by the custom_vjp batching rule."""
    from graphc.func import grad, vmap

    def f(w, x):
        return (LegendrePolynomial3.apply(w * x) * 2).sum() + ScaledMul.apply(w, x, 1.5).sum()

    w, xs = _x(3).detach(), _x(4, 3, seed=1).detach()
    want = []
    for i in range(4):
        ww = w.clone().requires_grad_(True)
        f(ww, xs[i]).backward()
        want.append(ww.grad.numpy())
    want = np.stack(want)
    per_sample = lambda w, xs: vmap(grad(f), in_dims=(None, 0))(w, xs)  # noqa: E731
    np.testing.assert_allclose(per_sample(w, xs).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(graphc.compile(per_sample, fullgraph=True)(w, xs).numpy(), want, rtol=1e-12)
    total = grad(lambda w: vmap(f, in_dims=(None, 0))(w, xs).sum())(w)
    np.testing.assert_allclose(total.numpy(), want.sum(0), rtol=1e-12)
