"""graphc.optim optimizers: update rules, param groups, state dicts, errors, transactional steps.

Every update rule is checked against an independent numpy implementation of the algorithm as
PyTorch documents it (the pseudo-code in each optimizer's docstring), written here in float64.
Error messages are PyTorch's (checked against PyTorch 2.13 by hand).
"""
import copy
import math
import warnings
from functools import partial

import numpy as np
import pytest

import graphc as torch
from graphc import optim
from graphc.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

RNG = np.random.default_rng(1234)
THETA0 = [RNG.standard_normal((3, 2)), RNG.standard_normal(4)]
GRADS = [[RNG.standard_normal((3, 2)), RNG.standard_normal(4)] for _ in range(5)]


def make_params(dtype=torch.float64):
    return [torch.tensor(t, dtype=dtype, requires_grad=True) for t in THETA0]


def run(opt_cls, kwargs, dtype=torch.float64, grads=GRADS):
    params = make_params(dtype)
    opt = opt_cls(params, **kwargs)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    return [p.detach().numpy().astype(np.float64) for p in params], opt


# ---- reference implementations (docs pseudo-code, float64 numpy) --------------------------------

def decayed(theta, g, weight_decay, maximize, decoupled_lr=None):
    """theta and g as every algorithm first transforms them: g negated when maximizing, then L2 decay
    added to g or, given the lr, decoupled decay of theta (AdamW's)."""
    g = -g if maximize else g
    if weight_decay and decoupled_lr is not None:
        return theta - decoupled_lr * weight_decay * theta, g
    if weight_decay:
        return theta, g + weight_decay * theta
    return theta, g


def moments(m, v, g, betas):
    """Adam's running averages of the gradient and of its square."""
    b1, b2 = betas
    return b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g


def ref_sgd(theta, grads, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    b = None
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize)
        if momentum:
            b = g.copy() if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


def ref_adam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False, decoupled=False):
    m = v = vmax = np.zeros_like(theta)
    b1, b2 = betas
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize, lr if decoupled else None)
        m, v = moments(m, v, g, betas)
        mhat = m / (1 - b1 ** t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            vhat = vmax / (1 - b2 ** t)
        else:
            vhat = v / (1 - b2 ** t)
        theta = theta - lr * mhat / (np.sqrt(vhat) + eps)
    return theta


def ref_rmsprop(theta, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    v = gave = b = np.zeros_like(theta)
    for g in grads:
        theta, g = decayed(theta, g, weight_decay, maximize)
        v = alpha * v + (1 - alpha) * g * g
        vt = v
        if centered:
            gave = alpha * gave + (1 - alpha) * g
            vt = v - gave * gave
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(vt) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (np.sqrt(vt) + eps)
    return theta


def ref_adagrad(theta, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                maximize=False):
    s = np.full_like(theta, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        theta = theta - clr * g / (np.sqrt(s) + eps)
    return theta


def ref_adadelta(theta, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    v = u = np.zeros_like(theta)
    for g in grads:
        theta, g = decayed(theta, g, weight_decay, maximize)
        v = rho * v + (1 - rho) * g * g
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx * dx
        theta = theta - lr * dx
    return theta


def ref_adamax(theta, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    m = u = np.zeros_like(theta)
    b1, b2 = betas
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - lr * m / ((1 - b1 ** t) * u)
    return theta


def ref_nadam(theta, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False):
    m = v = np.zeros_like(theta)
    b1, b2 = betas
    mus = [None] + [b1 * (1 - 0.5 * 0.96 ** (i * momentum_decay)) for i in range(1, len(grads) + 2)]
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize, lr if decoupled_weight_decay else None)
        m, v = moments(m, v, g, betas)
        mhat = mus[t + 1] * m / (1 - np.prod(mus[1:t + 2])) + (1 - mus[t]) * g / (1 - np.prod(mus[1:t + 1]))
        vhat = v / (1 - b2 ** t)
        theta = theta - lr * mhat / (np.sqrt(vhat) + eps)
    return theta


def ref_radam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
              maximize=False):
    m = v = np.zeros_like(theta)
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize, lr if decoupled_weight_decay else None)
        m, v = moments(m, v, g, betas)
        mhat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t > 5:
            lt = np.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
            rt = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            theta = theta - lr * mhat * rt * lt
        else:
            theta = theta - lr * mhat
    return theta


def ref_rprop(theta, grads, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    theta = theta.copy()
    prev = np.zeros_like(theta)
    eta = np.full_like(theta, lr)
    for g in grads:
        g = -g if maximize else g.copy()
        for i in np.ndindex(theta.shape):
            if g[i] * prev[i] > 0:
                eta[i] = min(eta[i] * etas[1], step_sizes[1])
            elif g[i] * prev[i] < 0:
                eta[i] = max(eta[i] * etas[0], step_sizes[0])
                g[i] = 0
            else:
                eta[i] = min(max(eta[i], step_sizes[0]), step_sizes[1])
            theta[i] -= np.sign(g[i]) * eta[i]
        prev = g
    return theta


def ref_asgd(theta, grads, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False):
    eta = lr
    for t, g in enumerate(grads, 1):
        theta, g = decayed(theta, g, weight_decay, maximize)
        theta = theta * (1 - lambd * eta) - eta * g
        eta = lr / (1 + lambd * lr * t) ** alpha
    return theta


CASES = [
    (optim.SGD, ref_sgd, {}),
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.8, nesterov=True, maximize=True)),
    (optim.Adam, ref_adam, {}),
    (optim.Adam, ref_adam, dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6)),
    (optim.Adam, ref_adam, dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    (optim.Adam, ref_adam, dict(lr=0.05, maximize=True)),
    (optim.RMSprop, ref_rmsprop, {}),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.5, centered=True)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, momentum=0.5, weight_decay=0.1, centered=True, maximize=True)),
    (optim.Adagrad, ref_adagrad, {}),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5, weight_decay=0.1)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, maximize=True, eps=1e-3)),
    (optim.Adadelta, ref_adadelta, {}),
    (optim.Adadelta, ref_adadelta, dict(lr=0.5, rho=0.5, weight_decay=0.1, maximize=True)),
    (optim.Adamax, ref_adamax, {}),
    (optim.Adamax, ref_adamax, dict(lr=0.05, weight_decay=0.1, maximize=True)),
    (optim.NAdam, ref_nadam, {}),
    (optim.NAdam, ref_nadam, dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    (optim.NAdam, ref_nadam, dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.RAdam, ref_radam, dict(lr=0.05)),
    (optim.RAdam, ref_radam, dict(lr=0.05, weight_decay=0.1, betas=(0.9, 0.5), maximize=True)),
    (optim.RAdam, ref_radam, dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.8, 0.6))),
    (optim.Rprop, ref_rprop, {}),
    (optim.Rprop, ref_rprop, dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(0.01, 0.2), maximize=True)),
    (optim.ASGD, ref_asgd, {}),
    (optim.ASGD, ref_asgd, dict(lr=0.05, lambd=0.1, alpha=0.5, t0=2, weight_decay=0.1)),
]


@pytest.mark.parametrize("opt_cls,ref,kwargs", CASES,
                         ids=[f"{c.__name__}-{'-'.join(k) or 'defaults'}" for c, _, k in CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_update_rule_matches_reference(opt_cls, ref, kwargs, dtype):
    dt = getattr(torch, dtype)
    got, opt = run(opt_cls, kwargs, dt)
    tol = 1e-12 if dtype == "float64" else 2e-5
    if dtype == "float64" and opt_cls in (optim.NAdam, optim.ASGD):
        tol = 1e-8  # their scalar state (mu_product; eta, mu) is float32, as in PyTorch
    for i, theta in enumerate(THETA0):
        expected = ref(theta, [g[i] for g in GRADS], **kwargs)
        np.testing.assert_allclose(got[i], expected, rtol=tol, atol=tol)
    for group in opt.param_groups:
        for p in group["params"]:
            assert p.dtype == dt and p.is_leaf and p.grad_fn is None
            for v in opt.state[p].values():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    assert v.dtype == dt


@pytest.mark.parametrize("kwargs", [{}, dict(lr=0.05, weight_decay=0.3, amsgrad=True), dict(lr=0.05, maximize=True)])
def test_adamw_decoupled_weight_decay(kwargs):
    got, opt = run(optim.AdamW, kwargs)
    ref_kwargs = dict(kwargs)
    ref_kwargs.setdefault("weight_decay", 1e-2)  # AdamW's default
    for i, theta in enumerate(THETA0):
        expected = ref_adam(theta, [g[i] for g in GRADS], decoupled=True, **ref_kwargs)
        np.testing.assert_allclose(got[i], expected, rtol=1e-12, atol=1e-12)
    assert opt.defaults["weight_decay"] == 1e-2 if "weight_decay" not in kwargs else True
    assert all(g["decoupled_weight_decay"] for g in opt.param_groups)
    # Adam(decoupled_weight_decay=True) is the same algorithm
    got2, _ = run(optim.Adam, dict(ref_kwargs, decoupled_weight_decay=True))
    for a, b in zip(got, got2):
        np.testing.assert_array_equal(a, b)


def test_defaults_match_pytorch():
    p = [torch.zeros(1, requires_grad=True)]
    assert optim.SGD(p).defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                                          maximize=False, foreach=None, differentiable=False, fused=None)
    assert optim.Adam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                                           maximize=False, foreach=None, capturable=False, differentiable=False,
                                           fused=None, decoupled_weight_decay=False)
    assert optim.AdamW(p).defaults["weight_decay"] == 1e-2
    assert optim.AdamW(p).defaults["decoupled_weight_decay"] is True
    assert optim.RMSprop(p).defaults == dict(lr=1e-2, momentum=0, alpha=0.99, eps=1e-8, centered=False,
                                              weight_decay=0, capturable=False, foreach=None, maximize=False,
                                              differentiable=False)
    assert optim.Adagrad(p).defaults == dict(lr=1e-2, lr_decay=0, eps=1e-10, weight_decay=0,
                                              initial_accumulator_value=0, foreach=None, maximize=False,
                                              differentiable=False, fused=None)
    assert optim.Adadelta(p).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False,
                                               capturable=False, foreach=None, differentiable=False)
    assert optim.LBFGS(p).defaults == dict(lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7,
                                            tolerance_change=1e-9, history_size=100, line_search_fn=None)
    assert optim.LBFGS(p, max_iter=7).defaults["max_eval"] == 8  # max_iter * 5 // 4


def test_training_loop_with_backward_decreases_loss():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(32, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert model.weight.is_leaf and model.weight.requires_grad and model.weight.grad_fn is None


def test_step_skips_params_without_grad_and_bumps_versions():
    a, b = make_params()
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = torch.ones_like(a)
    va, vb = a._version, b._version
    b0 = b.detach().numpy().copy()
    opt.step()
    assert a._version > va and b._version == vb
    np.testing.assert_array_equal(b.detach().numpy(), b0)
    assert b not in opt.state and set(opt.state[a]) == {"step", "exp_avg", "exp_avg_sq"}


def test_step_runs_without_recording_autograd():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    (p * p).sum().backward()
    opt.step()
    assert p.grad_fn is None and p.is_leaf
    assert opt.state[p]["momentum_buffer"].requires_grad is False
    np.testing.assert_allclose(p.detach().numpy(), [0.8, 1.6])


def test_closure_is_called_with_grad_enabled_and_loss_returned():
    p = torch.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    seen = []

    def closure():
        seen.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert seen == [True] and loss.item() == 2.0
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])
    assert opt.step() is None


# ---- zero_grad ------------------------------------------------------------------------------------

def test_zero_grad():
    a, b = make_params()
    opt = optim.SGD([a, b], lr=0.1)
    a.grad = torch.ones_like(a)
    b.grad = torch.ones_like(b)
    g = b.grad
    opt.zero_grad(set_to_none=False)
    assert b.grad is g and not b.grad.detach().numpy().any()
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.zero_grad()  # no grads: fine


# ---- param groups -------------------------------------------------------------------------------

def test_param_groups_options_and_defaults():
    a, b = make_params()
    c = torch.zeros(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert len(opt.param_groups) == 2
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    assert opt.param_groups[1]["params"] == [b] or opt.param_groups[1]["params"][0] is b
    assert set(opt.param_groups[0]) == set(opt.defaults) | {"params"}
    a.grad = torch.ones_like(a)
    b.grad = torch.ones_like(b)
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), THETA0[0] - 0.1)
    np.testing.assert_allclose(b.detach().numpy(), THETA0[1] - 0.5)
    assert a not in opt.state and "momentum_buffer" in opt.state[b]
    opt.add_param_group({"params": c, "weight_decay": 0.5})
    assert opt.param_groups[2]["params"][0] is c and opt.param_groups[2]["lr"] == 0.1
    assert opt.param_groups[2]["weight_decay"] == 0.5
    # changing a group's lr takes effect at the next step
    opt.param_groups[0]["lr"] = 1.0
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), THETA0[0] - 1.1)


def test_named_parameters_are_accepted():
    model = torch.nn.Linear(2, 2)
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    sd = opt.state_dict()
    assert sd["param_groups"][0]["param_names"] == ["weight", "bias"] and sd["param_groups"][0]["params"] == [0, 1]


def test_repr():
    opt = optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert repr(opt) == ("SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n    foreach: None\n"
                         "    fused: None\n    lr: 0.1\n    maximize: False\n    momentum: 0\n    nesterov: False\n"
                         "    weight_decay: 0\n)")


# ---- errors ------------------------------------------------------------------------------------------

def test_constructor_errors():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match=r"^params argument given to the optimizer should be an iterable of Tensors "
                                        r"or dicts, but got torch.FloatTensor$"):
        optim.SGD(p)
    with pytest.raises(TypeError, match="but got torch.DoubleTensor$"):
        optim.Adam(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optim.Adam([])
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optim.Adam(iter([]))
    with pytest.raises(TypeError, match="^optimizer can only optimize Tensors, but one of the params is float$"):
        optim.Adam([1.0])
    with pytest.raises(ValueError, match="^can't optimize a non-leaf Tensor$"):
        optim.Adam([p * 2])
    with pytest.raises(ValueError, match="^some parameters appear in more than one parameter group$"):
        optim.SGD([{"params": [p]}, {"params": p}], lr=0.1)
    with pytest.raises(TypeError, match="the ordering of tensors in sets will change between runs"):
        optim.SGD([{"params": {p}}])
    with pytest.raises(TypeError, match=r"^param_group must be a dict, but got <class 'list'>$"):
        optim.SGD([p]).add_param_group([torch.zeros(1)])
    with pytest.raises(ValueError, match="all optimizer params should be with/without names"):
        optim.SGD([("a", p), torch.zeros(1)])
    with pytest.warns(UserWarning, match="optimizer contains a parameter group with duplicate parameters"):
        optim.SGD([p, p])
    q = torch.zeros(1, requires_grad=True)
    q2 = q * 1
    q2.retain_grad()
    optim.SGD([q2])  # a non-leaf that retains its grad is allowed


@pytest.mark.parametrize("make,msg", [
    (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, momentum=-1), "Invalid momentum value: -1"),
    (lambda p: optim.SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.SGD(p, lr=torch.tensor([0.1, 0.2])), "Tensor lr must be 1-element"),
    (lambda p: optim.Adam(p, lr=-1e-3), "Invalid learning rate: -0.001"),
    (lambda p: optim.Adam(p, eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, 1)), "Invalid beta parameter at index 1: 1"),
    (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.Adam(p, betas=(0.9, 0)), "betas must be either both floats or both Tensors"),
    (lambda p: optim.Adam(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.Adam(p, lr=torch.tensor(0.1), foreach=True),
     "lr as a Tensor is not supported for capturable=False and foreach=True"),
    (lambda p: optim.RMSprop(p, alpha=-1), "Invalid alpha value: -1"),
    (lambda p: optim.RMSprop(p, momentum=-1), "Invalid momentum value: -1"),
    (lambda p: optim.RMSprop(p, eps=-1), "Invalid epsilon value: -1"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value: -1"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    (lambda p: optim.Adadelta(p, rho=1.1), "Invalid rho value: 1.1"),
    (lambda p: optim.Adamax(p, betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.NAdam(p, momentum_decay=-1), "Invalid momentum_decay value: -1"),
    (lambda p: optim.RAdam(p, eps=-1), "Invalid epsilon value: -1"),
    (lambda p: optim.Rprop(p, etas=(1.5, 1.2)), "Invalid eta values: 1.5, 1.2"),
    (lambda p: optim.ASGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.LBFGS(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: optim.LBFGS([{"params": p}, {"params": [torch.zeros(1)]}]),
     "LBFGS doesn't support per-parameter options (parameter groups)"),
])
def test_hyperparameter_validation(make, msg):
    with pytest.raises(ValueError) as info:
        make([torch.zeros(2, requires_grad=True)])
    assert str(info.value) == msg


def test_required_option():
    from graphc.optim.optimizer import required

    class MyOpt(optim.Optimizer):
        def __init__(self, params, lr=required):
            super().__init__(params, dict(lr=lr))

    with pytest.raises(ValueError,
                       match="^parameter group didn't specify a value of required optimization parameter lr$"):
        MyOpt([torch.zeros(1)])
    assert MyOpt([{"params": [torch.zeros(1)], "lr": 0.1}]).param_groups[0]["lr"] == 0.1
    with pytest.raises(NotImplementedError):
        MyOpt([torch.zeros(1)], lr=1.0).step()


def test_tensor_lr():
    got, _ = run(optim.SGD, dict(lr=torch.tensor(0.1, dtype=torch.float64), momentum=0.9))
    for i, theta in enumerate(THETA0):
        np.testing.assert_allclose(got[i], ref_sgd(theta, [g[i] for g in GRADS], lr=0.1, momentum=0.9), rtol=1e-12)


# ---- a failed step changes nothing ---------------------------------------------------------------------

def _snapshot(opt, params):
    state = {id(p): {k: (v.detach().numpy().copy() if isinstance(v, torch.Tensor) else v)
                     for k, v in opt.state[p].items()} for p in params if p in opt.state}
    return [p.detach().numpy().copy() for p in params], [p._version for p in params], state


def _assert_same(s1, s2):
    for a, b in zip(s1[0], s2[0]):
        np.testing.assert_array_equal(a, b)
    assert s1[1] == s2[1]
    assert s1[2].keys() == s2[2].keys()
    for k in s1[2]:
        assert s1[2][k].keys() == s2[2][k].keys()
        for name in s1[2][k]:
            np.testing.assert_array_equal(s1[2][k][name], s2[2][k][name])


FAIL_CASES = [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.SGD, dict(lr=0.1)), (optim.Adam, dict(amsgrad=True)),
              (optim.AdamW, {}), (optim.RMSprop, dict(centered=True, momentum=0.5)), (optim.Adagrad, {}),
              (optim.Adadelta, {}), (optim.Adamax, {}), (optim.NAdam, {}), (optim.RAdam, {}), (optim.Rprop, {}),
              (optim.ASGD, dict(t0=0))]


@pytest.mark.parametrize("opt_cls,kwargs", FAIL_CASES, ids=[c.__name__ for c, _ in FAIL_CASES])
@pytest.mark.parametrize("warm", [False, True])
def test_failed_step_leaves_everything_unchanged(opt_cls, kwargs, warm):
    params = make_params()
    extra = torch.zeros(5, requires_grad=True)  # listed last: the failure comes after two good updates
    opt = opt_cls([{"params": params}, {"params": [extra]}], **kwargs)
    if warm:
        for p in params + [extra]:
            p.grad = torch.ones_like(p)
        opt.step()
    before = _snapshot(opt, params + [extra])
    for p, g in zip(params, GRADS[0]):
        p.grad = torch.tensor(g)
    extra._grad = torch.ones(4)  # bypasses the .grad setter's shape check
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(5\) must match the size of tensor b \(4\)"):
        opt.step()
    _assert_same(before, _snapshot(opt, params + [extra]))
    # after fixing the grad, the step works and equals a step that never failed
    extra.grad = torch.ones(5)
    opt.step()


@pytest.mark.parametrize("opt_cls,kwargs", FAIL_CASES, ids=[c.__name__ for c, _ in FAIL_CASES])
def test_failing_closure_changes_nothing(opt_cls, kwargs):
    params = make_params()
    opt = opt_cls(params, **kwargs)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    before = _snapshot(opt, params)

    def closure():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        opt.step(closure)
    _assert_same(before, _snapshot(opt, params))


def test_grad_shape_broadcast_error_message():
    p = torch.zeros(1, requires_grad=True)
    p._grad = torch.ones(3)
    with pytest.raises(RuntimeError, match=r"^output with shape \[1\] doesn't match the broadcast shape \[3\]$"):
        optim.SGD([p], lr=0.1).step()
    assert p.item() == 0.0


def test_lbfgs_failing_closure_restores_params():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.LBFGS([p], max_iter=10)
    calls = []

    def closure():
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("boom")
        opt.zero_grad()
        loss = ((p - 3) ** 4).sum()
        loss.backward()
        return loss

    with pytest.raises(ValueError, match="boom"):
        opt.step(closure)
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, -2.0])
    assert len(opt.state) == 0


# ---- state dicts ----------------------------------------------------------------------------------------

def test_state_dict_layout_adam():
    a, b = make_params()
    c = torch.zeros(2, requires_grad=True, dtype=torch.float64)
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.1}])
    a.grad = torch.ones_like(a)
    c.grad = torch.ones_like(c)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert list(sd["state"]) == [0, 2]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    step = sd["state"][0]["step"]
    assert isinstance(step, torch.Tensor) and step.dim() == 0 and step.dtype == torch.float32 and step.item() == 1.0
    assert sd["state"][0]["exp_avg"] is opt.state[a]["exp_avg"]  # by reference, as PyTorch
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][1]["params"] == [2]
    assert sd["param_groups"][1]["lr"] == 0.1
    assert set(sd["param_groups"][0]) == set(opt.defaults) | {"params"}
    assert sd["param_groups"][0] is not opt.param_groups[0]


def test_step_dtype_follows_default_dtype():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        opt = optim.Adam([torch.zeros(2, requires_grad=True)])
        opt.param_groups[0]["params"][0].grad = torch.ones(2)
        opt.step()
        assert opt.state_dict()["state"][0]["step"].dtype == torch.float64
    finally:
        torch.set_default_dtype(old)


RESUME_CASES = [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)), (optim.Adam, dict(lr=0.05, amsgrad=True)),
                (optim.AdamW, dict(lr=0.05)), (optim.RMSprop, dict(centered=True, momentum=0.3)),
                (optim.Adagrad, dict(lr_decay=0.1)), (optim.Adadelta, dict(weight_decay=0.1)),
                (optim.Adamax, {}), (optim.NAdam, {}), (optim.RAdam, {}), (optim.Rprop, {}), (optim.ASGD, dict(t0=1))]


def _loss(params, x):
    w, b = params
    return ((x @ w).sum(1) + b[:2].sum() - 1.0).pow(2).mean() + (b ** 2).sum() * 0.1


@pytest.mark.parametrize("opt_cls,kwargs", RESUME_CASES, ids=[c.__name__ for c, _ in RESUME_CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_dict_resume_is_exact(opt_cls, kwargs, dtype):
    dt = getattr(torch, dtype)
    x = torch.tensor(RNG.standard_normal((5, 3)), dtype=dt)

    def train(params, opt, n):
        for _ in range(n):
            opt.zero_grad()
            _loss(params, x).backward()
            opt.step()

    params = make_params(dt)
    opt = opt_cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.02}], **kwargs)
    train(params, opt, 3)
    saved_params = [p.detach().clone() for p in params]
    saved = copy.deepcopy(opt.state_dict())  # what torch.save/torch.load would give
    train(params, opt, 4)

    fresh = [torch.tensor(p.numpy(), requires_grad=True) for p in saved_params]
    opt2 = opt_cls([{"params": fresh[:1]}, {"params": fresh[1:]}], **kwargs)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == 0.02 and opt2.param_groups[1]["params"][0] is fresh[1]
    train(fresh, opt2, 4)
    # PyTorch's load_state_dict casts all state but 'step' to the parameter's dtype: NAdam's
    # mu_product and ASGD's eta/mu, float32 while training, become float64 with float64 params
    exact = dtype == "float32" or opt_cls not in (optim.NAdam, optim.ASGD)
    same = np.testing.assert_array_equal if exact else partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-12)
    for p, q in zip(params, fresh):
        same(p.detach().numpy(), q.detach().numpy())
    sd1, sd2 = opt.state_dict(), opt2.state_dict()
    assert sd1["param_groups"] == sd2["param_groups"]
    for k in sd1["state"]:
        for name, v in sd1["state"][k].items():
            same(v.numpy(), sd2["state"][k][name].numpy())


def test_load_state_dict_casts_to_param_dtype_but_keeps_step():
    p = torch.zeros(3, requires_grad=True)
    opt = optim.Adam([p])
    p.grad = torch.ones(3)
    opt.step()
    q = torch.zeros(3, requires_grad=True, dtype=torch.float64)
    opt2 = optim.Adam([q])
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[q]["exp_avg"].dtype == torch.float64
    assert opt2.state[q]["step"].dtype == torch.float32
    # same dtype: shared by reference, as PyTorch's .to() is a no-op then
    r = torch.zeros(3, requires_grad=True)
    opt3 = optim.Adam([r])
    opt3.load_state_dict(opt.state_dict())
    assert opt3.state[r]["exp_avg"] is opt.state[p]["exp_avg"]


def test_load_state_dict_errors():
    p = torch.zeros(1, requires_grad=True)
    opt = optim.SGD([p])
    two_groups = optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)]}]).state_dict()
    with pytest.raises(ValueError, match="^loaded state dict has a different number of parameter groups$"):
        opt.load_state_dict(two_groups)
    bigger = optim.SGD([torch.zeros(1), torch.zeros(2)]).state_dict()
    with pytest.raises(ValueError, match="^loaded state dict contains a parameter group that doesn't match the size "
                                         "of optimizer's group$"):
        opt.load_state_dict(bigger)


def test_load_state_dict_restores_hyperparameters_and_sgd_state():
    p = torch.zeros(2, requires_grad=True)
    opt = optim.SGD([p], lr=0.3, momentum=0.5)
    p.grad = torch.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert list(sd["state"][0]) == ["momentum_buffer"]
    q = torch.zeros(2, requires_grad=True)
    opt2 = optim.SGD([q], lr=0.01)
    opt2.load_state_dict(copy.deepcopy(sd))
    assert opt2.param_groups[0]["lr"] == 0.3 and opt2.param_groups[0]["momentum"] == 0.5
    np.testing.assert_array_equal(opt2.state[q]["momentum_buffer"].numpy(), [1.0, 1.0])
    assert optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1).state_dict()["state"] == {}


def test_adagrad_state_created_at_construction():
    a, b = make_params()
    opt = optim.Adagrad([a], initial_accumulator_value=0.25)
    assert set(opt.state[a]) == {"step", "sum"}
    assert opt.state[a]["step"].item() == 0.0
    np.testing.assert_array_equal(opt.state[a]["sum"].numpy(), np.full((3, 2), 0.25))
    assert list(opt.state_dict()["state"]) == [0]
    # parameters added later get their state lazily, from the defaults
    opt.add_param_group({"params": [b], "initial_accumulator_value": 9.0})
    assert b not in opt.state
    b.grad = torch.ones_like(b)
    opt.step()
    np.testing.assert_allclose(opt.state[b]["sum"].numpy(), np.full(4, 1.25))


# ---- hooks ---------------------------------------------------------------------------------------------

def test_step_and_state_dict_hooks():
    p = torch.zeros(1, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    h2 = opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    g1 = register_optimizer_step_pre_hook(lambda o, args, kwargs: calls.append("gpre"))
    g2 = register_optimizer_step_post_hook(lambda o, args, kwargs: calls.append("gpost"))
    try:
        opt.step()
    finally:
        g1.remove()
        g2.remove()
    assert calls == ["gpre", "pre", "post", "gpost"]
    h1.remove()
    h2.remove()
    opt.step()
    assert len(calls) == 4
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    assert opt.state_dict()["extra"] == 1
    seen = []
    opt.register_load_state_dict_post_hook(lambda o: seen.append(o))
    opt.load_state_dict(optim.SGD([torch.zeros(1)], lr=0.7).state_dict())
    assert seen == [opt] and opt.param_groups[0]["lr"] == 0.7


# ---- LBFGS ---------------------------------------------------------------------------------------------

A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
B = np.array([1.0, -2.0, 0.5])


def quad_closure(opt, p, counter=None):
    a, b = torch.tensor(A), torch.tensor(B)

    def closure():
        if counter is not None:
            counter.append(1)
        opt.zero_grad()
        loss = 0.5 * (p @ (a @ p)) - b @ p
        loss.backward()
        return loss

    return closure


def ref_lbfgs(x, grad, n_iter, lr=1.0, history_size=100):
    """Fixed-step L-BFGS (two-loop recursion, H0 = s'y / y'y), as documented by minFunc/PyTorch."""
    x = x.copy()
    g = grad(x)
    S, Y = [], []
    d = t = None
    h_diag = 1.0
    for k in range(1, n_iter + 1):
        if k == 1:
            d = -g
        else:
            y, s = g - g_prev, d * t
            if y @ s > 1e-10:
                if len(S) == history_size:
                    S.pop(0)
                    Y.pop(0)
                S.append(s)
                Y.append(y)
                h_diag = (y @ s) / (y @ y)
            q = -g
            alphas = []
            for si, yi in zip(reversed(S), reversed(Y)):
                al = (si @ q) / (yi @ si)
                alphas.append(al)
                q = q - al * yi
            r = q * h_diag
            for (si, yi), al in zip(zip(S, Y), reversed(alphas)):
                be = (yi @ r) / (yi @ si)
                r = r + (al - be) * si
            d = r
        g_prev = g
        t = min(1.0, 1.0 / np.abs(g).sum()) * lr if k == 1 else lr
        x = x + t * d
        g = grad(x)
    return x


@pytest.mark.parametrize("history_size", [100, 1])
def test_lbfgs_matches_two_loop_reference(history_size):
    x0 = np.array([1.0, 1.0, -1.0])
    p = torch.tensor(x0, requires_grad=True)
    opt = optim.LBFGS([p], lr=0.5, max_iter=4, history_size=history_size, tolerance_change=0, tolerance_grad=0)
    opt.step(quad_closure(opt, p))
    expected = ref_lbfgs(x0, lambda x: A @ x - B, 4, lr=0.5, history_size=history_size)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    state = opt.state[p]
    assert state["n_iter"] == 4 and state["func_evals"] == 4  # no re-evaluation after the last iteration
    assert len(state["old_dirs"]) == min(history_size, 3)
    assert isinstance(state["d"], torch.Tensor) and isinstance(state["prev_flat_grad"], torch.Tensor)


def test_lbfgs_first_step_and_max_eval():
    x0 = np.array([1.0, 1.0, -1.0])
    p = torch.tensor(x0, requires_grad=True)
    counter = []
    opt = optim.LBFGS([p], max_iter=1)
    loss = opt.step(quad_closure(opt, p, counter))
    g = A @ x0 - B
    np.testing.assert_allclose(p.detach().numpy(), x0 - min(1.0, 1.0 / np.abs(g).sum()) * g, rtol=1e-13)
    assert math.isclose(loss.item(), 0.5 * x0 @ A @ x0 - B @ x0)
    assert len(counter) == 1
    counter.clear()
    opt2 = optim.LBFGS([torch.tensor(x0, requires_grad=True)], max_iter=50, max_eval=6,
                       tolerance_grad=0, tolerance_change=0)
    q = opt2.param_groups[0]["params"][0]
    opt2.step(quad_closure(opt2, q, counter))
    assert len(counter) == 6 and opt2.state[q]["func_evals"] == 6


def test_lbfgs_tolerance_grad_returns_immediately():
    xstar = np.linalg.solve(A, B)
    p = torch.tensor(xstar, requires_grad=True)
    opt = optim.LBFGS([p], tolerance_grad=1e-6)
    counter = []
    opt.step(quad_closure(opt, p, counter))
    assert len(counter) == 1
    np.testing.assert_array_equal(p.detach().numpy(), xstar)
    assert opt.state[p]["func_evals"] == 1 and opt.state[p]["n_iter"] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lbfgs_strong_wolfe_converges_on_rosenbrock(dtype):
    dt = getattr(torch, dtype)
    p = torch.tensor([-1.2, 1.0], dtype=dt, requires_grad=True)
    opt = optim.LBFGS([p], max_iter=100, line_search_fn="strong_wolfe", history_size=10)

    def closure():
        opt.zero_grad()
        loss = (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(8):
        opt.step(closure)
    # PyTorch reaches the same point, within 2e-6, after 51 evaluations in 43 iterations
    np.testing.assert_allclose(p.detach().numpy(), [1.0, 1.0], atol=1e-5)
    assert p.dtype == dt
    assert 40 <= opt.state[p]["n_iter"] <= 46 and opt.state[p]["func_evals"] < 60


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_solves_quadratic(line_search_fn):
    p = torch.tensor([5.0, -3.0, 2.0], requires_grad=True, dtype=torch.float64)
    opt = optim.LBFGS([p], line_search_fn=line_search_fn, tolerance_grad=1e-10)
    for _ in range(3):
        opt.step(quad_closure(opt, p))
    # stops on tolerance_change (|f_k - f_k-1| < 1e-9) after 10 iterations, as PyTorch does
    np.testing.assert_allclose(p.detach().numpy(), np.linalg.solve(A, B), atol=1e-5)
    assert opt.state[p]["n_iter"] == 10 and opt.state[p]["func_evals"] == 10


def test_lbfgs_state_dict_resume():
    x0 = np.array([1.0, 1.0, -1.0])
    p = torch.tensor(x0, requires_grad=True)
    opt = optim.LBFGS([p], max_iter=2, line_search_fn="strong_wolfe")
    opt.step(quad_closure(opt, p))
    saved = copy.deepcopy(opt.state_dict())
    saved_x = p.detach().numpy().copy()
    assert set(saved["state"][0]) >= {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                      "prev_flat_grad", "prev_loss"}
    opt.step(quad_closure(opt, p))
    q = torch.tensor(saved_x, requires_grad=True)
    opt2 = optim.LBFGS([q], max_iter=2, line_search_fn="strong_wolfe")
    opt2.load_state_dict(saved)
    opt2.step(quad_closure(opt2, q))
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_lbfgs_invalid_line_search():
    p = torch.zeros(2, requires_grad=True)
    opt = optim.LBFGS([p], line_search_fn="armijo")

    def closure():
        opt.zero_grad()
        loss = ((p - 1) ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="^only 'strong_wolfe' is supported$"):
        opt.step(closure)
    np.testing.assert_array_equal(p.detach().numpy(), [0.0, 0.0])


def test_exports():
    import graphc.optim as o
    for name in ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "LBFGS", "lr_scheduler",
                 "Adamax", "NAdam", "RAdam", "Rprop", "ASGD"]:
        assert hasattr(o, name), name
    assert issubclass(o.AdamW, o.Adam) and issubclass(o.SGD, o.Optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o.SGD([torch.zeros(1, requires_grad=True)]).step()


def test_user_defined_optimizer_subclass():
    """PyTorch-style custom optimizers: in-place ops under no_grad, self.state, hooks and schedulers."""

    class MomentumSGD(optim.Optimizer):
        def __init__(self, params, lr=0.1, momentum=0.9):
            super().__init__(params, dict(lr=lr, momentum=momentum))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if "buf" not in state:
                        state["buf"] = torch.zeros_like(p)
                    state["buf"].mul_(group["momentum"]).add_(p.grad)
                    p.add_(state["buf"], alpha=-group["lr"])

    params = make_params()
    opt = MomentumSGD(params, lr=0.1, momentum=0.9)
    calls = []
    opt.register_step_post_hook(lambda o, a, k: calls.append(1))
    sched = optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    for gs in GRADS:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
        sched.step()
    lrs = [0.1 * 0.5 ** (k // 2) for k in range(len(GRADS))]
    for i, theta in enumerate(THETA0):
        theta, buf = theta.copy(), 0.0
        for lr, g in zip(lrs, GRADS):
            buf = 0.9 * buf + g[i]
            theta = theta - lr * buf
        np.testing.assert_allclose(params[i].detach().numpy(), theta, rtol=1e-12)
    assert len(calls) == len(GRADS) and params[0].is_leaf
    assert list(opt.state_dict()["state"][1]) == ["buf"]


def test_deepcopy_and_pickle():
    import pickle

    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert type(clone) is optim.Adam and clone.defaults == opt.defaults
        sd, sd0 = clone.state_dict(), opt.state_dict()
        assert sd["param_groups"] == sd0["param_groups"]
        np.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), sd0["state"][0]["exp_avg"].numpy())
        clone.zero_grad()
        clone.step()  # hooks and step wrapper are restored


def test_fused_and_foreach_flags_are_accepted():
    for flags in (dict(fused=True), dict(foreach=True), dict(foreach=False)):
        got, opt = run(optim.Adam, dict(lr=0.05, **flags))
        for i, theta in enumerate(THETA0):
            np.testing.assert_allclose(got[i], ref_adam(theta, [g[i] for g in GRADS], lr=0.05), rtol=1e-12)
    with pytest.raises(RuntimeError, match="^`fused` and `foreach` cannot be `True` together.$"):
        optim.SGD([torch.zeros(1)], fused=True, foreach=True)
