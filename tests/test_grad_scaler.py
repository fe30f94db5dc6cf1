"""graphc.amp.GradScaler: float16 training that underflows without scaling converges with it,
inf/NaN skips exactly one step and backs the scale off, growth, state_dict, misuse errors, every
optimizer, clipping between unscale_ and step, compiled code, and torch.amp.GradScaler("cpu")."""
from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc import nn
from graphc.amp import GradScaler

TINY = 1e-8  # makes the loss's gradients fall below float16's smallest subnormal (6e-8)


def _regression(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    w_true = rng.standard_normal((8, 4)).astype(np.float32)
    return graphc.tensor(x), graphc.tensor(x @ w_true)


def _train_fp16(scaler: GradScaler | None, steps: int = 150) -> tuple[float, list]:
    graphc.manual_seed(0)
    x, y = _regression()
    model = nn.Linear(8, 4)
    opt = graphc.optim.Adam(model.parameters(), lr=0.05)
    grads = []
    for _ in range(steps):
        opt.zero_grad()
        with graphc.autocast("cpu", dtype=graphc.float16):
            loss = F.mse_loss(model(x), y) * TINY
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        grads.append(float(model.weight.grad.abs().max()))
    with graphc.no_grad():
        return float(F.mse_loss(model(x), y)), grads


def test_float16_gradients_underflow_without_scaling_and_converge_with_it():
    with graphc.no_grad():
        start = float(F.mse_loss(nn.Linear(8, 4)(_regression()[0]), _regression()[1]))
    loss_plain, grads_plain = _train_fp16(None)
    loss_scaled, grads_scaled = _train_fp16(GradScaler("cpu"))
    assert max(grads_plain) == 0.0, "the float16 gradients flush to zero without scaling"
    assert loss_plain > 0.5 * start
    assert min(grads_scaled[:5]) > 0 and loss_scaled < 1e-2 * start


def _setup(opt_cls=graphc.optim.SGD, kw=None):
    graphc.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    return model, opt_cls(model.parameters(), **({"lr": 0.1, "momentum": 0.9} if kw is None else kw))


def _batch(i: int):
    g = np.random.default_rng(i)
    return graphc.tensor(g.standard_normal((6, 3)).astype(np.float32)), graphc.tensor(
        g.standard_normal((6, 2)).astype(np.float32))


def _snapshot(model, opt):
    return [p.detach().clone() for p in model.parameters()], copy.deepcopy(opt.state_dict())


def _same(a, b) -> bool:
    if isinstance(a, graphc.Tensor):
        return a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_an_inf_gradient_skips_exactly_one_step_and_halves_the_scale():
    model, opt = _setup()
    scaler = GradScaler("cpu", init_scale=1024.0)
    for i in range(6):
        opt.zero_grad()
        x, y = _batch(i)
        scaler.scale(F.mse_loss(model(x), y)).backward()
        if i == 3:
            model[0].weight.grad[0, 0] = float("inf")
            before = _snapshot(model, opt)
            scaler.step(opt)
            assert _same(_snapshot(model, opt), before), "parameters and optimizer state unchanged"
            scaler.update()
            assert scaler.get_scale() == 512.0
            continue
        before = _snapshot(model, opt)
        scaler.step(opt)
        scaler.update()
        assert not _same(_snapshot(model, opt)[0], before[0])
    assert scaler.get_scale() == 512.0 and scaler._get_growth_tracker() == 2
    opt.zero_grad()
    scaler.scale(F.mse_loss(model(_batch(9)[0]), _batch(9)[1])).backward()
    model[2].bias.grad[0] = float("nan")
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 256.0 and scaler._get_growth_tracker() == 0


def test_the_scale_grows_every_growth_interval_steps():
    model, opt = _setup()
    scaler = GradScaler("cpu", init_scale=8.0, growth_factor=4.0, backoff_factor=0.25, growth_interval=3)
    scales = []
    for i in range(7):
        opt.zero_grad()
        scaler.scale(F.mse_loss(model(_batch(i)[0]), _batch(i)[1])).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    assert scales == [8.0, 8.0, 32.0, 32.0, 32.0, 128.0, 128.0]
    scaler.update(new_scale=2.0)  # no step since the last update: allowed with new_scale
    assert scaler.get_scale() == 2.0
    scaler.update(graphc.tensor([5.0]))
    assert scaler.get_scale() == 5.0


def _scaled_run(opt_cls, kw, scaler: GradScaler | None, clip: float | None = None, steps: int = 4):
    model, opt = _setup(opt_cls, kw)
    for i in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(_batch(i)[0]), _batch(i)[1])
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
    return [p.detach().numpy().copy() for p in model.parameters()]


OPTIMIZERS = [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01}), ("AdamW", {"lr": 0.01}),
              ("Adadelta", {}), ("Adagrad", {"lr": 0.1}), ("Adamax", {"lr": 0.01}), ("ASGD", {"lr": 0.01}),
              ("NAdam", {"lr": 0.01}), ("RAdam", {"lr": 0.01}), ("RMSprop", {"lr": 0.01}), ("Rprop", {"lr": 0.01})]


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_every_optimizer_steps_as_without_scaling(name, kw):
    cls = getattr(graphc.optim, name)
    # a power-of-two scale is undone exactly: the same parameters as an unscaled run
    want = _scaled_run(cls, kw, None)
    got = _scaled_run(cls, kw, GradScaler("cpu", init_scale=2.0 ** 12))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_lbfgs_needs_a_closure_which_the_scaler_refuses():
    model, _ = _setup()
    opt = graphc.optim.LBFGS(model.parameters())
    scaler = GradScaler("cpu")
    scaler.scale(F.mse_loss(model(_batch(0)[0]), _batch(0)[1])).backward()
    with pytest.raises(RuntimeError, match="Closure use is not currently supported if GradScaler is enabled."):
        scaler.step(opt, closure=lambda: None)


def test_clip_grad_norm_between_unscale_and_step():
    want = _scaled_run(graphc.optim.SGD, {"lr": 0.1}, None, clip=0.05)
    got = _scaled_run(graphc.optim.SGD, {"lr": 0.1}, GradScaler("cpu", init_scale=2.0 ** 10), clip=0.05)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_state_dict_round_trip_and_pickling():
    model, opt = _setup()
    scaler = GradScaler("cpu", init_scale=64.0, growth_interval=5)
    for i in range(3):
        opt.zero_grad()
        scaler.scale(F.mse_loss(model(_batch(i)[0]), _batch(i)[1])).backward()
        scaler.step(opt)
        scaler.update()
    sd = scaler.state_dict()
    assert sd == {"scale": 64.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 5,
                  "_growth_tracker": 3}
    fresh = GradScaler("cpu")
    fresh.load_state_dict(sd)
    assert fresh.state_dict() == sd and fresh.get_scale() == 64.0
    clone = pickle.loads(pickle.dumps(scaler))
    assert clone.state_dict() == sd
    with pytest.raises(RuntimeError, match="The source state dict is empty"):
        fresh.load_state_dict({})
    off = GradScaler("cpu", enabled=False)
    assert off.state_dict() == {} and off.get_scale() == 1.0 and not off.is_enabled()


def test_misuse_raises_pytorchs_errors():
    model, opt = _setup()
    scaler = GradScaler("cpu")
    with pytest.raises(AssertionError, match="Attempted update but _scale is None"):
        scaler.update()
    with pytest.raises(AssertionError, match="Attempted unscale_ but _scale is None"):
        scaler.unscale_(opt)
    scaler.scale(F.mse_loss(model(_batch(0)[0]), _batch(0)[1])).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this optimizer since the last "):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) is being called after step\(\)."):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)."):
        scaler.step(opt)
    scaler.update()
    with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
        scaler.scale(3.0)
    with pytest.raises(AssertionError, match="The growth factor must be > 1.0."):
        GradScaler("cpu", growth_factor=1.0)
    half = nn.Linear(2, 1).half()
    hopt = graphc.optim.SGD(half.parameters(), lr=0.1)
    scaler.scale(half(graphc.ones(1, 2, dtype=graphc.float16)).sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
        scaler.unscale_(hopt)
    outs = scaler.scale([graphc.ones(2), (graphc.ones(1),)])
    assert float(outs[0][0]) == scaler.get_scale() and isinstance(outs[1], tuple)


def test_spellings():
    with pytest.warns(FutureWarning, match=r"`torch.cpu.amp.GradScaler\(args...\)` is deprecated"):
        s = graphc.cpu.amp.GradScaler(init_scale=4.0)
    assert s.is_enabled() and s.get_scale() == 4.0
    assert graphc.amp.GradScaler is GradScaler


def test_compiled_forward_backward_with_the_scaler_outside():
    model, opt = _setup()
    ref_model, ref_opt = _setup()
    scaler, ref_scaler = GradScaler("cpu", init_scale=256.0), GradScaler("cpu", init_scale=256.0)

    @graphc.compile
    def fwd_bwd(x, y, s):
        loss = F.mse_loss(model(x), y)
        (loss * s).backward()
        return loss.detach()

    for i in range(3):
        x, y = _batch(i)
        opt.zero_grad()
        scaler.scale(graphc.ones(()))  # initializes the scale on first use
        fwd_bwd(x, y, scaler._scale)
        scaler.step(opt)
        scaler.update()
        ref_opt.zero_grad()
        ref_scaler.scale(F.mse_loss(ref_model(x), y)).backward()
        ref_scaler.step(ref_opt)
        ref_scaler.update()
    for a, b in zip(model.parameters(), ref_model.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opt_name,kw", [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01})])
def test_a_whole_scaled_training_step_compiles_into_one_graph(opt_name, kw):
    # scale, backward, unscale_, step (skipped on inf/NaN without a branch) and update
    runs = []
    for compiled in (False, True):
        model, opt = _setup(getattr(graphc.optim, opt_name), kw)
        scaler = GradScaler("cpu", init_scale=256.0, growth_interval=2)

        def step(x, y):
            opt.zero_grad()
            with graphc.autocast("cpu", dtype=graphc.float16):
                loss = F.mse_loss(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)  # (clip_grad_norm_ here breaks a compiled graph: it reads the norm)
            scaler.step(opt)
            scaler.update()
            return loss.detach()

        fn = graphc.compile(step, fullgraph=True) if compiled else step
        history = []
        for i in range(6):
            x, y = _batch(i)
            if i == 2:
                x = x.clone()
                x[0, 0] = float("inf")  # gradients hold inf/NaN: this step is skipped
            before = _snapshot(model, opt)
            fn(x, y)
            if i == 2:
                assert _same(_snapshot(model, opt), before), "a skipped step leaves parameters and state alone"
            history.append(scaler.state_dict())
        runs.append((history, [p.detach().numpy().copy() for p in model.parameters()], fn))
        if compiled:  # the factors are in the compiled code: changing one recompiles
            n = fn.recompiles
            scaler.set_growth_factor(4.0)
            fn(*_batch(7))
            assert fn.recompiles == n + 1 and "growth_factor" in fn.history[-1]
    (eager_hist, eager_params, _), (comp_hist, comp_params, fn) = runs
    assert comp_hist == eager_hist
    assert [h["scale"] for h in eager_hist] == [256.0, 512.0, 256.0, 256.0, 512.0, 512.0]
    for a, b in zip(comp_params, eager_params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert fn.recompiles <= 2  # the first step creates the optimizer's state; the factor changed


def test_update_outside_the_compiled_step_says_where_to_call_it():
    model, opt = _setup()
    scaler = GradScaler("cpu")

    @graphc.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        scaler.scale(F.mse_loss(model(x), y)).backward()
        scaler.step(opt)

    step(*_batch(0))
    with pytest.raises(AssertionError, match="call update\\(\\) in the same function"):
        scaler.update()


def test_matches_torch_grad_scaler():
    torch = pytest.importorskip("torch")
    scaler = GradScaler("cpu", init_scale=16.0, growth_interval=2)
    tscaler = torch.amp.GradScaler("cpu", init_scale=16.0, growth_interval=2)
    p = nn.Parameter(graphc.zeros(3))
    tp = torch.nn.Parameter(torch.zeros(3))
    opt, topt = graphc.optim.SGD([p], lr=0.5), torch.optim.SGD([tp], lr=0.5)
    bad = {2: float("inf"), 5: float("nan")}
    for i in range(8):
        g = [1.0 * i, -2.0, 0.5]
        for prm, sc, o, lib in ((p, scaler, opt, graphc), (tp, tscaler, topt, torch)):
            o.zero_grad()
            sc.scale((prm * lib.tensor(g)).sum()).backward()
            if i in bad:
                with lib.no_grad():
                    prm.grad[1] = bad[i]
            sc.unscale_(o)
            sc.step(o)
            sc.update()
        assert scaler.state_dict() == tscaler.state_dict(), i
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-6)


@pytest.mark.cuda
def test_cuda_grad_scaler_with_float16_autocast(cuda):
    graphc.manual_seed(0)
    model = nn.Linear(3, 2).to(cuda)
    opt = graphc.optim.SGD(model.parameters(), lr=0.1)
    scaler = GradScaler("cuda", init_scale=128.0)
    assert scaler.is_enabled()
    x, y = graphc.randn(4, 3, device=cuda), graphc.randn(4, 2, device=cuda)
    for i in range(3):
        opt.zero_grad()
        with graphc.autocast("cuda"):
            out = model(x)
            loss = F.mse_loss(out, y)
        assert out.dtype is graphc.float16 and loss.dtype is graphc.float32
        scaler.scale(loss).backward()
        assert model.weight.grad.dtype is graphc.float32 and model.weight.grad.device == cuda
        if i == 1:
            model.bias.grad[0] = float("inf")
            before = model.weight.detach().clone()
        scaler.step(opt)
        if i == 1:
            assert bool((model.weight.detach() == before).all())
        scaler.update()
    assert scaler.get_scale() == 64.0 and scaler._scale.device == cuda
