"""graphc.optim.lr_scheduler: every scheduler's lr sequence against its documented closed form (or a
hand-computed sequence), state-dict round trips, PyTorch's warnings and errors."""
import copy
import math
import warnings
from bisect import bisect_right

import pytest

import graphc as torch
from graphc import optim
from graphc.optim import lr_scheduler as lrs

BASE = (1.0, 0.5)  # lrs of the two param groups


def make_opt(cls=optim.SGD, **kwargs):
    kwargs = kwargs or dict(lr=BASE[0], momentum=0.9)
    return cls([{"params": [torch.zeros(2, requires_grad=True)]},
                {"params": [torch.zeros(1, requires_grad=True)], "lr": BASE[1]}], **kwargs)


def sequence(sched, n, metrics=None):
    """get_last_lr() at construction, then after each of n (optimizer.step(), scheduler.step())."""
    out = [list(sched.get_last_lr())]
    for i in range(n):
        sched.optimizer.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        out.append(list(sched.get_last_lr()))
    return out


def check(seq, closed_form, rel=1e-12):
    for epoch, lrs_ in enumerate(seq):
        for base, lr in zip(BASE, lrs_):
            expected = closed_form(base, epoch)
            assert lr == pytest.approx(expected, rel=rel, abs=1e-15), (epoch, lr, expected)


N = 30
ETA = 0.01

CLOSED_FORMS = {
    "StepLR": (lambda o: lrs.StepLR(o, step_size=3, gamma=0.5), lambda b, e: b * 0.5 ** (e // 3)),
    "MultiStepLR": (lambda o: lrs.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
                    lambda b, e: b * 0.3 ** bisect_right([2, 5, 5, 9], e)),
    "ExponentialLR": (lambda o: lrs.ExponentialLR(o, gamma=0.9), lambda b, e: b * 0.9 ** e),
    "CosineAnnealingLR": (lambda o: lrs.CosineAnnealingLR(o, T_max=7, eta_min=ETA),
                          lambda b, e: ETA + (b - ETA) * (1 + math.cos(math.pi * e / 7)) / 2),
    "LinearLR": (lambda o: lrs.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
                 lambda b, e: b * (0.2 + (0.9 - 0.2) * min(6, e) / 6)),
    "LinearLR-defaults": (lambda o: lrs.LinearLR(o), lambda b, e: b * (1 / 3 + (1 - 1 / 3) * min(5, e) / 5)),
    "ConstantLR": (lambda o: lrs.ConstantLR(o, factor=0.4, total_iters=4), lambda b, e: b * (0.4 if e < 4 else 1.0)),
    "ConstantLR-defaults": (lambda o: lrs.ConstantLR(o), lambda b, e: b * (1 / 3 if e < 5 else 1.0)),
    "LambdaLR": (lambda o: lrs.LambdaLR(o, lambda e: 0.9 ** e + 0.1), lambda b, e: b * (0.9 ** e + 0.1)),
    "MultiplicativeLR": (lambda o: lrs.MultiplicativeLR(o, lambda e: 0.95), lambda b, e: b * 0.95 ** e),
    "PolynomialLR": (lambda o: lrs.PolynomialLR(o, total_iters=10, power=2.0),
                     lambda b, e: b * (1 - min(10, e) / 10) ** 2),
    "PolynomialLR-defaults": (lambda o: lrs.PolynomialLR(o), lambda b, e: b * (1 - min(5, e) / 5)),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_closed_form(name):
    make, form = CLOSED_FORMS[name]
    opt = make_opt()
    sched = make(opt)
    seq = sequence(sched, N)
    check(seq, form)
    assert sched.last_epoch == N
    assert [g["lr"] for g in opt.param_groups] == seq[-1]
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASE)
    assert sched.base_lrs == list(BASE)


def test_cosine_annealing_recursive_form_by_hand():
    opt = make_opt()
    sched = lrs.CosineAnnealingLR(opt, T_max=2)
    seq = [lr[0] for lr in sequence(sched, 6)]
    # T_max=2: 1, 1/2, 0, 1/2 (rising edge, additive form), 1, 1/2, 0
    assert seq == pytest.approx([1.0, 0.5, 0.0, 0.5, 1.0, 0.5, 0.0], abs=1e-15)


def test_cosine_annealing_step_with_epoch_uses_closed_form():
    opt = make_opt()
    sched = lrs.CosineAnnealingLR(opt, T_max=10)
    opt.step()
    with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
        sched.step(5)
    assert sched.get_last_lr() == pytest.approx([0.5, 0.25])
    assert sched.last_epoch == 5


def test_multistep_closed_form_via_epoch():
    opt = make_opt()
    sched = lrs.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(5)
    assert sched.get_last_lr() == pytest.approx([0.01, 0.005])


def test_multiplicative_per_group_lambdas():
    opt = make_opt()
    sched = lrs.MultiplicativeLR(opt, [lambda e: 0.9, lambda e: 0.5 if e % 2 else 1.0])
    seq = sequence(sched, 4)
    assert [s[0] for s in seq] == pytest.approx([1.0, 0.9, 0.81, 0.729, 0.6561])
    assert [s[1] for s in seq] == pytest.approx([0.5, 0.25, 0.25, 0.125, 0.125])


def test_cosine_annealing_warm_restarts():
    opt = make_opt()
    sched = lrs.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.05)

    def form(b, e):
        t_i, t_cur = 3, e
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= 2
        return 0.05 + (b - 0.05) * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    check(sequence(sched, 25), form)
    assert sched.T_i == 24 and sched.T_cur == 25 - 3 - 6 - 12


def test_cosine_annealing_warm_restarts_fractional_epochs():
    opt = make_opt()
    sched = lrs.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [0.5, 1.0, 5.5]:
            sched.step(epoch)
            t_cur = epoch % 4
            assert sched.get_last_lr()[0] == pytest.approx((1 + math.cos(math.pi * t_cur / 4)) / 2)
            assert sched.last_epoch == math.floor(epoch)
    with pytest.raises(ValueError, match="^Expected non-negative epoch, but got -1$"):
        sched.step(-1)


def _one_cycle_form(step, max_lr, total, pct=0.3, div=25.0, final_div=1e4, lo_m=0.85, hi_m=0.95, three=False,
                    cos=True):
    def anneal(a, b, t):
        return b + (a - b) / 2 * (math.cos(math.pi * t) + 1) if cos else (b - a) * t + a

    init, low = max_lr / div, max_lr / div / final_div
    if three:
        phases = [(pct * total - 1, init, max_lr, hi_m, lo_m), (2 * pct * total - 2, max_lr, init, lo_m, hi_m),
                  (total - 1, init, low, hi_m, hi_m)]
    else:
        phases = [(pct * total - 1, init, max_lr, hi_m, lo_m), (total - 1, max_lr, low, lo_m, hi_m)]
    start = 0.0
    for i, (end, a, b, ma, mb) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            t = (step - start) / (end - start)
            return anneal(a, b, t), anneal(ma, mb, t)
        start = end


@pytest.mark.parametrize("kwargs", [dict(), dict(three_phase=True), dict(anneal_strategy="linear"),
                                    dict(three_phase=True, anneal_strategy="linear", pct_start=0.25)])
def test_one_cycle(kwargs):
    total = 20
    opt = make_opt()
    sched = lrs.OneCycleLR(opt, max_lr=[2.0, 1.0], total_steps=total, **kwargs)
    form_kwargs = dict(pct=kwargs.get("pct_start", 0.3), three=kwargs.get("three_phase", False),
                       cos=kwargs.get("anneal_strategy", "cos") == "cos")
    for step in range(total):
        for group, max_lr in zip(opt.param_groups, (2.0, 1.0)):
            lr, mom = _one_cycle_form(step, max_lr, total, **form_kwargs)
            assert group["lr"] == pytest.approx(lr, rel=1e-12)
            assert group["momentum"] == pytest.approx(mom, rel=1e-12)
        opt.step()
        if step < total - 1:
            sched.step()
    assert opt.param_groups[0]["initial_lr"] == 2.0 / 25 and opt.param_groups[0]["max_lr"] == 2.0
    assert opt.param_groups[0]["min_lr"] == 2.0 / 25 / 1e4
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0 / 25 / 1e4)
    sched.step()  # step == total_steps is still allowed ...
    with pytest.raises(ValueError, match="^Tried to step 21 times. The specified number of total steps is 20$"):
        sched.step()


def test_one_cycle_cycles_adam_beta1_and_epochs_form():
    opt = make_opt(optim.Adam, lr=0.1, betas=(0.9, 0.99))
    sched = lrs.OneCycleLR(opt, max_lr=1.0, epochs=2, steps_per_epoch=5, base_momentum=0.8, max_momentum=0.9)
    assert sched.total_steps == 10
    assert opt.param_groups[0]["betas"] == (0.9, 0.99)
    for step in range(1, 10):
        opt.step()
        sched.step()
        lr, mom = _one_cycle_form(step, 1.0, 10, lo_m=0.8, hi_m=0.9)
        assert opt.param_groups[1]["lr"] == pytest.approx(lr)
        assert opt.param_groups[1]["betas"][0] == pytest.approx(mom) and opt.param_groups[1]["betas"][1] == 0.99


def test_one_cycle_errors():
    opt = make_opt()
    with pytest.raises(ValueError, match=r"^You must define either total_steps OR \(epochs AND steps_per_epoch\)$"):
        lrs.OneCycleLR(opt, 1.0)
    with pytest.raises(ValueError, match="^Expected positive integer total_steps, but got 0$"):
        lrs.OneCycleLR(opt, 1.0, total_steps=0)
    with pytest.raises(ValueError, match="^Expected float between 0 and 1 pct_start, but got 1$"):
        lrs.OneCycleLR(opt, 1.0, total_steps=10, pct_start=1)
    with pytest.raises(ValueError, match="^anneal_strategy must be one of 'cos' or 'linear', instead got x$"):
        lrs.OneCycleLR(opt, 1.0, total_steps=10, anneal_strategy="x")
    with pytest.raises(ValueError, match="^optimizer must support momentum or beta1 with `cycle_momentum` option"):
        lrs.OneCycleLR(make_opt(optim.Adagrad, lr=0.1), 1.0, total_steps=10)
    with pytest.raises(ValueError, match="^max_lr must have the same length as optimizer.param_groups. max_lr has 3 "
                                         "values, param_groups has 2.$"):
        lrs.OneCycleLR(opt, [1.0, 2.0, 3.0], total_steps=10)
    lrs.OneCycleLR(make_opt(optim.Adagrad, lr=0.1), 1.0, total_steps=10, cycle_momentum=False)


def test_cyclic_lr_triangular():
    opt = make_opt()
    sched = lrs.CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=2, step_size_down=3)
    seq = [s[0] for s in sequence(sched, 10)]
    up, down = [0.1 + 0.9 * k / 2 for k in range(2)], [1.0 - 0.9 * k / 3 for k in range(3)]
    assert seq == pytest.approx((up + down) * 2 + [0.1])
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9)  # momentum cycles inversely: back at max


def test_sequential_lr():
    opt = make_opt()
    s1 = lrs.LinearLR(opt, start_factor=0.1, total_iters=4)
    s2 = lrs.ExponentialLR(opt, gamma=0.8)
    sched = lrs.SequentialLR(opt, schedulers=[s1, s2], milestones=[5])
    seq = sequence(sched, 12)
    check(seq, lambda b, e: b * (0.1 + 0.9 * min(4, e) / 4) if e < 5 else b * 0.8 ** (e - 5))
    assert sched.last_epoch == 12


def test_chained_scheduler():
    opt = make_opt()
    sched = lrs.ChainedScheduler([lrs.ConstantLR(opt, factor=0.5, total_iters=3), lrs.ExponentialLR(opt, gamma=0.9)])
    check(sequence(sched, 8), lambda b, e: b * (0.5 if e < 3 else 1.0) * 0.9 ** e)


def test_composite_scheduler_errors():
    opt = make_opt()
    with pytest.raises(ValueError, match="^SequentialLR expects at least one scheduler, but got no scheduler.$"):
        lrs.SequentialLR(opt, [], [])
    with pytest.raises(ValueError, match="^Sequential Schedulers expects number of schedulers provided to be one more "
                                         "than the number of milestone points, but got number of schedulers 1 and "
                                         "the number of milestones to be equal to 1$"):
        lrs.SequentialLR(opt, [lrs.StepLR(opt, 2)], [3])
    with pytest.raises(ValueError, match="^SequentialLR does not support `ReduceLROnPlateau` scheduler"):
        lrs.SequentialLR(opt, [lrs.ReduceLROnPlateau(opt)], [])
    with pytest.raises(ValueError, match="^SequentialLR expects all schedulers to belong to the same optimizer"):
        lrs.SequentialLR(opt, [lrs.StepLR(make_opt(), 2)], [])
    with pytest.raises(ValueError, match="^ChainedScheduler expects at least one scheduler to be chained, but got no "
                                         "scheduler.$"):
        lrs.ChainedScheduler([])
    with pytest.raises(TypeError, match="^ChainedScheduler at index 0 should have `optimizer` as its attribute.$"):
        lrs.ChainedScheduler([object()], optimizer=opt)


# ---- ReduceLROnPlateau --------------------------------------------------------------------------------

def test_reduce_on_plateau_min_rel():
    opt = make_opt()
    sched = lrs.ReduceLROnPlateau(opt, patience=2)
    metrics = [5, 4, 4, 4.1, 4, 4, 4, 3, 3, 3, 3]
    seq = [s[0] for s in sequence(sched, len(metrics), metrics)]
    # bad epochs counted from 4 (epoch 2): 3 bad at epoch 4 -> reduce; again 3 bad at 7? no, 3 improves at epoch 8
    assert seq == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01])
    assert sched.best == 3 and sched.last_epoch == len(metrics)


def test_reduce_on_plateau_cooldown_min_lr_and_eps():
    opt = make_opt()
    sched = lrs.ReduceLROnPlateau(opt, patience=0, cooldown=2, factor=0.5, min_lr=[0.2, 0.3])
    seq = sequence(sched, 8, [1.0] * 8)
    # epoch 1 sets best; epoch 2 is bad -> reduce, cooldown 2 epochs (3, 4), epoch 5 reduces again, ...
    assert [s[0] for s in seq] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2])
    assert [s[1] for s in seq] == pytest.approx([0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    # a reduction smaller than eps is skipped
    opt2 = make_opt(lr=1e-9)
    sched2 = lrs.ReduceLROnPlateau(opt2, patience=0, factor=0.5)
    sequence(sched2, 3, [1.0, 1.0, 1.0])
    assert opt2.param_groups[0]["lr"] == 1e-9


def test_reduce_on_plateau_max_abs():
    opt = make_opt()
    sched = lrs.ReduceLROnPlateau(opt, mode="max", threshold_mode="abs", threshold=0.5, patience=1, factor=0.1)
    seq = [s[0] for s in sequence(sched, 6, [1.0, 1.4, 1.6, 1.7, 2.0, 2.2])]
    # 1.0 best; 1.4 not > 1.5 (bad 1); 1.6 > 1.5 best; 1.7 bad 1; 2.0 bad 2 -> reduce; 2.2 > 2.1 best
    assert seq == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1])
    assert sched.best == 2.2 and sched.mode_worse == -math.inf


def test_reduce_on_plateau_errors():
    opt = make_opt()
    with pytest.raises(ValueError, match=r"^Factor should be < 1.0.$"):
        lrs.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="^mode foo is unknown!$"):
        lrs.ReduceLROnPlateau(opt, mode="foo")
    with pytest.raises(ValueError, match="^threshold mode foo is unknown!$"):
        lrs.ReduceLROnPlateau(opt, threshold_mode="foo")
    with pytest.raises(ValueError, match="^expected 2 min_lrs, got 1$"):
        lrs.ReduceLROnPlateau(opt, min_lr=[0.1])
    with pytest.raises(TypeError, match="^int is not an Optimizer$"):
        lrs.ReduceLROnPlateau(3)


def test_reduce_on_plateau_state_dict():
    opt = make_opt()
    sched = lrs.ReduceLROnPlateau(opt, mode="max", patience=1)
    sequence(sched, 3, [1.0, 0.5, 0.5])
    sd = copy.deepcopy(sched.state_dict())
    assert "optimizer" not in sd and sd["mode"] == "max" and sd["best"] == 1.0
    sched2 = lrs.ReduceLROnPlateau(make_opt(), patience=7)
    sched2.load_state_dict(sd)
    assert sched2.patience == 1 and sched2.mode == "max" and sched2.mode_worse == -math.inf and sched2.best == 1.0


# ---- base-class behaviour --------------------------------------------------------------------------

def test_warning_when_scheduler_steps_before_optimizer():
    opt = make_opt()
    sched = lrs.StepLR(opt, 3)
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        sched.step()
    opt = make_opt()
    sched = lrs.StepLR(opt, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()
        sched.step()


def test_warning_when_optimizer_step_overridden():
    opt = make_opt()
    sched = lrs.StepLR(opt, 3)
    opt.step = lambda closure=None: None
    with pytest.warns(UserWarning, match=r"Seems like `optimizer.step\(\)` has been overridden after learning rate "
                                         "scheduler initialization"):
        sched.step()


def test_get_lr_outside_step_warns():
    sched = lrs.ExponentialLR(make_opt(), 0.5)
    with pytest.warns(UserWarning, match=r"^To get the last learning rate computed by the scheduler, please use "
                                         r"`get_last_lr\(\)`.$"):
        sched.get_lr()


def test_optimizer_step_still_works_and_is_wrapped_once():
    opt = make_opt()
    lrs.StepLR(opt, 3)
    wrapped = opt.step
    lrs.ExponentialLR(opt, 0.9)
    assert opt.step is wrapped and getattr(opt.step, "_wrapped_by_lr_sched", False)
    p = opt.param_groups[0]["params"][0]
    p.grad = torch.ones(2)
    opt.step()
    assert opt._opt_called
    assert p.detach().numpy().tolist() == pytest.approx([-1.0, -1.0])


def test_initial_lr_and_resume_with_last_epoch():
    opt = make_opt()
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\] when resuming"):
        lrs.StepLR(opt, 2, last_epoch=3)
    opt.param_groups[0]["initial_lr"] = 2.0
    opt.param_groups[1]["initial_lr"] = 1.0
    sched = lrs.StepLR(opt, 2, gamma=0.5, last_epoch=3)
    assert sched.base_lrs == [2.0, 1.0] and sched.last_epoch == 4
    # an existing initial_lr is not overwritten by a new scheduler
    opt2 = make_opt()
    opt2.param_groups[0]["initial_lr"] = 5.0
    assert lrs.ExponentialLR(opt2, 0.9).base_lrs == [5.0, 0.5]
    with pytest.raises(TypeError, match="^object is not an Optimizer$"):
        lrs.StepLR(object(), 2)
    assert lrs._LRScheduler.__mro__[1] is lrs.LRScheduler


def test_tensor_lr_is_updated_in_place():
    p = torch.zeros(1, requires_grad=True)
    lr = torch.tensor(1.0, dtype=torch.float64)
    opt = optim.SGD([p], lr=lr)
    sched = lrs.ExponentialLR(opt, 0.5)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and lr.item() == 0.5
    assert isinstance(sched.get_last_lr()[0], torch.Tensor) and sched.get_last_lr()[0] is not lr


def test_scheduler_errors():
    opt = make_opt()
    with pytest.raises(ValueError, match="^Constant multiplicative factor expected to be between 0 and 1.$"):
        lrs.ConstantLR(opt, factor=2)
    with pytest.raises(ValueError, match="^Starting multiplicative factor expected to be greater than 0 and less or "
                                         "equal to 1.$"):
        lrs.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="^Ending multiplicative factor expected to be between 0 and 1.$"):
        lrs.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="^Expected positive integer T_0, but got 0$"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="^Expected integer T_mult >= 1, but got 1.5$"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=1.5)
    with pytest.raises(ValueError, match="^Expected 2 lr_lambdas, but got 1$"):
        lrs.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(TypeError, match="^lr_lambda should be a function, but got int$"):
        lrs.MultiplicativeLR(opt, 3)


# ---- state dicts ---------------------------------------------------------------------------------------

class Decay:
    """A callable object: its __dict__ goes into LambdaLR's state dict."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


ROUND_TRIP = {
    "StepLR": lambda o: lrs.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda o: lrs.MultiStepLR(o, [2, 6], 0.3),
    "ExponentialLR": lambda o: lrs.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: lrs.CosineAnnealingLR(o, 5, 0.01),
    "LinearLR": lambda o: lrs.LinearLR(o, 0.2, 0.9, 6),
    "ConstantLR": lambda o: lrs.ConstantLR(o, 0.4, 6),
    "LambdaLR": lambda o: lrs.LambdaLR(o, Decay(0.8)),
    "MultiplicativeLR": lambda o: lrs.MultiplicativeLR(o, lambda e: 0.95),
    "PolynomialLR": lambda o: lrs.PolynomialLR(o, 8, 2.0),
    "CosineAnnealingWarmRestarts": lambda o: lrs.CosineAnnealingWarmRestarts(o, 2, 2, 0.05),
    "OneCycleLR": lambda o: lrs.OneCycleLR(o, [2.0, 1.0], total_steps=12),
    "CyclicLR": lambda o: lrs.CyclicLR(o, 0.1, 1.0, step_size_up=3, mode="exp_range", gamma=0.9),
    "SequentialLR": lambda o: lrs.SequentialLR(o, [lrs.LinearLR(o, 0.1, total_iters=3),
                                                   lrs.CosineAnnealingLR(o, 6)], [4]),
    "ChainedScheduler": lambda o: lrs.ChainedScheduler([lrs.ConstantLR(o, 0.5, 3), lrs.ExponentialLR(o, 0.9)]),
}


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_state_dict_round_trip(name):
    make = ROUND_TRIP[name]
    opt = make_opt()
    sched = make(opt)
    sequence(sched, 5)
    sched_sd = copy.deepcopy(sched.state_dict())
    opt_sd = copy.deepcopy(opt.state_dict())
    assert "optimizer" not in sched_sd
    expected = sequence(sched, 6)[1:]

    opt2 = make_opt(lr=0.123, momentum=0.5)
    sched2 = make(opt2)  # scheduler first, then the optimizer state (PyTorch's documented order)
    sched2.load_state_dict(sched_sd)
    opt2.load_state_dict(opt_sd)
    assert getattr(sched2, "last_epoch", None) == sched_sd.get("last_epoch")  # ChainedScheduler has none
    assert sched2.get_last_lr() == sched_sd["_last_lr"]
    assert sequence(sched2, 6)[1:] == expected
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_lambda_state_dict_keeps_callable_object_state():
    opt = make_opt()
    sched = lrs.LambdaLR(opt, [Decay(0.8), lambda e: 1.0])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.8}, None]
    sched2 = lrs.LambdaLR(make_opt(), [Decay(0.1), lambda e: 1.0])
    sched2.load_state_dict(sd)
    assert sched2.lr_lambdas[0].rate == 0.8
    assert "lr_lambdas" in sd  # load_state_dict leaves the given dict as it was


def test_step_lr_state_dict_keys():
    sched = lrs.StepLR(make_opt(), 3)
    assert sched.state_dict() == {"step_size": 3, "gamma": 0.1, "base_lrs": [1.0, 0.5], "last_epoch": 0,
                                  "_step_count": 1, "_is_initial": False, "_get_lr_called_within_step": False,
                                  "_last_lr": [1.0, 0.5]}
