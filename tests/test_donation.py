"""Donation: a compiled call computes a parameter's (or buffer's, or optimizer state's) new value
in that tensor's own array, so nothing is copied back after the call; where that would be wrong
(the old value is read later, the input is returned, a later step may fail) it copies as before."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
from train_steps import cross_entropy_step


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _code(tmp_path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("*/90_code.py")))


@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.Adam(p, lr=0.01),
                                      lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)])
def test_whole_step_updates_parameters_and_state_in_their_own_arrays(tmp_path, make_opt):
    model, ref = _mlp(), _mlp()
    opt, ref_opt = make_opt(model.parameters()), make_opt(ref.parameters())
    step = torch.compile(cross_entropy_step(model, opt), fullgraph=True, dump_dir=str(tmp_path))
    eager = cross_entropy_step(ref, ref_opt)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    arrays = [p._data for p in model.parameters()]
    for _ in range(5):
        assert float(step(x, y)) == pytest.approx(float(eager(x, y)), rel=1e-5)
    for p, q, a in zip(model.parameters(), ref.parameters(), arrays):
        assert p._data is a  # the same storage: updated in place
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    for p, q in zip(model.parameters(), ref.parameters()):
        for k, v in ref_opt.state[q].items():
            if isinstance(v, torch.Tensor) and v.ndim:
                np.testing.assert_allclose(opt.state[p][k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6)
    code = _code(tmp_path)
    assert "-> written into input in_0_weight (donated)" in code
    assert "-> written into input in_2_bias (donated)" in code


def test_a_failing_step_leaves_parameters_and_state_unchanged():
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    step = torch.compile(cross_entropy_step(model, opt), fullgraph=True)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(3):
        step(x, y)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {id(p): {k: v.clone() for k, v in opt.state[p].items() if isinstance(v, torch.Tensor)}
             for p in model.parameters()}
    with pytest.raises((IndexError, RuntimeError)):
        step(x, torch.full((16,), 7, dtype=torch.int64))  # a class index out of range
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for p in model.parameters():
        for k, v in state[id(p)].items():
            assert torch.equal(opt.state[p][k], v), k


def test_buffers_updated_by_a_compiled_module_in_place():
    torch.manual_seed(0)
    bn, ref = nn.BatchNorm1d(4), nn.BatchNorm1d(4)
    mean_array = bn.running_mean._data
    m = torch.compile(bn)
    for _ in range(3):
        x = torch.randn(8, 4)
        np.testing.assert_allclose(m(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert bn.running_mean._data is mean_array
    np.testing.assert_allclose(bn.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), ref.running_var.numpy(), rtol=1e-6)


def test_no_donation_where_the_old_value_is_still_needed(tmp_path):
    w = torch.randn(5)
    w_ref = w.clone()

    def f(x):
        old = w * 1.0          # read before the update ...
        w.mul_(2.0)
        return old + w + x.sum() * w  # ... and the new value read after it

    def returns_it(x):
        w.add_(x)
        return w               # the updated tensor itself is returned: its array stays its own

    cf, cr = torch.compile(f, dump_dir=str(tmp_path)), torch.compile(returns_it)
    x = torch.randn(5)
    for _ in range(3):
        got = cf(x)
        old = w_ref * 1.0
        w_ref.mul_(2.0)
        want = old + w_ref + x.sum() * w_ref
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        np.testing.assert_allclose(w.numpy(), w_ref.numpy(), rtol=1e-6)
    for _ in range(2):
        out = cr(x)
        w_ref.add_(x)
        assert out is w or np.shares_memory(out.numpy(), w.numpy())
        np.testing.assert_allclose(w.numpy(), w_ref.numpy(), rtol=1e-6)


def test_a_compiled_call_that_fails_after_an_update_writes_nothing_back():
    # the update of w comes first in the graph, an index check after it fails: with the new value
    # computed in w's own array, w would be half-done; the call writes back all or nothing
    w = torch.zeros(4)

    def f(x, idx):
        w.add_(1.0)
        return x.gather(0, idx)

    cf = torch.compile(f)
    x = torch.randn(4)
    cf(x, torch.tensor([0, 1]))
    assert w.tolist() == [1.0] * 4
    with pytest.raises((IndexError, RuntimeError)):
        cf(x, torch.tensor([0, 9]))
    assert w.tolist() == [1.0] * 4
