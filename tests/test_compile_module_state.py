"""Tensors a module computes in ``forward`` and keeps on ``self`` (or in a global) under
graphc.compile: the writes are lifted and replayed per call, guarded on the old value; after a
graph break every attribute is as the eager call leaves it (no symbolic tensor left behind)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.compiler.tracing import SymbolicTensor


class _MaskCache(nn.Module):
    """The src_mask cache of PyTorch's word_language_model Transformer, minimal form."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.mask = None
        self.traced = 0

    def forward(self, x):
        n = x.shape[0]
        if self.mask is None or self.mask.size(0) != n:
            self.mask = graphc.ones(n, n) * 2
        return (self.mask @ self.lin(x)).sum()


def _run(m, cm, xs):
    out = []
    for x in xs:
        loss = cm(x)
        loss.backward()
        assert type(m.mask) is graphc.Tensor
        out.append((loss.item(), m.mask.numpy().copy(), m.lin.weight.grad.numpy().copy()))
        m.zero_grad()
    return out


def test_tensor_stored_on_self_in_forward_is_written_back_and_guarded():
    xs = [graphc.randn(3, 4), graphc.randn(3, 4), graphc.randn(5, 4), graphc.randn(5, 4), graphc.randn(5, 4)]
    eager = _MaskCache()
    m = _MaskCache()
    m.load_state_dict(eager.state_dict())
    cm = graphc.compile(m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _run(m, cm, xs)
    want = _run(eager, eager, xs)
    for (l1, m1, g1), (l2, m2, g2) in zip(got, want):
        assert l1 == pytest.approx(l2, rel=1e-5)
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_allclose(g1, g2, rtol=1e-5)
    # recompiles: the 2nd call (mask no longer None: now read), the 3rd (new input size: the mask is
    # rebuilt), the 4th (the mask has the new size); the 5th runs what the 4th compiled
    assert cm._compiled.recompiles == 3
    assert "_MaskCache.mask changed from None to a Tensor" in cm._compiled.history[0]


def test_switching_back_to_a_compiled_state_of_the_module_does_not_recompile():
    """The mask cache rebuilt at each switch between two input sizes (training and evaluation
    batches): each (input, mask) state compiles once; switching back finds its entry again."""
    eager, m = _MaskCache(), _MaskCache()
    m.load_state_dict(eager.state_dict())
    cm = graphc.compile(m)
    sizes = [3, 3, 5, 5] * 4
    xs = [graphc.randn(n, 4) for n in sizes]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no recompile limit either
        got = _run(m, cm, xs[:8])
        # 3 in the first round (as above), 1 in the second: size 3 meets the 5x5 mask (a rebuild)
        two_rounds = cm._compiled.recompiles
        got += _run(m, cm, xs[8:])
    assert cm._compiled.recompiles == two_rounds == 4
    for (l1, m1, g1), (l2, m2, g2) in zip(got, _run(eager, eager, xs)):
        assert l1 == pytest.approx(l2, rel=1e-5)
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_allclose(g1, g2, rtol=1e-5)


class _RunningAvg(nn.Module):
    """A plain tensor attribute (not a buffer) replaced by a new tensor at every call."""

    def __init__(self):
        super().__init__()
        self.avg = graphc.zeros(3)

    def forward(self, x):
        self.avg = 0.5 * self.avg + 0.5 * x
        return self.avg * 3


def test_attribute_rebound_every_call_is_read_by_name_and_does_not_recompile():
    m, e = _RunningAvg(), _RunningAvg()
    cm = graphc.compile(m)
    for _ in range(4):
        x = graphc.randn(3)
        held = m.avg
        np.testing.assert_allclose(cm(x).numpy(), e(x).numpy(), rtol=1e-6)
        assert m.avg is not held and np.allclose(held.numpy(), m.avg.numpy() * 2 - x.numpy())  # old tensor untouched
        np.testing.assert_allclose(m.avg.numpy(), e.avg.numpy(), rtol=1e-6)
    assert cm._compiled.recompiles == 0


class _CarriesState(nn.Module):
    """An RNN-style state tuple kept on the module and read by the next call."""

    def __init__(self):
        super().__init__()
        self.state = (graphc.zeros(3), graphc.zeros(()))

    def forward(self, x):
        h, n = self.state
        self.state = (h * 0.5 + x, n + x.sum())
        return self.state[0].sum()


def test_tuple_of_tensors_stored_and_read_back_matches_eager():
    m, e = _CarriesState(), _CarriesState()
    cm = graphc.compile(m)
    for _ in range(4):
        x = graphc.randn(3)
        assert cm(x).item() == pytest.approx(e(x).item(), rel=1e-5)
        assert isinstance(m.state, tuple) and not any(isinstance(t, SymbolicTensor) for t in m.state)
        for a, b in zip(m.state, e.state):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


class _Breaks(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        self.h = self.lin(x)
        if self.h.sum() > 0:  # data-dependent: a graph break
            return self.h.sum()
        return -self.h.sum()


def test_graph_break_leaves_python_state_as_eager_execution_would():
    m = _Breaks()
    cm = graphc.compile(m)
    x = graphc.randn(2, 3)
    with pytest.warns(UserWarning, match="graph break"):
        loss = cm(x)
    assert m.calls == 1  # the traced attempt's increment is undone; the eager run's counts
    assert type(m.h) is graphc.Tensor and m.h.grad_fn is not None
    loss.backward()  # the stored tensor is a real one: backward works
    assert m.lin.weight.grad is not None
    cm(x)
    assert m.calls == 2


def test_python_scalar_written_in_forward_is_replayed_per_call():
    m = _Breaks()

    def f(x):
        m.calls += 1
        return m.lin(x).sum()

    cf = graphc.compile(f)
    for _ in range(3):
        cf(graphc.randn(2, 3))
    assert m.calls == 3  # a changed counter recompiles (the trace baked it in), so each call counts


_CACHE = None


def test_global_tensor_written_by_compiled_function():
    def f(x):
        global _CACHE
        _CACHE = x * 3
        return x + 1

    cf = graphc.compile(f)
    x = graphc.randn(4)
    cf(x)
    assert type(_CACHE) is graphc.Tensor
    np.testing.assert_allclose(_CACHE.numpy(), x.numpy() * 3, rtol=1e-6)
