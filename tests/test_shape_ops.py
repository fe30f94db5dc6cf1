"""Shape ops: view/reshape/permute/transpose/squeeze/expand/repeat/cat/stack/split/gather/scatter ..."""
import numpy as np
import pytest

import graphc as torch

X = np.arange(24).reshape(2, 3, 4)


def x():
    return torch.tensor(X)


def same(t, ref):
    assert tuple(t.shape) == np.shape(ref)
    np.testing.assert_array_equal(t.numpy(), ref)


# ---- view / reshape -------------------------------------------------------------------------

@pytest.mark.parametrize("shape, ref", [((6, 4), (6, 4)), ((-1,), (24,)), ((2, -1), (2, 12)),
                                        ((4, 3, 2), (4, 3, 2)), (([3, 8],), (3, 8))])
def test_view_and_reshape(shape, ref):
    same(x().view(*shape), X.reshape(ref))
    same(x().reshape(*shape), X.reshape(ref))


def test_view_errors():
    with pytest.raises(RuntimeError, match="shape '\\[-1, 5\\]' is invalid for input of size 24"):
        x().view(-1, 5)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x().view(2, -1, -1)
    with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
        x().transpose(0, 1).view(-1)
    with pytest.raises(RuntimeError, match="Use .reshape\\(...\\) instead"):
        torch.arange(6).view(2, 3).t().view(6)
    same(x().transpose(0, 1).reshape(-1), X.transpose(1, 0, 2).reshape(-1))   # reshape copies instead


def test_view_as_reshape_as():
    assert x().view_as(torch.ones(6, 4)).shape == (6, 4)
    assert x().reshape_as(torch.ones(4, 6)).shape == (4, 6)


# ---- permute / transpose / t ----------------------------------------------------------------

def test_permute_transpose_t():
    same(x().permute(2, 0, 1), X.transpose(2, 0, 1))
    same(x().permute((1, 0, 2)), X.transpose(1, 0, 2))
    same(x().permute(-1, 0, 1), X.transpose(2, 0, 1))
    same(x().transpose(0, 2), X.transpose(2, 1, 0))
    same(torch.transpose(x(), -1, -2), X.swapaxes(-1, -2))
    same(x()[0].t(), X[0].T)
    same(torch.tensor([1, 2]).t(), np.array([1, 2]))   # 0-D and 1-D: t() is a no-op
    same(x().movedim(0, -1), np.moveaxis(X, 0, -1))
    same(x().swapaxes(0, 1), X.swapaxes(0, 1))


def test_permute_transpose_errors():
    with pytest.raises(RuntimeError, match="number of dimensions in the tensor input does not match"):
        x().permute(2, 0)
    with pytest.raises((RuntimeError, IndexError)):
        x().permute(0, 0, 1)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x().transpose(0, 3)
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 dimensions, but self is 3D"):
        x().t()


# ---- squeeze / unsqueeze / flatten ----------------------------------------------------------

def test_squeeze_unsqueeze_flatten():
    o = torch.ones(1, 3, 1)
    assert o.squeeze().shape == (3,)
    assert o.squeeze(0).shape == (3, 1)
    assert o.squeeze(1).shape == (1, 3, 1)          # size != 1: unchanged
    assert o.squeeze((0, 2)).shape == (3,)
    assert torch.squeeze(o, -1).shape == (1, 3)
    assert x().unsqueeze(0).shape == (1, 2, 3, 4)
    assert x().unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x().unsqueeze(3).shape == (2, 3, 4, 1)
    with pytest.raises(IndexError, match="Dimension out of range \\(expected to be in range of \\[-4, 3\\], but got 4\\)"):
        x().unsqueeze(4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x().squeeze(5)
    same(x().flatten(), X.reshape(-1))
    assert x().flatten(1).shape == (2, 12)
    assert x().flatten(0, 1).shape == (6, 4)
    assert torch.tensor(5).flatten().shape == (1,)
    with pytest.raises(RuntimeError, match="flatten\\(\\) has invalid args: start_dim cannot come after end_dim"):
        x().flatten(2, 1)
    assert x().unflatten(2, (2, 2)).shape == (2, 3, 2, 2)


# ---- expand / repeat ------------------------------------------------------------------------

def test_expand():
    a = torch.tensor([[1], [2], [3]])
    same(a.expand(3, 4), np.broadcast_to(np.array([[1], [2], [3]]), (3, 4)))
    assert a.expand(2, -1, 4).shape == (2, 3, 4)
    assert a.expand_as(torch.ones(3, 5)).shape == (3, 5)
    assert torch.broadcast_to(torch.tensor([1, 2]), (3, 2)).tolist() == [[1, 2]] * 3
    e = a.expand(3, 4)
    assert e.stride() == (1, 0)                     # expand is a view with stride 0
    with pytest.raises(RuntimeError, match="The expanded size of the tensor \\(4\\) must match the existing "
                                           "size \\(3\\) at non-singleton dimension 0"):
        a.expand(4, 4)
    with pytest.raises(RuntimeError, match="the number of sizes provided \\(1\\) must be greater or equal to "
                                           "the number of dimensions in the tensor \\(2\\)"):
        torch.ones(3, 2).expand(3)


def test_repeat_tile():
    same(torch.tensor([1, 2]).repeat(2, 2), np.tile([1, 2], (2, 2)))
    same(torch.tensor([1, 2]).repeat(3), np.tile([1, 2], 3))
    same(x().repeat(1, 2, 1), np.tile(X, (1, 2, 1)))
    with pytest.raises(RuntimeError, match="Number of dimensions of repeat dims can not be smaller than number "
                                           "of dimensions of tensor"):
        torch.tensor([[1, 2]]).repeat(2)
    with pytest.raises(RuntimeError, match="Trying to create tensor with negative dimension -1: \\[-1, 2\\]"):
        torch.tensor([1, 2]).repeat(-1, 1)
    same(x().tile((2,)), np.tile(X, 2))
    same(torch.tensor([1, 2]).repeat_interleave(2), np.repeat([1, 2], 2))


# ---- cat / stack / split / chunk ------------------------------------------------------------

def test_cat_stack():
    same(torch.cat([x(), x()]), np.concatenate([X, X]))
    same(torch.cat((x(), x()[:, :2]), dim=1), np.concatenate([X, X[:, :2]], 1))
    same(torch.cat([x(), x()], dim=-1), np.concatenate([X, X], -1))
    assert torch.cat([x(), x().float()]).dtype is torch.float32              # promotes
    assert torch.cat((torch.tensor([1]), torch.tensor([2.5]))).tolist() == [1.0, 2.5]
    assert torch.cat([torch.tensor([]), torch.tensor([1.0, 2.0])]).tolist() == [1.0, 2.0]  # legacy empty skipped
    same(torch.stack([x(), x()]), np.stack([X, X]))
    same(torch.stack([x(), x()], dim=-1), np.stack([X, X], -1))
    same(torch.stack([x()[0], x()[1]], 1), np.stack([X[0], X[1]], 1))


def test_cat_stack_errors():
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 2"):
        torch.cat([x(), x()[:, :2]], dim=2)
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 3 and 2"):
        torch.cat([x(), x()[0]])
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        torch.cat([])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor \\(at position 0\\) cannot be concatenated"):
        torch.cat([torch.tensor(1.0), torch.tensor(2.0)])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size, but got \\[2, 3, 4\\] at "
                                           "entry 0 and \\[3, 4\\] at entry 1"):
        torch.stack([x(), x()[0]])


def test_split_chunk():
    parts = x().split(1, dim=1)
    assert len(parts) == 3 and all(p.shape == (2, 1, 4) for p in parts)
    parts = x().split([1, 2], dim=1)
    same(parts[1], X[:, 1:])
    parts = torch.split(x(), 3, dim=2)
    assert [p.shape[2] for p in parts] == [3, 1]
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 3"):
        x().split([1, 1], dim=1)
    assert [c.tolist() for c in torch.arange(5).chunk(3)] == [[0, 1], [2, 3], [4]]
    assert [c.numel() for c in torch.arange(6).chunk(4)] == [2, 2, 2]       # fewer chunks than asked
    assert len(x().chunk(2, dim=2)) == 2
    rows = x().unbind(1)
    assert len(rows) == 3
    same(rows[2], X[:, 2])


# ---- gather / scatter / index_select / masked_fill / narrow / flip --------------------------

def test_gather():
    src = torch.tensor([[1, 2], [3, 4]])
    assert torch.gather(src, 1, torch.tensor([[0, 0], [1, 0]])).tolist() == [[1, 1], [4, 3]]
    assert src.gather(0, torch.tensor([[1, 0]])).tolist() == [[3, 2]]
    a = np.arange(12).reshape(3, 4)
    idx = np.array([[3, 0], [1, 1], [2, 0]])
    same(torch.tensor(a).gather(1, torch.tensor(idx)), np.take_along_axis(a, idx, 1))


def test_gather_errors():
    src = torch.tensor([[1, 2], [3, 4]])
    with pytest.raises(RuntimeError, match="index 2 is out of bounds for dimension 1 with size 2"):
        torch.gather(src, 1, torch.tensor([[0, 2], [1, 0]]))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds for dimension 1 with size 2"):
        torch.gather(src, 1, torch.tensor([[-1, 0]]))
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as input tensor"):
        torch.gather(src, 1, torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="gather\\(\\): Expected dtype int"):
        torch.gather(src, 1, torch.tensor([[0.0]]))


def test_scatter():
    z = torch.zeros(3, 5)
    r = z.scatter(0, torch.tensor([[0, 1, 2, 0]]), torch.arange(1.0, 5.0).unsqueeze(0))
    ref = np.zeros((3, 5), np.float32)
    ref[[0, 1, 2, 0], [0, 1, 2, 3]] = [1, 2, 3, 4]
    same(r, ref)
    assert z.sum().item() == 0.0                                  # out of place
    r = torch.zeros(2, 4).scatter(1, torch.tensor([[0, 1], [2, 3]]), 2.5)
    assert r.tolist() == [[2.5, 2.5, 0, 0], [0, 0, 2.5, 2.5]]
    z.scatter_(1, torch.tensor([[4], [3], [2]]), 1.0)             # in place
    assert z.sum().item() == 3.0 and z[0, 4].item() == 1.0
    r = torch.zeros(3, 5).scatter_add(0, torch.tensor([[0, 0, 0, 0]]), torch.ones(1, 4))
    assert r[0].tolist() == [1, 1, 1, 1, 0]
    r = torch.zeros(3).scatter_add(0, torch.tensor([0, 0, 2]), torch.tensor([1.0, 2.0, 3.0]))
    assert r.tolist() == [3.0, 0.0, 3.0]                          # repeated indices accumulate
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        torch.zeros(3, 5).scatter(0, torch.tensor([[0, 1, 3]]), torch.ones(1, 4))


def test_index_select():
    same(x().index_select(1, torch.tensor([2, 0])), X[:, [2, 0]])
    same(torch.index_select(x(), 0, torch.tensor([1, 1, 0])), X[[1, 1, 0]])
    with pytest.raises((IndexError, RuntimeError)):
        x().index_select(1, torch.tensor([3]))


def test_masked_fill():
    t = x()
    same(t.masked_fill(t > 10, -1), np.where(X > 10, -1, X))
    r = t.masked_fill(t > 10, 2.5)
    assert r.dtype is torch.int64 and r.max().item() == 10      # value cast to the tensor's dtype
    f = t.float().masked_fill(t > 10, float("-inf"))
    assert np.isneginf(f.numpy()).sum() == (X > 10).sum()
    same(t.masked_fill(torch.tensor([True, False, True, False]), 0), np.where([True, False, True, False], 0, X))
    same(t.masked_fill(t > 10, torch.tensor(5)), np.where(X > 10, 5, X))
    with pytest.raises(RuntimeError, match="masked_fill_ only supports a 0-dimensional value tensor, but got "
                                           "tensor with 1 dimension"):
        t.masked_fill(t > 10, torch.tensor([5, 6]))
    with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks, but got mask with dtype"):
        t.masked_fill(t, 0)


def test_narrow_flip():
    same(x().narrow(2, 1, 2), X[:, :, 1:3])
    same(x().narrow(1, -1, 1), X[:, -1:])
    with pytest.raises(RuntimeError, match="start \\(3\\) \\+ length \\(2\\) exceeds dimension size \\(4\\)."):
        x().narrow(2, 3, 2)
    same(x().flip(0), X[::-1])
    same(x().flip((0, 2)), X[::-1, :, ::-1])
    same(x().flip([-1]), X[..., ::-1])
    same(torch.flip(x(), dims=(1,)), X[:, ::-1])
    f = x().flip(0)
    f[0, 0, 0] = -1                                   # flip returns a copy
    assert X[1, 0, 0] == 12


def test_misc_shape_ops():
    same(x().roll(1, 2), np.roll(X, 1, 2))
    same(x().select(1, 2), X[:, 2])
    same(torch.tril(torch.ones(3, 3)), np.tril(np.ones((3, 3))))
    same(torch.triu(torch.ones(3, 3), 1), np.triu(np.ones((3, 3)), 1))
    same(x().take(torch.tensor([0, 23])), np.array([0, 23]))
    v, i = torch.tensor([3, 1, 2]).sort()
    assert v.tolist() == [1, 2, 3] and i.tolist() == [1, 2, 0]
    assert torch.tensor([3, 1, 2]).topk(2).values.tolist() == [3, 2]
    assert torch.tensor([3, 1, 2, 1]).unique().tolist() == [1, 2, 3]
    same(torch.hstack([torch.ones(2), torch.zeros(3)]), np.hstack([np.ones(2), np.zeros(3)]))
    same(torch.vstack([torch.ones(2), torch.zeros(2)]), np.vstack([np.ones(2), np.zeros(2)]))
