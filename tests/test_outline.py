"""Outlining (passes/outline.py): repeated module calls share one body, optimized, differentiated
and compiled once, and the compiled function still computes what eager mode computes."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
from graphc.ir.call import call
from graphc.ir.graph import Graph
from graphc.ir.primitive import TensorType
from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.passes import outline
from graphc.passes.manager import check_roundtrip


class Unrolled(nn.Module):
    """PyTorch's time_sequence_prediction model, small: two LSTMCells and a Linear over T steps."""

    def __init__(self, hidden: int = 5):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, x):
        n = x.size(0)
        h, c = torch.zeros(n, self.hidden, dtype=x.dtype), torch.zeros(n, self.hidden, dtype=x.dtype)
        h2, c2 = torch.zeros(n, self.hidden, dtype=x.dtype), torch.zeros(n, self.hidden, dtype=x.dtype)
        outs = []
        for x_t in x.chunk(x.size(1), dim=1):
            h, c = self.lstm1(x_t, (h, c))
            h2, c2 = self.lstm2(h, (h2, c2))
            outs.append(self.linear(h2))
        return torch.cat(outs, dim=1)


def _entry(f):
    return next(iter(f._compiled.cache.values()) if hasattr(f, "_compiled") else iter(f.cache.values()))


def _grads(model, fn, *args):
    model.zero_grad()
    loss = fn(*args)
    loss.backward()
    return loss.item(), [p.grad.numpy().copy() for p in model.parameters()]


def test_unrolled_lstm_cells_share_bodies_and_match_eager():
    torch.manual_seed(0)
    model = Unrolled().double()
    x, y = torch.randn(3, 12, dtype=torch.double), torch.randn(3, 12, dtype=torch.double)
    loss_fn = nn.MSELoss()
    eager_loss, eager_grads = _grads(model, lambda a, b: loss_fn(model(a), b), x, y)
    f = torch.compile(lambda a, b: loss_fn(model(a), b))
    loss, grads = _grads(model, f, x, y)
    e = _entry(f)
    assert "outlining" in e.stages["compile_stages"]
    # every step calls the two cells' bodies: at most two per cell (the first step's state needs
    # no gradient, so its body is differentiated with respect to fewer operands)
    import re
    called = re.findall(r"= _call_(body\d+)\(\(", e.forward.source)
    assert len(called) == 24 and len(set(called)) <= 4
    assert "_call_body" in e.backward.source
    assert loss == pytest.approx(eager_loss, rel=1e-12)
    for g, ge in zip(grads, eager_grads):
        np.testing.assert_allclose(g, ge, rtol=1e-10, atol=1e-12)
    # a second call runs the compiled code again, with the same result
    loss2, grads2 = _grads(model, f, x, y)
    assert loss2 == loss and all(np.array_equal(a, b) for a, b in zip(grads, grads2))


def test_outlined_gradients_match_finite_differences():
    torch.manual_seed(1)
    model = Unrolled(hidden=3).double()
    x, y = torch.randn(2, 9, dtype=torch.double), torch.randn(2, 9, dtype=torch.double)
    f = torch.compile(lambda a, b: ((model(a) - b) ** 2).sum())
    _, grads = _grads(model, f, x, y)
    assert "_call_body" in _entry(f).forward.source
    w = model.lstm1.weight_hh
    eps = 1e-6
    for idx in [(0, 0), (5, 2), (11, 1)]:
        with torch.no_grad():
            old = w[idx].item()
            w[idx] = old + eps
            up = ((model(x) - y) ** 2).sum().item()
            w[idx] = old - eps
            down = ((model(x) - y) ** 2).sum().item()
            w[idx] = old
        assert grads[1][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


def test_too_few_repeats_stay_inline():
    torch.manual_seed(0)
    model = Unrolled().double()
    x = torch.randn(2, outline.MIN_CALLS - 1, dtype=torch.double)
    f = torch.compile(lambda a: model(a).sum())
    f(x)
    assert "_call_" not in _entry(f).forward.source


class Block(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.fc = nn.Linear(n, n)

    def forward(self, x):
        return torch.tanh(self.fc(x)) + x


def test_distinct_modules_of_one_structure_share_a_body_and_train_as_eagerly():
    torch.manual_seed(0)
    net = nn.Sequential(*[Block(4) for _ in range(outline.MIN_CALLS + 2)])
    twin = nn.Sequential(*[Block(4) for _ in range(outline.MIN_CALLS + 2)])
    twin.load_state_dict(net.state_dict())
    x, y = torch.randn(6, 4), torch.randn(6, 4)
    opt, opt_twin = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), \
        torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)

    loss_of = torch.compile(lambda a, b: ((net(a) - b) ** 2).mean())
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = loss_of(x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        opt_twin.zero_grad()
        ref = ((twin(x) - y) ** 2).mean()
        ref.backward()
        opt_twin.step()
        assert losses[-1] == pytest.approx(ref.item(), rel=1e-5)
    assert losses[-1] < losses[0]
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    import re
    called = re.findall(r"= _call_(body\d+)\(\(", _entry(loss_of).forward.source)
    # every block, through one body (the first block's input needs no gradient: its own variant)
    assert len(called) == outline.MIN_CALLS + 2 and len(set(called)) == 2


class Counting(nn.Module):
    """A module that updates a buffer: its call's values are read outside it (the write-back)."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn(x) * 2


def test_calls_whose_values_escape_are_not_outlined():
    torch.manual_seed(0)
    net = nn.Sequential(*[Counting() for _ in range(outline.MIN_CALLS)])
    twin = nn.Sequential(*[Counting() for _ in range(outline.MIN_CALLS)])
    twin.load_state_dict(net.state_dict())
    x = torch.randn(5, 4)
    f = torch.compile(lambda a: net(a).sum())
    out = f(x)
    ref = twin(x).sum()
    assert out.item() == pytest.approx(ref.item(), rel=1e-5)
    for a, b in zip(net.buffers(), twin.buffers()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert "_call_" not in _entry(f).forward.source


class Passthrough(nn.Module):
    def forward(self, x):
        return x.view(-1)


def test_calls_returning_views_of_their_operands_are_not_outlined():
    mods = [Passthrough() for _ in range(outline.MIN_CALLS)]

    @torch.compile
    def f(x):
        return [m(x) for m in mods]

    x = torch.randn(2, 3)
    outs = f(x)
    x.add_(1)  # outputs that view the input see the write, as eagerly
    assert all(np.array_equal(o.numpy(), x.view(-1).numpy()) for o in outs)


def test_outline_pass_on_a_graph_and_its_text_round_trips():
    g = Graph("g")
    x = g.add_input(TensorType((3,), dt.float32))
    w = g.add_input(TensorType((3,), dt.float32), "param", "w")
    calls, v = [], x
    for _ in range(3):
        start = len(g.nodes)
        a = g.add_node(P.mul, [v, w], {})
        v = g.add_node(P.tanh, [a], {})
        calls.append((start, len(g.nodes), [v]))
    g.set_outputs([v])
    assert outline.outline(g, calls, min_calls=4) == 0  # three calls: too few
    assert outline.outline(g, calls, min_calls=3) == 1
    assert [n.prim for n in g.nodes] == [call] * 3
    assert len({id(n.attrs["body"]) for n in g.nodes}) == 1
    assert [n.prim.name for n in g.nodes[0].attrs["body"].nodes] == ["mul", "tanh"]
    g.rename()
    check_roundtrip(g, "after outlining")
    from graphc.ir.interpret import interpret
    xs, ws = np.array([0.5, -1.0, 2.0], np.float32), np.array([1.5, 0.5, -0.25], np.float32)
    want = xs
    for _ in range(3):
        want = np.tanh(want * ws)
    np.testing.assert_allclose(interpret(g, [xs, ws])[0], want, rtol=1e-6)


def test_forward_only_compile_with_outlined_calls():
    torch.manual_seed(0)
    model = Unrolled().double()
    x = torch.randn(2, 10, dtype=torch.double)
    with torch.no_grad():
        want = model(x).numpy()
        f = torch.compile(model)
        got = f(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert "_call_body" in _entry(f).forward.source


def test_whole_training_step_with_repeated_blocks_equals_eager():
    """backward() inside the compiled function reads every block's intermediates: nothing is
    outlined, and the step still equals the eager one."""
    torch.manual_seed(0)
    net = nn.Sequential(*[Block(4) for _ in range(outline.MIN_CALLS)])
    twin = nn.Sequential(*[Block(4) for _ in range(outline.MIN_CALLS)])
    twin.load_state_dict(net.state_dict())
    opt, opt_twin = torch.optim.Adam(net.parameters(), lr=0.01), torch.optim.Adam(twin.parameters(), lr=0.01)
    x, y = torch.randn(6, 4), torch.randn(6, 4)

    def step(model, optimizer):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss

    compiled = torch.compile(step)
    for _ in range(3):
        assert compiled(net, opt).item() == pytest.approx(step(twin, opt_twin).item(), rel=1e-5)
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
