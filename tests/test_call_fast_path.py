"""A compiled function's call checks the entry that ran last first, part by part, without building
its guard tuple (``graphc.compiler.api._fast_hit``). Each test here first makes that entry the
last one (two calls), then changes one thing the guard covers: the call must recompile (or find
the right cached entry), never run the last entry. With tensor arguments only, which is the path
the fast check takes (the recompile-reason tests elsewhere pass a Python scalar too)."""
from __future__ import annotations

import types

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from threads import wrong_answers

SCALE = 2.0      # a global scalar the compiled function bakes in (guarded)
OFFSET = graphc.ones(3)  # a global tensor it reads by identity (lifted)


def _scaled(x, y):
    return x * SCALE + y


def _warm(f, *args):
    """Two calls: the second runs through the fast check."""
    first = f(*args)
    again = f(*args)
    np.testing.assert_array_equal(again.detach().numpy(), first.detach().numpy())
    cf = getattr(f, "_compiled", f)   # compile(module) wraps its CompiledFunction
    assert len(cf.cache) == 1 and cf._last is next(iter(cf.cache.values()))


def _x():
    return graphc.ones(2, 3)


def _y():
    return graphc.full((2, 3), 0.5)


def _no_grad_call(f, x, y):
    with graphc.no_grad():
        return f(x, y)


def _requires_grad_call(f, x, y):
    xr = x.clone().requires_grad_()
    out = f(xr, y)
    out.sum().backward()
    np.testing.assert_array_equal(xr.grad.numpy(), np.full((2, 3), 2.0))
    return out


# each: the call made after the entry for (x, y) ran last, and what its result must be
CHANGES = {
    "shape": (lambda f, x, y: f(graphc.ones(4, 3), graphc.full((4, 3), 0.5)), (4, 3), graphc.float32, False),
    "dtype": (lambda f, x, y: f(x.double(), y.double()), (2, 3), graphc.float64, False),
    "requires_grad": (_requires_grad_call, (2, 3), graphc.float32, True),
    "grad_mode": (lambda f, x, y: _no_grad_call(f, x.requires_grad_(), y), (2, 3), graphc.float32, False),
    "python_number": (lambda f, x, y: f(x, 0.5), (2, 3), graphc.float32, False),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_guarded_change_after_a_fast_hit_recompiles(change):
    call, shape, dtype, requires_grad = CHANGES[change]
    # a fresh function object: compile() keeps one CompiledFunction per function object
    f = graphc.compile(types.FunctionType(_scaled.__code__, _scaled.__globals__))
    x, y = _x(), _y()
    if change == "grad_mode":   # the entry that ran last: same inputs, grad mode on
        x.requires_grad_()
    _warm(f, x, y)
    out = call(f, _x(), _y())
    assert (tuple(out.shape), out.dtype, out.requires_grad) == (shape, dtype, requires_grad)
    np.testing.assert_array_equal(out.detach().numpy(), np.full(shape, 2.5))
    assert f.recompiles == 1


def test_a_tensor_passed_twice_after_distinct_ones_is_not_the_distinct_entry():
    def g(a, b):
        a.add_(1)
        b.add_(10)         # eagerly, a sees this write too when a is b
        return a * 1

    f = graphc.compile(g)
    for _ in range(2):   # the second call runs through the fast check
        np.testing.assert_array_equal(f(graphc.ones(3), graphc.ones(3)).numpy(), [2.0, 2.0, 2.0])
    assert f._last is not None
    x = graphc.ones(3)
    np.testing.assert_array_equal(f(x, x).numpy(), [12.0, 12.0, 12.0])
    np.testing.assert_array_equal(x.numpy(), [12.0, 12.0, 12.0])


def test_a_different_number_of_tensors_is_another_entry():
    f = graphc.compile(lambda *xs: sum(xs[1:], xs[0]))
    a = graphc.ones(2)
    _warm(f, a, a * 2)
    assert f(a, a * 2, a * 3).tolist() == [6.0, 6.0]
    assert f(a).tolist() == [1.0, 1.0]
    assert f.recompiles == 2


def test_global_scalar_and_global_tensor_changes_are_seen(monkeypatch):
    f = graphc.compile(lambda x: x * SCALE + OFFSET)
    x = graphc.ones(3)
    _warm(f, x)
    monkeypatch.setitem(globals(), "SCALE", 5.0)
    np.testing.assert_array_equal(f(x).numpy(), [6.0, 6.0, 6.0])
    monkeypatch.setitem(globals(), "OFFSET", graphc.full((3,), 10.0))   # rebound to another tensor
    np.testing.assert_array_equal(f(x).numpy(), [15.0, 15.0, 15.0])
    OFFSET.fill_(20.0)                                                 # written in place: read afresh
    np.testing.assert_array_equal(f(x).numpy(), [25.0, 25.0, 25.0])
    assert f.recompiles == 1   # a global tensor only read is read by name: rebinding it needs no recompile


def test_parameter_changes_after_a_fast_hit():
    lin = nn.Linear(3, 2)
    f = graphc.compile(lin)
    x = graphc.randn(4, 3)
    _warm(f, x)
    lin.weight.data = graphc.randn(5, 3)                              # same tensors, new shapes
    lin.bias.data = graphc.randn(5)
    np.testing.assert_allclose(f(x).detach().numpy(), (x @ lin.weight.t() + lin.bias).detach().numpy(), rtol=1e-6)
    lin.weight.requires_grad_(False)                                  # frozen: no gradient for it
    out = f(x)
    out.sum().backward()
    assert lin.weight.grad is None and lin.bias.grad is not None
    lin.eval()                                                        # training flag of the module
    f(x)
    assert f._compiled.recompiles == 3
    assert f._compiled.history[-1] == "recompile #3: a module's training flag changed (train()/eval())"


def test_a_lifted_tensor_changing_dtype_recompiles():
    f = graphc.compile(lambda x: x * SCALE + OFFSET)
    x = graphc.ones(3)
    _warm(f, x)
    OFFSET.data = OFFSET.data.double()   # the same tensor, now float64: the result is promoted
    try:
        out = f(x)
    finally:
        OFFSET.data = OFFSET.data.float()
    assert out.dtype == graphc.float64 and out.tolist() == [3.0, 3.0, 3.0]
    assert f.recompiles == 1


class _Accumulator(nn.Module):
    """Keeps a running tensor on ``self`` that forward rebinds (read by name at every call)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = graphc.zeros(3)

    def forward(self, x):
        self.total = self.total + x
        return self.total * 2


def test_a_rebound_attribute_changing_dtype_recompiles():
    m = _Accumulator()
    f = graphc.compile(m)
    x = graphc.ones(3)
    assert f(x).tolist() == [2.0] * 3 and f(x).tolist() == [4.0] * 3   # the second through the fast check
    assert m.total.tolist() == [2.0, 2.0, 2.0] and f._compiled._last is not None
    m.total = graphc.zeros(3, dtype=graphc.float64)
    out = f(x)
    assert out.dtype == graphc.float64 and out.tolist() == [2.0, 2.0, 2.0]
    assert m.total.dtype == graphc.float64 and f._compiled.recompiles == 1


def test_an_optimizer_hyperparameter_changing_sign_recompiles():
    """momentum 0.9 -> 0: SGD's update no longer keeps a momentum buffer (read as a graph input
    at every call, whose sign the traced code branched on)."""
    runs = {}
    for compiled in (False, True):
        p = nn.Parameter(graphc.ones(3))
        opt = graphc.optim.SGD([p], lr=0.1, momentum=0.9)
        step = graphc.compile(opt.step) if compiled else opt.step
        for k in range(4):
            if k == 3:
                opt.param_groups[0]["momentum"] = 0.0
            p.grad = graphc.full((3,), float(k + 1))
            step()
        runs[compiled] = (p.detach().numpy().copy(), opt.state[p]["momentum_buffer"].numpy().copy())
    for want, got in zip(runs[False], runs[True]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_alternating_signatures_use_their_own_entries():
    f = graphc.compile(lambda x: x.sum(0) * 2)
    a, b = graphc.ones(2, 3), graphc.ones(5, 4)
    for _ in range(3):
        assert f(a).tolist() == [4.0] * 3
        assert f(b).tolist() == [10.0] * 4
    assert len(f.cache) == 2 and f.recompiles == 1


def test_threads_with_different_shapes_get_their_own_results():
    """The last entry is shared by the threads: each call still runs the entry of its own inputs."""
    f = graphc.compile(lambda x, w: (x * w).sum(1))
    xs = [graphc.full((n, 3), float(n)) for n in (2, 3, 4, 5)]
    ws = [graphc.full((3,), 1.0), graphc.full((3,), 2.0, dtype=graphc.float64),
          graphc.full((3,), 3.0), graphc.full((3,), 4.0, dtype=graphc.float64)]
    inputs = [(x.double() if w.dtype == graphc.float64 else x, w) for x, w in zip(xs, ws)]
    want = [(x * w).sum(1).numpy() for x, w in inputs]
    for x, w in inputs:
        f(x, w)

    def right(i: int) -> bool:
        got = f(*inputs[i]).numpy()
        return got.dtype == want[i].dtype and got.shape == want[i].shape and np.array_equal(got, want[i])
    assert wrong_answers(right, reps=60) == []
    assert len(f.cache) == 4


@pytest.mark.parametrize("change", ["autocast", "trace"])
def test_no_fast_hit_while_a_thread_dispatches(change):
    """Under autocast (an operand policy) the call is looked up with its autocast state; inside
    another compiled function's trace it is inlined."""
    f = graphc.compile(lambda x, y: x @ y)
    x, y = graphc.randn(4, 4), graphc.randn(4, 4)
    _warm(f, x, y)
    if change == "autocast":
        with graphc.autocast("cpu", dtype=graphc.float16):
            assert f(x, y).dtype == graphc.float16
        assert f.recompiles == 1
    else:
        outer = graphc.compile(lambda x, y: f(x, y) + 1)
        np.testing.assert_allclose(outer(x, y).numpy(), (x @ y + 1).numpy(), rtol=1e-6)
        assert len(outer.cache) == 1 and outer._last is not None


def test_call_overhead_benchmark_runs(tmp_path):
    """benchmarks/call_overhead.py (quick, the tiny workload) runs and reports every part."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "call_overhead.py"
    spec = importlib.util.spec_from_file_location("call_overhead", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "overhead.json"
    assert bench.main(["--quick", "--only", "tiny", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["workloads"]["tiny"]["median_us"]
    assert set(figures) == set(bench.PARTS)
    assert figures["call"] > figures["code"] > 0 and figures["overhead"] > 0
