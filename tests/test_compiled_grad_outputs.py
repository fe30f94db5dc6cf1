"""A compiled step that returns a ``.grad`` it wrote returns its value (it used to fail with an
IndexError when the gradient was of a parameter outside any module, read as an alias of an
updated input that was not there)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc


def _step(p, lin, zero: bool):
    def step(x):
        if zero:
            p.grad = None
            lin.zero_grad()
        loss = (lin(x * p) ** 2).sum()
        loss.backward()
        return loss.detach(), p.grad, lin.weight.grad
    return step


@pytest.mark.parametrize("zero", [True, False])
def test_returned_grads_are_the_written_grads(zero):
    """Against eager mode, three steps, with ``.grad`` reset each step or accumulated."""
    runs = {}
    for mode in ("eager", "compiled"):
        graphc.manual_seed(0)
        p = graphc.nn.Parameter(graphc.linspace(0.5, 1.5, 3))
        lin = graphc.nn.Linear(3, 2)
        step = _step(p, lin, zero)
        if mode == "compiled":
            step = graphc.compile(step, fullgraph=True)
        x = graphc.tensor([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]])
        outs = []
        for _ in range(3):  # without zeroing, the gradients accumulate in place
            loss, gp, gw = step(x)
            np.testing.assert_array_equal(gp.numpy(), p.grad.numpy())
            np.testing.assert_array_equal(gw.numpy(), lin.weight.grad.numpy())
            outs.append([loss.numpy().copy(), gp.numpy().copy(), gw.numpy().copy()])
        runs[mode] = outs
    for want, got in zip(runs["eager"], runs["compiled"]):
        for a, b in zip(want, got):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
