"""Eager autograd: requires_grad, leaves, .grad, grad_fn graphs, backward(), autograd.grad,
higher-order gradients, detach, tensor hooks and in-place ops on non-leaf tensors and views.

Expected values are analytic (or finite differences in float64) and match what PyTorch gives for
the same code.
"""
import warnings

import numpy as np
import pytest

import graphc as torch


def arr(t):
    return t.detach().numpy()


def close(t, expected, tol=1e-6):
    np.testing.assert_allclose(arr(t), np.asarray(expected, dtype=np.float64), rtol=tol, atol=tol)


def numeric_grad(f, x0, eps=1e-6):
    """Central differences of the scalar function ``f`` (graphc tensor -> graphc scalar)."""
    x0 = np.asarray(x0, dtype=np.float64)
    g = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += eps
        xm[i] -= eps
        with torch.no_grad():
            g[i] = (f(torch.tensor(xp)).item() - f(torch.tensor(xm)).item()) / (2 * eps)
    return g


def analytic_grad(f, x0):
    x = torch.tensor(np.asarray(x0, dtype=np.float64), requires_grad=True)
    f(x).backward()
    return arr(x.grad)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---- requires_grad and leaves -------------------------------------------------------------------

def test_requires_grad_default_and_factory_flag():
    assert not torch.tensor([1.0, 2.0]).requires_grad
    assert torch.tensor([1.0, 2.0], requires_grad=True).requires_grad
    assert torch.zeros(2, 3, requires_grad=True).requires_grad
    assert torch.ones(2, dtype=torch.float64, requires_grad=True).requires_grad


def test_requires_grad_underscore_returns_self_and_toggles():
    x = torch.tensor([1.0, 2.0])
    assert x.requires_grad_() is x
    assert x.requires_grad
    assert x.requires_grad_(False) is x
    assert not x.requires_grad
    x.requires_grad = True
    assert x.requires_grad and x.is_leaf


def test_requires_grad_false_is_allowed_on_int_tensors():
    t = torch.tensor([1, 2])
    t.requires_grad_(False)
    t.requires_grad = False
    assert not t.requires_grad


def test_requires_grad_propagates_through_ops():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    c = torch.tensor([3.0, 4.0])
    assert (x * c).requires_grad
    assert (c * x + 1).requires_grad
    assert not (c * 2).requires_grad
    # comparisons and integer results never require grad
    assert not (x > 1).requires_grad
    assert not x.argmax().requires_grad


def test_is_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    c = torch.tensor([1.0, 2.0])
    assert x.is_leaf and c.is_leaf
    y = x * 2
    assert not y.is_leaf
    assert (c * 2).is_leaf  # no history without requires_grad
    assert y.detach().is_leaf
    assert x[0].is_leaf is False  # a view of a leaf that requires grad is part of the graph


def test_grad_is_none_before_backward_and_set_after():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert x.grad is None
    (x * x).sum().backward()
    close(x.grad, [2.0, 4.0, 6.0])
    assert x.grad.is_leaf and not x.grad.requires_grad
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype


def test_grad_can_be_assigned_and_deleted():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.grad = torch.tensor([5.0, 5.0])
    (x * 3).sum().backward()
    close(x.grad, [8.0, 8.0])
    x.grad = None
    assert x.grad is None
    (x * 3).sum().backward()
    del x.grad
    assert x.grad is None


# ---- grad_fn graph -------------------------------------------------------------------------------

def test_grad_fn_names_and_next_functions():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.tensor([4.0, 5.0, 6.0], requires_grad=True)
    y = (x * w).sum()
    assert x.grad_fn is None
    assert y.grad_fn.name() == "SumBackward0"
    assert type(y.grad_fn).__name__ == "SumBackward0"
    (mul, nr), = y.grad_fn.next_functions
    assert mul.name() == "MulBackward0" and nr == 0
    (acc_x, nx), (acc_w, nw) = mul.next_functions
    assert acc_x.name() == acc_w.name() == "torch::autograd::AccumulateGrad"
    assert acc_x.variable is x and acc_w.variable is w
    assert nx == nw == 0
    assert acc_x.next_functions == ()


def test_next_functions_has_none_for_inputs_without_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    c = torch.tensor([3.0, 4.0])
    y = x * c + c
    assert y.grad_fn.name() == "AddBackward0"
    (mul, _), (none, nr) = y.grad_fn.next_functions
    assert mul.name() == "MulBackward0"
    assert none is None and nr == 0
    assert mul.next_functions[1] == (None, 0)


def test_same_leaf_gets_one_accumulate_grad_node():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    (a, _), (b, _) = y.grad_fn.next_functions
    assert a is b


def test_grad_fn_repr_and_common_names():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert repr((x * 2).grad_fn).startswith("<MulBackward0 object at 0x")
    assert x.exp().grad_fn.name() == "ExpBackward0"
    assert (x @ x).grad_fn.name() == "MmBackward0"
    assert x.mean().grad_fn.name() == "MeanBackward0"
    assert type(x.mean().grad_fn).__name__ == "MeanBackward0"


# ---- backward() ----------------------------------------------------------------------------------

def test_backward_scalar_uses_implicit_one():
    x = torch.tensor(3.0, requires_grad=True)
    (x * x * x).backward()
    close(x.grad, 27.0)


def test_backward_with_gradient_argument():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(torch.tensor([1.0, 0.5, -1.0]))
    close(x.grad, [2.0, 2.0, -6.0])
    x2 = torch.tensor([1.0, 2.0], requires_grad=True)
    (x2 * 3).backward(gradient=torch.tensor([1.0, -1.0]))
    close(x2.grad, [3.0, -3.0])


def test_gradient_accumulates_across_backward_calls():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    first = x.grad
    close(first, [2.0, 4.0])
    (x * 3).sum().backward()
    close(x.grad, [5.0, 7.0])
    assert x.grad is first  # accumulated in place, like PyTorch


def test_retain_graph_allows_second_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    z = x.exp().sum()
    z.backward(retain_graph=True)
    z.backward(retain_graph=True)
    close(x.grad, 2 * np.exp([1.0, 2.0]))
    z.backward()
    close(x.grad, 3 * np.exp([1.0, 2.0]))


def test_backward_create_graph_gives_differentiable_grad():
    x = torch.tensor(3.0, requires_grad=True)
    with pytest.warns(UserWarning, match="Using backward\\(\\) with create_graph=True"):
        (x ** 3).backward(create_graph=True)
    g = x.grad
    close(g, 27.0)
    assert g.requires_grad and g.grad_fn is not None
    (gg,) = torch.autograd.grad(g, x)
    close(gg, 18.0)  # d/dx 3x^2 = 6x


def test_backward_inputs_restricts_accumulation():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    close(w.grad, [1.0, 2.0])
    (x * w).sum().backward(inputs=x)
    close(x.grad, [3.0, 4.0])
    close(w.grad, [1.0, 2.0])


def test_backward_inputs_on_non_leaf_populates_its_grad(no_warnings):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    (y * y).sum().backward(inputs=[y])
    assert x.grad is None
    close(y.grad, [4.0, 8.0])


def test_autograd_backward_with_several_roots():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    torch.autograd.backward([y.sum(), (x * 3).sum()])
    close(x.grad, [5.0, 7.0])
    x.grad = None
    torch.autograd.backward([x * x], [torch.tensor([1.0, 10.0])])
    close(x.grad, [2.0, 40.0])


def test_backward_through_shared_subexpression():
    x = torch.tensor([0.5, -1.0], requires_grad=True)
    y = x * x
    z = (y * y + y.sin() * x).sum()
    z.backward()
    xv = np.array([0.5, -1.0])
    close(x.grad, 4 * xv ** 3 + np.cos(xv ** 2) * 2 * xv * xv + np.sin(xv ** 2))


def test_backward_broadcasting_sums_grad_to_input_shape():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    b = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = torch.tensor(2.0, requires_grad=True)
    ((x + b) * s).sum().backward()
    close(x.grad, np.full((2, 3), 2.0))
    close(b.grad, [4.0, 4.0, 4.0])
    close(s.grad, 21.0 + 12.0)


def test_float64_grads_stay_float64():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == torch.float64


# ---- retain_grad and reading .grad of non-leaves ---------------------------------------------------

def test_retain_grad_on_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    assert y.retains_grad
    (y * 3).sum().backward()
    close(y.grad, [3.0, 3.0])
    close(x.grad, [6.0, 12.0])


def test_retain_grad_accumulates_like_leaf_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    close(y.grad, [8.0, 16.0])
    close(x.grad, [16.0, 32.0])


def test_retain_grad_on_leaf_is_a_no_op():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.retain_grad()
    assert not x.retains_grad
    (x * 2).sum().backward()
    close(x.grad, [2.0, 2.0])


def test_reading_grad_of_non_leaf_warns():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match="The .grad attribute of a Tensor that is not a leaf Tensor is being accessed"):
        assert y.grad is None


def test_reading_grad_of_retained_non_leaf_does_not_warn(no_warnings):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.sum().backward()
    close(y.grad, [1.0, 1.0])
    assert x.grad is not None  # leaves never warn


# ---- autograd.grad -------------------------------------------------------------------------------

def test_autograd_grad_returns_tuple_and_does_not_touch_dot_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gx, gw = torch.autograd.grad((x * w).sum(), (x, w))
    close(gx, [3.0, 4.0])
    close(gw, [1.0, 2.0])
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad
    res = torch.autograd.grad((x * x).sum(), x)
    assert isinstance(res, tuple) and len(res) == 1


def test_autograd_grad_allow_unused():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gx, gw = torch.autograd.grad((x * x).sum(), [x, w], allow_unused=True)
    close(gx, [2.0, 4.0])
    assert gw is None


def test_autograd_grad_materialize_grads():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gx, gw = torch.autograd.grad((x * x).sum(), [x, w], materialize_grads=True)
    close(gw, [0.0, 0.0])


def test_autograd_grad_with_grad_outputs():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(x * x, x, grad_outputs=torch.tensor([1.0, 10.0]))
    close(g, [2.0, 40.0])


def test_autograd_grad_with_several_outputs_sums_them():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    (g,) = torch.autograd.grad([y.sum(), (x * 3).sum()], x)
    close(g, [5.0, 7.0])


def test_autograd_grad_with_respect_to_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    (g,) = torch.autograd.grad((y ** 2).sum(), y)
    close(g, [4.0, 8.0])


def test_autograd_grad_retain_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    z = x.pow(2).sum()
    torch.autograd.grad(z, x, retain_graph=True)
    (g,) = torch.autograd.grad(z, x)
    close(g, [2.0, 4.0])


def test_autograd_grad_create_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad((x ** 2).sum(), x, create_graph=True)
    assert g.requires_grad and not g.is_leaf
    (g * g).sum().backward()  # d/dx sum((2x)^2) = 8x
    close(x.grad, [8.0, 16.0])


# ---- higher-order gradients ------------------------------------------------------------------------

def test_third_derivative_of_cube_is_exact():
    x = torch.tensor(2.0, requires_grad=True)
    y = x ** 3
    (g1,) = torch.autograd.grad(y, x, create_graph=True)
    (g2,) = torch.autograd.grad(g1, x, create_graph=True)
    (g3,) = torch.autograd.grad(g2, x)
    assert g1.item() == 12.0  # 3x^2
    assert g2.item() == 12.0  # 6x
    assert g3.item() == 6.0
    assert g2.requires_grad and not g3.requires_grad


def test_second_derivative_elementwise():
    xv = np.array([-1.5, 0.0, 0.5, 2.0])
    x = torch.tensor(xv, requires_grad=True)
    (g,) = torch.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_array_equal(arr(g), 3 * xv ** 2)
    np.testing.assert_array_equal(arr(gg), 6 * xv)


def test_higher_order_sin():
    xv = np.array([1.0, 2.0])
    x = torch.tensor(xv, requires_grad=True)
    (g1,) = torch.autograd.grad(x.sin().sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = torch.autograd.grad(g2.sum(), x)
    close(g1, np.cos(xv))
    close(g2, -np.sin(xv))
    close(g3, -np.cos(xv))


def test_hessian_vector_product():
    # f(x) = sum(x0^2 x1 + x1^3); H = [[2 x1, 2 x0], [2 x0, 6 x1]]
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    f = x[0] ** 2 * x[1] + x[1] ** 3
    (g,) = torch.autograd.grad(f, x, create_graph=True)
    v = torch.tensor([1.0, -1.0], dtype=torch.float64)
    (hv,) = torch.autograd.grad((g * v).sum(), x)
    H = np.array([[4.0, 2.0], [2.0, 12.0]])
    close(hv, H @ np.array([1.0, -1.0]))


def test_double_backward_through_exp_and_mul():
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    y = x * x.exp()  # y' = (1 + x) e^x, y'' = (2 + x) e^x
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    (gg,) = torch.autograd.grad(g, x)
    close(g, 1.5 * np.exp(0.5), 1e-12)
    close(gg, 2.5 * np.exp(0.5), 1e-12)


# ---- detach ---------------------------------------------------------------------------------------

def test_detach_shares_memory_and_version_but_not_history():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    v = y._version
    d.add_(1)
    close(y, [3.0, 5.0])
    assert y._version == d._version == v + 1


def test_detached_tensor_can_start_a_new_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.detach().requires_grad_()
    (y * 2).sum().backward()
    close(y.grad, [2.0, 2.0])
    assert x.grad is None


def test_detach_breaks_gradient_flow():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x.detach()
    y.sum().backward()
    close(x.grad, [1.0, 2.0])


def test_detach_in_place():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.detach_() is y
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    close(y, [2.0, 4.0])


def test_detach_in_place_on_view_errors():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    v = (x * 2)[0:1]
    with pytest.raises(RuntimeError, match="Can't detach views in-place. Use detach\\(\\) instead."):
        v.detach_()


# ---- tensor hooks ---------------------------------------------------------------------------------

def test_hook_on_leaf_modifies_grad_and_can_be_removed():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 2)
    (x * x).sum().backward()
    close(x.grad, [4.0, 8.0])
    h.remove()
    x.grad = None
    (x * x).sum().backward()
    close(x.grad, [2.0, 4.0])


def test_hook_on_non_leaf_sees_and_changes_the_flowing_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    seen = []

    def hook(g):
        seen.append(arr(g).copy())
        return g * 10

    y.register_hook(hook)
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], [6.0, 12.0])
    close(x.grad, [180.0, 360.0])


def test_hook_returning_none_leaves_grad_unchanged():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    x.register_hook(lambda g: calls.append(1))
    (x * 5).sum().backward()
    close(x.grad, [5.0, 5.0])
    assert calls == [1]


def test_hooks_run_in_registration_order_and_compose():
    x = torch.tensor([1.0], requires_grad=True)
    y = x * 1
    y.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    close(x.grad, [20.0])


def test_removed_hook_on_non_leaf_is_not_called():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    calls = []
    h = y.register_hook(lambda g: calls.append(1))
    h.remove()
    (y * 3).sum().backward()
    assert calls == []
    close(x.grad, [6.0, 6.0])


def test_retain_grad_sees_hook_modified_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 100)
    y.sum().backward()
    close(y.grad, [100.0, 100.0])
    close(x.grad, [200.0, 200.0])


# ---- in-place ops on non-leaf tensors -----------------------------------------------------------

def test_inplace_chain_on_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(3)
    assert y.grad_fn.name() == "MulBackward0"
    close(y, [9.0, 15.0])
    y.sum().backward()
    close(x.grad, [6.0, 6.0])


def test_inplace_mul_by_detached_copy_of_itself():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(y.detach().clone())  # y = (2x + 1) * c with c constant
    y.sum().backward()
    close(x.grad, [6.0, 10.0])


def test_inplace_exp_saves_its_output():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.exp_()
    assert y.grad_fn.name() == "ExpBackward0"
    y.sum().backward()
    close(x.grad, np.exp([1.0, 2.0]))


def test_inplace_zero_cuts_the_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.zero_()
    (y + x).sum().backward()
    close(x.grad, [1.0, 1.0])


def test_inplace_into_tensor_without_grad_makes_it_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([1.0, 2.0])
    w.add_(x)
    assert not w.is_leaf and w.requires_grad
    assert w.grad_fn.name() == "AddBackward0"
    (w * w).sum().backward()
    close(x.grad, [4.0, 8.0])


def test_copy_into_plain_tensor_routes_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    y = torch.zeros(2)
    y.copy_(x * w)
    y.sum().backward()
    close(x.grad, [3.0, 4.0])
    close(w.grad, [1.0, 2.0])


def test_setitem_and_view_inplace_on_clone():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x.clone()
    y[0] = 0
    y[:, 1].mul_(3)
    close(y, [[0.0, 0.0], [3.0, 12.0]])
    assert not y.is_leaf
    (y * y).sum().backward()
    # y = [[0, 0], [x10, 3 x11]] -> d sum(y^2) = [[0, 0], [2 x10, 18 x11]]
    close(x.grad, [[0.0, 0.0], [6.0, 72.0]])


def test_setitem_with_value_that_requires_grad():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.tensor(5.0, requires_grad=True)
    y = x * 1
    y[1] = w * 2
    close(y, [1.0, 10.0, 3.0])
    (y * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    close(x.grad, [1.0, 0.0, 100.0])
    close(w.grad, 20.0)


def test_inplace_on_view_with_parameter_operand():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.tensor([5.0, 6.0], requires_grad=True)
    y = x * 1
    v = y[1:]
    v.mul_(w)
    close(y, [1.0, 10.0, 18.0])
    (y * y).sum().backward()
    close(x.grad, [2.0, 100.0, 216.0])
    close(w.grad, [40.0, 108.0])


def test_inplace_on_transposed_view():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    v = y.t()
    v.add_(torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
    close(y, [[11.0, 32.0], [23.0, 44.0]])
    assert v._version == y._version == 1
    (y * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    close(x.grad, [[1.0, 2.0], [3.0, 4.0]])


def test_view_self_square_in_place():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    v = y[:, 1]
    v.mul_(v.detach().clone())
    (g,) = torch.autograd.grad(y.sum(), x)
    close(g, [[1.0, 2.0], [1.0, 4.0]])


def test_view_sees_inplace_write_to_its_base():
    # v was taken before the base changed; its gradient must go through the in-place mul
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    v = y[0]
    y.mul_(2)
    close(v, [2.0, 4.0])
    (v * torch.tensor([1.0, 10.0])).sum().backward()
    close(x.grad, [[2.0, 20.0], [0.0, 0.0]])


def test_sibling_view_sees_inplace_write_through_other_view():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    row = y[0]
    col = y[:, 0]
    row.mul_(5)  # y[0, 0] and y[0, 1] scaled
    (col * torch.tensor([1.0, 10.0])).sum().backward()
    close(col, [5.0, 3.0])
    close(x.grad, [[5.0, 0.0], [10.0, 0.0]])


def test_view_of_plain_tensor_gets_history_written_into_its_base():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.zeros(2)
    v = w[1:]
    assert not v.requires_grad
    w.add_(x * 3)
    assert v.requires_grad and not v.is_leaf
    v.sum().backward()
    close(x.grad, [0.0, 3.0])


def test_compound_inplace_on_views_matches_finite_differences():
    def f(x):
        y = x.clone()
        y[:, 0] *= 2
        y[1] += y[0]
        y.mul_(x.cos())
        return (y ** 2).sum()

    x0 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]) * 0.3
    np.testing.assert_allclose(analytic_grad(f, x0), numeric_grad(f, x0), rtol=1e-6, atol=1e-7)


def test_inplace_sequence_matches_finite_differences():
    def f(x):
        y = x * 1.5
        y.add_(x)
        y.tanh_()
        z = y * 2  # tanh_ saved its output: write to a new tensor from here on
        z.sub_(x * x)
        z[1:].mul_(x[:-1])
        return z.sum()

    x0 = np.array([0.3, -0.7, 1.1, 0.2])
    np.testing.assert_allclose(analytic_grad(f, x0), numeric_grad(f, x0), rtol=1e-6, atol=1e-7)


def test_inplace_on_leaf_under_no_grad_keeps_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        x.add_(1)
        x[0] = 7
    close(x, [7.0, 3.0])
    assert x.is_leaf and x.requires_grad and x._version == 2
    (x * x).sum().backward()
    close(x.grad, [14.0, 6.0])


def test_version_counter_is_an_int_bumped_by_inplace_ops():
    x = torch.tensor([1.0, 2.0])
    assert x._version == 0 and isinstance(x._version, int)
    v = x._version
    x.add_(1)
    x.mul_(2)
    x[0] = 1
    assert x._version == v + 3
    view = x[1:]
    view.zero_()
    assert x._version == view._version == v + 4
    assert x.clone()._version == 0


# ---- gradient buffers and node hooks ---------------------------------------------------------------

def test_leaves_fed_by_one_add_do_not_share_grad_memory():
    # AddBackward passes the same gradient to both operands; accumulating into one .grad must not
    # change the other
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        ((x + w) * 3).sum().backward()
    close(x.grad, [6.0, 6.0])
    close(w.grad, [6.0, 6.0])


def test_user_gradient_tensor_is_not_modified_by_accumulation():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    g = torch.tensor([1.0, 1.0])
    x.clone().backward(g)
    x.clone().backward(g)
    close(g, [1.0, 1.0])
    close(x.grad, [2.0, 2.0])


def test_assigned_grad_is_accumulated_in_place():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    t = torch.tensor([10.0, 10.0])
    x.grad = t
    (x * 2).sum().backward()
    assert x.grad is t
    close(t, [12.0, 12.0])


def test_post_accumulate_grad_hook():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_post_accumulate_grad_hook(lambda p: seen.append(arr(p.grad).copy()))
    x.register_hook(lambda g: g * 2)
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [6.0, 6.0])
    h.remove()
    (x * 3).sum().backward()
    assert len(seen) == 1
    close(x.grad, [12.0, 12.0])
    torch.autograd.grad((x * 3).sum(), x)  # grad() does not accumulate: no post hook
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (x * 2).register_post_accumulate_grad_hook(lambda p: None)


def test_node_hook_and_prehook():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    calls = []
    y.grad_fn.register_prehook(lambda grad_outputs: calls.append(("pre", len(grad_outputs))))
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: calls.append((len(grad_inputs), len(grad_outputs))))
    y.sum().backward()
    assert calls == [("pre", 1), (2, 1)]


def test_multi_output_ops_with_unused_outputs():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b, c = x.unbind()
    (a * 2 + c).backward()
    close(x.grad, [2.0, 0.0, 1.0])
    m = torch.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    v, i = m.max(dim=1)
    v.sum().backward()
    close(m.grad, [[0.0, 1.0], [1.0, 0.0]])


def test_backward_on_leaf_itself():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.backward(torch.tensor([3.0, 4.0]))
    close(x.grad, [3.0, 4.0])


def test_graph_survives_deleting_the_leaf_variable():
    import gc
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    acc = y.grad_fn.next_functions[0][0]
    del x
    gc.collect()
    y.sum().backward()
    close(acc.variable.grad, [2.0, 2.0])


def test_retain_grad_follows_inplace_modification():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.mul_(3)
    (y * y).sum().backward()
    close(y.grad, [12.0, 24.0])  # d/dy of sum(y^2) at the new y = 6x
    close(x.grad, [72.0, 144.0])


def test_hook_registered_before_inplace_sees_grad_of_old_version():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(arr(g).copy()))
    y.mul_(3)
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], [36.0, 72.0])
    close(x.grad, [72.0, 144.0])


def test_inplace_through_data_is_invisible_to_autograd():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    d = y.data
    assert not d.requires_grad and d.is_leaf
    d.mul_(10)
    assert y._version == 0 and d._version == 1
    y.sum().backward()  # no version error: .data has its own counter
    close(x.grad, 10 * np.exp([1.0, 2.0]), 1e-5)


def test_data_assignment_swaps_values_and_keeps_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.data = torch.tensor([5.0, 6.0, 7.0])
    assert x.requires_grad and x.is_leaf and x.shape == (3,)
    (x * x).sum().backward()
    close(x.grad, [10.0, 12.0, 14.0])


def test_inplace_transposed_view_then_base_write():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    v = y[:, 1:]
    v.t_()
    y.mul_(2)
    assert v.shape == (1, 2)
    (v * torch.tensor([[1.0, 10.0]])).sum().backward()
    close(x.grad, [[0.0, 2.0], [0.0, 20.0]])
