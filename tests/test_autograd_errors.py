"""Autograd errors: each with PyTorch's exception type and message text.

Also checks that a step that raises leaves the tensor's values and version counter unchanged.
"""
import re

import numpy as np
import pytest

import graphc as torch


def raises(exc, text):
    """pytest.raises matching ``text`` literally at the start of the message."""
    return pytest.raises(exc, match="^" + re.escape(text))


def arr(t):
    return t.detach().numpy()


# ---- requires_grad --------------------------------------------------------------------------------

def test_requires_grad_underscore_on_int_tensor():
    t = torch.tensor([1, 2, 3])
    with raises(RuntimeError, "only Tensors of floating point dtype can require gradients"):
        t.requires_grad_()
    assert not t.requires_grad


def test_requires_grad_setter_on_int_tensor():
    t = torch.ones(3, dtype=torch.int64)
    with raises(RuntimeError, "only Tensors of floating point and complex dtype can require gradients"):
        t.requires_grad = True
    assert not t.requires_grad


@pytest.mark.parametrize("make", [
    lambda: torch.tensor([1, 2], requires_grad=True),
    lambda: torch.ones(2, dtype=torch.int64, requires_grad=True),
    lambda: torch.zeros(2, dtype=torch.int32, requires_grad=True),
    lambda: torch.arange(3, requires_grad=True),
])
def test_factory_requires_grad_on_int_dtype(make):
    with raises(RuntimeError, "Only Tensors of floating point and complex dtype can require gradients"):
        make()


def test_requires_grad_false_on_non_leaf():
    x = torch.tensor([1.0], requires_grad=True)
    y = x * 2
    with raises(RuntimeError, "you can only change requires_grad flags of leaf variables. If you want to "
                              "use a computed variable in a subgraph that doesn't require differentiation "
                              "use var_no_grad = var.detach()."):
        y.requires_grad = False
    with raises(RuntimeError, "you can only change requires_grad flags of leaf variables."):
        y.requires_grad = True
    assert y.requires_grad_() is y  # requires_grad_(True) on a non-leaf is a no-op
    assert y.requires_grad


# ---- backward ------------------------------------------------------------------------------------

def test_backward_on_non_scalar_without_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with raises(RuntimeError, "grad can be implicitly created only for scalar outputs"):
        y.backward()
    assert x.grad is None
    with raises(RuntimeError, "grad can be implicitly created only for scalar outputs"):
        torch.autograd.grad(y, x)


def test_backward_twice_through_freed_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp().sum()
    y.backward()
    with raises(RuntimeError, "Trying to backward through the graph a second time (or directly access "
                              "saved tensors after they have already been freed). Saved intermediate "
                              "values of the graph are freed when you call .backward() or autograd.grad(). "
                              "Specify retain_graph=True if you need to backward through the graph a "
                              "second time or if you need to access saved tensors after calling backward."):
        y.backward()
    np.testing.assert_allclose(arr(x.grad), np.exp([1.0, 2.0]), rtol=1e-6)  # first pass kept


def test_autograd_grad_twice_through_freed_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    torch.autograd.grad(y, x)
    with raises(RuntimeError, "Trying to backward through the graph a second time"):
        torch.autograd.grad(y, x)


def test_third_backward_after_one_retain_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    z = x.exp().sum()
    z.backward(retain_graph=True)
    z.backward()
    with raises(RuntimeError, "Trying to backward through the graph a second time"):
        z.backward()


def test_backward_on_tensor_that_does_not_require_grad():
    x = torch.tensor([1.0, 2.0])
    with raises(RuntimeError, "element 0 of tensors does not require grad and does not have a grad_fn"):
        x.sum().backward()


def test_backward_on_result_computed_under_no_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        y = (x * 2).sum()
    with raises(RuntimeError, "element 0 of tensors does not require grad and does not have a grad_fn"):
        y.backward()


def test_autograd_grad_second_output_without_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "element 1 of tensors does not require grad and does not have a grad_fn"):
        torch.autograd.grad([x.sum(), torch.tensor(1.0)], x)


def test_gradient_shape_mismatch():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with raises(RuntimeError, "Mismatch in shape: grad_output[0] has a shape of "):
        y.backward(torch.ones(3))


def test_backward_inputs_empty():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "`inputs` argument to `backward()` cannot be empty."):
        (x * 2).sum().backward(inputs=[])


# ---- autograd.grad inputs ---------------------------------------------------------------------------

def test_autograd_grad_unused_input():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    with raises(RuntimeError, "The differentiated Tensor at index 1 appears to not have been used in the "
                              "graph. Set allow_unused=True if this is the desired behavior."):
        torch.autograd.grad((x * x).sum(), [x, w])


def test_autograd_grad_input_does_not_require_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    c = torch.tensor([3.0, 4.0])
    with raises(RuntimeError, "One of the differentiated Tensors does not require grad"):
        torch.autograd.grad((x * c).sum(), [x, c])


# ---- in-place ops ----------------------------------------------------------------------------------

def test_inplace_on_leaf_that_requires_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "a leaf Variable that requires grad is being used in an in-place operation."):
        x.add_(1)


@pytest.mark.parametrize("op", [
    lambda x: x.mul_(2), lambda x: x.zero_(), lambda x: x.copy_(torch.ones(2)),
    lambda x: x.exp_(), lambda x: x.clamp_(0, 1), lambda x: x.__iadd__(1),
])
def test_inplace_on_leaf_fails_and_changes_nothing(op):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "a leaf Variable that requires grad is being used in an in-place operation."):
        op(x)
    np.testing.assert_array_equal(arr(x), [1.0, 2.0])
    assert x._version == 0
    assert x.is_leaf and x.requires_grad


def test_setitem_on_leaf_that_requires_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "a view of a leaf Variable that requires grad is being used in an in-place "
                              "operation."):
        x[0] = 5
    with raises(RuntimeError, "a leaf Variable that requires grad is being used in an in-place operation."):
        x[[0]] = 5
    with raises(RuntimeError, "a leaf Variable that requires grad is being used in an in-place operation."):
        x[:] = 5
    np.testing.assert_array_equal(arr(x), [1.0, 2.0])
    assert x._version == 0


def test_inplace_on_view_of_leaf():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = x[1:]
    with raises(RuntimeError, "a view of a leaf Variable that requires grad is being used in an in-place "
                              "operation."):
        v.mul_(2)
    np.testing.assert_array_equal(arr(x), [1.0, 2.0, 3.0])
    assert x._version == 0


def test_modified_saved_output():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # exp saves its output
    y.add_(1)
    with raises(RuntimeError, "one of the variables needed for gradient computation has been modified by "
                              "an inplace operation: [graphc.FloatTensor [2]], which is output 0 of Exp, "
                              "is at version 1; expected version 0 instead."):
        y.sum().backward()


def test_modified_saved_input():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y * y  # saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match="one of the variables needed for gradient computation has been "
                                           "modified by an inplace operation: .* is at version 1; expected "
                                           "version 0 instead"):
        z.sum().backward()


def test_modified_saved_tensor_through_view():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    y.view(3).mul_(2)
    with raises(RuntimeError, "one of the variables needed for gradient computation has been modified by "
                              "an inplace operation"):
        y.sum().backward()


def test_modified_saved_leaf_under_no_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with torch.no_grad():
        x.add_(1)
    with raises(RuntimeError, "one of the variables needed for gradient computation has been modified by "
                              "an inplace operation: [graphc.FloatTensor [2]] is at version 1; expected "
                              "version 0 instead."):
        y.sum().backward()


def test_modified_saved_tensor_through_detached_alias():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    z = y * y
    y.detach().zero_()  # same memory and version counter
    with raises(RuntimeError, "one of the variables needed for gradient computation has been modified by "
                              "an inplace operation"):
        z.sum().backward()


def test_failed_inplace_broadcast_leaves_tensor_unchanged():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with raises(RuntimeError, "The size of tensor a (2) must match the size of tensor b (3) at "
                              "non-singleton dimension 0"):
        y.add_(torch.ones(3))
    np.testing.assert_array_equal(arr(y), [2.0, 4.0])
    assert y._version == 0
    assert y.grad_fn.name() == "MulBackward0"
    y.sum().backward()  # the graph is intact
    np.testing.assert_array_equal(arr(x.grad), [2.0, 2.0])


def test_failed_inplace_dtype_leaves_tensor_unchanged():
    t = torch.tensor([1, 2])
    with raises(RuntimeError, "result type Float can't be cast to the desired output type Long"):
        t.add_(1.5)
    assert t.tolist() == [1, 2]
    assert t._version == 0


def test_failed_setitem_leaves_tensor_unchanged():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    with pytest.raises(RuntimeError):
        y[0] = torch.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(arr(y), [[1.0, 2.0], [3.0, 4.0]])
    assert y._version == 0


# ---- numpy(), hooks, retain_grad, .grad assignment ----------------------------------------------

def test_numpy_on_tensor_that_requires_grad():
    msg = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, msg):
        x.numpy()
    with raises(RuntimeError, msg):
        (x * 2).numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_register_hook_on_tensor_without_grad():
    x = torch.tensor([1.0, 2.0])
    with raises(RuntimeError, "cannot register a hook on a tensor that doesn't require gradient"):
        x.register_hook(lambda g: g)


def test_retain_grad_on_tensor_without_grad():
    x = torch.tensor([1.0, 2.0])
    with raises(RuntimeError, "can't retain_grad on Tensor that has requires_grad=False"):
        x.retain_grad()


def test_assign_grad_of_wrong_size():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "attempting to assign a gradient of size '[3]' to a tensor of size '[2]'. "
                              "Please ensure that the gradient and the tensor are the same size"):
        x.grad = torch.ones(3)
    assert x.grad is None


def test_assign_grad_of_wrong_type():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with raises(TypeError, "assigned grad expected to be a Tensor or None but got grad of type int"):
        x.grad = 3
    with raises(RuntimeError, "attempting to assign a gradient with dtype 'double' to a tensor with "
                              "grad_dtype 'Float'."):
        x.grad = torch.ones(2, dtype=torch.float64)


# ---- inference tensors -----------------------------------------------------------------------------

def test_inference_tensor_inplace_outside_inference_mode():
    with torch.inference_mode():
        t = torch.ones(2)
    with raises(RuntimeError, "Inplace update to inference tensor outside InferenceMode is not allowed."):
        t.add_(1)


def test_inference_tensor_cannot_be_saved_for_backward():
    with torch.inference_mode():
        t = torch.ones(2)
    x = torch.ones(2, requires_grad=True)
    assert (x + t).requires_grad  # add saves nothing: allowed
    with raises(RuntimeError, "Inference tensors cannot be saved for backward."):
        x * t


def test_inference_tensor_requires_grad():
    with torch.inference_mode():
        t = torch.ones(2)
    with raises(RuntimeError, "Setting requires_grad=True on inference tensor outside InferenceMode is "
                              "not allowed."):
        t.requires_grad_()
