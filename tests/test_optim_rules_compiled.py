"""The folded update rules (Adam's and NAdam's one fraction, RAdam's one factor, RMSprop's centered
square, SGD's dampening) traced into a compiled whole step give eager mode's results, for the
flags the 20-step model tests do not run: amsgrad, maximize, centered, dampening, nesterov, and
RAdam across its switch to the rectified step."""
from __future__ import annotations

import numpy as np
import pytest

import graphc

CASES = [
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True, eps=1e-3)),
    ("NAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9))),  # plain steps, then rectified from step 6
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
]


def _run(name, kwargs, compiled):
    graphc.manual_seed(0)
    model = graphc.nn.Sequential(graphc.nn.Linear(4, 8), graphc.nn.Tanh(), graphc.nn.Linear(8, 3))
    opt = getattr(graphc.optim, name)(model.parameters(), **kwargs)

    def step(x, y):
        opt.zero_grad()
        loss = graphc.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    if compiled:
        step = graphc.compile(step, fullgraph=True)
    rng = np.random.default_rng(1)
    losses = [step(graphc.tensor(rng.standard_normal((5, 4)).astype(np.float32)),
                   graphc.tensor(rng.integers(0, 3, 5))).item() for _ in range(9)]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], opt


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_compiled_step_equals_eager(name, kwargs):
    l0, p0, o0 = _run(name, kwargs, False)
    l1, p1, o1 = _run(name, kwargs, True)
    np.testing.assert_allclose(l1, l0, rtol=1e-5, atol=1e-6)
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for q0, q1 in zip(o0.param_groups[0]["params"], o1.param_groups[0]["params"]):
        for key, v in o0.state[q0].items():
            np.testing.assert_allclose(o1.state[q1][key].numpy(), v.numpy(), rtol=1e-5, atol=1e-7, err_msg=key)


def _twin_steps(load):
    """(compiled step, its optimizer, eager twin's step, its optimizer): the same model and
    AdamW, after ``load(opt)`` edits both optimizers' state."""
    out = []
    for compiled in (True, False):
        graphc.manual_seed(0)
        model = graphc.nn.Sequential(graphc.nn.Linear(4, 8), graphc.nn.Tanh(), graphc.nn.Linear(8, 3))
        opt = graphc.optim.AdamW(model.parameters(), lr=0.05)

        def step(x, y, model=model, opt=opt):
            opt.zero_grad()
            loss = graphc.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.detach()
        out += [graphc.compile(step, fullgraph=True) if compiled else step, opt, model]
    return out


def test_a_group_counts_its_steps_once_and_recompiles_when_a_state_dict_makes_them_differ():
    rng = np.random.default_rng(3)
    batches = [(graphc.tensor(rng.standard_normal((5, 4)).astype(np.float32)), graphc.tensor(rng.integers(0, 3, 5)))
               for _ in range(6)]
    cstep, copt, cmodel, estep, eopt, emodel = _twin_steps(None)
    for x, y in batches[:3]:
        cstep(x, y), estep(x, y)
    code = graphc.explain(cstep, *batches[0]).code  # (explain runs one more step: the twin too)
    estep(*batches[0])
    # one bias-correction kernel for the group: beta1 ** step and beta2 ** step once
    assert code.count("np.power(in_betas_0") == 1 and code.count("np.power(in_betas_1") == 1, code
    # a count set in place (the state tensors stay: only the value guard sees it), then a
    # checkpoint whose parameters counted different numbers of steps (one was frozen a while)
    for opt, model in ((copt, cmodel), (eopt, emodel)):
        opt.state[list(model.parameters())[1]]["step"].fill_(20.0)
    before = cstep.recompiles
    for x, y in batches[3:4]:
        np.testing.assert_allclose(cstep(x, y).item(), estep(x, y).item(), rtol=1e-6)
    assert cstep.recompiles == before + 1
    assert "step counts of the parameters" in cstep.history[-1]
    for opt in (copt, eopt):
        sd = opt.state_dict()
        sd["state"][0]["step"] = graphc.tensor(40.0)
        opt.load_state_dict(sd)
    for x, y in batches[4:]:
        np.testing.assert_allclose(cstep(x, y).item(), estep(x, y).item(), rtol=1e-6)
    assert cstep.recompiles == before + 2
    for a, b in zip(cmodel.parameters(), emodel.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-7)
    steps = [float(copt.state[p]["step"]) for p in cmodel.parameters()]
    assert steps == [float(eopt.state[p]["step"]) for p in emodel.parameters()] == [42.0, 23.0, 7.0, 7.0]


def test_float64_factors_are_cast_once_per_call_and_reach_later_parts(tmp_path, monkeypatch):
    """AdamW's float64 factors (shared by the group) are read in float32 by every parameter's
    update: each is cast once per call, at its first use, and the cast's name reaches the
    updates in later part functions of a host function written in parts."""
    from graphc.codegen import parts
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GRAPHC_ENTRY_CACHE", "0")
    monkeypatch.setattr(parts, "PART_LINES", 7)
    cstep, copt, cmodel, estep, eopt, emodel = _twin_steps(None)
    rng = np.random.default_rng(5)
    batches = [(graphc.tensor(rng.standard_normal((5, 4)).astype(np.float32)), graphc.tensor(rng.integers(0, 3, 5)))
               for _ in range(4)]
    for x, y in batches:
        np.testing.assert_allclose(cstep(x, y).item(), estep(x, y).item(), rtol=1e-6)
    for a, b in zip(cmodel.parameters(), emodel.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-7)
    code = graphc.explain(cstep, *batches[0]).code
    body = [ln for ln in code.split("\n") if not ln.strip().startswith("#")]
    made = [ln.split(" = ")[0].strip() for ln in body if ln.strip().startswith("_shared") and " = " in ln]
    assert made and len(made) == len(set(made))  # each made once
    assert "def _graphc_step_part1(" in code  # (written in parts)
    assert all(sum(ln.count(name) for ln in body) > 2 for name in made)  # read by several updates
