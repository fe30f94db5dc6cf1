"""Loss modules and functions against formulas computed independently in numpy, for every
reduction, plus gradchecks (float64)."""
from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.autograd import gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_reference as ref  # noqa: E402

RNG = np.random.default_rng(7)
REDUCTIONS = ["mean", "sum", "none"]


def rand(*shape):
    return RNG.standard_normal(shape)


def t64(a, requires_grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](loss)


def check(loss_t, expected, tol=1e-9):
    np.testing.assert_allclose(loss_t.detach().numpy(), expected, rtol=tol, atol=tol)


def grad_ok(fn, *arrays, atol=1e-5):
    xs = tuple(t64(a, requires_grad=True) for a in arrays)
    assert gradcheck(fn, xs, atol=atol)


# ---- regression losses ------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_l1(reduction):
    x, y = rand(3, 4), rand(3, 4)
    check(nn.MSELoss(reduction=reduction)(t64(x), t64(y)), reduce((x - y) ** 2, reduction))
    check(nn.L1Loss(reduction=reduction)(t64(x), t64(y)), reduce(np.abs(x - y), reduction))
    check(F.mse_loss(t64(x), t64(y), reduction=reduction), reduce((x - y) ** 2, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_smooth_l1(reduction, beta):
    x, y = rand(3, 5), rand(3, 5)
    d = np.abs(x - y)
    want = d if beta == 0 else np.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta)
    check(nn.SmoothL1Loss(reduction=reduction, beta=beta)(t64(x), t64(y)), reduce(want, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.7, 2.0])
def test_huber(reduction, delta):
    x, y = rand(3, 5) * 2, rand(3, 5)
    d = np.abs(x - y)
    want = np.where(d <= delta, 0.5 * d ** 2, delta * (d - 0.5 * delta))
    check(nn.HuberLoss(reduction=reduction, delta=delta)(t64(x), t64(y)), reduce(want, reduction))


def test_regression_gradchecks_and_warning():
    y = t64(rand(2, 3))
    grad_ok(lambda x: F.mse_loss(x, y), rand(2, 3))
    grad_ok(lambda x: F.l1_loss(x, y, reduction="sum"), rand(2, 3))
    grad_ok(lambda x: F.smooth_l1_loss(x, y, beta=0.5), rand(2, 3))
    grad_ok(lambda x: F.huber_loss(x, y, delta=0.5, reduction="none"), rand(2, 3))
    grad_ok(lambda x, t: F.mse_loss(x, t), rand(2, 3), rand(2, 3))  # gradient w.r.t. the target too
    with pytest.warns(UserWarning, match="Using a target size .* that is different to the input size"):
        nn.MSELoss()(torch.zeros(2, 3), torch.zeros(3))


def test_legacy_size_average_reduce_and_bad_reduction():
    x, y = rand(4), rand(4)
    check(nn.MSELoss(size_average=False)(t64(x), t64(y)), np.sum((x - y) ** 2))
    check(nn.L1Loss(reduce=False)(t64(x), t64(y)), np.abs(x - y))
    assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        nn.MSELoss(reduction="foo")(t64(x), t64(y))


# ---- classification losses --------------------------------------------------------------------------

def ce_indices_ref(x, t, weight=None, ignore_index=-100, reduction="mean", ls=0.0):
    """PyTorch's documented CrossEntropyLoss for class indices; x (N, C, d...), t (N, d...)."""
    c = x.shape[1]
    logp = ref.log_softmax(x, 1)
    w = np.ones(c) if weight is None else weight
    xm = np.moveaxis(logp, 1, -1).reshape(-1, c)
    tf = t.reshape(-1)
    valid = tf != ignore_index
    safe = np.where(valid, tf, 0)
    nll = -w[safe] * xm[np.arange(len(tf)), safe]
    smooth = -(xm * w).sum(-1)
    loss = np.where(valid, (1 - ls) * nll + ls / c * smooth, 0.0)
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / np.where(valid, w[safe], 0).sum()


def ce_probs_ref(x, p, weight=None, reduction="mean", ls=0.0):
    c = x.shape[1]
    logp = ref.log_softmax(x, 1)
    p = p * (1 - ls) + ls / c
    w = np.ones(c) if weight is None else weight
    wshape = (1, c) + (1,) * (x.ndim - 2)
    loss = -(logp * p * w.reshape(wshape)).sum(1)
    return reduce(loss, reduction)  # 'mean' divides by the number of samples, not the weights


W3 = np.array([0.2, 1.0, 3.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight,ignore_index,ls", [(None, -100, 0.0), (W3, -100, 0.0), (W3, 2, 0.0),
                                                    (None, -100, 0.2), (W3, 1, 0.2)])
def test_cross_entropy_class_indices(reduction, weight, ignore_index, ls):
    x = rand(6, 3)
    t = np.array([0, 2, 1, 2, 1, 0])
    m = nn.CrossEntropyLoss(weight=None if weight is None else t64(weight), ignore_index=ignore_index,
                            reduction=reduction, label_smoothing=ls)
    check(m(t64(x), torch.tensor(t)), ce_indices_ref(x, t, weight, ignore_index, reduction, ls))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_k_dim(reduction, ls):
    x = rand(2, 3, 4, 2)
    t = RNG.integers(0, 3, size=(2, 4, 2))
    t[0, 0, 0] = 0
    loss = F.cross_entropy(t64(x), torch.tensor(t), weight=t64(W3), ignore_index=0, reduction=reduction,
                           label_smoothing=ls)
    want = ce_indices_ref(x, t, W3, 0, reduction, ls)
    check(loss, want)
    if reduction == "none":
        assert tuple(loss.shape) == (2, 4, 2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight,ls", [(None, 0.0), (W3, 0.3)])
def test_cross_entropy_probabilities(reduction, weight, ls):
    x = rand(4, 3)
    p = ref.softmax(rand(4, 3), 1)
    m = nn.CrossEntropyLoss(weight=None if weight is None else t64(weight), reduction=reduction, label_smoothing=ls)
    check(m(t64(x), t64(p)), ce_probs_ref(x, p, weight, reduction, ls))
    xk, pk = rand(2, 3, 5), ref.softmax(rand(2, 3, 5), 1)
    check(F.cross_entropy(t64(xk), t64(pk), reduction=reduction), ce_probs_ref(xk, pk, None, reduction))


def test_cross_entropy_unbatched_all_ignored_and_errors():
    x = rand(3)
    check(F.cross_entropy(t64(x), torch.tensor(1)), -ref.log_softmax(x)[1])
    check(F.cross_entropy(t64(x), t64(np.array([0.2, 0.3, 0.5]))), -(ref.log_softmax(x) * [0.2, 0.3, 0.5]).sum())
    # every target ignored: mean is 0/0 = nan, as in PyTorch
    assert math.isnan(F.cross_entropy(t64(rand(2, 3)), torch.tensor([-100, -100])).item())
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        nn.CrossEntropyLoss()(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(2\) to match target batch_size \(3\)"):
        nn.CrossEntropyLoss()(torch.zeros(2, 3), torch.tensor([0, 1, 1]))
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), label_smoothing=1.5)


def test_cross_entropy_gradients():
    t = torch.tensor([0, 2, 1])
    grad_ok(lambda x: F.cross_entropy(x, t), rand(3, 3))
    grad_ok(lambda x: F.cross_entropy(x, t, weight=t64(W3), ignore_index=2, label_smoothing=0.1), rand(3, 3))
    grad_ok(lambda x: F.cross_entropy(x, torch.tensor([[1, 0], [2, 2]]), reduction="sum"), rand(2, 3, 2))
    grad_ok(lambda x, p: F.cross_entropy(x, p), rand(2, 3), ref.softmax(rand(2, 3), 1))
    # the analytic gradient of mean CE: (softmax - onehot) / N
    x = t64(rand(3, 3), requires_grad=True)
    F.cross_entropy(x, t).backward()
    onehot = np.eye(3)[[0, 2, 1]]
    np.testing.assert_allclose(x.grad.numpy(), (ref.softmax(x.detach().numpy(), 1) - onehot) / 3, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    logp = ref.log_softmax(rand(5, 3), 1)
    t = np.array([0, 1, 2, 1, 2])
    m = nn.NLLLoss(weight=t64(W3), ignore_index=1, reduction=reduction)
    valid = t != 1
    loss = np.where(valid, -W3[t] * logp[np.arange(5), t], 0.0)
    want = loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.sum() / W3[t][valid].sum())
    check(m(t64(logp), torch.tensor(t)), want)
    lk = rand(2, 3, 4)
    tk = RNG.integers(0, 3, size=(2, 4))
    lossk = -np.take_along_axis(lk, tk[:, None], 1)[:, 0]
    check(F.nll_loss(t64(lk), torch.tensor(tk), reduction=reduction), reduce(lossk, reduction))
    check(F.nll_loss(t64(logp[0]), torch.tensor(2), reduction=reduction), -logp[0, 2])
    grad_ok(lambda x: F.nll_loss(x, torch.tensor(t), weight=t64(W3)), logp)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce(reduction):
    p = RNG.uniform(0.05, 0.95, (3, 4))
    y = RNG.uniform(0, 1, (3, 4))
    w = RNG.uniform(0, 2, (4,))
    want = -w * (y * np.log(p) + (1 - y) * np.log(1 - p))
    check(nn.BCELoss(weight=t64(w), reduction=reduction)(t64(p), t64(y)), reduce(want, reduction))
    check(F.binary_cross_entropy(t64(p), t64(y), reduction=reduction), reduce(want / w, reduction))


def test_bce_clamps_log_and_checks():
    # log terms are clamped at -100, so p in {0, 1} gives a finite loss
    loss = nn.BCELoss(reduction="none")(t64([0.0, 1.0, 0.5, 1.0]), t64([1.0, 0.0, 1.0, 1.0]))
    check(loss, [100.0, 100.0, math.log(2), 0.0])
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        nn.BCELoss()(torch.tensor([1.5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="that is different to the input size"):
        nn.BCELoss()(torch.tensor([0.5, 0.5]), torch.tensor([1.0]))
    y = t64(RNG.uniform(0, 1, (2, 3)))
    grad_ok(lambda p: F.binary_cross_entropy(p, y), RNG.uniform(0.1, 0.9, (2, 3)))


def bce_logits_ref(x, y, w=1.0, pw=None):
    log_sig = -np.logaddexp(0, -x)        # log sigmoid(x), stable
    log_one_minus = -np.logaddexp(0, x)   # log(1 - sigmoid(x))
    pw = 1.0 if pw is None else pw
    return -w * (pw * y * log_sig + (1 - y) * log_one_minus)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    x, y = rand(3, 4) * 3, RNG.uniform(0, 1, (3, 4))
    w, pw = RNG.uniform(0, 2, (4,)), RNG.uniform(0, 3, (4,))
    check(nn.BCEWithLogitsLoss(reduction=reduction)(t64(x), t64(y)), reduce(bce_logits_ref(x, y), reduction))
    m = nn.BCEWithLogitsLoss(weight=t64(w), pos_weight=t64(pw), reduction=reduction)
    assert list(m.state_dict()) == ["weight", "pos_weight"]
    check(m(t64(x), t64(y)), reduce(bce_logits_ref(x, y, w, pw), reduction))


def test_bce_with_logits_large_logits_stable():
    x = np.array([[300.0, -300.0, 50.0, -50.0, 0.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    loss = nn.BCEWithLogitsLoss(reduction="none", pos_weight=t64([2.0]))(t64(x), t64(y))
    check(loss, [[300.0, 600.0, 2 * math.log1p(math.exp(-50)), math.log1p(math.exp(-50)), 2 * math.log(2)]])
    f32 = nn.BCEWithLogitsLoss()(torch.tensor([1e4, -1e4]), torch.tensor([1.0, 0.0]))
    assert f32.item() == 0.0
    xt = t64(x, requires_grad=True)
    nn.BCEWithLogitsLoss(reduction="sum")(xt, t64(y)).backward()
    np.testing.assert_allclose(xt.grad.numpy(), ref.sigmoid(x) - y, atol=1e-12)  # finite, = sigmoid - y
    yt = t64(RNG.uniform(0, 1, (2, 3)))
    grad_ok(lambda a, b: F.binary_cross_entropy_with_logits(a, yt, pos_weight=b), rand(2, 3), RNG.uniform(0.5, 2, (3,)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = ref.log_softmax(rand(4, 3), 1)
    p = ref.softmax(rand(4, 3), 1)
    p[0, 0] = 0.0  # 0 * log 0 counts as 0
    if log_target:
        tgt = np.log(p + 1e-3)
        pointwise = np.exp(tgt) * (tgt - x)
    else:
        tgt = p
        pointwise = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - x), 0.0)
    want = pointwise.sum() / 4 if reduction == "batchmean" else reduce(pointwise, reduction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(nn.KLDivLoss(reduction=reduction, log_target=log_target)(t64(x), t64(tgt)), want)


def test_kl_div_mean_warns_and_gradcheck():
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(torch.zeros(2, 2), torch.ones(2, 2) / 2)
    tgt = t64(ref.softmax(rand(2, 3), 1))
    grad_ok(lambda x: F.kl_div(x, tgt, reduction="batchmean"), rand(2, 3))
    grad_ok(lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True), rand(2, 3), rand(2, 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_other_losses(reduction):
    x, y = rand(3, 4), RNG.uniform(0, 3, (3, 4))
    check(nn.PoissonNLLLoss(reduction=reduction)(t64(x), t64(y)), reduce(np.exp(x) - y * x, reduction))
    a, b, s = rand(5), rand(5), np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    check(nn.MarginRankingLoss(0.3, reduction=reduction)(t64(a), t64(b), t64(s)),
          reduce(np.maximum(0, -s * (a - b) + 0.3), reduction))
    u, v, lab = rand(4, 3), rand(4, 3), np.array([1.0, -1.0, 1.0, -1.0])
    cos = (u * v).sum(1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
    check(nn.CosineEmbeddingLoss(0.1, reduction=reduction)(t64(u), t64(v), t64(lab)),
          reduce(np.where(lab == 1, 1 - cos, np.maximum(0, cos - 0.1)), reduction))


# ---- CTC --------------------------------------------------------------------------------------------

def _log_probs(t_, n, c):
    return ref.log_softmax(rand(t_, n, c), -1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_against_brute_force(reduction):
    lp = _log_probs(5, 3, 3)
    targets = np.array([[1, 2], [1, 1], [2, 0]])
    in_len, tg_len = np.array([5, 4, 5]), np.array([2, 2, 1])
    per = np.array([ref.ctc_brute_force(lp[:in_len[b], b], targets[b, :tg_len[b]]) for b in range(3)])
    want = {"none": per, "sum": per.sum(), "mean": (per / tg_len).mean()}[reduction]
    loss = nn.CTCLoss(reduction=reduction)(t64(lp), torch.tensor(targets), torch.tensor(in_len), torch.tensor(tg_len))
    check(loss, want, tol=1e-9)
    # concatenated 1-D targets and tuple lengths give the same result
    flat = np.concatenate([targets[b, :tg_len[b]] for b in range(3)])
    check(F.ctc_loss(t64(lp), torch.tensor(flat), tuple(in_len), tuple(tg_len), reduction=reduction), want)


def test_ctc_blank_unbatched_infinite_and_empty_target():
    lp = _log_probs(4, 1, 3)
    # blank=2: label 0 and 1 are symbols
    want = ref.ctc_brute_force(lp[:, 0], [0, 0], blank=2)
    check(F.ctc_loss(t64(lp[:, 0]), torch.tensor([0, 0]), torch.tensor(4), torch.tensor(2), blank=2,
                     reduction="sum"), want)
    # "a a" needs at least 3 frames; with 2 the loss is infinite, or zero with zero_infinity
    lp2 = _log_probs(2, 1, 3)
    args = (t64(lp2), torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2]))
    assert F.ctc_loss(*args, reduction="sum").item() == math.inf
    assert F.ctc_loss(*args, reduction="sum", zero_infinity=True).item() == 0.0
    # an empty target: the all-blank path
    check(F.ctc_loss(t64(lp), torch.tensor([[1]]), torch.tensor([4]), torch.tensor([0]), reduction="none"),
          [-lp[:, 0, 0].sum()])


def test_ctc_gradients():
    targets, in_len, tg_len = torch.tensor([[1, 2], [1, 1]]), torch.tensor([4, 4]), torch.tensor([2, 1])
    grad_ok(lambda lp: F.ctc_loss(lp, targets, in_len, tg_len), _log_probs(4, 2, 3))
    # through log_softmax the gradient w.r.t. the logits is softmax - (state occupancy), finite everywhere
    logits = t64(rand(4, 2, 3), requires_grad=True)
    F.ctc_loss(logits.log_softmax(2), targets, in_len, tg_len, reduction="sum").backward()
    g = logits.grad.numpy()
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g.sum(-1), np.zeros((4, 2)), atol=1e-12)
    # zero_infinity: impossible samples contribute no gradient (and no NaN)
    lp = t64(_log_probs(2, 2, 3), requires_grad=True)
    F.ctc_loss(lp, torch.tensor([[1, 1], [1, 2]]), torch.tensor([2, 2]), torch.tensor([2, 2]),
               zero_infinity=True, reduction="sum").backward()
    g = lp.grad.numpy()
    assert np.all(np.isfinite(g)) and np.all(g[:, 0] == 0) and np.any(g[:, 1] != 0)


# ---- margin and other losses --------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_family(reduction):
    x, y = rand(3, 4), np.sign(rand(3, 4))
    check(nn.SoftMarginLoss(reduction=reduction)(t64(x), t64(y)), reduce(np.log1p(np.exp(-y * x)), reduction))
    yb = (rand(3, 4) > 0) * 1.0
    w = RNG.uniform(0.5, 2, (4,))
    mlsm = -(yb * np.log(ref.sigmoid(x)) + (1 - yb) * np.log(ref.sigmoid(-x))) * w
    check(nn.MultiLabelSoftMarginLoss(weight=t64(w), reduction=reduction)(t64(x), t64(yb)),
          reduce(mlsm.mean(1), reduction))
    check(nn.HingeEmbeddingLoss(0.5, reduction=reduction)(t64(x), t64(y)),
          reduce(np.where(y == 1, x, np.maximum(0, 0.5 - x)), reduction))
    t = np.array([0, 3, 1])
    cw = np.array([1.0, 2.0, 3.0, 4.0])
    mm = np.zeros(3)
    for n in range(3):
        for i in range(4):
            if i != t[n]:
                mm[n] += cw[t[n]] * max(0.0, 0.7 - x[n, t[n]] + x[n, i]) ** 2 / 4
    check(nn.MultiMarginLoss(p=2, margin=0.7, weight=t64(cw), reduction=reduction)(t64(x), torch.tensor(t)),
          reduce(mm, reduction))
    tg = np.array([[0, 3, -1, 0], [1, -1, 2, 2], [0, 1, 2, 3]])
    mlm = np.zeros(3)
    for n in range(3):
        labels = list(tg[n][:list(tg[n]).index(-1)]) if -1 in tg[n] else list(tg[n])
        for j in labels:
            for i in range(4):
                if i not in labels:
                    mlm[n] += max(0.0, 1 - (x[n, j] - x[n, i])) / 4
    check(nn.MultiLabelMarginLoss(reduction=reduction)(t64(x), torch.tensor(tg)), reduce(mlm, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_triplet_and_gaussian_nll(reduction):
    a, p, n = rand(3, 4), rand(3, 4), rand(3, 4)
    d = lambda u, v: np.linalg.norm(u - v + 1e-6, axis=1)  # noqa: E731
    check(nn.TripletMarginLoss(margin=0.5, reduction=reduction)(t64(a), t64(p), t64(n)),
          reduce(np.maximum(0.5 + d(a, p) - d(a, n), 0), reduction))
    check(nn.TripletMarginLoss(margin=0.5, swap=True, reduction=reduction)(t64(a), t64(p), t64(n)),
          reduce(np.maximum(0.5 + d(a, p) - np.minimum(d(a, n), d(p, n)), 0), reduction))
    x, y, var = rand(3, 4), rand(3, 4), RNG.uniform(0.1, 2, (3, 4))
    var[0, 0] = 1e-9  # clamped to eps
    v = np.maximum(var, 1e-6)
    check(nn.GaussianNLLLoss(reduction=reduction)(t64(x), t64(y), t64(var)),
          reduce(0.5 * (np.log(v) + (x - y) ** 2 / v), reduction))
    v1 = RNG.uniform(0.1, 2, (3, 1))
    check(nn.GaussianNLLLoss(full=True, reduction=reduction)(t64(x), t64(y), t64(v1)),
          reduce(0.5 * (np.log(v1) + (x - y) ** 2 / v1) + 0.5 * math.log(2 * math.pi), reduction))
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(t64(x), t64(y), t64(-var))
    grad_ok(lambda u, s: F.gaussian_nll_loss(u, t64(y), s), x, RNG.uniform(0.5, 2, (3, 4)))
