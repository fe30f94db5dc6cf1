"""The update rules against PyTorch itself (where it is installed): the rules are written with
their scalar factors folded (Adam's bias corrections on both sides of its fraction, NAdam's two
steps as one fraction, RAdam's step as one factor), so the same results are a matter of rounding:
float32 parameters and state after 25 steps with gradients of mixed scales within a few ulps'
drift, amsgrad, maximize, decoupled decay and both RAdam phases included."""
from __future__ import annotations

import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")

CASES = [
    ("Adam", {}), ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)), ("Adam", dict(maximize=True, eps=1e-3)),
    ("AdamW", {}), ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True, betas=(0.5, 0.9))),
    ("NAdam", {}), ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", {}), ("RAdam", dict(betas=(0.9, 0.9), weight_decay=0.1)),  # rho_t > 5 from step 6 on
    ("RMSprop", dict(centered=True, momentum=0.5)), ("SGD", dict(lr=0.1, momentum=0.9)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{'-'.join(k) or 'defaults'}" for n, k in CASES])
def test_rule_matches_pytorch(name, kwargs):
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), (3,)]  # several parameters: graphc's flat-group path
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [graphc.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt_g = getattr(graphc.optim, name)(ours, **kwargs)
    opt_t = getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(25):
        for p, q in zip(ours, theirs):
            g = (rng.standard_normal(p.shape) * 10.0 ** rng.integers(-3, 2, p.shape)).astype(np.float32)
            p.grad = graphc.tensor(g)
            q.grad = torch.tensor(g)
        opt_g.step()
        opt_t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=2e-5, atol=1e-6)
        for key, v in opt_t.state[q].items():
            np.testing.assert_allclose(np.asarray(opt_g.state[p][key].detach().numpy(), np.float64),
                                       v.detach().numpy().astype(np.float64), rtol=2e-5, atol=1e-7, err_msg=key)
