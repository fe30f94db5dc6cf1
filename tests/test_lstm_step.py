"""An LSTM training step at the sizes of the benchmark's workload (batch 16, 20 steps, 32 inputs,
hidden 64: gates of 16x256, so sigmoid takes its numpy passes and the gates' gradients one concat
with a zero gap for the cell gate) compiled whole, against graphc eager and against PyTorch's own
LSTM (where installed) over a few Adam steps; and LSTM/RNN layers, whose biases are added once
for all steps, against PyTorch in float64 with gradients."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from train_steps import cross_entropy_step

torch = pytest.importorskip("torch")


def _model(lib):
    """The benchmark's model on framework ``lib``: LSTM, a linear head on the last step."""
    class Seq(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lib.nn.LSTM(32, 64, batch_first=True)
            self.head = lib.nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])
    return Seq()


def _copy_weights(src, dst) -> None:
    with torch.no_grad():
        for (_, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
            b.copy_(torch.from_numpy(a.numpy().copy()))


def test_benchmark_lstm_step_compiled_equals_eager_and_pytorch():
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((16, 20, 32)).astype(np.float32), rng.integers(0, 10, 16)) for _ in range(4)]
    graphc.manual_seed(0)
    eager_model = _model(graphc)
    models = [eager_model, copy.deepcopy(eager_model)]
    tm = _model(torch)
    _copy_weights(models[0], tm)
    steps = [cross_entropy_step(m, graphc.optim.Adam(m.parameters(), lr=1e-2), detach=True) for m in models]
    steps[1] = graphc.compile(steps[1], fullgraph=True)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    for x, y in data:
        eager, compiled = (s(graphc.from_numpy(x), graphc.tensor(y)).item() for s in steps)
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        topt.step()
        np.testing.assert_allclose(compiled, eager, rtol=1e-5)
        np.testing.assert_allclose(compiled, loss.item(), rtol=1e-4)
    for (name, a), (_, b), (_, c) in zip(models[0].state_dict().items(), models[1].state_dict().items(),
                                         tm.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(b.numpy(), c.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("mode", ["LSTM", "RNN", "GRU"])
@pytest.mark.parametrize("compiled", [False, True])
def test_recurrent_layer_and_gradients_against_pytorch(mode, compiled):
    # float64, two layers, bidirectional: outputs, final states and every parameter's gradient
    # (each bias's own: they are added together once for all steps, except GRU's)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5))
    graphc.manual_seed(0)
    m = getattr(nn, mode)(5, 7, num_layers=2, bidirectional=True, batch_first=True).double()
    tm = getattr(torch.nn, mode)(5, 7, num_layers=2, bidirectional=True, batch_first=True).double()
    _copy_weights(m, tm)
    w = rng.standard_normal((3, 6, 14))

    def loss(x):
        out, state = m(x)
        h = state[0] if mode == "LSTM" else state
        return (out * graphc.from_numpy(w)).sum() + (h * h).sum()
    fn = graphc.compile(loss) if compiled else loss
    got = fn(graphc.from_numpy(x))
    got.backward()
    tout, tstate = tm(torch.from_numpy(x))
    th = tstate[0] if mode == "LSTM" else tstate
    want = (tout * torch.from_numpy(w)).sum() + (th * th).sum()
    want.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)
    for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_every_steps_recurrent_product_reads_one_row_major_copy_of_the_weight():
    # (BLAS reads a transposed 64x256 operand at ~2.5x the cost of a row-major one here)
    graphc.manual_seed(0)
    m = nn.LSTM(3, 4)
    x = graphc.from_numpy(np.random.default_rng(2).standard_normal((5, 2, 3)).astype(np.float32))
    with graphc.no_grad():
        code = graphc.explain(graphc.compile(lambda x: m(x)[0].sum()), x).code
    lines = [ln.strip() for ln in code.splitlines()]
    steps = [ln for ln in lines if ln.startswith("np.matmul(") and "weight_ih" not in ln]
    copies = [ln for ln in lines if ln.startswith("_copy(in_weight_hh_l0.transpose((1, 0)), out=")]
    assert len(steps) == 5 and len(copies) == 1, (steps, copies)
    buf = copies[0].split("out=")[1].rstrip(")")
    assert all(f", {buf}, " in ln for ln in steps), steps  # its second operand (then out)
