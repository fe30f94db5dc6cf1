"""PyTorch names graphc gained for issue #13's surface count (branch nnmisc): lazy modules, torch/amp/
cuda odds and ends, BatchNorm folding, optimizers, pooling and losses. Each is checked against
PyTorch where it is installed (same weights, same inputs), and by its defining property otherwise."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F


def _rand(*shape, seed=0):
    return torch.tensor(np.random.default_rng(seed).standard_normal(shape))


def _to_torch(pt, t):
    return pt.tensor(t.detach().numpy())


def _copy_into(pt, ours, theirs):
    """Give the PyTorch module graphc's parameters and buffers (same names)."""
    sd = {k: _to_torch(pt, v) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)


# ---- lazy modules --------------------------------------------------------------------------

LAZY_CASES = [
    ("LazyConv1d", dict(out_channels=4, kernel_size=3, padding=1), (2, 6, 7), "Conv1d", (4, 6, 3)),
    ("LazyConv2d", dict(out_channels=4, kernel_size=3, groups=2), (2, 6, 5, 5), "Conv2d", (4, 3, 3, 3)),
    ("LazyConv3d", dict(out_channels=2, kernel_size=2, bias=False), (2, 3, 3, 3, 3), "Conv3d", (2, 3, 2, 2, 2)),
    ("LazyConvTranspose1d", dict(out_channels=4, kernel_size=3, stride=2), (2, 6, 5), "ConvTranspose1d", (6, 4, 3)),
    ("LazyConvTranspose2d", dict(out_channels=4, kernel_size=2, groups=2), (2, 6, 3, 3), "ConvTranspose2d",
     (6, 2, 2, 2)),
    ("LazyConvTranspose3d", dict(out_channels=2, kernel_size=2), (1, 3, 2, 2, 2), "ConvTranspose3d", (3, 2, 2, 2, 2)),
    ("LazyBatchNorm1d", dict(), (5, 6), "BatchNorm1d", (6,)),
    ("LazyBatchNorm2d", dict(momentum=None), (3, 4, 2, 2), "BatchNorm2d", (4,)),
    ("LazyBatchNorm3d", dict(affine=False), (2, 3, 2, 2, 2), "BatchNorm3d", None),
    ("LazyInstanceNorm1d", dict(), (2, 6, 5), "InstanceNorm1d", (6,)),
    ("LazyInstanceNorm2d", dict(track_running_stats=False), (2, 3, 4, 4), "InstanceNorm2d", (3,)),
    ("LazyInstanceNorm3d", dict(bias=False), (2, 3, 2, 2, 2), "InstanceNorm3d", (3,)),
]


@pytest.mark.parametrize("name,kwargs,shape,becomes,weight_shape", LAZY_CASES, ids=[c[0] for c in LAZY_CASES])
def test_lazy_module_infers_its_shape_and_becomes_the_plain_class(name, kwargs, shape, becomes, weight_shape):
    m = getattr(nn, name)(**kwargs).double()
    assert m.has_uninitialized_params()
    x = _rand(*shape, seed=1)
    y = m(x)
    assert type(m) is getattr(nn, becomes)
    if weight_shape is None:
        assert m.weight is None
    else:
        assert tuple(m.weight.shape) == weight_shape and m.weight.dtype == torch.float64
    assert all(type(p) is nn.Parameter for p in m.parameters())
    assert y.dtype == torch.float64
    if weight_shape is None:
        return
    # and it trains: the parameters made at the first call get gradients and move
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = [p.detach().clone() for p in m.parameters()]
    (m(x) ** 2).mean().backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, m.parameters()))


@pytest.mark.parametrize("name,kwargs,shape,becomes,weight_shape", LAZY_CASES, ids=[c[0] for c in LAZY_CASES])
def test_lazy_module_equals_pytorch(name, kwargs, shape, becomes, weight_shape):
    pt = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(**kwargs).double(), getattr(pt.nn, name)(**kwargs).double()
    x = _rand(*shape, seed=2)
    ours(x), theirs(_to_torch(pt, x))
    assert str(ours) == str(theirs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    _copy_into(pt, ours, theirs)
    x2 = _rand(*shape, seed=3)
    np.testing.assert_allclose(ours(x2).detach().numpy(), theirs(_to_torch(pt, x2)).detach().numpy(), atol=1e-12)
    for k, v in ours.state_dict().items():  # running statistics too
        np.testing.assert_allclose(v.numpy(), theirs.state_dict()[k].numpy(), atol=1e-12, err_msg=k)


def test_lazy_module_errors_and_unbatched_input():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(torch.randn(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"):
        nn.LazyConv2d(4, 3)(torch.randn(5, 5))
    conv = nn.LazyConv1d(2, 1)
    assert conv(torch.randn(3, 5)).shape == (2, 5) and conv.in_channels == 3  # unbatched: channels first
    import copy
    twin = copy.deepcopy(nn.LazyBatchNorm2d())  # a copy is lazy too
    assert twin.has_uninitialized_params() and twin(torch.randn(2, 5, 3, 3)).shape == (2, 5, 3, 3)
    assert twin.running_mean.shape == (5,)
    assert str(nn.LazyBatchNorm1d()) == ("LazyBatchNorm1d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                         "track_running_stats=True)")


# ---- torch, torch.amp, torch.autograd odds and ends ------------------------------------------

def test_torch_level_names():
    assert torch.GradScaler is torch.amp.GradScaler
    assert issubclass(torch.OutOfMemoryError, RuntimeError) and torch.cuda.OutOfMemoryError is torch.OutOfMemoryError
    assert issubclass(torch.AcceleratorError, RuntimeError)
    assert torch.autograd.anomaly_mode.detect_anomaly is torch.autograd.detect_anomaly
    import graphc.autograd.anomaly_mode  # noqa: F401  (importable by its path, as PyTorch's)
    x = torch.arange(4.0)
    back = torch.from_dlpack(torch.to_dlpack(x))
    assert back.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_autocast_availability_and_nesting_counter():
    assert torch.amp.is_autocast_available("cpu") and torch.amp.is_autocast_available("cuda")
    assert not torch.amp.is_autocast_available("meta")
    with pytest.raises(RuntimeError, match="Expected one of .* device type at start of device string: foo"):
        torch.amp.is_autocast_available("foo")
    assert torch.autocast_increment_nesting() == 1 and torch.autocast_increment_nesting() == 2
    assert torch.autocast_decrement_nesting() == 1 and torch.autocast_decrement_nesting() == 0
    with torch.autocast("cpu"):
        assert torch.autocast_increment_nesting() == 2  # the context counts as one level
        torch.autocast_decrement_nesting()


def test_autocast_names_against_pytorch():
    pt = pytest.importorskip("torch")
    for d in ("cpu", "cuda", "meta"):
        assert torch.amp.is_autocast_available(d) == pt.amp.is_autocast_available(d) or d == "meta"
    assert [torch.autocast_increment_nesting(), torch.autocast_decrement_nesting()] == \
        [pt.autocast_increment_nesting(), pt.autocast_decrement_nesting()]


# ---- torch.cuda ----------------------------------------------------------------------------

def _no_gpu(monkeypatch):
    import fake_cupy
    fake_cupy.install(monkeypatch, error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    fake_cupy.reset_runtime(monkeypatch)
    assert not torch.cuda.is_available()


def test_cuda_without_a_gpu_answers_as_pytorch(monkeypatch):
    _no_gpu(monkeypatch)
    c = torch.cuda
    assert c.memory_stats() == {} and c.memory_reserved() == 0 and c.max_memory_reserved() == 0
    assert c.default_generators == () and c.is_bf16_supported() is False
    assert "Allocated memory" in c.memory_summary()
    c.reset_accumulated_memory_stats()
    with pytest.warns(FutureWarning, match="reset_max_memory_allocated now calls"):
        c.reset_max_memory_allocated()
    for call in (c.mem_get_info, c.init, c.get_per_process_memory_fraction,
                 lambda: c.set_per_process_memory_fraction(0.5)):
        with pytest.raises(AssertionError, match="is_available\\(\\) is False|CUDA is not available"):
            call()  # PyTorch: AssertionError "Torch not compiled with CUDA enabled"
    with pytest.raises(TypeError, match="type graphc.cuda.FloatTensor not available"):
        c.FloatTensor(2)
    assert not isinstance(torch.zeros(2), c.FloatTensor) and isinstance(torch.zeros(2), torch.FloatTensor)
    with c.device(None), c.device(-1), c.device_of(torch.zeros(1)):  # no-ops, as in PyTorch
        pass
    import graphc.cuda.memory
    import graphc.cuda.random
    assert graphc.cuda.random.manual_seed is c.manual_seed and graphc.cuda.memory.memory_stats is c.memory_stats


def test_cuda_without_a_gpu_against_pytorch(monkeypatch):
    pt = pytest.importorskip("torch")
    if pt.cuda.is_available():
        pytest.skip("PyTorch sees a GPU here")
    _no_gpu(monkeypatch)
    assert dict(torch.cuda.memory_stats()) == dict(pt.cuda.memory_stats())
    assert torch.cuda.memory_reserved() == pt.cuda.memory_reserved()
    assert torch.cuda.default_generators == pt.cuda.default_generators
    assert torch.cuda.is_bf16_supported() == pt.cuda.is_bf16_supported()
    for name in ("mem_get_info", "init", "get_per_process_memory_fraction"):
        with pytest.raises(AssertionError):
            getattr(pt.cuda, name)()
        with pytest.raises(AssertionError):
            getattr(torch.cuda, name)()
    with pytest.raises(TypeError):
        pt.cuda.FloatTensor(2)


def test_cuda_memory_figures_and_legacy_types(cuda):
    c = torch.cuda
    c.empty_cache()
    c.reset_peak_memory_stats()
    c.reset_accumulated_memory_stats()
    x = c.FloatTensor(1000, 10)  # the legacy constructor: zeros of that dtype on the current GPU
    assert x.device == cuda and x.dtype is torch.float32 and isinstance(x, c.FloatTensor)
    assert not isinstance(x, torch.FloatTensor) and isinstance(c.LongTensor([1, 2]), c.LongTensor)
    assert torch.ones(2).type(c.DoubleTensor).device == cuda
    stats = c.memory_stats()
    assert stats["allocated_bytes.all.current"] == c.memory_allocated() >= 40000
    assert stats["allocation.all.allocated"] >= 1 and stats["num_ooms"] == 0
    assert c.memory_reserved() >= c.memory_allocated() and c.max_memory_reserved() >= c.memory_reserved()
    free, total = c.mem_get_info()
    assert 0 < free <= total
    gens = c.default_generators
    assert len(gens) == c.device_count() and gens[0].device == cuda
    c.manual_seed(5)
    assert gens[0].initial_seed() == 5
    assert c.is_bf16_supported()
    with c.device(0), c.device_of(x):
        assert c.current_device() == 0
    assert "Allocated memory" in c.memory_summary()


def test_cuda_memory_fraction_raises_out_of_memory(cuda):
    import os
    if os.environ.get("GRAPHC_REAL_CUDA") == "1":
        pytest.skip("would cap a real GPU's memory for the rest of the session")
    c = torch.cuda
    assert c.get_per_process_memory_fraction() == 1.0
    with pytest.raises(TypeError, match="must be `float`"):
        c.set_per_process_memory_fraction(1)
    with pytest.raises(ValueError, match="Invalid fraction value: 1.5. Allowed range: 0~1"):
        c.set_per_process_memory_fraction(1.5)
    c.set_per_process_memory_fraction(1e-9)  # ~85 bytes of 80 GiB
    assert 0 < c.get_per_process_memory_fraction() < 1e-8
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory. Tried to allocate 3.91 KiB"):
        torch.zeros(1000, device=cuda)
    assert c.memory_stats()["num_ooms"] == 1
    c.set_per_process_memory_fraction(0.0)  # CuPy: 0 means no limit


# ---- nn.utils.fusion -----------------------------------------------------------------------

def _trained_bn(bn, shape):
    bn.double().train()
    for s in range(3):  # non-trivial running statistics
        bn(_rand(*shape, seed=10 + s) * 2 + 1)
    with torch.no_grad():
        if bn.weight is not None:
            bn.weight.copy_(_rand(*bn.weight.shape, seed=20))
            bn.bias.copy_(_rand(*bn.bias.shape, seed=21))
    return bn.eval()


@pytest.mark.parametrize("kind", ["conv", "conv_nobias", "conv_transpose", "linear", "linear_bn1"])
def test_fuse_bn_equals_the_two_layers(kind):
    from graphc.nn.utils import fuse_conv_bn_eval, fuse_linear_bn_eval
    if kind.startswith("conv"):
        transpose = kind == "conv_transpose"
        layer = (nn.ConvTranspose2d(3, 4, 3) if transpose else nn.Conv2d(3, 4, 3, bias=kind != "conv_nobias"))
        bn, x = nn.BatchNorm2d(4, affine=kind != "conv_nobias"), _rand(2, 3, 6, 6, seed=4)
        _trained_bn(bn, (5, 4, 3, 3))
        fused = fuse_conv_bn_eval(layer.double().eval(), bn, transpose=transpose)
    else:
        layer, bn = nn.Linear(5, 4), nn.BatchNorm1d(1 if kind == "linear_bn1" else 4)
        x = _rand(6, 1, 5, seed=4) if kind == "linear_bn1" else _rand(6, 5, seed=4)
        _trained_bn(bn, (7, 1, 4) if kind == "linear_bn1" else (7, 4))
        fused = fuse_linear_bn_eval(layer.double().eval(), bn)
    expected = bn(layer(x))
    assert torch.allclose(fused(x), expected, atol=1e-12)
    assert fused is not layer and isinstance(fused.weight, nn.Parameter) and fused.weight.requires_grad
    assert fused.bias.requires_grad == (kind != "conv_nobias")


def test_fuse_errors_and_against_pytorch():
    from graphc.nn.utils import fusion
    conv, bn = nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        fusion.fuse_conv_bn_eval(conv, bn)
    with pytest.raises(AssertionError, match="linear.out_features=4 and bn.num_features=3"):
        fusion.fuse_linear_bn_eval(nn.Linear(2, 4).eval(), nn.BatchNorm1d(3).eval())
    pt = pytest.importorskip("torch")
    _trained_bn(bn, (4, 3, 2, 2))
    conv.double().eval()
    tconv, tbn = pt.nn.Conv2d(2, 3, 1).double().eval(), pt.nn.BatchNorm2d(3).double().eval()
    _copy_into(pt, conv, tconv)
    _copy_into(pt, bn, tbn)
    ours, theirs = fusion.fuse_conv_bn_eval(conv, bn), pt.nn.utils.fuse_conv_bn_eval(tconv, tbn)
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v.numpy(), theirs.state_dict()[k].detach().numpy(), rtol=1e-13, err_msg=k)


def test_rnn_apply_permutation():
    from graphc.nn.modules.rnn import apply_permutation
    h = torch.arange(12.0).reshape(1, 4, 3)
    assert apply_permutation(h, torch.tensor([2, 0, 3, 1]))[0, :, 0].tolist() == [6.0, 0.0, 9.0, 3.0]
    assert apply_permutation(h, torch.tensor([2, 0, 1]), dim=2)[0, 0].tolist() == [2.0, 0.0, 1.0]


# ---- optimizers ------------------------------------------------------------------------------

_SHAPES = [(4, 3), (3,), (2, 3, 5)]


def _params(lib, seed=0):
    rng = np.random.default_rng(seed)
    return [lib.tensor(rng.standard_normal(s), requires_grad=True) for s in _SHAPES]


def _run_steps(lib, params, opt, steps=4, sched=None):
    for _ in range(steps):
        opt.zero_grad()
        loss = sum((p * p * p).sum() * (i + 1) + (p.sin() * 0.5).sum() for i, p in enumerate(params))
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return [p.detach().numpy().copy() for p in params]


ADAFACTOR_CASES = [{}, {"lr": 0.5, "weight_decay": 0.1, "maximize": True, "eps": (1e-6, 1e-2), "d": 2.0},
                   {"beta2_decay": -0.5, "eps": (None, 0.0)}]


@pytest.mark.parametrize("kwargs", ADAFACTOR_CASES)
def test_adafactor_equals_pytorch(kwargs):
    pt = pytest.importorskip("torch")
    ps, tps = _params(torch), _params(pt)
    ours = _run_steps(torch, ps, torch.optim.Adafactor(ps, **kwargs))
    theirs = _run_steps(pt, tps, pt.optim.Adafactor(tps, **kwargs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_adafactor_state_is_factored_and_compiled_step_equals_eager():
    ps = _params(torch)
    opt = torch.optim.Adafactor(ps, lr=0.05)
    _run_steps(torch, ps, opt, steps=1)
    assert opt.state[ps[0]]["row_var"].shape == (4, 1) and opt.state[ps[0]]["col_var"].shape == (1, 3)
    assert opt.state[ps[2]]["row_var"].shape == (2, 3, 1) and opt.state[ps[1]]["variance"].shape == (3,)
    assert opt.state[ps[0]]["step"].item() == 1.0
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double()
        opt = torch.optim.Adafactor(m.parameters(), lr=0.05, weight_decay=0.01)
        x, y = _rand(8, 4, seed=5), torch.tensor([0, 1] * 4)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss.detach()
        f = torch.compile(step, fullgraph=True) if compiled else step
        losses = [f(x, y).item() for _ in range(3)]
        results.append((losses, [p.detach().numpy().copy() for p in m.parameters()]))
    assert np.allclose(results[0][0], results[1][0], rtol=1e-12)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_adafactor_errors():
    p = [torch.zeros(2, requires_grad=True)]
    for kwargs, msg in (({"lr": -1.0}, "Learning rate should be >= 0 but is: -1.0"),
                        ({"beta2_decay": 0.5}, "beta2_decay should be <= 0 but is: 0.5"),
                        ({"eps": (-1.0, 1e-3)}, "epsilon1 should be >= 0 but is: -1.0"),
                        ({"d": 0.5}, "Clipping threshold d should be >= 1 but is: 0.5")):
        with pytest.raises(ValueError, match=msg):
            torch.optim.Adafactor(p, **kwargs)


# ---- swa_utils -------------------------------------------------------------------------------

def test_averaged_model_is_the_running_mean_and_ema():
    from graphc.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()
    swa, ema = AveragedModel(model), AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    seen = []
    for k in range(4):
        with torch.no_grad():
            model[0].weight.copy_(_rand(2, 3, seed=30 + k))
        model(_rand(5, 3, seed=40 + k))  # moves the BatchNorm statistics
        swa.update_parameters(model)
        ema.update_parameters(model)
        seen.append(model[0].weight.detach().numpy().copy())
    np.testing.assert_allclose(swa.module[0].weight.detach().numpy(), np.mean(seen, axis=0), rtol=1e-14)
    expected = seen[0]
    for w in seen[1:]:
        expected = 0.9 * expected + 0.1 * w
    np.testing.assert_allclose(ema.module[0].weight.detach().numpy(), expected, rtol=1e-13)
    assert swa.n_averaged.item() == 4 and swa.n_averaged.dtype is torch.int64
    # buffers follow the model (use_buffers=False)
    assert torch.equal(swa.module[1].running_mean, model[1].running_mean)
    assert torch.allclose(swa(_rand(2, 3)), swa.module(_rand(2, 3)))


def test_swa_utils_equal_pytorch():
    pt = pytest.importorskip("torch")
    from graphc.optim import swa_utils
    # SWALR's learning rates
    ours_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    theirs_opt = pt.optim.SGD([pt.zeros(1, requires_grad=True)], lr=0.5)
    for strategy, epochs in (("cos", 3), ("linear", 2), ("cos", 0)):
        ours = swa_utils.SWALR(ours_opt, swa_lr=0.05, anneal_epochs=epochs, anneal_strategy=strategy)
        theirs = pt.optim.swa_utils.SWALR(theirs_opt, swa_lr=0.05, anneal_epochs=epochs, anneal_strategy=strategy)
        for _ in range(5):
            ours_opt.step(), theirs_opt.step()
            ours.step(), theirs.step()
            assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-14)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got exp"):
        swa_utils.SWALR(ours_opt, 0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0, got -1"):
        swa_utils.SWALR(ours_opt, 0.1, anneal_epochs=-1)
    # AveragedModel over an SGD run, then update_bn, against PyTorch's
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)).double()
    tmodel = pt.nn.Sequential(pt.nn.Linear(3, 4), pt.nn.BatchNorm1d(4), pt.nn.ReLU(), pt.nn.Linear(4, 1)).double()
    _copy_into(pt, model, tmodel)
    avg, tavg = swa_utils.AveragedModel(model), pt.optim.swa_utils.AveragedModel(tmodel)
    opt, topt = torch.optim.SGD(model.parameters(), lr=0.1), pt.optim.SGD(tmodel.parameters(), lr=0.1)
    data = [_rand(6, 3, seed=50 + i) for i in range(3)]
    for x in data:
        for m, o, a, xx in ((model, opt, avg, x), (tmodel, topt, tavg, _to_torch(pt, x))):
            o.zero_grad()
            (m(xx) ** 2).mean().backward()
            o.step()
            a.update_parameters(m)
    swa_utils.update_bn(data, avg)
    pt.optim.swa_utils.update_bn([_to_torch(pt, x) for x in data], tavg)
    for k, v in avg.state_dict().items():
        np.testing.assert_allclose(v.numpy(), tavg.state_dict()[k].detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=k)


# ---- fractional max pooling ------------------------------------------------------------------

FRACTIONAL_CASES = [(2, (2, 3, 9, 8), (3, 2), (4, 5), None), (2, (3, 7, 7), 2, None, (0.5, 0.5)),
                    (3, (2, 2, 6, 7, 5), (2, 3, 2), (3, 4, 2), None), (3, (2, 5, 6, 7), 2, None, (0.5, 0.6, 0.7))]


@pytest.mark.parametrize("nsp,shape,k,out,ratio", FRACTIONAL_CASES)
def test_fractional_max_pool_equals_pytorch(nsp, shape, k, out, ratio):
    pt = pytest.importorskip("torch")
    x = _rand(*shape, seed=6)
    batch = 1 if len(shape) == nsp + 1 else shape[0]
    for dtype in (torch.float64, torch.float32):
        xs = x.to(dtype).detach().requires_grad_()
        samples = torch.rand(batch, shape[-nsp - 1], nsp, dtype=dtype)
        ours = getattr(F, f"fractional_max_pool{nsp}d")(xs, k, out, ratio, True, _random_samples=samples)
        tx = _to_torch(pt, xs).requires_grad_()
        theirs = getattr(pt.nn.functional, f"fractional_max_pool{nsp}d")(tx, k, out, ratio, True,
                                                                          _random_samples=_to_torch(pt, samples))
        assert ours[0].tolist() == theirs[0].tolist() and ours[1].tolist() == theirs[1].tolist()
        weights = _rand(*ours[0].shape, seed=7).to(dtype)
        (ours[0] * weights).sum().backward()
        (theirs[0] * _to_torch(pt, weights)).sum().backward()
        np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_fractional_max_pool_module_and_errors():
    x = _rand(2, 3, 8, 8, seed=8).requires_grad_()
    samples = torch.rand(2, 3, 2, dtype=torch.float64)
    pool = nn.FractionalMaxPool2d(3, output_ratio=0.5, _random_samples=samples)
    assert pool(x).shape == (2, 3, 4, 4) and "_random_samples" in dict(pool.named_buffers())
    assert torch.equal(pool(x), pool(x))  # fixed samples: the same windows
    assert torch.autograd.gradcheck(lambda t: F.fractional_max_pool2d(t, 2, (3, 5), _random_samples=samples),
                                    (x,))
    # compiled: samples held by the module are read on every call (a graph break), never baked in
    held = nn.FractionalMaxPool2d(2, output_size=3, _random_samples=torch.full((1, 3, 2), 0.1, dtype=torch.float64))
    x9 = _rand(1, 3, 7, 7, seed=10)  # starts (0, 2, 5) for a sample of 0.1, (0, 3, 5) for 0.3
    with pytest.warns(UserWarning, match="graph break(.|\n)*window starts reads the values of a parameter or buffer"):
        first = torch.compile(held)(x9)
    with torch.no_grad():
        held._random_samples.fill_(0.3)
    # compiling the module again reuses its compiled code: the graph break (warned once) runs eagerly
    again = torch.compile(held)(x9)
    assert torch.equal(again, held(x9)) and not torch.equal(first, held(x9))
    y, idx = nn.FractionalMaxPool3d(2, output_size=3, return_indices=True)(_rand(1, 2, 5, 6, 7, seed=9))
    assert y.shape == idx.shape == (1, 2, 3, 3, 3) and idx.dtype is torch.int64
    torch.manual_seed(0)
    a = F.fractional_max_pool2d(x, 2, output_size=4)
    torch.manual_seed(0)
    assert torch.equal(a, F.fractional_max_pool2d(x, 2, output_size=4))  # drawn from graphc's generator
    with pytest.raises(ValueError, match="FractionalMaxPool2d requires specifying either an output size, or a"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="only one of output_size and output_ratio may be specified"):
        nn.FractionalMaxPool2d(2, 3, 0.5)
    with pytest.raises(ValueError, match=r"output_ratio must be between 0 and 1 \(got 1.5\)"):
        nn.FractionalMaxPool3d(2, output_ratio=1.5)
    with pytest.raises(RuntimeError, match=r"fractional_max_pool2d\(\): pool height 3 too large relative to input "
                                           "height 8"):
        F.fractional_max_pool2d(x, 3, output_size=7)
    with pytest.raises(RuntimeError, match="Expect _random_samples.size\\(2\\) equals to 2; got 3."):
        F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=torch.rand(2, 3, 3))


# ---- AdaptiveLogSoftmaxWithLoss ----------------------------------------------------------------

def _asm(seed=0):
    torch.manual_seed(seed)
    return nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10, 15], div_value=2.0, head_bias=True).double()


def test_adaptive_log_softmax_is_a_distribution_and_its_output_picks_from_it():
    m = _asm()
    x, y = _rand(12, 8, seed=11), torch.tensor([0, 3, 5, 9, 10, 14, 15, 19, 1, 2, 12, 17])
    full = m.log_prob(x)
    assert full.shape == (12, 20) and torch.allclose(full.exp().sum(1), torch.ones(12, dtype=torch.float64))
    out, loss = m(x, y)
    assert torch.allclose(out, full.gather(1, y.unsqueeze(1)).squeeze(1), atol=1e-14)
    assert torch.allclose(loss, -out.mean())
    single = m(x[3], y[3])
    assert single.output.shape == () and torch.allclose(single.output, out[3])
    with torch.no_grad():  # make some rows' head argmax a cluster, so predict takes its mixed path
        m.head.bias[4:] += 0.5
    head_choice = m.head(x).argmax(1)
    assert bool((head_choice >= 4).any()) and bool((head_choice < 4).any())
    assert m.predict(x).tolist() == m.log_prob(x).argmax(1).tolist()
    assert torch.autograd.gradcheck(lambda t: m(t, y).loss, (x.requires_grad_(),))
    with pytest.raises(ValueError, match="cutoffs should be a sequence of unique, positive integers sorted"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 20, [10, 4])
    with pytest.raises(ValueError, match="cutoffs should be a sequence of length larger than 0"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 20, [])
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 19\], but values in range \[0, 20\]"):
        m(x[:2], torch.tensor([0, 20]))
    with pytest.raises(RuntimeError, match="0D or 1D target tensor expected, multi-target not supported"):
        m(x, y.reshape(3, 4))


def test_adaptive_log_softmax_equals_pytorch():
    pt = pytest.importorskip("torch")
    m = _asm(1)
    tm = pt.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10, 15], div_value=2.0, head_bias=True).double()
    _copy_into(pt, m, tm)
    assert str(m) == str(tm)
    x, y = _rand(12, 8, seed=12).requires_grad_(), torch.tensor([0, 3, 5, 9, 10, 14, 15, 19, 1, 2, 12, 17])
    tx = _to_torch(pt, x).requires_grad_()
    ours, theirs = m(x, y), tm(tx, _to_torch(pt, y))
    np.testing.assert_allclose(ours.output.detach().numpy(), theirs.output.detach().numpy(), atol=1e-14)
    ours.loss.backward()
    theirs.loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), atol=1e-15)
    for (k, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), atol=1e-15, err_msg=k)
    np.testing.assert_allclose(m.log_prob(x).detach().numpy(), tm.log_prob(tx).detach().numpy(), atol=1e-14)
    assert m.predict(x).tolist() == tm.predict(tx).tolist()


# ---- global module hooks -----------------------------------------------------------------------

def _hook_trace(lib, x):
    """What the global hooks see and do on a small model, in order (PyTorch or graphc)."""
    from importlib import import_module
    mm = import_module(f"{lib.__name__}.nn.modules.module")
    seen = []
    handles = [
        mm.register_module_forward_pre_hook(lambda m, a: seen.append(("pre", type(m).__name__))),
        mm.register_module_forward_hook(lambda m, a, o: seen.append(("fwd", type(m).__name__, tuple(o.shape)))),
        mm.register_module_forward_hook(lambda m, a, k, o: o * 2 if isinstance(m, lib.nn.ReLU) else None,
                                        with_kwargs=True),
        mm.register_module_full_backward_pre_hook(lambda m, g: seen.append(("bwd_pre", type(m).__name__))),
        mm.register_module_full_backward_hook(lambda m, gi, go: seen.append(("bwd", type(m).__name__))),
        mm.register_module_parameter_registration_hook(lambda m, n, p: seen.append(("param", n))),
        mm.register_module_buffer_registration_hook(lambda m, n, b: seen.append(("buffer", n))),
        mm.register_module_module_registration_hook(lambda m, n, s: seen.append(("module", n))),
    ]
    try:
        lin = lib.nn.Linear(3, 2).double()
        model = lib.nn.Sequential(lin, lib.nn.ReLU())
        model.register_buffer("scale", lib.ones(1))
        local = []
        lin.register_forward_hook(lambda m, a, o: local.append(seen[-1]))  # runs after the global ones
        out = model(x)
        out.sum().backward()
        seen.append(("local", local))
        return seen, out.detach().numpy()
    finally:
        for h in handles:
            h.remove()


def test_global_module_hooks_match_pytorch():
    x = _rand(4, 3, seed=13).requires_grad_()
    ours, out = _hook_trace(torch, x)
    assert ("fwd", "Linear", (4, 2)) in ours and ("module", "0") in ours and ("param", "weight") in ours
    assert ours[-1] == ("local", [("fwd", "Linear", (4, 2))])
    # removed: a new module calls nothing
    before = len(ours)
    nn.Linear(2, 2)(torch.zeros(1, 2))
    assert len(ours) == before
    pt = pytest.importorskip("torch")
    theirs, tout = _hook_trace(pt, _to_torch(pt, x).requires_grad_())
    assert ours == theirs
    assert out.shape == tout.shape


# ---- Muon ------------------------------------------------------------------------------------

def _matrix_params(lib, dtype="float64"):
    rng = np.random.default_rng(1)
    return [lib.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in [(4, 3), (3, 6), (5, 5)]]


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw",
                                         "momentum": 0.3}, {"lr": 0.05, "weight_decay": 0.0, "ns_steps": 3}])
def test_muon_equals_pytorch(kwargs):
    pt = pytest.importorskip("torch")
    ps, tps = _matrix_params(torch), _matrix_params(pt)
    ours = _run_steps(torch, ps, torch.optim.Muon(ps, **kwargs))
    theirs = _run_steps(pt, tps, pt.optim.Muon(tps, **kwargs))
    for a, b in zip(ours, theirs):  # the bfloat16 Newton-Schulz rounds as PyTorch's does
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_muon_orthogonalizes_and_compiles():
    from graphc.optim.muon import _zeropower_via_newtonschulz
    g = _rand(6, 10, seed=14)
    o = _zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7).double()
    sv = np.linalg.svd(o.numpy(), compute_uv=False)
    assert o.dtype is torch.float64 and np.all((sv > 0.6) & (sv < 1.25))  # Muon's quintic: singular values ~1
    results = []
    for compiled in (False, True):
        ps = _matrix_params(torch)
        opt = torch.optim.Muon(ps, lr=0.02)

        def step():
            opt.zero_grad()
            loss = sum((p * p * p).sum() for p in ps)
            loss.backward()
            opt.step()
            return loss.detach()
        f = torch.compile(step, fullgraph=True) if compiled else step
        [f() for _ in range(3)]
        results.append([p.detach().numpy().copy() for p in ps])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Muon only supports 2D parameters whereas we found a parameter with size"):
        torch.optim.Muon([torch.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="Adjust learning rate function cosine is not supported"):
        torch.optim.Muon(ps, adjust_lr_fn="cosine")


# ---- torch.func.rearrange --------------------------------------------------------------------

REARRANGE_CASES = [("b h w c -> b c h w", {}), ("b h w c -> (b h) w c", {}),
                   ("b (h1 h) (w1 w) c -> (b h1 w1) h w c", {"h1": 2, "w1": 2}),
                   ("b (h h1) (w w1) c -> b h w (c h1 w1)", {"h1": 2, "w1": 5}), ("b ... c -> c b ...", {}),
                   ("b ... c -> (... b) c", {}), ("b h w c -> b 1 h w c () ", {}), ("... -> ...", {}),
                   ("b h w c -> h (b w) c", {})]


def test_rearrange_equals_pytorch_and_einops_semantics():
    from graphc.func import rearrange
    x = _rand(4, 6, 10, 3, seed=15)
    assert rearrange(x, "b h w c -> b c h w").shape == (4, 3, 6, 10)
    assert torch.equal(rearrange(x, "b (h1 h) w c -> b h1 h w c", h1=2), x.reshape(4, 2, 3, 10, 3))
    assert torch.equal(rearrange(_rand(1, 6, 1, seed=1), "1 h () -> h 1"), _rand(1, 6, 1, seed=1).reshape(6, 1))
    stacked = rearrange([x[0], x[1]], "n h w c -> h (n w) c")
    assert torch.equal(stacked[:, 10:], x[1])
    f = lambda t: rearrange(t, "b (h h1) w c -> (b h1) w (h c)", h1=3)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x[:2, :, :2].contiguous().requires_grad_(),))
    assert torch.equal(torch.compile(f, fullgraph=True)(x), f(x))
    batched = torch.func.vmap(lambda t: rearrange(t, "h w c -> c (h w)"))(x)
    assert torch.equal(batched, x.permute(0, 3, 1, 2).reshape(4, 3, 60))
    for pattern, kwargs, err, msg in (
            ("b h w -> b h", {}, ValueError, r"Identifiers only on one side of rearrange expression"),
            ("b h w c -> b (h w c)", {"q": 2}, ValueError, r"Identifiers not found in rearrange expression: \{'q'\}"),
            ("b h w c x -> b h w c x", {}, ValueError, r"Number of dimensions in pattern \(5\) must be equal to"),
            ("b h w c -> 2 b h w c", {}, ValueError, "rearrange only supports unnamed axes of size 1"),
            ("b h w c", {}, ValueError, "Pattern must contain a single '->' separator"),
            ("b h w c -> b h w c", {"h": 3.0}, TypeError, "rearrange axis lengths must be integers"),
            ("b (h1 h) w c -> b h1 h w c", {"h1": 4}, ValueError, "Shape mismatch: dimension 1 of size 6")):
        with pytest.raises(err, match=msg):
            rearrange(x, pattern, **kwargs)
    pt = pytest.importorskip("torch")
    from torch.func import rearrange as theirs
    for pattern, kwargs in REARRANGE_CASES:
        assert rearrange(x, pattern, **kwargs).tolist() == theirs(_to_torch(pt, x), pattern, **kwargs).tolist(), pattern


# ---- linear_cross_entropy ----------------------------------------------------------------------

LCE_CASES = [dict(), dict(reduction="sum", label_smoothing=0.1), dict(reduction="none", ignore_index=2),
             dict(bias=True, weight=True), dict(out_features=(3,), bias=True), dict(probabilities=True)]


@pytest.mark.parametrize("case", LCE_CASES)
def test_linear_cross_entropy_is_linear_then_cross_entropy(case):
    case = dict(case)
    out_features = case.pop("out_features", ())
    probabilities = case.pop("probabilities", False)
    bias, class_weight = case.pop("bias", False), case.pop("weight", False)
    torch.manual_seed(3)
    loss_fn = nn.LinearCrossEntropyLoss(6, 5, out_features=out_features, bias=bias, dtype=torch.float64,
                                        weight=_rand(5, seed=16).abs() if class_weight else None, **case)
    x = _rand(7, 6, seed=17).requires_grad_()
    if probabilities:
        target = _rand(7, 5, seed=18).softmax(-1)
    else:
        target = torch.tensor(np.random.default_rng(19).integers(0, 5, (7, *out_features)))
    loss = loss_fn(x, target)
    logits = loss_fn.linear(x).reshape(7, 5, *out_features)
    expected = F.cross_entropy(logits, target, weight=loss_fn.weight, ignore_index=case.get("ignore_index", -100),
                               reduction=case.get("reduction", "mean"), label_smoothing=case.get("label_smoothing", 0.0))
    assert torch.allclose(loss, expected, atol=1e-14)
    pt = pytest.importorskip("torch")
    theirs = pt.nn.LinearCrossEntropyLoss(6, 5, out_features=out_features, bias=bias, dtype=pt.float64,
                                          weight=_to_torch(pt, loss_fn.weight) if class_weight else None, **case)
    _copy_into(pt, loss_fn, theirs)
    assert str(theirs) == str(loss_fn)
    tx = _to_torch(pt, x).requires_grad_()
    tloss = theirs(tx, _to_torch(pt, target))
    np.testing.assert_allclose(loss.detach().numpy(), tloss.detach().numpy(), atol=1e-13)
    loss.sum().backward()
    tloss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(loss_fn.linear.weight.grad.numpy(), theirs.linear.weight.grad.numpy(), atol=1e-13)


def test_linear_cross_entropy_options_and_errors():
    opts = nn.LinearCrossEntropyOptions(batch_chunk_size=4, chunking_method=None)
    x, w, y = _rand(8, 6, seed=20), _rand(5, 6, seed=21), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    assert torch.allclose(F.linear_cross_entropy(x, w, y, options=opts), F.cross_entropy(x @ w.T, y), atol=1e-14)
    with pytest.warns(UserWarning, match="linear_cross_entropy: ``options`` ignored"):
        F.linear_cross_entropy(x, w, y, label_smoothing=0.2, options=opts)
    for kwargs, msg in (({"acc_policy": "fast"}, "invalid acc_policy: 'fast'"),
                        ({"chunking_method": "square"}, "invalid chunking_method: 'square'"),
                        ({"batch_chunk_size": 0}, "batch_chunk_size must be positive int or None, got 0"),
                        ({"acc_dtype": torch.int32}, "acc_dtype must be one of")):
        with pytest.raises(ValueError, match=msg):
            nn.LinearCrossEntropyOptions(**kwargs)
    with pytest.raises(RuntimeError, match="expected equal input and linear_weight last dimensions"):
        F.linear_cross_entropy(x, w[:, :5], y)
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified when target contains probabilities"):
        F.linear_cross_entropy(x, w, _rand(8, 5).softmax(-1), ignore_index=1)
    with pytest.raises(RuntimeError, match=r"expected linear_bias shape \(5,\), got \(4,\)"):
        F.linear_cross_entropy(x, w, y, linear_bias=torch.zeros(4, dtype=torch.float64))


def test_readme_snippet_runs(capsys):
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("## Lazy modules, model averaging", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (the repository's own README)
    out = capsys.readouterr().out
    assert "Conv2d(3, 8, kernel_size=(3, 3)" in out and " 3 graphc.Size([4, 9, 48])" in out


# ---- autograd.forward_ad ---------------------------------------------------------------------

def _fwd_model(lib, x):
    F_ = lib.nn.functional
    h = F_.conv2d(x, lib.ones(2, 3, 2, 2, dtype=lib.float64) * 0.1, padding=1)
    h = F_.gelu(h).flatten(1)
    h = F_.log_softmax(h @ lib.linspace(-1, 1, h.shape[1] * 4, dtype=lib.float64).reshape(h.shape[1], 4), -1)
    return (h * h.detach().argmax(-1, keepdim=True)).tanh() + h.max(-1, keepdim=True).values.exp()


def test_forward_ad_gives_the_jvp():
    import graphc.autograd.forward_ad as fwAD
    x, t = _rand(2, 3, 4, 4, seed=22), _rand(2, 3, 4, 4, seed=23)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, t)
        y = _fwd_model(torch, dual)
        primal, tangent = fwAD.unpack_dual(y)
        assert fwAD.unpack_dual(x).tangent is None and fwAD.unpack_dual(y.argmax(-1)).tangent is None
        z = dual.clone()
        z.mul_(3)  # an in-place op carries the tangent over
        assert torch.allclose(fwAD.unpack_dual(z).tangent, 3 * t)
    assert fwAD.unpack_dual(y).tangent is None  # the level is closed
    value, expected = torch.func.jvp(lambda a: _fwd_model(torch, a), (x,), (t,))
    assert torch.allclose(primal, value, atol=1e-12) and torch.allclose(tangent, expected, atol=1e-10)
    with pytest.raises(RuntimeError, match="no level exists, make sure to enter_dual_level\\(\\) first"):
        fwAD.make_dual(x, t)
    with fwAD.dual_level():
        with pytest.raises(ValueError, match="Expected primal to be floating point or complex, but got"):
            fwAD.make_dual(torch.arange(3), torch.zeros(3))
        with pytest.raises(RuntimeError, match="forward gradient that has a different size"):
            fwAD.make_dual(x, t[0])
        # forward and reverse mode together: the dual still has x's autograd history
        w = x.clone().requires_grad_()
        out = (fwAD.make_dual(w, t) ** 2).sum()
        out.backward()
        assert torch.allclose(w.grad, 2 * x) and torch.allclose(fwAD.unpack_dual(out).tangent, (2 * x * t).sum())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PyTorch's forward AD scripts its decompositions
def test_forward_ad_equals_pytorch():
    pt = pytest.importorskip("torch")
    import graphc.autograd.forward_ad as fwAD
    x, t = _rand(2, 3, 4, 4, seed=24), _rand(2, 3, 4, 4, seed=25)
    with fwAD.dual_level():
        ours = fwAD.unpack_dual(_fwd_model(torch, fwAD.make_dual(x, t)))
    with pt.autograd.forward_ad.dual_level():
        theirs = pt.autograd.forward_ad.unpack_dual(
            _fwd_model(pt, pt.autograd.forward_ad.make_dual(_to_torch(pt, x), _to_torch(pt, t))))
    np.testing.assert_allclose(ours.primal.numpy(), theirs.primal.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.tangent.numpy(), theirs.tangent.numpy(), atol=1e-10)
