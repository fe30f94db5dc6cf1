"""In-place ops (``add_`` ...), augmented assignment, ``out=``, clone and detach."""
import numpy as np
import pytest

import graphc as torch

A = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], np.float32)


def x():
    return torch.tensor(A)


@pytest.mark.parametrize("call, ref", [
    (lambda t: t.add_(1), A + 1),
    (lambda t: t.add_(torch.ones(3), alpha=2), A + 2),
    (lambda t: t.add_(torch.ones(2, 1)), A + 1),
    (lambda t: t.sub_(1), A - 1),
    (lambda t: t.mul_(2), A * 2),
    (lambda t: t.div_(2), A / 2),
    (lambda t: t.zero_(), np.zeros_like(A)),
    (lambda t: t.fill_(3), np.full_like(A, 3)),
    (lambda t: t.fill_(torch.tensor(3)), np.full_like(A, 3)),
    (lambda t: t.copy_(torch.tensor([1, 2, 3])), np.broadcast_to(np.array([1.0, 2, 3], np.float32), A.shape)),
    (lambda t: t.clamp_(-1, 1), np.clip(A, -1, 1)),
    (lambda t: t.clamp_(min=0), np.maximum(A, 0)),
    (lambda t: t.abs_(), np.abs(A)),
    (lambda t: t.neg_(), -A),
    (lambda t: t.pow_(2), A ** 2),
    (lambda t: t.exp_(), np.exp(A)),
    (lambda t: t.floor_(), np.floor(A)),
    (lambda t: t.sign_(), np.sign(A)),
    (lambda t: t.masked_fill_(t > 0, 0), np.where(A > 0, 0, A)),
    (lambda t: t.lerp_(torch.zeros(2, 3), 0.5), A * 0.5),
    (lambda t: t.addcmul_(t, t, value=2), A + 2 * A * A),
])
def test_inplace_ops(call, ref):
    t = x()
    ptr, v0 = t.data_ptr(), t._version
    r = call(t)
    assert r is t                                      # returns self
    assert t.data_ptr() == ptr                         # same memory
    assert t._version == v0 + 1                        # bumps the version counter
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6)


def test_inplace_shape_changing_view_ops():
    t = x()
    t.t_()
    assert t.shape == (3, 2) and t.stride() == (1, 3)
    np.testing.assert_array_equal(t.numpy(), A.T)
    t = x()
    t.unsqueeze_(0)
    assert t.shape == (1, 2, 3)
    t.squeeze_()
    assert t.shape == (2, 3)
    t.transpose_(0, 1)
    assert t.shape == (3, 2)
    base = torch.arange(6.0).view(2, 3)
    row = base[0]
    row.unsqueeze_(0)
    row[0, 0] = 100.0                                   # still a view of base
    assert base[0, 0].item() == 100.0


def test_inplace_dtype_rules():
    lt = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        lt.div_(2)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        lt.add_(1.5)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        lt.mul_(torch.tensor(2.0))
    it = torch.tensor([1, 2], dtype=torch.int32)
    it.add_(torch.tensor([1]))                          # int64 result written into int32 is allowed
    assert it.dtype is torch.int32 and it.tolist() == [2, 3]
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired output type Bool"):
        torch.tensor([True]).add_(1)
    ft = torch.tensor([1.5])
    ft.add_(torch.tensor([1.0], dtype=torch.float64))   # same category: cast down
    assert ft.dtype is torch.float32 and ft.item() == 2.5


def test_inplace_broadcast_errors():
    t = x()
    with pytest.raises(RuntimeError, match="output with shape \\[2, 3\\] doesn't match the broadcast shape \\[2, 2, 3\\]"):
        t.add_(torch.ones(2, 1, 1))
    with pytest.raises(RuntimeError):
        t.add_(torch.ones(2, 3, 1))
    with pytest.raises(RuntimeError):
        t.copy_(torch.ones(4))
    with pytest.raises(RuntimeError, match="fill_ only supports 0-dimension value tensor but got tensor with 1 dimensions"):
        t.fill_(torch.tensor([3, 4]))
    with pytest.raises(TypeError):
        t.fill_("a")


def test_augmented_assignment_is_inplace():
    t = x()
    alias = t
    t += 1
    assert t is alias
    t *= 3
    t -= 1
    t /= 2
    np.testing.assert_allclose(alias.numpy(), ((A + 1) * 3 - 1) / 2, rtol=1e-6)
    i = torch.tensor([7, 8])
    i //= 2
    assert i.tolist() == [3, 4]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        i /= 2


def test_inplace_autograd_rules():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation."):
        w.add_(1)
    with torch.no_grad():
        w.add_(1)
    assert w.tolist() == [2.0, 2.0] and w.requires_grad and w.is_leaf
    d = w.detach()
    d.add_(1)                                            # detach shares memory
    assert w.tolist() == [3.0, 3.0]
    w.data.add_(1)
    assert w.tolist() == [4.0, 4.0]
    y = w * 2
    y.add_(1)                                            # non-leaf: allowed, recorded
    assert y.tolist() == [9.0, 9.0] and y.grad_fn is not None
    y.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0]


# ---- out= -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, ref", [
    (lambda t, o: torch.add(t, 1, out=o), A + 1),
    (lambda t, o: torch.sub(t, 1, out=o), A - 1),
    (lambda t, o: torch.mul(t, 2, out=o), A * 2),
    (lambda t, o: torch.div(t, 2, out=o), A / 2),
    (lambda t, o: torch.exp(t, out=o), np.exp(A)),
    (lambda t, o: torch.clamp(t, 0, 1, out=o), np.clip(A, 0, 1)),
])
def test_out_argument(call, ref):
    o = torch.empty(2, 3)
    alias = o.view(6)
    r = call(x(), o)
    assert r is o
    np.testing.assert_allclose(o.numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(alias.numpy(), ref.reshape(6), rtol=1e-6)   # written in place


def test_out_argument_more():
    t = x()
    o = torch.empty(3)
    torch.sum(t, 0, out=o)
    np.testing.assert_allclose(o.numpy(), A.sum(0))
    o = torch.empty(2, 2)
    torch.matmul(t, t.T, out=o)
    np.testing.assert_allclose(o.numpy(), A @ A.T)
    o = torch.empty(4, 3)
    torch.cat([t, t], out=o)
    np.testing.assert_allclose(o.numpy(), np.concatenate([A, A]))
    o = torch.empty(2, 3, dtype=torch.bool)
    torch.gt(t, 0, out=o)
    assert o.tolist() == (A > 0).tolist()
    o = torch.empty(1)
    torch.add(t, 1, out=o)                               # resized to the result's shape
    assert o.shape == (2, 3)
    o = torch.empty(2, 3, dtype=torch.float64)
    torch.add(t.long(), 1, out=o)                        # int result into a float out: allowed
    assert o.dtype is torch.float64 and o[0, 0].item() == 2.0
    o = torch.empty(2, 3)
    v0 = o._version
    torch.add(t, 1, out=o)
    assert o._version > v0


def test_out_argument_errors():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        torch.add(x(), 1, out=torch.empty(2, 3, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="functions with out=... arguments don't support automatic differentiation"):
        torch.add(x(), 1, out=torch.empty(2, 3, requires_grad=True))


# ---- clone / detach -------------------------------------------------------------------------

def test_clone_does_not_share_memory():
    t = x()
    c = t.clone()
    assert c.data_ptr() != t.data_ptr()
    c[0, 0] = 100.0
    assert t[0, 0].item() == 1.0
    assert torch.clone(t).tolist() == t.tolist()
    tt = t.t()
    assert tt.clone().stride() == tt.stride()          # clone preserves the layout
    w = torch.ones(2, requires_grad=True)
    cw = w.clone()
    assert cw.requires_grad and cw.grad_fn is not None and not cw.is_leaf


def test_detach_shares_memory():
    w = torch.ones(2, 3, requires_grad=True)
    d = w.detach()
    assert d.data_ptr() == w.data_ptr()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    with torch.no_grad():
        w[0, 0] = 5.0
    assert d[0, 0].item() == 5.0
    d[1, 1] = -1.0
    assert w[1, 1].item() == -1.0
    assert d._version == w._version
    y = w * 2
    y.detach_()
    assert not y.requires_grad and y.grad_fn is None


def test_random_inplace_fills():
    t = torch.empty(1000)
    t.uniform_(2, 3)
    assert 2 <= t.min().item() and t.max().item() < 3
    t.normal_(0, 1)
    assert abs(t.mean().item()) < 0.2
    t.random_(0, 3)
    assert set(t.tolist()) <= {0.0, 1.0, 2.0}
    t.bernoulli_(0.5)
    assert set(t.tolist()) <= {0.0, 1.0}
