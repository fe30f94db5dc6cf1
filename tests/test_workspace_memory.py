"""Bounded memory between calls: a compiled graph keeps at most ``POOL_LIMIT`` idle workspaces, all
graphs together at most ``IDLE_LIMIT_BYTES`` (least recently released dropped first), and compiled
entries keep their code, not the IR it was made from. Calls running at once still get distinct
workspaces. Also: ``compile``'s PyTorch settings (``dynamic``, ``mode``, ``options``) are honoured or
refused, never silently ignored."""
from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.runtime import compiled as C

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from threads import wrong_answers  # noqa: E402

BATCHES = [8, 12, 16, 20, 24, 28, 32, 36, 40]  # 9 specializations (8 recompiles: the limit)


def _mlp():
    graphc.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def _train_steps(model, run):
    """One forward+backward per batch size; the gradients of each step."""
    grads = []
    for b in BATCHES:
        rng = np.random.default_rng(b)
        x = graphc.tensor(rng.standard_normal((b, 64)).astype(np.float32))
        y = graphc.tensor(rng.integers(0, 10, size=b))
        F.cross_entropy(run(x), y).backward()
        grads.append([p.grad.numpy().copy() for p in model.parameters()])
        model.zero_grad(set_to_none=True)
    return grads


def _tanh_rows():
    """A compiled function whose generated code writes planned workspace buffers."""
    return graphc.compile(lambda x: ((x.exp() - 1.0).tanh() * x).sum(1))


def _pools(cm):
    return [g.pool for e in cm._compiled.cache.values() for g in (e.forward, e.backward) if g is not None]


def test_idle_workspaces_of_many_specializations_are_bounded(monkeypatch):
    limit = 64 << 10
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", limit)
    model = _mlp()
    want = _train_steps(model, model)
    cm = graphc.compile(model)
    got = _train_steps(model, cm)
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    pools = _pools(cm)
    assert len(pools) == 2 * len(BATCHES)
    # without the cap these graphs would keep every workspace: more than the cap together
    assert sum(p.nbytes for p in pools) > 4 * limit
    assert C.idle_workspace_bytes() <= limit
    assert sum(p.idle * p.nbytes for p in pools) <= limit
    assert all(p.idle <= C.POOL_LIMIT for p in pools)
    # the last call's workspaces are the ones kept (least recently released go first)
    last = next(reversed(cm._compiled.cache.values()))
    assert last.backward.pool.idle == 1 or last.backward.pool.nbytes > limit


def test_idle_bytes_stay_under_the_default_cap():
    model = _mlp()
    cm = graphc.compile(model)
    _train_steps(model, cm)
    assert 0 < C.idle_workspace_bytes() <= C.IDLE_LIMIT_BYTES
    assert all(p.idle <= C.POOL_LIMIT for p in _pools(cm))


def test_a_workspace_is_reused_by_the_next_call_of_its_graph(monkeypatch):
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", 1 << 30)
    f = _tanh_rows()
    x = graphc.randn(16, 32)
    f(x)
    pool = next(iter(f.cache.values())).forward.pool
    assert pool.nbytes > 0 and pool.idle == 1
    ws = pool.acquire()
    assert pool.idle == 0
    pool.release(ws)
    assert pool.acquire() is ws  # no new allocation


def test_least_recently_released_workspace_is_dropped_first(monkeypatch):
    f = _tanh_rows()
    g = graphc.compile(lambda x: ((x.sin() + 1.0).tanh() * x).sum(0))
    x = graphc.randn(16, 32)
    f(x), g(x)
    pf, pg = (next(iter(h.cache.values())).forward.pool for h in (f, g))
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", max(pf.nbytes, pg.nbytes))   # room for one of them
    f(x)
    g(x)
    assert (pf.idle, pg.idle) == (0, 1)
    f(x)
    assert (pf.idle, pg.idle) == (1, 0)


def test_workspaces_larger_than_the_cap_are_not_kept(monkeypatch):
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", 16)
    f = _tanh_rows()
    f(graphc.randn(16, 32))
    pool = next(iter(f.cache.values())).forward.pool
    assert pool.nbytes > 16 and pool.idle == 0


def test_calls_at_once_get_distinct_workspaces_and_leave_one_idle():
    f = _tanh_rows()
    xs = [graphc.randn(16, 32) for _ in range(4)]
    want = [f(x).numpy().copy() for x in xs]
    pool = next(iter(f.cache.values())).forward.pool
    held = [pool.acquire() for _ in range(4)]   # four calls running at once
    assert held[0] and not any(np.shares_memory(a, b) for i, w in enumerate(held) for v in held[i + 1:]
                               for a in w for b in v)
    for ws in held:
        pool.release(ws)
    assert pool.idle == C.POOL_LIMIT
    assert wrong_answers(lambda i: np.allclose(f(xs[i]).numpy(), want[i], rtol=1e-6)) == []
    assert pool.idle <= C.POOL_LIMIT and C.idle_workspace_bytes() <= C.IDLE_LIMIT_BYTES


def test_idle_accounting_is_consistent_under_threads(monkeypatch):
    """Many graphs released from several threads at once: the total never passes the cap."""
    fns = [graphc.compile(lambda x, k=k: ((x * (k + 1)).exp().tanh() * x).sum(1)) for k in range(6)]
    x = graphc.randn(16, 32)
    for f in fns:
        f(x)
    nbytes = next(iter(fns[0].cache.values())).forward.pool.nbytes
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", 2 * nbytes)
    errors = []

    def work(i):
        for r in range(40):
            fns[(i + r) % len(fns)](x)
            if C.idle_workspace_bytes() > 2 * nbytes:
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and C.idle_workspace_bytes() <= 2 * nbytes



class _CountingLock:
    """The pools' lock, counting how often it is taken."""

    def __init__(self, lock):
        self.lock, self.taken = lock, 0

    def __enter__(self):
        self.taken += 1
        return self.lock.__enter__()

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)


def test_calls_of_a_counted_pool_take_no_lock_and_keep_its_count(monkeypatch):
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", 1 << 30)
    f = _tanh_rows()
    x = graphc.randn(16, 32)
    want = f(x).numpy().copy()
    pool = next(iter(f.cache.values())).forward.pool
    before = C.idle_workspace_bytes()
    lock = _CountingLock(C._lock)
    monkeypatch.setattr(C, "_lock", lock)
    for _ in range(20):
        np.testing.assert_array_equal(f(x).numpy(), want)
    assert lock.taken == 0 and pool.idle == 1
    assert C.idle_workspace_bytes() == before and pool.nbytes <= before


def test_a_trimmed_pool_is_counted_again_when_it_keeps_a_workspace(monkeypatch):
    f = _tanh_rows()
    x = graphc.randn(16, 32)
    f(x)
    pool = next(iter(f.cache.values())).forward.pool
    monkeypatch.setattr(C, "IDLE_LIMIT_BYTES", pool.nbytes)
    with C._lock:
        C._trim(0)   # as another graph's release would, past the cap
    assert pool.idle == 0 and C.idle_workspace_bytes() == 0
    f(x)
    assert pool.idle == 1 and C.idle_workspace_bytes() == pool.nbytes
    held = pool.acquire()   # a running call: its workspace still counts
    assert pool.idle == 0 and C.idle_workspace_bytes() == pool.nbytes
    pool.release(held)
    assert pool.acquire() is held and C.idle_workspace_bytes() == pool.nbytes

def test_compiled_entries_keep_their_code_not_the_ir():
    model = _mlp()
    cm = graphc.compile(model)
    x = graphc.randn(8, 64)
    cm(x).sum().backward()
    entry = next(iter(cm._compiled.cache.values()))
    for g in (entry.forward, entry.backward):
        assert g.graph is None and g.schedule is None and g.source
    assert "graph" in graphc.explain(cm, x).traced_graph   # explain reads the stages' text
    np.testing.assert_allclose(cm(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


# ---- compile()'s PyTorch settings --------------------------------------------------------------

def test_dynamic_true_raises_instead_of_being_ignored():
    with pytest.raises(NotImplementedError, match=r"dynamic=True.*specializes.*dynamic=None or dynamic=False"):
        graphc.compile(lambda x: x + 1, dynamic=True)
    with pytest.raises(NotImplementedError, match="dynamic=True"):
        graphc.compile(dynamic=True)   # as a decorator factory too
    for dynamic in (None, False):
        f = graphc.compile(lambda x: x + 1, dynamic=dynamic)
        assert f(graphc.ones(2)).tolist() == [2.0, 2.0] and f(graphc.ones(3)).tolist() == [2.0] * 3
        assert len(f.cache) == 2   # one specialization per shape


def test_mode_and_options_are_accepted_or_refused_as_in_pytorch():
    for mode in (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
        assert graphc.compile(lambda x: x * 2, mode=mode)(graphc.ones(2)).tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="Unrecognized mode=fast, should be one of: default, reduce-overhead"):
        graphc.compile(lambda x: x, mode="fast")
    with pytest.raises(RuntimeError, match="Either mode or options can be specified"):
        graphc.compile(lambda x: x, mode="default", options={})
    assert graphc.compile(lambda x: x * 2, options={})(graphc.ones(1)).tolist() == [2.0]
    with pytest.raises(RuntimeError, match="Unexpected optimization option triton.cudagraphs"):
        graphc.compile(lambda x: x, options={"triton.cudagraphs": True})
