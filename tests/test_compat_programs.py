"""Regressions found by running tutorial-style PyTorch programs under graphc and PyTorch 2.x.

Every expected value here was printed by real PyTorch on the same inputs."""
import math
import warnings

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


# ---- creation ---------------------------------------------------------------------------------

def test_linspace_rounds_like_pytorch():
    # counts up from start for the first half, down from end for the second, with one rounding
    assert torch.linspace(-1, 1, 7).tolist() == [-1.0, -0.6666666269302368, -0.3333333134651184,
                                                 -2.9802322387695312e-08, 0.3333333134651184,
                                                 0.6666666269302368, 1.0]
    assert torch.linspace(-1, 1, 7, dtype=torch.float64).tolist()[3] == 5.551115123125783e-17
    assert torch.linspace(-3.14159, 3.14159, 200)[[33, 50, 99, 100, 150, 199]].tolist() == [
        -2.099655866622925, -1.5629017353057861, -0.015787016600370407, 0.015787016600370407,
        1.594475507736206, 3.141590118408203]
    assert torch.linspace(-5, 2, 1000)[[1, 499, 500, 998]].tolist() == [
        -4.992992877960205, -1.503503441810608, -1.496496558189392, 1.9929929971694946]
    assert torch.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert torch.linspace(0, 10, 7, dtype=torch.int64).tolist() == [0, 1, 3, 5, 6, 8, 10]
    assert torch.linspace(3, 3, 4).tolist() == [3.0] * 4 and torch.linspace(0, 1, 1).tolist() == [0.0]


def test_custom_relu_at_linspace_midpoint():
    # the autograd tutorial's MyReLU: linspace(-1, 1, 7)[3] is negative, so its gradient is 0
    xs = torch.linspace(-1, 1, 7, requires_grad=True)
    xs.clamp(min=0).sum().backward()
    assert xs.grad.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_legacy_tensor_types():
    x = torch.arange(3.)
    y = x.type(torch.IntTensor)
    assert y.dtype is torch.int32 and y.tolist() == [0, 1, 2]
    assert isinstance(x, torch.FloatTensor) and not isinstance(x, torch.LongTensor)
    assert torch.FloatTensor([1, 2]).dtype is torch.float32 and torch.LongTensor(2).shape == (2,)


def test_broadcast_shapes():
    assert torch.broadcast_shapes((2, 1), (3,)) == (2, 3)
    assert torch.broadcast_shapes(2, (3, 1)) == (3, 2)
    assert torch.broadcast_shapes((1,), (0, 2)) == (0, 2)
    assert torch.broadcast_shapes() == ()
    assert type(torch.broadcast_shapes((1,))) is torch.Size
    with pytest.raises(RuntimeError, match="Attempting to broadcast a dimension of length 3"):
        torch.broadcast_shapes((2,), (3,))


# ---- printing and grad_fn names ---------------------------------------------------------------

def test_return_types_repr():
    r = torch.tensor([[3, 7, 11]]).max(dim=1)
    assert repr(r) == "graphc.return_types.max(\nvalues=tensor([11]),\nindices=tensor([2]))"
    s = torch.sort(torch.tensor([3, 1, 2]), descending=True)
    assert str(s) == "graphc.return_types.sort(\nvalues=tensor([3, 2, 1]),\nindices=tensor([0, 2, 1]))"
    v, i = s
    assert v.tolist() == [3, 2, 1] and s.indices.tolist() == [0, 2, 1]
    assert repr(torch.linalg.slogdet(torch.eye(2))).startswith("graphc.return_types.linalg_slogdet(\nsign=")


def test_parameter_str():
    p = nn.Parameter(torch.zeros(2))
    assert str(p) == "Parameter containing:\ntensor([0., 0.], requires_grad=True)"
    assert f"{p}" == str(p)
    assert str(torch.ones(2)) == "tensor([1., 1.])"


def test_grad_fn_names():
    x = torch.tensor([[3., 1., 2.], [0., 5., 4.]], requires_grad=True)
    assert x.sort(1)[0].grad_fn.name() == "SortBackward0"
    assert torch.sort(x, stable=True).values.grad_fn.name() == "SortBackward1"
    assert x.topk(2)[0].grad_fn.name() == "TopkBackward0"
    assert x.kthvalue(2)[0].grad_fn.name() == "KthvalueBackward0"
    assert x.log1p().grad_fn.name() == "Log1PBackward0"
    assert "grad_fn=<Log1PBackward0>" in repr(x.log1p())
    y = x * 2
    y[[0, 1], [0, 1]] = 0.0
    assert y.grad_fn.name() == "IndexPutBackward0"
    y = x * 2
    y[0] = 1.0
    assert y.grad_fn.name() == "torch::autograd::CopySlices" and "grad_fn=<CopySlices>" in repr(y)
    y = x * 2
    y[y > 1] = 0.0
    assert y.grad_fn.name() == "IndexPutBackward0"
    y = x * 2
    y.masked_fill_(y > 1, 0.0)
    assert y.grad_fn.name() == "MaskedFillBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [[0, 0, 0], [2, 0, 0]]


def test_rnn_batch_first_output_grad_fn():
    names = []
    for m in (nn.RNN(2, 3, batch_first=True), nn.LSTM(2, 3, batch_first=True), nn.GRU(2, 3, batch_first=True),
              nn.GRU(2, 3)):
        names.append(m(torch.ones(2, 4, 2))[0].grad_fn.name())
    assert names == ["TransposeBackward1", "TransposeBackward0", "TransposeBackward1", "StackBackward0"]


def test_embedding_bag_grad_fn():
    eb = nn.EmbeddingBag(3, 2, mode="mean")
    eb.weight.data = torch.arange(6.).view(3, 2)
    out = eb(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2]))
    assert out.tolist() == [[1.0, 2.0], [4.0, 5.0]]
    assert out.grad_fn.name() == "EmbeddingBagBackward0"


# ---- ops --------------------------------------------------------------------------------------

def test_einsum_ellipsis_and_diagonals():
    r = np.random.RandomState(1)
    A = torch.tensor(r.randn(2, 3, 4), dtype=torch.float32)
    B = torch.tensor(r.randn(2, 4, 5), dtype=torch.float32)
    M = torch.tensor([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
    assert torch.einsum("ii->i", M).tolist() == [1, 5, 9]
    assert torch.einsum("ii", M).item() == 15 and torch.einsum("ii->", M).item() == 15
    assert torch.einsum("bii->bi", torch.ones(2, 3, 3)).shape == (2, 3)
    assert torch.einsum("...ij,...jk", A, B).shape == (2, 3, 5)
    close(torch.einsum("...ij,...jk->...ik", A, B), (A @ B))
    close(torch.einsum("b...,b...->b", A, A), (A * A).sum((1, 2)))
    assert torch.einsum("i...->...", A).shape == (3, 4)
    assert torch.einsum("a...c,c->a...", A, torch.ones(4)).shape == (2, 3)
    assert torch.einsum("...", A).shape == (2, 3, 4)
    x = torch.tensor(r.randn(3, 3), requires_grad=True)
    torch.einsum("ii->", x * 2).backward()
    assert x.grad.tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_kthvalue_and_msort():
    x = torch.tensor([[3., 1., 2.], [0., 5., 4.]])
    v, i = torch.kthvalue(x, 2)
    assert v.tolist() == [2.0, 4.0] and i.tolist() == [2, 2]
    r = x.kthvalue(1, dim=0, keepdim=True)
    assert r.values.tolist() == [[0.0, 1.0, 2.0]] and r.indices.tolist() == [[1, 0, 0]]
    assert repr(torch.kthvalue(torch.tensor([3., 1., 2.]), 2)) == \
        "graphc.return_types.kthvalue(\nvalues=tensor(2.),\nindices=tensor(2))"
    assert torch.msort(x).tolist() == [[0, 1, 2], [3, 5, 4]] and x.msort().shape == (2, 3)


def test_fill_diagonal():
    assert torch.zeros(3, 3).fill_diagonal_(5).tolist() == [[5, 0, 0], [0, 5, 0], [0, 0, 5]]
    assert torch.zeros(7, 3).fill_diagonal_(5, wrap=True).nonzero().tolist() == \
        [[0, 0], [1, 1], [2, 2], [4, 0], [5, 1], [6, 2]]
    assert torch.zeros(7, 3).fill_diagonal_(5).nonzero().tolist() == [[0, 0], [1, 1], [2, 2]]
    assert torch.zeros(3, 5).fill_diagonal_(1, wrap=True).nonzero().tolist() == [[0, 0], [1, 1], [2, 2]]
    assert torch.zeros(2, 2, 2).fill_diagonal_(1).sum().item() == 2
    with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
        torch.zeros(2, 3, 3).fill_diagonal_(1)
    x = torch.ones(2, 2, requires_grad=True)
    y = x * 2
    y.fill_diagonal_(0)
    y.sum().backward()
    assert x.grad.tolist() == [[0, 2], [2, 0]] and "grad_fn=<CopySlices>" in repr(y)


def test_index_put():
    x = torch.zeros(3, 4)
    x.index_put_((torch.tensor([0, 0, 2]), torch.tensor([1, 1, 3])), torch.tensor([1., 2., 3.]), accumulate=True)
    assert x[0, 1].item() == 3.0 and x[2, 3].item() == 3.0 and x.sum().item() == 6.0
    y = x.index_put((torch.tensor([0, 0]),), torch.tensor(5.))
    assert y[0].tolist() == [5.0] * 4 and x[0].tolist() == [0, 3, 0, 0]
    z = torch.index_put(x, (torch.tensor([1]),), torch.tensor([7., 7., 7., 7.]), accumulate=True)
    assert z[1].tolist() == [7.0] * 4
    w = torch.ones(3, requires_grad=True)
    out = torch.zeros(4).index_put((torch.tensor([0, 0, 3]),), w * 2, accumulate=True)
    out.sum().backward()
    assert out.tolist() == [4, 0, 0, 2] and w.grad.tolist() == [2, 2, 2]
    assert out.grad_fn.name() == "IndexPutBackward0"


def test_quantile():
    x = torch.tensor([[1., 7., 3., 4.], [2., 0., 5., 9.], [8., 6., 1., 2.]])
    q = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0])
    expected = {
        "linear": [[1.0, 0.0, 1.0], [2.2, 1.2, 1.6], [3.5, 3.5, 4.0], [4.3, 5.4, 6.2], [7.0, 9.0, 8.0]],
        "lower": [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [3.0, 2.0, 2.0], [4.0, 5.0, 6.0], [7.0, 9.0, 8.0]],
        "higher": [[1.0, 0.0, 1.0], [3.0, 2.0, 2.0], [4.0, 5.0, 6.0], [7.0, 9.0, 8.0], [7.0, 9.0, 8.0]],
        "midpoint": [[1.0, 0.0, 1.0], [2.0, 1.0, 1.5], [3.5, 3.5, 4.0], [5.5, 7.0, 7.0], [7.0, 9.0, 8.0]],
        "nearest": [[1.0, 0.0, 1.0], [3.0, 2.0, 2.0], [4.0, 5.0, 6.0], [4.0, 5.0, 6.0], [7.0, 9.0, 8.0]],
    }
    for how, exp in expected.items():
        close(torch.quantile(x, q, dim=1, interpolation=how), exp)
    assert x.quantile(0.5).item() == 3.5
    assert torch.quantile(x, torch.tensor([0.1, 0.9]), dim=0, keepdim=True).shape == (2, 1, 4)
    assert torch.quantile(x, torch.tensor([0.1, 0.9]), keepdim=True).shape == (2, 1, 1)
    y = torch.tensor([[1., float("nan"), 3.], [4., 5., 6.]])
    assert str(y.quantile(0.5, dim=1)) == "tensor([nan, 5.])"
    assert y.nanquantile(0.5, dim=1).tolist() == [2.0, 5.0]
    close(torch.nanquantile(y, 0.4), 3.6)
    w = torch.tensor([3., 1., 2., 5.], requires_grad=True)
    w.quantile(0.4).backward()
    close(w.grad, [0.2, 0.0, 0.8, 0.0])


def test_log_softmax_matches_pytorch_rounding_and_nans():
    r = np.random.RandomState(0)
    x = torch.from_numpy(r.randn(6, 1, 5).astype(np.float32))
    assert F.log_softmax(x, -1)[:2].flatten().tolist() == [
        -1.4887760877609253, -2.8526711463928223, -2.27409029006958, -1.0119353532791138,
        -1.3852704763412476, -2.8068888187408447, -0.8795226216316223, -1.9809682369232178,
        -1.9328298568725586, -1.4190125465393066]
    inf = float("inf")
    y = torch.log_softmax(torch.tensor([[-inf] * 3, [1., -inf, 2.], [inf, 1., 2.]]), 1)
    assert str(y) == ("tensor([[    nan,     nan,     nan],\n        [-1.3133,    -inf, -0.3133],\n"
                      "        [    nan,     nan,     nan]])")
    z = torch.tensor([[1., -inf, 2.]], requires_grad=True)
    torch.log_softmax(z, 1)[0, 0].backward()
    close(z.grad, [[0.7311, 0.0, -0.7311]], 1e-4)


# ---- autograd.functional ----------------------------------------------------------------------

def test_autograd_functional():
    from graphc.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
    x = torch.tensor([1.0, 2.0, 3.0])
    y = torch.tensor([0.5, -1.0])

    def f(a):
        return torch.stack([a[0] * a[1], a[2] ** 2, a.sum()])
    assert jacobian(f, x).tolist() == [[2, 1, 0], [0, 0, 6], [1, 1, 1]]
    ja, jb = jacobian(lambda a, b: a[:2] * b, (x, y))
    assert ja.tolist() == [[0.5, 0, 0], [0, -1, 0]] and jb.tolist() == [[1, 0], [0, 2]]
    j2 = jacobian(lambda a: (a * 2, a.sum()), x)
    assert isinstance(j2, tuple) and j2[0].shape == (3, 3) and j2[1].tolist() == [1, 1, 1]
    assert hessian(lambda a: (a ** 3).sum() + a[0] * a[1], x).tolist() == [[6, 1, 0], [1, 12, 0], [0, 0, 18]]
    h = hessian(lambda a, b: (a[:2] * b).sum() * b.sum(), (x, y))
    assert h[1][1].tolist() == [[2, 3], [3, 4]] and h[0][1].shape == (3, 2)
    out, g = vjp(f, x, torch.ones(3))
    assert out.tolist() == [2, 9, 6] and g.tolist() == [3, 2, 7]
    out, jv = jvp(f, x, torch.tensor([1.0, 0.0, 1.0]))
    assert jv.tolist() == [2, 6, 2]
    assert hvp(lambda a: (a ** 3).sum(), x, torch.ones(3))[1].tolist() == [6, 12, 18]
    assert vhp(lambda a: (a ** 3).sum(), x, torch.ones(3))[1].tolist() == [6, 12, 18]
    xr = torch.tensor([1.0, 2.0], requires_grad=True)
    J = jacobian(lambda a: a ** 2, xr, create_graph=True)
    J.sum().backward()
    assert J.tolist() == [[2, 0], [0, 4]] and xr.grad.tolist() == [2, 2]
    assert torch.autograd.functional.jacobian is jacobian


# ---- nn ---------------------------------------------------------------------------------------

def test_transformer_encoder_warns_on_mismatched_masks():
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0)
    enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
    src = torch.zeros(3, 2, 8)
    pad = torch.tensor([[False, False, True], [False, False, False]])
    with pytest.warns(UserWarning, match="Support for mismatched src_key_padding_mask and mask is deprecated"):
        enc(src, mask=nn.Transformer.generate_square_subsequent_mask(3), src_key_padding_mask=pad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc(src, src_key_padding_mask=pad)


# ---- distributions ----------------------------------------------------------------------------

def test_distributions():
    from graphc.distributions import Bernoulli, Categorical, Independent, Normal, Uniform, kl_divergence
    q = Normal(torch.tensor([0.5, -0.5, 1.0]), torch.tensor([1.0, 2.0, 0.5]))
    p = Normal(torch.zeros(3), torch.ones(3))
    close(kl_divergence(q, p), [0.125, 0.9318528175354004, 0.8181471824645996])
    close(q.log_prob(torch.zeros(3)), [-1.0439385175704956, -1.6433357000350952, -2.2257914543151855])
    close(p.entropy(), [1.4189385175704956] * 3)
    close(q.cdf(torch.tensor([0., 1., 2.])), [0.3085375428199768, 0.7733726501464844, 0.9772498607635498])
    assert q.sample((5,)).shape == (5, 3) and q.rsample((2, 4)).shape == (2, 4, 3)
    assert Normal(0., 1.).batch_shape == () and repr(Normal(0., 1.)) == "Normal(loc: 0.0, scale: 1.0)"
    c2 = Categorical(probs=torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    close(c2.log_prob(torch.tensor([0, 2])), [-1.6094379425048828, -0.2231435328722])
    close(c2.entropy(), [1.0296530723571777, 0.6390318274497986])
    close(kl_divergence(c2, Categorical(logits=torch.zeros(2, 3))), [0.06895928084850311, 0.4595804512500763])
    assert c2.sample().shape == (2,) and c2.batch_shape == (2,)
    b = Bernoulli(probs=torch.tensor([0.3, 0.9]))
    close(b.log_prob(torch.tensor([1., 0.])), [-1.2039728164672852, -2.3025848865509033])
    close(b.entropy(), [0.6108643412590027, 0.32508301734924316])
    close(kl_divergence(b, Bernoulli(logits=torch.tensor([0.0, 1.0]))), [0.08228287100791931, 0.08817868679761887])
    assert repr(b).replace("graphc.", "torch.") == "Bernoulli(probs: torch.Size([2]), logits: torch.Size([2]))"
    ind = Independent(Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1)
    assert ind.batch_shape == (2,) and ind.event_shape == (3,)
    close(ind.log_prob(torch.ones(2, 3)), [-4.256815433502197] * 2)
    close(kl_divergence(ind, Independent(Normal(torch.ones(2, 3), 2 * torch.ones(2, 3)), 1)), [1.3294415473937988] * 2)
    u = Uniform(torch.tensor([0.0]), torch.tensor([2.0]))
    close(u.log_prob(torch.tensor([0.5])), [-math.log(2)])
    close(u.entropy(), [math.log(2)])
    mu = torch.tensor([0.3, -0.2], requires_grad=True)
    ls = torch.tensor([0.1, 0.2], requires_grad=True)
    dist = torch.distributions.Normal(mu, ls.exp())
    (dist.log_prob(torch.tensor([1.0, 0.0])).sum() + kl_divergence(dist, Normal(0.0, 1.0)).sum()).backward()
    close(mu.grad, [0.8731114864349365, -0.06593599915504456])
    close(ls.grad, [-0.377419114112854, -0.4813624918460846])


# ---- error messages ---------------------------------------------------------------------------

def test_error_messages_match_pytorch():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(2\) at "
                                           r"non-singleton dimension 1"):
        torch.ones(2, 3) + torch.ones(3, 2)
    with pytest.raises(RuntimeError, match=r"^Sizes of tensors must match except in dimension 0\. Expected size 3 "
                                           r"but got size 4 for tensor number 1 in the list\.$"):
        torch.cat([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(RuntimeError, match="^Tensors must have same number of dimensions: got 2 and 3$"):
        torch.cat([torch.ones(2, 3), torch.ones(2, 4, 1)])
    with pytest.raises(RuntimeError, match="^0D or 1D target tensor expected, multi-target not supported$"):
        F.nll_loss(torch.ones(2, 3), torch.tensor([[0], [1]]))
    with pytest.raises(RuntimeError, match="but got mask with dtype long int$"):
        torch.ones(2, 2).masked_fill(torch.tensor([1, 0]), 0)
    with pytest.raises(RuntimeError, match="but got mask with dtype unsigned char$"):
        torch.ones(3).masked_fill(torch.tensor([1, 0, 1], dtype=torch.uint8), 0)
    with pytest.raises(IndexError, match=r"^The shape of the mask \[2\] at index 0 does not match the shape of the "
                                         r"indexed tensor \[5\] at index 0$"):
        torch.arange(5)[torch.tensor([True, False])]
    with pytest.raises(IndexError, match=r"mask \[2\] at index 0 does not match the shape of the indexed tensor "
                                         r"\[2, 3\] at index 1$"):
        torch.arange(6).view(2, 3)[..., torch.tensor([True, False])]


def test_float_of_tensor_requiring_grad_warns_once():
    import graphc.tensors as gt
    gt._warned_float_requires_grad = False
    x = torch.tensor(1.5, requires_grad=True) * 2
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(x) == 3.0            # no warning with grad mode off
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.item() == 3.0 and float(x.detach()) == 3.0
    with pytest.warns(UserWarning, match="Converting a tensor with requires_grad=True to a scalar may lead to "
                                         "unexpected behavior"):
        assert float(x) == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(x) == 3.0            # once per process


def test_optimizer_overflow_is_silent():
    p = nn.Parameter(torch.tensor([1e30]))
    opt = torch.optim.RMSprop([p], lr=0.1)
    p.grad = torch.tensor([1e30])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
    assert p.item() == pytest.approx(1e30)  # grad / sqrt(inf) = 0, as in PyTorch
    assert opt.state[p]["square_avg"].isinf().all()


# ---- helpers tutorials reach for --------------------------------------------------------------

def test_reproducibility_and_thread_switches():
    torch.use_deterministic_algorithms(True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_deterministic_debug_mode() == 2  # one setting behind both spellings, as PyTorch's
    torch.set_deterministic_debug_mode("warn")
    assert torch.is_deterministic_algorithms_warn_only_enabled() and torch.get_deterministic_debug_mode() == 1
    torch.use_deterministic_algorithms(False)
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_deterministic_debug_mode() == 0
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(n)


def test_tensor_helpers():
    nan = float("nan")
    x = torch.tensor([[1., 2., 3.], [4., nan, 6.]])
    y = torch.arange(12.).view(3, 4)
    assert torch.ravel(x).shape == (6,) and x.ravel().shape == (6,)
    close(torch.nanmean(x), 3.2)
    close(x.nanmean(dim=1), [2.0, 5.0])
    mm = torch.aminmax(y, dim=1)
    assert mm.min.tolist() == [0, 4, 8] and mm.max.tolist() == [3, 7, 11]
    assert torch.aminmax(y).max.item() == 11 and torch.aminmax(y, dim=0, keepdim=True).max.shape == (1, 4)
    assert repr(torch.aminmax(torch.tensor([1., 2.]))).startswith("graphc.return_types.aminmax(\nmin=")
    assert torch.isin(torch.tensor([1, 2, 3, 4]), torch.tensor([2, 4])).tolist() == [False, True, False, True]
    assert torch.isin(torch.tensor([1, 2]), torch.tensor([2]), invert=True).tolist() == [True, False]
    assert torch.hypot(torch.tensor([3., 5.]), torch.tensor([4., 12.])).tolist() == [5.0, 13.0]
    assert torch.signbit(torch.tensor([-1., 0., -0., 2.])).tolist() == [True, False, True, False]
    assert torch.rot90(y).tolist() == [[3, 7, 11], [2, 6, 10], [1, 5, 9], [0, 4, 8]]
    assert torch.rot90(y, -1).tolist() == [[8, 4, 0], [9, 5, 1], [10, 6, 2], [11, 7, 3]]
    assert torch.rot90(y, 1, [1, 0]).tolist() == y.rot90(3).tolist()
    assert torch.column_stack([torch.tensor([1, 2]), torch.tensor([[3, 4], [5, 6]])]).tolist() == [[1, 3, 4],
                                                                                                    [2, 5, 6]]
    assert torch.row_stack([torch.tensor([1, 2]), torch.tensor([3, 4])]).tolist() == [[1, 2], [3, 4]]
    assert torch.dstack([torch.tensor([1, 2]), torch.tensor([3, 4])]).shape == (1, 2, 2)
    assert [t.shape for t in torch.hsplit(y, 2)] == [(3, 2), (3, 2)]
    assert [t.shape for t in torch.vsplit(y, [1])] == [(1, 4), (2, 4)]
    assert torch.dsplit(torch.ones(1, 2, 4), 2)[0].shape == (1, 2, 2)
    z = torch.tensor([[0., 1., 2.], [2., 1., 0.5], [1., 1., 3.]])
    close(torch.cov(z), [[1.0, -0.75, 1.0], [-0.75, 0.5833333730697632, -0.6666666865348816],
                         [1.0, -0.6666666865348816, 1.3333333730697632]])
    close(torch.corrcoef(z)[0], [1.0, -0.9819804430007935, 0.866025447845459])
    close(torch.cov(torch.tensor([1., 2., 4.])), 2.3333333)
    assert torch.diag_embed(torch.tensor([[1., 2.], [3., 4.]])).tolist() == [[[1, 0], [0, 2]], [[3, 0], [0, 4]]]
    assert torch.diag_embed(torch.tensor([1., 2.]), offset=1).tolist() == [[0, 1, 0], [0, 0, 2], [0, 0, 0]]
    w = torch.tensor([1., 2., 3.], requires_grad=True)
    torch.hypot(w, w).sum().backward()
    close(w.grad, [math.sqrt(2)] * 3)


def test_checkpoint_anomaly_and_amp_without_cuda():
    from graphc.utils.checkpoint import checkpoint
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.fill_(0.5)
        lin.bias.zero_()
    w = torch.tensor([1., 2., 3.], requires_grad=True)
    out = checkpoint(lin, w.unsqueeze(0), use_reentrant=False)
    out.sum().backward()
    assert out.tolist() == [[3.0, 3.0, 3.0]] and lin.weight.grad.tolist() == [[1, 2, 3]] * 3
    with torch.autograd.set_detect_anomaly(True):
        (w * 2).sum()
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        with torch.autograd.detect_anomaly():
            pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler = torch.cuda.amp.GradScaler()
    assert [(w.category, str(w.message)[:40]) for w in caught] == [
        (FutureWarning, "`torch.cuda.amp.GradScaler(args...)` is "),
        (UserWarning, "torch.cuda.amp.GradScaler is enabled, bu")]
    assert not scaler.is_enabled()
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="CUDA is not available or torch_xla is imported. Disabling autocast."):
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            loss = lin(w.unsqueeze(0)).sum()
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    close(lin.bias.detach(), [-0.1] * 3)
    s2 = torch.amp.GradScaler("cuda", enabled=False)
    assert not s2.is_enabled() and s2.scale(loss) is loss
    with torch.autocast("cpu", enabled=False):
        assert lin(w.unsqueeze(0)).dtype is torch.float32


def test_tensor_unfold_windows_and_patches():
    x = torch.arange(1., 8)
    assert x.unfold(0, 2, 2).tolist() == [[1, 2], [3, 4], [5, 6]]
    assert x.unfold(0, 3, 3).tolist() == [[1, 2, 3], [4, 5, 6]]
    img = torch.arange(2 * 3 * 4 * 4.).view(2, 3, 4, 4)
    p = img.unfold(2, 2, 2).unfold(3, 2, 2)
    assert p.shape == (2, 3, 2, 2, 2, 2) and p[0, 0, 1, 0].tolist() == [[8, 9], [12, 13]]
    w = torch.ones(5, requires_grad=True)
    w.unfold(0, 3, 1).sum().backward()
    assert w.grad.tolist() == [1, 2, 3, 2, 1]
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 0 is 7 but size is 8"):
        x.unfold(0, 8, 1)


def test_scatter_reduce():
    src = torch.tensor([1., 2., 3., 4., 5., 6.])
    index = torch.tensor([0, 1, 0, 1, 2, 1])
    inp = torch.tensor([1., 2., 3., 4.])
    expected = {"sum": ([5.0, 14.0, 8.0, 4.0], [4.0, 12.0, 5.0, 4.0]),
                "prod": ([3.0, 96.0, 15.0, 4.0], [3.0, 48.0, 5.0, 4.0]),
                "mean": ([1.6666666269302368, 3.5, 4.0, 4.0], [2.0, 4.0, 5.0, 4.0]),
                "amax": ([3.0, 6.0, 5.0, 4.0], [3.0, 6.0, 5.0, 4.0]),
                "amin": ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 5.0, 4.0])}
    for red, (with_self, without) in expected.items():
        close(inp.scatter_reduce(0, index, src, reduce=red), with_self)
        close(torch.scatter_reduce(inp, 0, index, src, red, include_self=False), without)
    s = torch.tensor([1., 3., 3., 2.], requires_grad=True)
    i = torch.tensor([1., 0.], requires_grad=True)
    out = i.scatter_reduce(0, torch.tensor([0, 0, 0, 1]), s, "amax")
    out.sum().backward()
    assert out.tolist() == [3, 2] and s.grad.tolist() == [0, 0.5, 0.5, 1] and i.grad.tolist() == [0, 0]
    assert out.grad_fn.name() == "ScatterReduceBackward0"
    s.grad = None
    out = i.scatter_reduce(0, torch.tensor([0, 0, 0, 1]), s, "mean", include_self=False)
    (out * torch.tensor([1., 2.])).sum().backward()
    close(s.grad, [1 / 3, 1 / 3, 1 / 3, 2.0])
    h = torch.zeros(3, 2)
    h.scatter_reduce_(0, torch.tensor([[0, 1], [0, 2]]), torch.tensor([[1., 2.], [3., 4.]]), reduce="sum")
    assert h.tolist() == [[4, 0], [0, 2], [0, 4]]
