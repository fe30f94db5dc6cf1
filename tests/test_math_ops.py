"""Operators with broadcasting, comparisons, logical ops, reductions and matrix products vs numpy."""
import operator

import numpy as np
import pytest

import graphc as torch

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4)).astype(np.float32)
B = RNG.standard_normal((4,)).astype(np.float32)
C = RNG.standard_normal((2, 3, 4)).astype(np.float32)
POS = (np.abs(A) + 0.5).astype(np.float32)


def close(t, ref, rtol=1e-5, atol=1e-6):
    assert tuple(t.shape) == np.shape(ref), (tuple(t.shape), np.shape(ref))
    np.testing.assert_allclose(t.numpy(), ref, rtol=rtol, atol=atol)


# ---- binary operators with broadcasting -----------------------------------------------------

@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv])
@pytest.mark.parametrize("a, b", [(A, B), (A, A[:1]), (A[:, :1], B), (C, A), (C, B[None, None, :])])
def test_binary_broadcasting(op, a, b):
    close(op(torch.tensor(a), torch.tensor(b)), op(a, b))


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow])
@pytest.mark.parametrize("scalar", [2, 2.5, -1.5])
def test_scalar_operands_both_sides(op, scalar):
    x = torch.tensor(POS)
    close(op(x, scalar), op(POS, np.float32(scalar)), rtol=1e-5)
    with np.errstate(invalid="ignore"):                              # (-1.5) ** 0.7 is nan in both
        ref = op(np.float32(scalar), POS)
    close(op(scalar, x), ref, rtol=1e-5)                              # reflected: 2 - x, 2 / x, 2 ** x


def test_reflected_values():
    x = torch.tensor([1.0, 2.0, 4.0])
    assert (2 - x).tolist() == [1.0, 0.0, -2.0]
    assert (2 / x).tolist() == [2.0, 1.0, 0.5]
    assert (2 ** x).tolist() == [2.0, 4.0, 16.0]
    assert (7 // torch.tensor([3, 2])).tolist() == [2, 3]
    assert (7 % torch.tensor([3, 2])).tolist() == [1, 1]
    assert (np.float64(2.0) * x).tolist() == [2.0, 4.0, 8.0]
    assert (x * np.float64(2.0)).dtype is torch.float32


def test_broadcast_error():
    with pytest.raises(RuntimeError, match="The size of tensor a \\(3\\) must match the size of tensor b "
                                           "\\(2\\) at non-singleton dimension 1"):
        torch.ones(2, 3) + torch.ones(2)


def test_functional_forms():
    x = torch.tensor(A)
    close(torch.add(x, 1, alpha=2), A + 2)
    close(torch.sub(x, torch.ones(4), alpha=3), A - 3)
    close(torch.mul(x, x), A * A)
    close(torch.div(x, 3, rounding_mode="floor"), np.floor(A / 3))
    close(torch.div(x, 3, rounding_mode="trunc"), np.trunc(A / 3))
    with pytest.raises(RuntimeError, match="div expected rounding_mode to be one of None, 'trunc', or 'floor'"):
        torch.div(x, 3, rounding_mode="foo")
    close(torch.maximum(x, torch.zeros(4)), np.maximum(A, 0))
    close(torch.where(x > 0, x, torch.zeros(1)), np.where(A > 0, A, 0))
    close(torch.where(x > 0, x, 0.0), np.where(A > 0, A, 0))


@pytest.mark.parametrize("name, ref, data", [
    ("abs", np.abs, A), ("neg", np.negative, A), ("exp", np.exp, A), ("log", np.log, POS),
    ("sqrt", np.sqrt, POS), ("sin", np.sin, A), ("cos", np.cos, A), ("tanh", np.tanh, A),
    ("sigmoid", lambda a: 1 / (1 + np.exp(-a)), A), ("floor", np.floor, A), ("ceil", np.ceil, A),
    ("round", np.round, A), ("sign", np.sign, A), ("reciprocal", np.reciprocal, POS),
    ("rsqrt", lambda a: 1 / np.sqrt(a), POS), ("square", np.square, A), ("relu", lambda a: np.maximum(a, 0), A),
])
def test_unary(name, ref, data):
    close(getattr(torch.tensor(data), name)(), ref(data), rtol=1e-5)
    close(getattr(torch, name)(torch.tensor(data)), ref(data), rtol=1e-5)


def test_clamp():
    x = torch.tensor(A)
    close(x.clamp(-0.5, 0.5), np.clip(A, -0.5, 0.5))
    close(x.clamp(min=0), np.maximum(A, 0))
    close(torch.clamp(x, max=0.1), np.minimum(A, 0.1))
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
        x.clamp()


# ---- comparisons and logical ops ------------------------------------------------------------

@pytest.mark.parametrize("op", [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge])
def test_comparisons(op):
    a = np.array([[1, 2, 3], [3, 2, 1]])
    b = np.array([2, 2, 2])
    r = op(torch.tensor(a), torch.tensor(b))
    assert r.dtype is torch.bool
    np.testing.assert_array_equal(r.numpy(), op(a, b))
    np.testing.assert_array_equal(op(torch.tensor(a), 2).numpy(), op(a, 2))
    np.testing.assert_array_equal(op(torch.tensor(a), 1.5).numpy(), op(a, 1.5))


def test_eq_with_non_tensor():
    assert (torch.tensor([1, 2]) == None) is False  # noqa: E711
    assert (torch.tensor([1, 2]) != "a") is True


def test_logical_ops():
    a, b = np.array([1, 0, 2, 0]), np.array([1.0, 1.0, 0.0, 0.0])
    for name in ("logical_and", "logical_or", "logical_xor"):
        r = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
        assert r.dtype is torch.bool
        np.testing.assert_array_equal(r.numpy(), getattr(np, name)(a, b))
    np.testing.assert_array_equal(torch.logical_not(torch.tensor(b)).numpy(), np.logical_not(b))
    m, n = torch.tensor([True, False]), torch.tensor([False, False])
    assert (m | n).tolist() == [True, False] and (m & n).tolist() == [False, False]


# ---- reductions -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, ref", [("sum", np.sum), ("mean", np.mean), ("amax", np.max), ("amin", np.min)])
@pytest.mark.parametrize("dim", [0, 1, -1, (0, 1), (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions(name, ref, dim, keepdim):
    x = torch.tensor(C)
    close(getattr(x, name)(dim, keepdim=keepdim), ref(C, axis=dim, keepdims=keepdim), rtol=1e-4, atol=1e-5)
    close(getattr(torch, name)(x, dim=dim, keepdim=keepdim), ref(C, axis=dim, keepdims=keepdim), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, ref", [("sum", np.sum), ("mean", np.mean), ("prod", np.prod),
                                       ("amax", np.max), ("amin", np.min), ("max", np.max), ("min", np.min)])
def test_full_reductions(name, ref):
    r = getattr(torch.tensor(C), name)()
    assert r.shape == ()
    assert r.item() == pytest.approx(float(ref(C.astype(np.float64))), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_prod_dim(dim, keepdim):
    close(torch.tensor(C).prod(dim, keepdim=keepdim), np.prod(C, axis=dim, keepdims=keepdim), rtol=1e-4)


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
def test_std_var(correction, dim):
    x = torch.tensor(A)
    close(x.var(dim, correction=correction), np.var(A, axis=dim, ddof=correction), rtol=1e-4)
    close(x.std(dim, correction=correction), np.std(A, axis=dim, ddof=correction), rtol=1e-4)
    close(x.std(dim, unbiased=bool(correction), keepdim=True) if dim is not None else x.std(),
          np.std(A, axis=dim, ddof=correction if dim is not None else 1, keepdims=dim is not None), rtol=1e-4)


def test_max_min_with_dim_return_namedtuple():
    x = torch.tensor(A)
    r = x.max(1)
    assert type(r).__name__ == "max" and isinstance(r, tuple) and len(r) == 2
    assert r[0] is r.values and r[1] is r.indices
    close(r.values, A.max(1))
    assert r.indices.dtype is torch.int64
    np.testing.assert_array_equal(r.indices.numpy(), A.argmax(1))
    values, indices = torch.max(x, 1)                       # tuple unpacking
    close(values, A.max(1))
    r = x.min(dim=0, keepdim=True)
    assert type(r).__name__ == "min"
    close(r.values, A.min(0, keepdims=True))
    np.testing.assert_array_equal(r.indices.numpy(), A.argmin(0)[None])
    assert torch.max(x, 1)[0].shape == (3,)
    close(torch.max(x, torch.zeros(4)), np.maximum(A, 0))   # binary form
    assert x.max().item() == pytest.approx(float(A.max()))
    with pytest.raises(RuntimeError, match="Expected reduction dim to be specified for input.numel\\(\\) == 0"):
        torch.tensor([]).max()


def test_argmax_argmin():
    x = torch.tensor(A)
    assert x.argmax().item() == int(A.argmax()) and x.argmax().dtype is torch.int64
    np.testing.assert_array_equal(x.argmax(1).numpy(), A.argmax(1))
    np.testing.assert_array_equal(x.argmin(0, keepdim=True).numpy(), A.argmin(0)[None])


def test_norm():
    x = torch.tensor(A)
    assert x.norm().item() == pytest.approx(float(np.linalg.norm(A)), rel=1e-5)
    assert x.norm(p=1).item() == pytest.approx(float(np.abs(A).sum()), rel=1e-5)
    assert x.norm(p=float("inf")).item() == pytest.approx(float(np.abs(A).max()), rel=1e-5)
    close(x.norm(dim=1), np.linalg.norm(A, axis=1), rtol=1e-5)
    close(torch.norm(x, 2, 0), np.linalg.norm(A, axis=0), rtol=1e-5)


def test_all_any():
    x = torch.tensor(A)
    assert x.all().item() is True and (x > 100).any().item() is False
    assert (x > -10).all().dtype is torch.bool
    np.testing.assert_array_equal((x > 0).any(1).numpy(), (A > 0).any(1))
    np.testing.assert_array_equal((x > 0).all(0).numpy(), (A > 0).all(0))
    assert torch.tensor([], dtype=torch.bool).all().item() is True
    assert torch.tensor([], dtype=torch.bool).any().item() is False


def test_cumsum_logsumexp():
    x = torch.tensor(A)
    close(x.cumsum(0), np.cumsum(A, 0))
    close(torch.cumsum(x, dim=1), np.cumsum(A, 1))
    ref = np.log(np.exp(A.astype(np.float64)).sum(1))
    close(x.logsumexp(1), ref, rtol=1e-5)
    close(torch.logsumexp(x, dim=(0, 1)), np.log(np.exp(A.astype(np.float64)).sum()), rtol=1e-5)
    big = torch.tensor([1000.0, 1000.0])
    assert big.logsumexp(0).item() == pytest.approx(1000.0 + np.log(2))  # stable


def test_empty_reductions():
    assert torch.tensor([]).sum().item() == 0.0
    assert torch.tensor([]).prod().item() == 1.0
    assert np.isnan(torch.tensor([]).mean().item())


def test_numpy_style_reduction_kwargs():
    x = torch.tensor(A)
    close(x.sum(axis=0), A.sum(0))
    close(torch.mean(x, axis=1, keepdims=True), A.mean(1, keepdims=True))
    close(x.max(axis=1).values, A.max(1))


def test_reductions_of_zero_dim():
    s = torch.tensor(5.0)
    assert s.sum(0).item() == 5.0 and s.mean().item() == 5.0
    assert s.max(0).values.item() == 5.0 and s.max(0).indices.item() == 0
    assert s.argmax().item() == 0


def test_integer_input_errors():
    with pytest.raises(RuntimeError, match="std and var only support floating point and complex dtypes"):
        torch.tensor([1, 2]).std()
    with pytest.raises(RuntimeError, match="std and var only support floating point and complex dtypes"):
        torch.tensor([1, 2]).var()
    with pytest.raises(RuntimeError, match="\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"):
        torch.softmax(torch.tensor([1, 2]), 0)
    with pytest.raises(RuntimeError, match="linalg.vector_norm: Expected a floating point or complex tensor as "
                                           "input. Got Long"):
        torch.tensor([1, 2]).norm()


def test_matmul_operator_with_scalar_is_type_error():
    with pytest.raises(TypeError, match="unsupported operand type"):
        torch.ones(2, 2) @ 2
    with pytest.raises(TypeError, match="unsupported operand type"):
        2 @ torch.ones(2, 2)


def test_reduction_dim_errors():
    x = torch.tensor(A)
    with pytest.raises(IndexError, match="Dimension out of range \\(expected to be in range of \\[-2, 1\\], but got 5\\)"):
        x.sum(5)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.argmax(dim=-3)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times in the list of dims"):
        x.sum(dim=(0, 0))


# ---- matrix products ------------------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((2, 3), (3, 4)), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                                    ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 4)),
                                    ((3,), (5, 3, 2))])
def test_matmul_shapes(sa, sb):
    a = RNG.standard_normal(sa).astype(np.float32)
    b = RNG.standard_normal(sb).astype(np.float32)
    close(torch.tensor(a) @ torch.tensor(b), a @ b, rtol=1e-4, atol=1e-5)
    close(torch.matmul(torch.tensor(a), torch.tensor(b)), a @ b, rtol=1e-4, atol=1e-5)


def test_mm_bmm_dot_outer_mv():
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    close(torch.mm(torch.tensor(a), torch.tensor(b)), a @ b)
    close(torch.tensor(a).mm(torch.tensor(b)), a @ b)
    p, q = RNG.standard_normal((5, 2, 3)), RNG.standard_normal((5, 3, 4))
    close(torch.bmm(torch.tensor(p), torch.tensor(q)), p @ q)
    u, v = np.arange(3.0), np.arange(1.0, 4.0)
    d = torch.dot(torch.tensor(u), torch.tensor(v))
    assert d.shape == () and d.item() == 8.0
    close(torch.outer(torch.tensor(u), torch.tensor(v[:2])), np.outer(u, v[:2]))
    assert torch.outer(torch.arange(3), torch.arange(2.0)).dtype is torch.float32
    close(torch.mv(torch.tensor(a), torch.tensor(u)), a @ u)
    assert torch.matmul(torch.ones(2, 3, dtype=torch.int64), torch.ones(3, 4, dtype=torch.int64)).dtype is torch.int64


@pytest.mark.parametrize("call, msg", [
    (lambda: torch.ones(2, 3) @ torch.ones(2, 4), "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x4)"),
    (lambda: torch.mm(torch.ones(2, 3), torch.ones(2, 4)), "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x4)"),
    (lambda: torch.matmul(torch.ones(3), torch.ones(4, 2)), "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)"),
    (lambda: torch.matmul(torch.ones(2, 3), torch.ones(4)), "size mismatch, got input (2), mat (2x3), vec (4)"),
    (lambda: torch.mv(torch.ones(2, 3), torch.ones(4)), "size mismatch, got input (2), mat (2x3), vec (4)"),
    (lambda: torch.matmul(torch.ones(3), torch.ones(4)), "inconsistent tensor size, expected tensor [3] and src [4]"),
    (lambda: torch.dot(torch.ones(3), torch.ones(4)), "inconsistent tensor size, expected tensor [3] and src [4]"),
    (lambda: torch.dot(torch.ones(3), torch.ones(3, 1)), "1D tensors expected, but got 1D and 2D tensors"),
    (lambda: torch.dot(torch.ones(3), torch.ones(3, dtype=torch.float64)),
     "dot : expected both vectors to have same dtype, but found Float and Double"),
    (lambda: torch.mm(torch.ones(2, 3), torch.ones(3)), "mat2 must be a matrix"),
    (lambda: torch.mm(torch.ones(3), torch.ones(3, 2)), "self must be a matrix"),
    (lambda: torch.bmm(torch.ones(2, 2, 3), torch.ones(2, 4, 5)),
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4]."),
    (lambda: torch.bmm(torch.ones(2, 2, 3), torch.ones(3, 3, 5)),
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [3, 3]."),
    (lambda: torch.bmm(torch.ones(2, 3), torch.ones(2, 3, 5)), "batch1 must be a 3D tensor"),
    (lambda: torch.matmul(torch.ones(5, 2, 3), torch.ones(4, 3, 4)),
     "The size of tensor a (5) must match the size of tensor b (4) at non-singleton dimension 0"),
    (lambda: torch.matmul(torch.tensor(1.0), torch.ones(3)), "both arguments to matmul need to be at least 1D"),
    (lambda: torch.matmul(torch.ones(2, 3), torch.ones(3, 4, dtype=torch.float64)),
     "expected m1 and m2 to have the same dtype"),
    (lambda: torch.outer(torch.ones(3, 1), torch.ones(4)), "outer"),
])
def test_matmul_errors(call, msg):
    with pytest.raises(RuntimeError) as info:
        call()
    assert msg in str(info.value)
