"""A whole training step (zero_grad, forward, loss, backward, optimizer step) compiled into one
graph equals the same step run eagerly: losses, parameters, optimizer state and BatchNorm
statistics after 20 steps, dropout included (compiled random ops draw their keys as eager ones do)."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.compiler.api import GraphBreakError
import graphc.nn.functional as F
from train_steps import cross_entropy_step

STEPS = 20


class _LastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.1,
                                                batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.layer(x).mean(1))


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def _cnn():
    # no conv bias: BatchNorm cancels it, so its gradient is rounding noise that Adam would amplify
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


MODELS = {"mlp": (_mlp, (6,)), "cnn": (_cnn, (1, 8, 8)), "lstm": (_LastStep, (5, 4)), "transformer": (_Encoder, (5, 8))}
OPTIMIZERS = {
    "sgd_momentum": lambda p: graphc.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: graphc.optim.Adam(p, lr=0.01),
    "adamw": lambda p: graphc.optim.AdamW(p, lr=0.01, weight_decay=0.05),
    "rmsprop": lambda p: graphc.optim.RMSprop(p, lr=0.005, momentum=0.5),
}


def _data(shape, n=STEPS, batch=6):
    rng = np.random.default_rng(7)
    return [(graphc.tensor(rng.standard_normal((batch,) + shape).astype(np.float32)),
             graphc.tensor(rng.integers(0, 3, batch))) for _ in range(n)]


def _state_arrays(opt) -> list[np.ndarray]:
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            for k in sorted(opt.state[p]):
                v = opt.state[p][k]
                out.append(v.detach().numpy() if isinstance(v, graphc.Tensor) else np.asarray(v))
    return out


def _run_both(make_model, in_shape, make_opt, make_sched=None, steps=STEPS):
    graphc.manual_seed(0)
    eager_model = make_model()
    comp_model = copy.deepcopy(eager_model)
    runs = []
    for model, compiled in ((eager_model, False), (comp_model, True)):
        opt = make_opt(model.parameters())
        sched = make_sched(opt) if make_sched else None
        step = cross_entropy_step(model, opt)
        if compiled:
            step = graphc.compile(step, fullgraph=True)
        graphc.manual_seed(1)  # the same dropout masks for both runs
        losses = []
        for x, y in _data(in_shape, steps):
            losses.append(step(x, y).item())
            if sched is not None:
                sched.step()
        runs.append((model, opt, losses, step))
    return runs


def _assert_same(runs, rtol=2e-4, atol=2e-5):
    (m0, o0, l0, _), (m1, o1, l1, _) = runs
    np.testing.assert_allclose(l1, l0, rtol=rtol, atol=atol)
    for (name, a), (_, b) in zip(m0.state_dict().items(), m1.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for a, b in zip(_state_arrays(o0), _state_arrays(o1)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    assert len(_state_arrays(o1)) == len(_state_arrays(o0)) > 0


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_mlp_whole_step_equals_eager(opt):
    runs = _run_both(*MODELS["mlp"], OPTIMIZERS[opt])
    _assert_same(runs)
    # the first step creates the optimizer's state: one recompile, then one graph for all steps
    assert runs[1][3].recompiles == 1


# (The attention's key bias gets a gradient that is rounding noise, softmax being shift
# invariant: Adam-like optimizers turn noise into full steps, so the Transformer runs SGD.)
@pytest.mark.parametrize("model, opt", [("cnn", "sgd_momentum"), ("cnn", "adam"), ("lstm", "rmsprop"),
                                        ("transformer", "sgd_momentum")])
def test_models_whole_step_equals_eager(model, opt):
    _assert_same(_run_both(*MODELS[model], OPTIMIZERS[opt]))


def test_a_scheduler_changing_lr_and_momentum_does_not_recompile():
    def sched(opt):
        return graphc.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=STEPS + 1)
    runs = _run_both(*MODELS["mlp"], OPTIMIZERS["sgd_momentum"], sched)
    _assert_same(runs)
    assert runs[1][3].recompiles == 1  # the state-creating first step only


def test_every_optimizer_compiles_whole_step():
    for name in ("Adadelta", "Adagrad", "Adamax", "ASGD", "NAdam", "RAdam", "Rprop"):
        cls = getattr(graphc.optim, name)
        kwargs = {"lr": 0.01} if name not in ("Adadelta",) else {}
        _assert_same(_run_both(*MODELS["mlp"], lambda p: cls(p, **kwargs), steps=6), rtol=1e-4)


def test_lbfgs_is_a_graph_break_with_a_reason():
    model = nn.Linear(3, 1)
    opt = graphc.optim.LBFGS(model.parameters())
    x, y = graphc.randn(4, 3), graphc.randn(4, 1)

    def step():
        def closure():
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            return loss
        return opt.step(closure)

    with pytest.raises(GraphBreakError, match="LBFGS"):
        graphc.compile(step, fullgraph=True)()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = model.weight.detach().numpy().copy()
        graphc.compile(step)()  # runs eagerly
    assert not np.array_equal(model.weight.detach().numpy(), before)


def test_gradients_accumulate_and_grad_is_written_back():
    graphc.manual_seed(0)
    lin = nn.Linear(3, 2)
    twin = copy.deepcopy(lin)
    x = graphc.randn(4, 3)

    def accumulate(m, x):
        for _ in range(2):  # no zero_grad: gradients add up across backward calls and steps
            m(x).pow(2).sum().backward()

    compiled = graphc.compile(accumulate, fullgraph=True)
    for _ in range(2):
        accumulate(lin, x)
        compiled(twin, x)
    for p, q in zip(lin.parameters(), twin.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-5)


def test_backward_twice_without_retain_graph_raises_as_eagerly():
    lin = nn.Linear(3, 1)
    x = graphc.randn(2, 3)

    def twice(retain):
        loss = lin(x).sum()
        loss.backward(retain_graph=retain)
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        twice(False)
    lin.zero_grad()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        graphc.compile(twice)(False)
    lin.zero_grad()
    twice(True)
    expected = lin.weight.grad.numpy().copy()
    lin.zero_grad()
    graphc.compile(twice, fullgraph=True)(True)
    np.testing.assert_allclose(lin.weight.grad.numpy(), expected, rtol=1e-6)


def test_tensor_hooks_break_the_graph_with_a_reason():
    lin = nn.Linear(3, 1)
    lin.weight.register_hook(lambda g: g * 2)

    def step(x):
        lin(x).sum().backward()

    with pytest.raises(GraphBreakError, match="hooks"):
        graphc.compile(step, fullgraph=True)(graphc.randn(2, 3))


def test_module_backward_hooks_break_with_their_reason():
    lin = nn.Linear(3, 1)
    lin.register_full_backward_hook(lambda m, gi, go: None)
    with pytest.raises(GraphBreakError, match="backward hooks"):
        graphc.compile(lambda x: lin(x).sum().backward(), fullgraph=True)(graphc.randn(2, 3))


def test_custom_function_backward_inside_a_compiled_step_is_its_own():
    class Twice(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3  # deliberately not mul's VJP: the user's backward must be the one that runs

    x = graphc.randn(3, requires_grad=True)
    graphc.compile(lambda x: Twice.apply(x).sum().backward(), fullgraph=True)(x)
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0, np.float32))


def test_outputs_computed_under_no_grad_in_one_fused_kernel_stay_distinct():
    # values detached inside a differentiated function (optimizer updates are) and fused into one
    # kernel must each come back in an array of their own
    def f(a, b, c, k):
        with graphc.no_grad():
            return a + k * a, b + k * b, c + k * c

    xs = [graphc.randn(4, requires_grad=True) for _ in range(3)]
    k = graphc.tensor(0.5, dtype=graphc.float64)
    outs = graphc.compile(f)(*xs, k)
    for x, o in zip(xs, outs):
        np.testing.assert_allclose(o.numpy(), x.detach().numpy() * 1.5, rtol=1e-6)


def test_adam_lerp_branch_follows_beta1_with_a_guard():
    """A traced Adam update computes one of lerp's two formulas (the one PyTorch picks for the
    current beta1); a scheduler moving beta1 across 0.5 recompiles, saying why, and stays equal
    to eager."""
    torch = graphc

    def run(compiled):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
        opt = torch.optim.Adam(model.parameters(), lr=0.05)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.detach()

        fn = torch.compile(step, fullgraph=True) if compiled else step
        x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
        losses = []
        for i in range(6):
            if i == 3:
                opt.param_groups[0]["betas"] = (0.3, 0.999)  # lerp weight 0.7: the other formula
            losses.append(float(fn(x, y)))
        return losses, [p.detach().numpy().copy() for p in model.parameters()], fn

    want, want_params, _ = run(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, got_params, fn = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for g, w in zip(got_params, want_params):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    assert fn.recompiles == 2  # the optimizer state's creation, then beta1's branch
    assert any("betas[0] moved across a branch" in h for h in fn.history), fn.history
