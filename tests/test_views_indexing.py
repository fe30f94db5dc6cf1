"""Indexing (basic and advanced), setitem, and view semantics (shared memory and version counter)."""
import numpy as np
import pytest

import graphc as torch

X = np.arange(24).reshape(2, 3, 4)


def x():
    return torch.tensor(X)


@pytest.mark.parametrize("key", [
    1, -1, (-1, 2), (1, 2, 3), (0, slice(None), slice(None, None, 2)), (slice(None), slice(1, 3), slice(1, None, 2)),
    (Ellipsis, 1), (None,), (slice(None), None, Ellipsis, None), (0, Ellipsis, None), (0, slice(None), slice(5, 10)),
    (0, slice(None), slice(-10, 2)), (slice(None, None, 3),), (0, slice(2, 0)), (Ellipsis,),
])
def test_basic_indexing_matches_numpy(key):
    r = x()[key]
    ref = X[key]
    assert tuple(r.shape) == ref.shape
    np.testing.assert_array_equal(r.numpy(), ref)


@pytest.mark.parametrize("key", [
    [0, 1], (slice(None), [0, 2]), ([0, 1], [1, 2]), ([0, 1], slice(None), [1, 2]),
    (slice(None), [0, 2], [1, 3]), (0, [True, False, True]), (1, [2, 0], slice(1, 3)),
])
def test_advanced_indexing_with_lists(key):
    ref = X[tuple(np.array(k) if isinstance(k, list) else k for k in key) if isinstance(key, tuple) else np.array(key)]
    r = x()[key]
    assert tuple(r.shape) == ref.shape
    np.testing.assert_array_equal(r.numpy(), ref)


def test_tensor_indices():
    t = x()
    np.testing.assert_array_equal(t[torch.tensor([1, 0])].numpy(), X[[1, 0]])
    np.testing.assert_array_equal(t[torch.tensor([[0, 1], [1, 0]])].numpy(), X[np.array([[0, 1], [1, 0]])])
    np.testing.assert_array_equal(t[t > 20].numpy(), X[X > 20])
    np.testing.assert_array_equal(t[t[:, :, 0] > 5].numpy(), X[X[:, :, 0] > 5])
    m = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(t[torch.tensor(m)].numpy(), X[m])
    assert t[torch.tensor(1)].shape == (3, 4)              # 0-dim integer tensor acts like an int
    assert t[torch.tensor([True, False])].shape == (1, 3, 4)
    assert t[[]].shape == (0, 3, 4)
    np.testing.assert_array_equal(t[torch.tensor([1, 0], dtype=torch.int32)].numpy(), X[[1, 0]])
    np.testing.assert_array_equal(t[:, torch.tensor([0, 2]), 1:3].numpy(), X[:, [0, 2], 1:3])


def test_index_errors():
    t = x()
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        t[2]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        t[0, 3]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 3"):
        t[0, 0, 0, 0]
    with pytest.raises(IndexError, match="invalid index of a 0-dim tensor. Use `tensor.item\\(\\)`"):
        torch.tensor(5.0)[0]
    assert torch.tensor(5.0)[None].shape == (1,) and torch.tensor(5.0)[...].shape == ()
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        t[torch.tensor([2])]
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool tensors"):
        t[torch.tensor([1.0])]
    with pytest.raises(IndexError):
        t[torch.tensor([True, False, True])]
    with pytest.raises(IndexError):
        t[1.5]
    with pytest.raises(TypeError):
        t["a"]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        t[0, ::-1]


# ---- views share memory ---------------------------------------------------------------------

VIEWS = {
    "int": lambda t: t[1],
    "slice": lambda t: t[:, 1:, ::2],
    "ellipsis": lambda t: t[..., 0],
    "view": lambda t: t.view(-1),
    "view2": lambda t: t.view(2, 12),
    "reshape_contig": lambda t: t.reshape(6, 4),
    "flatten": lambda t: t.flatten(),
    "transpose": lambda t: t.transpose(0, 1),
    "permute": lambda t: t.permute(2, 0, 1),
    "T": lambda t: t.T,
    "unsqueeze": lambda t: t.unsqueeze(0),
    "squeeze": lambda t: t.unsqueeze(0).squeeze(0),
    "narrow": lambda t: t.narrow(2, 0, 2),
    "select": lambda t: t.select(0, 1),
    "unbind": lambda t: t.unbind(0)[1],
    "split": lambda t: t.split(2, dim=2)[1],
    "chunk": lambda t: t.chunk(2, 0)[1],
    "detach": lambda t: t.detach(),
    "expand": lambda t: t[:1].expand(3, 3, 4),
    "diagonal": lambda t: t.diagonal(0, 1, 2),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_share_memory_and_version(name):
    base = torch.tensor(X.astype(np.float32))
    v = VIEWS[name](base)
    ref = VIEWS[name](torch.tensor(X.astype(np.float32))).numpy().copy()
    np.testing.assert_array_equal(v.numpy(), ref)
    before = base._version
    # write through the base: the view sees it
    base.add_(1000)
    np.testing.assert_array_equal(v.numpy(), ref + 1000)
    assert base._version == v._version == before + 1
    if name == "expand":
        return  # an expanded view cannot be written (overlapping memory)
    # write through the view: the base sees it
    v.mul_(0)
    assert (VIEWS[name](base) == 0).all().item()
    assert int((base == 0).sum()) == len(np.unique(np.asarray(VIEWS[name](torch.tensor(X)).numpy()).ravel()))
    assert base._version == v._version == before + 2


def test_diagonal_is_a_view():
    m = torch.zeros(3, 3)
    m.diagonal().fill_(1.0)
    np.testing.assert_array_equal(m.numpy(), np.eye(3))
    m.diagonal(1).add_(5.0)
    assert m[0, 1].item() == 5.0 and m[1, 2].item() == 5.0
    a = np.arange(60.0).reshape(3, 4, 5)
    for offset in (-3, -1, 0, 2, 6):
        for d1, d2 in ((0, 1), (1, 2), (2, 0)):
            np.testing.assert_array_equal(torch.tensor(a).diagonal(offset, d1, d2).numpy(),
                                          np.diagonal(a, offset, d1, d2))


def test_expanded_view_write_error():
    e = torch.ones(1, 3).expand(2, 3)
    with pytest.raises(RuntimeError, match="unsupported operation: more than one element of the written-to tensor "
                                           "refers to a single memory location"):
        e.add_(1)


def test_write_through_view_changes_base():
    y = x().float()
    y.view(2, 12)[1, 0] = 9
    assert y[1, 0, 0].item() == 9
    y.transpose(0, 1)[0, 1, 0] = -5
    assert y[1, 0, 0].item() == -5
    y[0].fill_(7)
    assert (y[0] == 7).all().item()
    y[:, 1:, ::2].zero_()
    expected = np.array(X, np.float32)
    expected[1, 0, 0] = -5
    expected[0] = 7
    expected[:, 1:, ::2] = 0
    np.testing.assert_array_equal(y.numpy(), expected)


def test_copies_do_not_share_memory():
    y = x().float()
    for make in (lambda t: t.clone(), lambda t: t[[0]], lambda t: t[t > 100], lambda t: t.flip(0),
                 lambda t: t.transpose(0, 1).contiguous(), lambda t: t.transpose(0, 1).reshape(-1),
                 lambda t: t.repeat(1, 1, 1)):
        c = make(y)
        c.fill_(-1)
        np.testing.assert_array_equal(y.numpy(), X)


def test_version_counter():
    y = x().clone()
    assert y._version == 0
    v = y[0]
    v.add_(1)
    assert y._version == 1 and v._version == 1
    y[0, 0, 0] = 100
    assert y._version == 2 and v._version == 2
    y.zero_()
    assert v._version == 3
    c = y.clone()
    assert c._version == 0
    d = y.detach()
    d.add_(1)
    assert y._version == 4


# ---- setitem --------------------------------------------------------------------------------

def test_setitem_forms():
    y = x().clone()
    y[0, 0, 0] = 100
    assert y[0, 0, 0].item() == 100
    y[1] = 7
    assert (y[1] == 7).all().item()
    y[:, 1] = torch.tensor([1, 2, 3, 4])                   # broadcast over dim 0
    assert y[:, 1].tolist() == [[1, 2, 3, 4]] * 2
    y[..., 0] = -1
    assert (y[..., 0] == -1).all().item()
    y[y > 50] = 0
    assert y.max().item() <= 50
    y[[0, 1], [0, 0]] = torch.tensor([[-1, -2, -3, -4]])
    assert y[:, 0].tolist() == [[-1, -2, -3, -4]] * 2
    y[0, 0] = 2.7                                          # float into int tensor truncates
    assert y[0, 0].tolist() == [2, 2, 2, 2]
    y[0, 0, 0] = torch.tensor(9)
    assert y[0, 0, 0].item() == 9
    y[torch.tensor([0, 0])] = torch.zeros(2, 3, 4, dtype=torch.int64)
    assert y[0].sum().item() == 0
    y[:, :, 1:3] += 100
    assert y[0, 0, 1].item() == 100


def test_setitem_casts_value_dtype():
    y = torch.zeros(2, 4)
    y[0] = torch.tensor([1.0, 2, 3, 4], dtype=torch.float64)
    assert y.dtype is torch.float32 and y[0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_setitem_errors():
    y = x().clone()
    with pytest.raises(RuntimeError):
        y[:, 1] = torch.ones(2, 3)
    with pytest.raises(RuntimeError, match="shape mismatch: value tensor of shape \\[2\\] cannot be broadcast to "
                                           "indexing result of shape \\[20\\]"):
        y[x() > 3] = torch.tensor([1, 2])
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 2"):
        y[5] = 1


def test_setitem_on_leaf_requiring_grad():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad is being used in an in-place operation"):
        w[0] = 1.0
    with torch.no_grad():
        w[0] = 5.0
    assert w.tolist() == [5.0, 1.0]
