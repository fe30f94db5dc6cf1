"""The eager hot paths of ``benchmarks/eager_overhead.py`` keep PyTorch's semantics: ``x[i]``'s
fast path (numpy's row view, no primitive binding) gives what the general indexing path gives,
and a backward node's edges to leaves (made into ``AccumulateGrad`` nodes only when first read)
behave as PyTorch's: one accumulator per leaf while a graph holds it, hooks of a leaf the caller
dropped still run, ``.variable`` is the leaf."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import graphc

A = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)


def _general(x, i):
    return x[(i,)]  # a tuple key: the general path (plan, bind, the eager handler)


@pytest.mark.parametrize("i", [0, 2, -1, -4])
@pytest.mark.parametrize("grad", [False, True])
def test_x_i_fast_path_matches_the_general_path(i, grad):
    x = graphc.tensor(A, requires_grad=grad)
    fast, slow = x[i], _general(x, i)
    np.testing.assert_array_equal(fast.detach().numpy(), A[i])
    assert fast._view_ops == slow._view_ops and fast._base is x and fast._vc is x._vc
    assert fast.requires_grad == slow.requires_grad == grad
    if grad:
        assert type(fast.grad_fn) is type(slow.grad_fn) and fast.grad_fn.name() == "SelectBackward0"
        (fast * 3).sum().backward()
        want = np.zeros_like(A)
        want[i] = 3
        np.testing.assert_array_equal(x.grad.numpy(), want)
    # a view: an in-place write through it reaches x and bumps the shared version counter
    v = x.detach()[i]
    v.fill_(5.0)
    assert x._version == 1 and np.all(x.detach().numpy()[i] == 5.0)


def test_x_i_fast_path_keeps_errors_modes_and_other_keys():
    x = graphc.tensor(A, requires_grad=True)
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 0 with size 4"):
        x[4]
    with pytest.raises(IndexError, match="index -5 is out of bounds for dimension 0 with size 4"):
        x[-5]
    with graphc.no_grad():
        assert x[1].grad_fn is None and not x[1].requires_grad
    with graphc.inference_mode():
        assert x[1].is_inference()
    assert graphc.tensor([1.0, 2.0])[1].item() == 2.0  # a 1-d tensor: a 0-d view, general path
    w = graphc.tensor(A.astype(np.int64))
    assert w[1].dtype is graphc.int64 and w[1].tolist() == A.astype(np.int64)[1].tolist()
    # an in-place write into x's memory since the view was made: its grad_fn replays from x
    b = graphc.tensor(A, requires_grad=True) * 1.0
    row = b[1]
    b.mul_(2.0)
    row.sum().backward(inputs=[b])
    want = np.zeros_like(A)
    want[1] = 1
    np.testing.assert_array_equal(b.grad.numpy(), want)
    # traced: the trace handler sees x[i] (it is a select in the graph)
    compiled = graphc.compile(lambda t: t[-1] * 2)
    np.testing.assert_array_equal(compiled(graphc.tensor(A)).numpy(), A[-1] * 2)


def test_leaf_edges_become_one_accumulator_per_leaf():
    x = graphc.tensor(A, requires_grad=True)
    y = x * 2
    z = x + 1
    (acc_y, nr), (none_y, _) = y.grad_fn.next_functions  # (the Python number's edge: None)
    (acc_z, _), (none_z, _) = z.grad_fn.next_functions
    assert nr == 0 and none_y is none_z is None and acc_y is acc_z and acc_y.variable is x
    assert acc_y.name() == "torch::autograd::AccumulateGrad"
    # a hook on the accumulator stays while a graph holds it; the engine runs it
    seen = []
    acc_y.register_hook(lambda gi, go: seen.append(go[0].shape))
    (y.sum() + z.sum()).backward()
    assert seen == [graphc.Size([4, 3])]
    np.testing.assert_array_equal(x.grad.numpy(), np.full_like(A, 3.0))


def test_hooks_of_a_leaf_dropped_by_the_caller_still_run():
    seen = []
    x = graphc.tensor(A, requires_grad=True)
    x.register_hook(lambda g: seen.append(g.sum().item()))
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.shape))
    y = (x * 2).sum()
    del x
    gc.collect()
    y.backward()
    assert seen == [pytest.approx(24.0), graphc.Size([4, 3])]
    leaf = y.grad_fn.next_functions[0][0].next_functions[0][0].variable
    np.testing.assert_array_equal(leaf.grad.numpy(), np.full_like(A, 2.0))


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    for mod in (torch, graphc):
        x = mod.tensor(A, requires_grad=True)
        y = mod.tensor(A, requires_grad=True)
        out = (x[1] * y[-1] + (x @ y.T[:, :1]).sum()).sum()
        out.backward()
        if mod is torch:
            want = (x.grad.numpy(), y.grad.numpy(), out.grad_fn.name())
        else:
            np.testing.assert_allclose(x.grad.numpy(), want[0], rtol=1e-6)
            np.testing.assert_allclose(y.grad.numpy(), want[1], rtol=1e-6)
            assert out.grad_fn.name() == want[2]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "bool"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_full_sum_fast_path_against_pytorch(dtype, keepdim):
    # x.sum() binds the primitive with attributes and a memo key made once per rank: the
    # result's dtype (ints and bools widen to int64), value and shape are PyTorch's
    torch = pytest.importorskip("torch")
    a = (A * 3).astype(dtype)
    # (PyTorch takes keepdim only with dims: all of them is the same reduction)
    want = torch.tensor(a).sum((0, 1), keepdim=True) if keepdim else torch.tensor(a).sum()
    for _ in range(2):  # the second call reads the memo
        got = graphc.tensor(a).sum(keepdim=keepdim) if keepdim else graphc.tensor(a).sum()
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64), rtol=1e-3)


def test_full_sum_fast_path_keeps_autograd_modes_and_tracing():
    x = graphc.tensor(A, requires_grad=True)
    s = x.sum()
    assert s.grad_fn.name() == "SumBackward0"
    s.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones_like(A))
    with graphc.no_grad():
        assert x.sum().grad_fn is None
    with graphc.autocast("cpu", dtype=graphc.bfloat16):  # a thread policy: the general path
        assert x.sum().dtype is graphc.float32
    compiled = graphc.compile(lambda t: t.sum() * 2)
    np.testing.assert_allclose(compiled(graphc.tensor(A)).item(), A.sum() * 2, rtol=1e-5)
