"""A second ``graphc.compile`` of the same module or function reuses what the first compiled, as
PyTorch keeps compiled code with the code it compiled: a program that calls ``compile(model)`` in
each call of its train() function traces once, not once per call. Guards still decide every call."""
from __future__ import annotations

import copy
import pickle

import numpy as np

import graphc
import graphc.nn as nn


TRACES: list = []


class Counting(nn.Module):
    """Logs each run of its forward's Python: once per trace when compiled (a list's append is not
    replayed by compiled code, as a write to an attribute would be)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        TRACES.append(self)
        return self.dropout(self.fc(x)).relu()


def runs(m) -> int:
    return sum(t is m for t in TRACES)


def test_compiling_a_module_again_reuses_its_compiled_code():
    m = Counting().eval()
    x = graphc.randn(4, 3)
    want = m.fc(x).relu()
    first = graphc.compile(m)
    np.testing.assert_allclose(first(x).detach().numpy(), want.detach().numpy(), rtol=1e-6)
    second = graphc.compile(m)
    assert second is not first  # a new wrapper (PyTorch's OptimizedModule), the same compiled code
    np.testing.assert_allclose(second(x).detach().numpy(), want.detach().numpy(), rtol=1e-6)
    assert runs(m) == 1
    m.train()  # the guards still hold for the shared code: train() traces a graph of its own
    second(x)
    assert runs(m) == 2 and second._compiled.recompiles == 1
    graphc.compile(m, fullgraph=True)(x)  # other settings: compiled apart
    assert runs(m) == 3


def test_compiling_a_function_again_reuses_its_compiled_code():
    traced = []

    def f(x):
        traced.append(1)
        return x.sin() * 2

    x = graphc.randn(5)
    assert graphc.compile(f) is graphc.compile(f)
    for _ in range(3):
        np.testing.assert_allclose(graphc.compile(f)(x).numpy(), (x.sin() * 2).numpy(), rtol=1e-6)
    assert len(traced) == 1
    graphc.compile(f)(graphc.randn(6))  # a new shape: a recompile of the shared function
    assert len(traced) == 2


def test_copies_and_saved_modules_leave_the_compiled_code_behind():
    m = Counting().eval()
    x = graphc.randn(4, 3)
    graphc.compile(m)(x)
    twin = copy.deepcopy(m)
    assert "_graphc_compiled" in vars(m) and "_graphc_compiled" not in vars(twin)
    with graphc.no_grad():
        twin.fc.weight.mul_(2)  # the copy's own weights, read by its own compile
    np.testing.assert_allclose(graphc.compile(twin)(x).detach().numpy(), twin.fc(x).relu().detach().numpy(), rtol=1e-6)
    assert runs(twin) == 1
    loaded = pickle.loads(pickle.dumps(m))  # torch.save(model) pickles the module too
    assert "_graphc_compiled" not in vars(loaded)
    np.testing.assert_allclose(loaded(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
