"""Dispatch state is per thread: compiling in one thread never changes what another computes."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.compiler import GraphBreak, SymbolicTensor
from graphc.nn.modules.module import Module
from threads import run_together


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up quickly
    yield
    sys.setswitchinterval(old)


def test_compiling_threads_and_eager_threads_all_get_right_answers(fast_switching):
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    xs = [np.random.default_rng(i).standard_normal((5, 8)).astype(np.float32) for i in range(4)]
    with graphc.no_grad():
        expected = [model(graphc.tensor(x)).numpy().copy() for x in xs]
    wrong: list[str] = []

    def work(i: int) -> None:
        x = graphc.tensor(xs[i])
        for rep in range(25):
            if i % 2 == 0:
                # a fresh compiled function each time: every call traces while the others run
                def f(t, k=rep):
                    return model(t) * 1.0 + graphc.ones(4) * 0.0 + k * 0.0
                out = graphc.compile(f)(x)
            else:
                out = model(x)  # eager, on the very module being traced in other threads
            if type(out) is not graphc.Tensor:
                wrong.append(f"thread {i} got a {type(out).__name__}")
            elif not np.allclose(out.detach().numpy(), expected[i], rtol=1e-5, atol=1e-6):
                wrong.append(f"thread {i} got a wrong value at rep {rep}")
            if out.grad_fn is None:
                wrong.append(f"thread {i}: the output lost its autograd history")

    errors = run_together(work, 4)
    assert not errors, errors[:3]
    assert not wrong, wrong[:5]


def test_many_threads_compiling_at_once_leak_no_graph_breaks(fast_switching):
    def work(i: int) -> None:
        x = graphc.arange(12, dtype=graphc.float32).reshape(3, 4) + i
        for rep in range(20):
            f = graphc.compile(lambda t: (t.softmax(-1) * 2).sum(0) + rep)
            got = f(x).numpy()
            e = np.exp(x.numpy() - x.numpy().max(-1, keepdims=True))
            want = (e / e.sum(-1, keepdims=True) * 2).sum(0) + rep
            np.testing.assert_allclose(got, want, rtol=1e-5)

    errors = run_together(work, 4)
    assert not errors, errors[:3]
    assert not any(isinstance(e, GraphBreak) for e in errors)


def test_tracing_patches_no_shared_class():
    seen = {}

    def f(x):
        seen["call"] = Module.__call__
        seen["item"] = graphc.Tensor.__dict__["item"]
        seen["grad"] = graphc.Tensor.__dict__["grad"]
        return x + 1

    before = (Module.__call__, graphc.Tensor.__dict__["item"], graphc.Tensor.__dict__["grad"])
    graphc.compile(f)(graphc.ones(3))
    assert (seen["call"], seen["item"], seen["grad"]) == before


def test_eager_thread_reads_values_while_another_thread_traces():
    """Reading a parameter's value eagerly is fine even while a trace is open in another thread
    (a trace there makes such reads graph breaks)."""
    lin = nn.Linear(3, 1)
    inside, done = threading.Event(), threading.Event()
    results: list = []

    def traced(x):
        inside.set()
        done.wait(10)
        return lin(x)

    def tracer() -> None:
        results.append(graphc.compile(traced)(graphc.ones(2, 3)))

    t = threading.Thread(target=tracer)
    t.start()
    assert inside.wait(10)
    try:
        value = lin.weight[0, 0].item()  # eager read in this thread, during the other's trace
        grad_before = lin.weight.grad
    finally:
        done.set()
        t.join()
    assert value == lin.weight.detach().numpy()[0, 0]
    assert grad_before is None
    assert type(results[0]) is graphc.Tensor


def test_a_traced_tensor_used_in_another_thread_raises_clearly():
    box: list = []

    def f(x):
        box.append(x)  # escapes the trace
        return x * 2

    graphc.compile(f)(graphc.ones(3))
    leaked = box[0]
    assert isinstance(leaked, SymbolicTensor)
    errors: list = []

    def use() -> None:
        try:
            leaked + 1
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert len(errors) == 1 and "outside the function being compiled" in str(errors[0])
    with pytest.raises(RuntimeError, match="outside the function being compiled"):
        leaked * 3  # and in this thread, after the trace ended
