"""The names issue #13 item 1 added: Tensor flags, composed functions and methods (values against
numpy/scipy, gradients against finite differences in float64), generated in-place variants, the
0-d scatter index, nn.modules paths, DataParallel, graphc.fft, and (where installed) PyTorch."""
import importlib

import numpy as np
import pytest
import scipy.linalg

import graphc as torch
import graphc.nn as nn
from graphc.autograd import gradcheck
from graphc import tensor_surface

D = torch.float64


def rnd(*shape, seed=0, low=-1.0, high=1.0):
    return torch.tensor(np.random.default_rng(seed).uniform(low, high, shape), dtype=D)


def test_is_flags_are_false_properties():
    x = torch.ones(2)
    for name in tensor_surface._FLAGS:
        assert getattr(x, name) is False, name
    assert x.is_cpu and not x.is_cuda and not x.is_complex() and not x.is_conj() and x.is_signed()
    assert not torch.ones(2, dtype=torch.uint8).is_signed()
    assert x.layout is torch.strided and x.output_nr == 0 and x.name is None


@pytest.mark.parametrize("name", tensor_surface._INPLACE)
def test_generated_inplace_variant_equals_out_of_place(name):
    args = {"arctan2": (rnd(3, seed=1),), "greater": (0.1,), "greater_equal": (0.1,), "less": (0.1,),
            "less_equal": (0.1,), "not_equal": (0.1,), "hypot": (rnd(3, seed=1),), "copysign": (rnd(3, seed=1),),
            "heaviside": (rnd(3, seed=1),), "addmm": (rnd(3, 2, seed=1), rnd(2, 3, seed=2)),
            "baddbmm": (rnd(2, 3, 4, seed=1), rnd(2, 4, 3, seed=2)), "addmv": (rnd(3, 2, seed=1), rnd(2, seed=2)),
            "addr": (rnd(3, seed=1), rnd(3, seed=2)), "addbmm": (rnd(2, 3, 4, seed=1), rnd(2, 4, 3, seed=2)),
            "index_copy": (0, torch.tensor([2, 0]), rnd(2, 3, seed=1)), "renorm": (2, 0, 0.5),
            "index_reduce": (0, torch.tensor([2, 0, 2]), rnd(3, 3, seed=1), "prod"),
            "ldexp": (torch.tensor([1, 2, 3]),), "nextafter": (rnd(3, seed=1),)}
    ints = {"bitwise_left_shift": (torch.tensor([1, 2, 0]),), "bitwise_right_shift": (torch.tensor([1, 2, 0]),),
            "gcd": (torch.tensor([4, 6, 9]),), "lcm": (torch.tensor([4, 6, 9]),)}
    if name in ints:
        x, a = torch.tensor([12, -7, 5]), ints[name]
    else:
        shape = {"addmm": (3, 3), "baddbmm": (2, 3, 3), "addbmm": (3, 3), "addr": (3, 3), "index_copy": (3, 3), "index_reduce": (3, 3),
                 "renorm": (3, 4), "tril": (3, 3), "triu": (3, 3)}.get(name, (3,))
        x = rnd(*shape, low=-0.9, high=0.9) if name not in ("acosh", "arccosh") else rnd(*shape, low=1.1, high=3)
        a = args.get(name, ())
    expected = getattr(x, name)(*a)
    y = x.clone()
    out = getattr(y, name + "_")(*a)
    assert out is y
    np.testing.assert_array_equal(y.numpy(), expected.to(y.dtype).numpy())


def test_composed_pointwise_functions_against_numpy():
    x = rnd(7, low=-3, high=3)
    xn = x.numpy()
    np.testing.assert_allclose(torch.asinh(x).numpy(), np.arcsinh(xn), rtol=1e-12)
    np.testing.assert_allclose(torch.atanh(x / 4).numpy(), np.arctanh(xn / 4), rtol=1e-12)
    np.testing.assert_allclose(torch.acosh(x.abs() + 1).numpy(), np.arccosh(np.abs(xn) + 1), rtol=1e-12)
    np.testing.assert_allclose(torch.deg2rad(x).numpy(), np.deg2rad(xn))
    np.testing.assert_allclose(torch.rad2deg(x).numpy(), np.rad2deg(xn))
    y = torch.tensor([1.0, -2.0, float("nan"), 0.0, -0.0], dtype=D)
    z = torch.tensor([float("nan"), 3.0, 1.0, -1.0, 2.0], dtype=D)
    np.testing.assert_array_equal(torch.fmax(y, z).numpy(), np.fmax(y.numpy(), z.numpy()))
    np.testing.assert_array_equal(torch.fmin(y, z).numpy(), np.fmin(y.numpy(), z.numpy()))
    np.testing.assert_array_equal(torch.copysign(z, y).numpy(), np.copysign(z.numpy(), y.numpy()))
    np.testing.assert_array_equal(torch.heaviside(y, z).numpy(), [1.0, 0.0, 0.0, -1.0, 2.0])  # NaN -> 0, as PyTorch
    np.testing.assert_array_equal(torch.isposinf(torch.tensor([1.0, float("inf"), -float("inf")])).numpy(),
                                  [False, True, False])
    np.testing.assert_array_equal(torch.angle(torch.tensor([-2.0, 0.0, 3.0], dtype=D)).numpy(),
                                  np.angle([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(torch.tensor([12, -7]).bitwise_right_shift(2).numpy(), np.right_shift([12, -7], 2))
    np.testing.assert_array_equal(torch.gcd(torch.tensor([12, -18]), torch.tensor([8, 12])).numpy(), [4, 6])
    m, e = torch.frexp(torch.tensor([8.0, 0.3]))
    np.testing.assert_array_equal(m.numpy(), np.frexp(np.float32([8.0, 0.3]))[0])
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        torch.bitwise_left_shift(torch.ones(2), 1)
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes"):
        torch.ones(2).imag


def test_products_and_scatters_against_numpy():
    a, b = rnd(3, 4, seed=1), rnd(5, 4, seed=2)
    np.testing.assert_allclose(torch.inner(a, b).numpy(), np.inner(a.numpy(), b.numpy()))
    v = rnd(4, seed=3)
    M = rnd(3, 4, seed=4)
    np.testing.assert_allclose(torch.addmv(rnd(3, seed=5), M, v, beta=0.5, alpha=2).numpy(),
                               0.5 * rnd(3, seed=5).numpy() + 2 * M.numpy() @ v.numpy())
    nan_in = torch.full((3,), float("nan"), dtype=D)
    assert not torch.addmv(nan_in, M, v, beta=0).isnan().any()  # beta=0 ignores input, as PyTorch
    np.testing.assert_allclose(torch.addr(torch.zeros(3, 4, dtype=D), rnd(3, seed=6), v).numpy(),
                               np.outer(rnd(3, seed=6).numpy(), v.numpy()))
    np.testing.assert_allclose(torch.diagflat(torch.tensor([1.0, 2.0]), 1).numpy(), np.diagflat([1.0, 2.0], 1))
    x = torch.zeros(3, 4)
    np.testing.assert_array_equal(x.index_copy(1, torch.tensor([3, 0]), torch.ones(3, 2)).numpy()[:, [0, 3]], 1)
    np.testing.assert_array_equal(x.select_scatter(torch.ones(4), 0, 1).numpy()[1], 1)
    np.testing.assert_array_equal(x.slice_scatter(torch.ones(3, 2), 1, 0, 4, 2).numpy()[:, ::2], 1)
    np.testing.assert_array_equal(torch.zeros(3, 3).diagonal_scatter(torch.ones(2), 1).numpy(), np.eye(3, k=1))
    assert rnd(2, 3).sum_to_size(1, 3).shape == (1, 3)
    np.testing.assert_allclose(rnd(2, 3).sum_to_size(3).numpy(), rnd(2, 3).numpy().sum(0))
    with pytest.raises(RuntimeError, match="is not expandable to size"):
        rnd(2, 3).sum_to_size(4)


def test_linear_algebra_against_scipy():
    A = rnd(4, 4, seed=7) * 2
    np.testing.assert_allclose(torch.linalg.matrix_exp(A).numpy(), scipy.linalg.expm(A.numpy()), rtol=1e-10)
    spd = A @ A.mT + torch.eye(4, dtype=D)
    L = torch.linalg.cholesky(spd)
    np.testing.assert_allclose(torch.cholesky_inverse(L).numpy(), np.linalg.inv(spd.numpy()), rtol=1e-9)
    B = rnd(4, 2, seed=8)
    np.testing.assert_allclose(torch.cholesky_solve(B, L).numpy(), np.linalg.solve(spd.numpy(), B.numpy()), rtol=1e-9)
    x, _ = torch.triangular_solve(B, L, upper=False)
    np.testing.assert_allclose(x.numpy(), scipy.linalg.solve_triangular(L.numpy(), B.numpy(), lower=True))
    np.testing.assert_allclose(torch.linalg.cond(A).item(), np.linalg.cond(A.numpy()))
    np.testing.assert_allclose(torch.linalg.vander(torch.tensor([1.0, 2.0, 3.0])).numpy(),
                               np.vander([1.0, 2.0, 3.0], increasing=True))
    np.testing.assert_allclose(torch.vander(torch.tensor([1.0, 2.0, 3.0]), 4).numpy(), np.vander([1.0, 2.0, 3.0], 4))
    T = rnd(2, 3, 6, seed=9)
    np.testing.assert_allclose(torch.linalg.tensorinv(T, ind=2).numpy(), np.linalg.tensorinv(T.numpy(), ind=2))
    b = rnd(2, 3, seed=10)
    np.testing.assert_allclose(torch.linalg.tensorsolve(T.reshape(2, 3, 2, 3), b).numpy(),
                               np.linalg.tensorsolve(T.numpy().reshape(2, 3, 2, 3), b.numpy()))


@pytest.mark.parametrize("fn", [
    torch.asinh, torch.atanh, lambda x: torch.acosh(x + 2), torch.deg2rad, lambda x: torch.copysign(x, -x.detach()),
    lambda x: torch.fmax(x, torch.tensor([[0.1, float("nan")], [-0.5, 0.2]], dtype=D)), lambda x: torch.inner(x, x),
    lambda x: torch.addr(x, x[0], x[1]),
    lambda x: torch.renorm(x.reshape(2, 2), 2, 0, 0.5), torch.linalg.matrix_exp, lambda x: x.diagonal_scatter(x[0]),
    lambda x: x.index_copy(0, torch.tensor([1]), x[:1] * 3),
    lambda x: torch.cholesky_inverse(x.tril() + 2 * torch.eye(2, dtype=D)),
    lambda x: torch.fft.fftshift(x), lambda x: torch.nn.functional.pdist(x), lambda x: torch.ldexp(x, torch.tensor(3)),
])
def test_gradients_match_finite_differences(fn):
    x = (rnd(2, 2, seed=11, low=-0.8, high=0.8)).requires_grad_()
    assert gradcheck(fn, (x,))


def test_one_hot_scatter_with_a_zero_dim_index():
    """The data tutorial's one-hot transform: a 0-d index counts as 1-d, as in PyTorch."""
    y = 3
    np.testing.assert_array_equal(torch.zeros(10).scatter_(0, torch.tensor(y), value=1).numpy(), np.eye(10)[3])
    np.testing.assert_array_equal(torch.zeros(5).scatter(0, torch.tensor(1), torch.tensor(7.0)).numpy(),
                                  [0, 7, 0, 0, 0])
    np.testing.assert_array_equal(torch.zeros(5).scatter_add(0, torch.tensor(4), torch.tensor(2.0)).numpy(),
                                  [0, 0, 0, 0, 2])
    assert torch.zeros(()).scatter(0, torch.tensor(0), 5.0).item() == 5.0
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as self tensor"):
        torch.zeros(2, 3).scatter(0, torch.tensor(1), 7.0)


def test_misc_methods():
    x = torch.zeros(2, 3)
    assert x.new(4, 5).shape == (4, 5) and x.new([1, 2]).tolist() == [1.0, 2.0] and x.new().shape == (0,)
    assert x.new(torch.Size([2])).shape == (2,)
    y = torch.arange(6.0)
    y.apply_(lambda v: v * 2)
    assert y.tolist() == [0, 2, 4, 6, 8, 10]
    z = torch.arange(6.0).reshape(2, 3)
    z.resize_(4)
    assert z.tolist() == [0, 1, 2, 3]
    assert torch.ones(3, 4).t().dim_order() == (1, 0)
    vals, inv, counts = torch.unique_consecutive(torch.tensor([1, 1, 2, 2, 3, 1]), return_inverse=True,
                                                 return_counts=True)
    assert vals.tolist() == [1, 2, 3, 1] and inv.tolist() == [0, 0, 1, 1, 2, 3] and counts.tolist() == [2, 2, 1, 1]
    hist, edges = torch.histogram(torch.tensor([1.0, 2.0, 1.0]), bins=4, range=(0.0, 3.0))
    np.testing.assert_array_equal(hist.numpy(), np.histogram([1.0, 2.0, 1.0], 4, (0.0, 3.0))[0])
    assert torch.unravel_index(torch.tensor([4, 7]), (2, 4))[1].tolist() == [0, 3]
    np.testing.assert_allclose(torch.hann_window(6).numpy(), np.hanning(7)[:6], atol=1e-7)
    np.testing.assert_allclose(torch.hamming_window(5, periodic=False).numpy(), np.hamming(5), atol=1e-7)
    assert torch.t_copy(torch.ones(2, 3)).shape == (3, 2)
    r = torch.tensor([-1.0, 2.0])
    assert torch.relu_(r) is r and r.tolist() == [0.0, 2.0]
    assert torch.autograd.Variable(torch.ones(2), requires_grad=True).requires_grad
    assert torch.CharTensor([1]).dtype is torch.int8 and torch.ShortTensor([1]).dtype is torch.int16


def test_nn_modules_paths_resolve_as_in_pytorch():
    from graphc.nn.modules.activation import MultiheadAttention
    assert MultiheadAttention is nn.MultiheadAttention
    for path, name in (("batchnorm", "BatchNorm2d"), ("instancenorm", "InstanceNorm1d"), ("flatten", "Unflatten"),
                       ("fold", "Fold"), ("upsampling", "Upsample"), ("channelshuffle", "ChannelShuffle")):
        mod = importlib.import_module(f"graphc.nn.modules.{path}")
        assert getattr(mod, name) is getattr(nn, name)
    with pytest.raises(AttributeError):
        importlib.import_module("graphc.nn.modules.activation").NotAModule  # noqa: B018


def test_data_parallel_is_a_transparent_wrapper_on_one_device():
    torch.manual_seed(0)
    inner = nn.Linear(3, 2)
    dp = nn.DataParallel(inner)
    assert dp.module is inner and list(dp.state_dict()) == ["module.weight", "module.bias"]
    x = torch.randn(4, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    dp(x).sum().backward()
    np.testing.assert_allclose(inner.weight.grad.numpy(), np.tile(x.sum(0).numpy(), (2, 1)), rtol=1e-6)
    out = nn.parallel.data_parallel(inner, x)
    np.testing.assert_array_equal(out.detach().numpy(), inner(x).detach().numpy())
    sd = dp.state_dict()
    nn.modules.utils.consume_prefix_in_state_dict_if_present(sd, "module.")
    assert sorted(sd) == ["bias", "weight"]
    nn.Linear(3, 2).load_state_dict(sd)


def test_fft_frequencies_and_shifts_against_numpy():
    for n in (1, 4, 5):
        np.testing.assert_allclose(torch.fft.fftfreq(n, 0.5).numpy(), np.fft.fftfreq(n, 0.5), rtol=1e-6)
        np.testing.assert_allclose(torch.fft.rfftfreq(n).numpy(), np.fft.rfftfreq(n), rtol=1e-6)
    x = torch.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(torch.fft.fftshift(x).numpy(), np.fft.fftshift(x.numpy()))
    np.testing.assert_array_equal(torch.fft.ifftshift(x, dim=1).numpy(), np.fft.ifftshift(x.numpy(), axes=1))
    np.testing.assert_array_equal(torch.fft.ifftshift(torch.fft.fftshift(x)).numpy(), x.numpy())


def test_against_pytorch_where_installed():
    pt = pytest.importorskip("torch")
    a = np.random.default_rng(3).uniform(-2, 2, (3, 4))
    for name in ("asinh", "deg2rad", "sgn", "positive", "isneginf"):
        np.testing.assert_allclose(getattr(torch, name)(torch.tensor(a)).numpy(),
                                   getattr(pt, name)(pt.tensor(a)).numpy(), rtol=1e-12)
    for name in ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"):
        np.testing.assert_allclose(getattr(torch, name)(7, dtype=D).numpy(),
                                   getattr(pt, name)(7, dtype=pt.float64).numpy(), atol=1e-12)
    np.testing.assert_allclose(torch.tensor(a).renorm(2, 0, 1.0).numpy(), pt.tensor(a).renorm(2, 0, 1.0).numpy())
    np.testing.assert_allclose(torch.fft.fftfreq(6, 0.3).numpy(), pt.fft.fftfreq(6, 0.3).numpy())


def test_feature_alpha_dropout_drops_whole_channels():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 5)
    y = nn.FeatureAlphaDropout(0.5).train()(x).numpy()
    alpha, p = -1.7580993408473766, 0.5
    a = (1 - p + p * alpha ** 2 * (1 - p)) ** -0.5
    b = -a * alpha * p
    dropped = np.isclose(y, alpha * a + b).all(axis=(2, 3))
    kept = np.isclose(y, x.numpy() * a + b).all(axis=(2, 3))
    assert (dropped | kept).all() and dropped.any() and kept.any()
    assert nn.FeatureAlphaDropout(0.5).eval()(x) is x
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        torch.nn.functional.feature_alpha_dropout(torch.ones(3), 0.5, True)


def test_gradient_against_numpy_and_differentiable():
    x = rnd(5, 4, seed=12)
    for edge_order in (1, 2):
        for got, want in zip(torch.gradient(x, spacing=[0.5, 2.0], edge_order=edge_order),
                             np.gradient(x.numpy(), 0.5, 2.0, edge_order=edge_order)):
            np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    assert gradcheck(lambda t: torch.gradient(t, dim=1, edge_order=2)[0], (x.requires_grad_(),))
    with pytest.raises(RuntimeError, match="at least edge_order\\+1"):
        torch.gradient(torch.ones(2), edge_order=2)


def test_aliases_of_graphc_func():
    assert torch.vmap is torch.func.vmap
    lin = nn.Linear(2, 1)
    params = {"weight": torch.ones(1, 2), "bias": torch.zeros(1)}
    with pytest.warns(FutureWarning, match="torch.func.functional_call"):
        out = torch.nn.utils.stateless.functional_call(lin, params, (torch.tensor([[1.0, 2.0]]),))
    assert out.item() == 3.0


def test_affine_grid_and_grid_sample():
    F = torch.nn.functional
    x = rnd(2, 3, 5, 6, seed=13)
    eye = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]] * 2, dtype=D)
    for ac in (True, False):  # the identity map samples every pixel centre: the input comes back
        out = F.grid_sample(x, F.affine_grid(eye, (2, 3, 5, 6), align_corners=ac), align_corners=ac)
        np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-12)
    shift = torch.tensor([[[1.0, 0.0, 2.0 / 6 * 2], [0.0, 1.0, 0.0]]] * 2, dtype=D)  # two pixels to the right
    out = F.grid_sample(x, F.affine_grid(shift, (2, 3, 5, 6), align_corners=False), align_corners=False)
    np.testing.assert_allclose(out.numpy()[..., :4], x.numpy()[..., 2:], atol=1e-12)
    np.testing.assert_array_equal(out.numpy()[..., 4:], 0)  # outside: zeros padding
    border = F.grid_sample(x, F.affine_grid(shift, (2, 3, 5, 6), align_corners=False), padding_mode="border",
                           align_corners=False)
    np.testing.assert_allclose(border.numpy()[..., 5], x.numpy()[..., 5], atol=1e-12)
    theta = (rnd(1, 2, 3, seed=14) * 0.8).requires_grad_()
    img = rnd(1, 2, 4, 4, seed=15).requires_grad_()
    assert gradcheck(lambda i, th: F.grid_sample(i, F.affine_grid(th, (1, 2, 3, 3), align_corners=False),
                                                 align_corners=False), (img, theta))
    with pytest.raises(NotImplementedError, match="reflection"):
        F.grid_sample(x, F.affine_grid(eye, (2, 3, 5, 6)), padding_mode="reflection")


def test_grid_sample_against_pytorch_where_installed():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, theta = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((2, 2, 3)) * 1.5
    for ac in (False, True):
        for mode in ("bilinear", "nearest"):
            for pm in ("zeros", "border"):
                gp = pt.nn.functional.affine_grid(pt.tensor(theta), (2, 3, 4, 7), align_corners=ac)
                gg = torch.nn.functional.affine_grid(torch.tensor(theta), (2, 3, 4, 7), align_corners=ac)
                np.testing.assert_allclose(gg.numpy(), gp.numpy(), atol=1e-12)
                want = pt.nn.functional.grid_sample(pt.tensor(x), gp, mode=mode, padding_mode=pm, align_corners=ac)
                got = torch.nn.functional.grid_sample(torch.tensor(x), gg, mode=mode, padding_mode=pm,
                                                      align_corners=ac)
                np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)


def test_index_reduce_and_histogramdd():
    x = torch.ones(3, 4, dtype=D)
    src = torch.arange(12.0, dtype=D).reshape(3, 4)
    np.testing.assert_array_equal(x.index_reduce(0, torch.tensor([0, 2, 0]), src, "prod").numpy(),
                                  [[0, 9, 20, 33], [1, 1, 1, 1], [4, 5, 6, 7]])  # PyTorch's result
    np.testing.assert_array_equal(
        x.index_reduce(1, torch.tensor([0, 0]), torch.arange(6.0, dtype=D).reshape(3, 2) + 1, "mean",
                       include_self=False).numpy()[:, 0], [1.5, 3.5, 5.5])
    y = torch.ones(3, 4)
    y.index_reduce_(0, torch.tensor([1]), torch.full((1, 4), 5.0), "amax")
    assert y[1].tolist() == [5.0] * 4 and y[0].tolist() == [1.0] * 4
    pts = rnd(50, 2, seed=16)
    hist, edges = torch.histogramdd(pts, bins=[3, 4])
    want, want_edges = np.histogramdd(pts.numpy(), bins=[3, 4])
    np.testing.assert_array_equal(hist.numpy(), want)
    np.testing.assert_allclose(edges[1].numpy(), want_edges[1])


def test_cuda_generator_state_and_capability(cuda):
    torch.cuda.manual_seed(3)
    state = torch.cuda.get_rng_state()
    a = torch.rand(4, device=cuda)
    torch.cuda.set_rng_state(state)
    np.testing.assert_array_equal(torch.rand(4, device=cuda).cpu().numpy(), a.cpu().numpy())
    states = torch.cuda.get_rng_state_all()
    assert len(states) == torch.cuda.device_count()
    torch.cuda.set_rng_state_all(states)
    torch.cuda.seed_all()
    major, minor = torch.cuda.get_device_capability()
    assert isinstance(major, int) and torch.cuda.is_tf32_supported() == (major >= 8)


def test_lazy_linear_infers_in_features_and_becomes_linear():
    torch.manual_seed(0)
    m = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    first = m[0].weight
    assert isinstance(first, nn.UninitializedParameter) and m[0].has_uninitialized_params()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)  # made before the sizes are known, as PyTorch allows
    y = m(torch.randn(5, 3))
    assert y.shape == (5, 2) and type(m[0]) is nn.Linear and type(m[2]) is nn.Linear
    assert m[0].weight is first and type(first) is nn.Parameter and first.shape == (4, 3)
    assert m[2].in_features == 4 and float(first.detach().abs().max()) <= 1 / np.sqrt(3)  # Linear's init bound
    before = first.detach().clone()
    y.sum().backward()
    opt.step()
    assert not torch.equal(first.detach(), before)
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert nn.LazyLinear(3, bias=False)(torch.ones(2, 5)).shape == (2, 3)


@pytest.mark.parametrize("name, ref", [
    ("chebyshev_polynomial_t", "eval_chebyt"), ("chebyshev_polynomial_u", "eval_chebyu"),
    ("hermite_polynomial_h", "eval_hermite"), ("hermite_polynomial_he", "eval_hermitenorm"),
    ("laguerre_polynomial_l", "eval_laguerre"), ("legendre_polynomial_p", "eval_legendre"),
    ("shifted_chebyshev_polynomial_t", "eval_sh_chebyt"), ("shifted_chebyshev_polynomial_u", "eval_sh_chebyu"),
])
def test_orthogonal_polynomials_against_scipy(name, ref):
    from scipy import special as S
    x = np.linspace(-0.9, 0.9, 7) if not name.startswith("shifted") else np.linspace(0.05, 0.95, 7)
    fn, want = getattr(torch.special, name), getattr(S, ref)
    for n in range(7):
        np.testing.assert_allclose(fn(torch.tensor(x, dtype=D), n).numpy(), want(n, x), rtol=1e-12, atol=1e-12)
    degrees = torch.tensor([0, 1, 2, 3, 4, 5, 6])  # a degree per element
    np.testing.assert_allclose(fn(torch.tensor(x, dtype=D), degrees).numpy(), want(np.arange(7), x), atol=1e-12)
    assert (fn(torch.tensor(x, dtype=D), -1).numpy() == 0).all()


def test_chebyshev_v_w_and_spherical_bessel():
    from scipy import special as S
    x = np.linspace(-0.9, 0.9, 7)
    t = torch.tensor(x, dtype=D)
    theta = np.arccos(x)  # V_n(cos t) = cos((n + 1/2) t) / cos(t / 2), W_n = sin((n + 1/2) t) / sin(t / 2)
    np.testing.assert_allclose(torch.special.chebyshev_polynomial_v(t, 3).numpy(),
                               np.cos(3.5 * theta) / np.cos(theta / 2), atol=1e-12)
    np.testing.assert_allclose(torch.special.chebyshev_polynomial_w(t, 3).numpy(),
                               np.sin(3.5 * theta) / np.sin(theta / 2), atol=1e-12)
    np.testing.assert_allclose(torch.special.spherical_bessel_j0(t * 10).numpy(), S.spherical_jn(0, x * 10))
    assert torch.special.spherical_bessel_j0(torch.tensor([0.0, 1e-5], dtype=D)).tolist() == pytest.approx([1, 1])
    assert gradcheck(lambda v: torch.special.legendre_polynomial_p(v, 4), (t.clone().requires_grad_(),))
