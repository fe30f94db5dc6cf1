"""Custom ``autograd.Function``: ctx.save_for_backward / saved_tensors, needs_input_grad, .apply,
mark_non_differentiable, mark_dirty, setup_context style, double backward, and its errors."""
import re
import warnings

import numpy as np
import pytest

import graphc as torch
from graphc.autograd import Function


def arr(t):
    return t.detach().numpy()


def close(t, expected, tol=1e-6):
    np.testing.assert_allclose(arr(t), np.asarray(expected, dtype=np.float64), rtol=tol, atol=tol)


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        r = x.exp()
        ctx.save_for_backward(r)
        return r

    @staticmethod
    def backward(ctx, g):
        (r,) = ctx.saved_tensors
        return g * r


class ScaledMul(Function):
    """x * w * k with a non-tensor argument k; records needs_input_grad seen in backward."""

    seen = None

    @staticmethod
    def forward(ctx, x, w, k):
        ctx.save_for_backward(x, w)
        ctx.k = k
        return x * w * k

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        ScaledMul.seen = ctx.needs_input_grad
        gx = g * w * ctx.k if ctx.needs_input_grad[0] else None
        gw = g * x * ctx.k if ctx.needs_input_grad[1] else None
        return gx, gw, None


def test_apply_forward_backward():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = Exp.apply(x)
    close(y, np.exp([0.0, 1.0]))
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    close(x.grad, np.exp([0.0, 1.0]))


def test_grad_fn_name_type_and_next_functions():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = Exp.apply(x)
    assert y.grad_fn.name() == "ExpBackward"
    assert type(y.grad_fn).__name__ == "ExpBackward"
    ((acc, nr),) = y.grad_fn.next_functions
    assert acc.variable is x and nr == 0


def test_next_functions_skip_non_tensor_arguments():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0])
    y = ScaledMul.apply(x, w, 2.0)
    fns = y.grad_fn.next_functions
    assert len(fns) == 2
    assert fns[0][0].variable is x
    assert fns[1] == (None, 0)


def test_needs_input_grad_and_none_grads():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0])
    y = ScaledMul.apply(x, w, 2.0)
    assert y.grad_fn.needs_input_grad == (True, False, False)
    y.sum().backward()
    assert ScaledMul.seen == (True, False, False)
    close(x.grad, [6.0, 8.0])
    assert w.grad is None


def test_two_inputs_both_requiring_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    ScaledMul.apply(x, w, 0.5).sum().backward()
    assert ScaledMul.seen == (True, True, False)
    close(x.grad, [1.5, 2.0])
    close(w.grad, [0.5, 1.0])


def test_saved_tensors_are_the_saved_inputs():
    captured = {}

    class Keep(Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, None, w)
            return x + w

        @staticmethod
        def backward(ctx, g):
            x, none, w = ctx.saved_tensors
            captured.update(x=x, none=none, w=w)
            return g, g

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0])
    Keep.apply(x, w).sum().backward()
    assert captured["x"] is x  # a saved leaf unpacks to the leaf itself
    assert captured["none"] is None
    close(captured["w"], [3.0, 4.0])


def test_no_graph_when_no_input_requires_grad():
    y = Exp.apply(torch.tensor([0.0, 1.0]))
    assert not y.requires_grad and y.grad_fn is None


def test_no_graph_under_no_grad():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with torch.no_grad():
        y = Exp.apply(x)
    assert not y.requires_grad and y.grad_fn is None


def test_forward_runs_without_grad_tracking():
    inside = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            inside.append((torch.is_grad_enabled(), (x * 2).requires_grad))
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = torch.tensor([1.0], requires_grad=True)
    Probe.apply(x)
    assert inside == [(False, False)]


def test_mark_non_differentiable():
    class Sort(Function):
        @staticmethod
        def forward(ctx, x):
            v, i = x.sort()
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(i)
            return v, i

        @staticmethod
        def backward(ctx, gv, gi):
            (i,) = ctx.saved_tensors
            out = torch.zeros_like(gv)
            out[i] = gv
            return out

    x = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = Sort.apply(x)
    assert v.requires_grad and not i.requires_grad
    assert i.tolist() == [1, 2, 0]
    (v * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    close(x.grad, [100.0, 1.0, 10.0])


def test_mark_non_differentiable_float_output():
    class TwoOut(Function):
        @staticmethod
        def forward(ctx, x):
            a, b = x * 2, x * 3
            ctx.mark_non_differentiable(b)
            return a, b

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    a, b = TwoOut.apply(x)
    assert a.requires_grad and not b.requires_grad
    a.sum().backward()
    close(x.grad, [2.0, 2.0])


def test_multiple_outputs_with_unused_one_gets_zero_grad():
    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            # materialized: the unused output's grad arrives as zeros, not None
            assert gb is not None
            return ga * 2 + gb * 3

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    a, b = Split.apply(x)
    a.sum().backward()
    close(x.grad, [2.0, 2.0])


def test_setup_context_style():
    class Double(Function):
        @staticmethod
        def forward(x, k):
            return x * k

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, k = inputs
            ctx.k = k
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * ctx.k, None

    x = torch.tensor([3.0, 1.0], requires_grad=True)
    y = Double.apply(x, 4.0)
    close(y, [12.0, 4.0])
    assert y.grad_fn.name() == "DoubleBackward"
    y.sum().backward()
    close(x.grad, [4.0, 4.0])


def test_mark_dirty_inplace_function():
    class AddOneInplace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = AddOneInplace.apply(y)
    close(y, [3.0, 5.0])
    assert z.grad_fn.name() == "AddOneInplaceBackward"
    (z * z).sum().backward()
    close(x.grad, [12.0, 20.0])


def test_double_backward_through_custom_function():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    x = torch.tensor(2.0, requires_grad=True)
    y = Cube.apply(x)
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    (gg,) = torch.autograd.grad(g, x)
    assert g.item() == 12.0 and gg.item() == 12.0


def test_custom_function_composes_with_builtin_ops():
    x = torch.tensor([0.5, -0.5], dtype=torch.float64, requires_grad=True)
    y = (Exp.apply(x * 2) * x).sum()
    y.backward()
    xv = np.array([0.5, -0.5])
    close(x.grad, np.exp(2 * xv) * (2 * xv + 1), 1e-12)


def test_gradcheck_on_custom_function():
    x = torch.tensor([0.1, 0.7, -0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Exp.apply, (x,))


def test_gradient_broadcast_back_to_input_shape():
    class AddRow(Function):
        @staticmethod
        def forward(ctx, x, b):
            return x + b

        @staticmethod
        def backward(ctx, g):
            return g, g  # g has x's shape; graphc/PyTorch reduce it to b's shape

    x = torch.ones(2, 3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    AddRow.apply(x, b).sum().backward()
    close(b.grad, [2.0, 2.0, 2.0])


# ---- errors ----------------------------------------------------------------------------------------

def test_wrong_number_of_grads_too_few():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, w):
            return x * w

        @staticmethod
        def backward(ctx, g):
            return g

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "function BadBackward returned an incorrect number of gradients (expected 2, got 1)")):
        Bad.apply(x, torch.ones(2)).sum().backward()


def test_wrong_number_of_grads_too_many():
    class Bad2(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g, g

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "function Bad2Backward returned an incorrect number of gradients (expected 1, got 3)")):
        Bad2.apply(x).sum().backward()


def test_extra_none_grads_are_allowed():
    class Extra(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    Extra.apply(x).sum().backward()
    close(x.grad, [2.0, 2.0])


def test_saved_tensors_after_backward_are_freed():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = Exp.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="^Trying to backward through the graph a second time"):
        y.grad_fn.saved_tensors


def test_saved_tensors_kept_with_retain_graph():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = Exp.apply(x)
    y.sum().backward(retain_graph=True)
    (r,) = y.grad_fn.saved_tensors
    close(r, np.exp([0.0, 1.0]))
    y.sum().backward()
    close(x.grad, 2 * np.exp([0.0, 1.0]))


def test_saved_output_modified_in_place():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = Exp.apply(x)
    y.add_(1)
    with pytest.raises(RuntimeError, match=re.escape(
            "one of the variables needed for gradient computation has been modified by an inplace "
            "operation: [graphc.FloatTensor [2]], which is output 0 of Exp, is at version 1; expected "
            "version 0 instead.")):
        y.sum().backward()


def test_save_for_backward_rejects_non_tensors():
    class SaveInt(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match="save_for_backward can only save variables, but argument 1 is of "
                                        "type int"):
        SaveInt.apply(torch.tensor([1.0], requires_grad=True))


def test_backward_not_implemented():
    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    x = torch.tensor([1.0], requires_grad=True)
    y = NoBackward.apply(x)
    with pytest.raises(NotImplementedError, match="You must implement either the backward or vjp method "
                                                  "for your custom autograd.Function to use it with "
                                                  "backward mode AD."):
        y.sum().backward()


def test_instantiating_a_function_warns_and_calling_it_errors():
    with pytest.warns(DeprecationWarning, match="should not be instantiated. Methods on autograd functions "
                                                "are all static"):
        f = Exp()
    with pytest.raises(RuntimeError, match="^Legacy autograd function with non-static forward method is "
                                           "deprecated."):
        f(torch.tensor([1.0]))


def test_wrong_gradient_shape():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return torch.ones(5)

    x = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape(
            "Function BadShapeBackward returned an invalid gradient at index 0 - got [5] but expected "
            "shape compatible with [2, 3]")):
        BadShape.apply(x).sum().backward()
