"""Pointwise kernels that run in pieces (cache-sized row ranges, on a thread pool) compute what
the whole kernel computes. The piece size is shrunk here so that small test tensors are split."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.codegen import numpy_codegen
from graphc.runtime import pieces
from train_steps import cross_entropy_step


@pytest.fixture(params=["1", "3"], ids=["one-thread", "three-threads"])
def small_pieces(request, monkeypatch, tmp_path):
    monkeypatch.setattr(numpy_codegen, "CHUNKED_FROM", 16)
    monkeypatch.setattr(numpy_codegen, "PIECE", 8)
    monkeypatch.setenv("GRAPHC_NUM_THREADS", request.param)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))  # code generated now, not cached code
    monkeypatch.setattr(pieces, "_pool", None)


def _close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_broadcast_operands_scalars_and_outputs(small_pieces):
    def f(x, b, s, m):
        y = (x * 1.5 + b).sigmoid() * s - x.tanh()      # [n, k] with [k] and [n, 1] operands
        z = graphc.where(m, y, -y).exp() / 3            # a mask, a second output
        return y, z, (y * 2).to(graphc.float64)

    x, b, s = graphc.randn(37, 5), graphc.randn(5), graphc.randn(37, 1)
    m = x > 0
    got = graphc.compile(f)(x, b, s, m)
    for a, e in zip(got, f(x, b, s, m)):
        _close(a, e)
    assert got[2].dtype is graphc.float64


def test_generated_code_uses_pieces(small_pieces):
    import logging
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger("graphc.code").addHandler(handler)
    logging.getLogger("graphc.code").setLevel(logging.DEBUG)
    try:
        graphc.compile(lambda x: (x * 2).sin() + 1)(graphc.randn(40, 3))
    finally:
        logging.getLogger("graphc.code").removeHandler(handler)
    assert any("_in_pieces(" in r for r in records)


def test_training_step_in_pieces_equals_eager(small_pieces):
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    twin = copy.deepcopy(model)
    opts = [graphc.optim.AdamW(m.parameters(), lr=0.01) for m in (model, twin)]

    eager, compiled = cross_entropy_step(model, opts[0]), graphc.compile(cross_entropy_step(twin, opts[1]), fullgraph=True)
    x, y = graphc.randn(20, 6), graphc.tensor(np.arange(20) % 3)
    for fn in (eager, compiled):
        graphc.manual_seed(1)
        for _ in range(4):
            fn(x, y)
    for p, q in zip(model.parameters(), twin.parameters()):
        _close(q, p)


def test_a_failing_piece_raises_in_the_caller(small_pieces):
    def f(a, b):
        return (a * 2) // b + 1

    a, b = graphc.arange(40).reshape(20, 2), graphc.ones(20, 2, dtype=graphc.int64)
    b[13, 1] = 0
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        graphc.compile(f)(a, b)


def test_pieces_keep_the_callers_error_state(small_pieces):
    import warnings
    x = graphc.zeros(40, 3)
    x[0, 0] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # division by zero warns only if a piece loses errstate
        out = graphc.compile(lambda t: (1.0 / t).neg() * 2)(x)
    assert np.isinf(out.numpy()[1:]).all() and out.numpy()[0, 0] == -2.0


def test_kernels_of_one_or_two_ops_run_whole(small_pieces):
    import logging
    seen = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    log = logging.getLogger("graphc.code")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        graphc.compile(lambda t: t.neg() * 2)(graphc.randn(40, 3))
    finally:
        log.removeHandler(handler)
    assert seen and not any("_in_pieces(" in r for r in seen)


def _code(fn, *args) -> str:
    return graphc.explain(graphc.compile(fn), *args).code


def test_intermediates_use_scratch_rows_and_outputs_their_own(small_pieces):
    """A kernel in pieces writes its intermediates into its worker's scratch rows (``_r:_e``) and
    its outputs row for row; an output that a later step reads (the matmul here) never shares a
    slot with a scratch intermediate, so every row of it survives the pieces after the first."""
    def f(x, w, b):
        y = ((x * 2 + b).exp() * 0.5 - 1).relu()   # intermediates in scratch, y read by the matmul
        return y @ w, (x * 3 - 1) * x               # and a second kernel in pieces, a graph output

    x, w, b = graphc.randn(41, 5), graphc.randn(5, 4), graphc.randn(5)
    code = _code(f, x, w, b)
    assert "def poi_" in code and "[_r:_e]" in code and "[_lo:_hi]" in code, code
    for a, e in zip(graphc.compile(f)(x, w, b), f(x, w, b)):
        _close(a, e)


def test_operands_cast_once_per_call(small_pieces):
    """A 0-d operand read in another dtype is cast once, before the piece function."""
    def f(x, s):
        return (x * s + 1) * s - x

    x, s = graphc.randn(40, 3), graphc.tensor(1.5, dtype=graphc.float64)
    code = _code(f, x, s)
    piece = code[code.index("_piece(_lo, _hi, _r):"):]
    assert ".astype(" in code and ".astype(" not in piece.split("_in_pieces(")[0], code
    _close(graphc.compile(f)(x, s), f(x, s))


@pytest.mark.parametrize("dtype", [graphc.float64, graphc.bfloat16])
def test_adamw_step_in_pieces_other_dtypes(small_pieces, dtype):
    """The compiled AdamW update in pieces (scratch rows, casts made once) for float64 and
    low-precision parameters equals eager mode's."""
    graphc.manual_seed(0)
    model = nn.Linear(6, 40).to(dtype)
    twin = copy.deepcopy(model)
    opts = [graphc.optim.AdamW(m.parameters(), lr=0.01) for m in (model, twin)]

    def step_of(m, opt):
        def step(x):
            opt.zero_grad()
            loss = (m(x).float() ** 2).mean()
            loss.backward()
            opt.step()
            return loss.detach()
        return step

    eager, compiled = step_of(model, opts[0]), graphc.compile(step_of(twin, opts[1]), fullgraph=True)
    x = graphc.randn(20, 6).to(dtype)
    for fn in (eager, compiled):
        for _ in range(3):
            fn(x)
    for p, q in zip(model.parameters(), twin.parameters()):
        assert q.dtype is dtype
        np.testing.assert_allclose(q.detach().float().numpy(), p.detach().float().numpy(),
                                   rtol=1e-5 if dtype is graphc.float64 else 1e-2, atol=1e-6)
    assert "_in_pieces(" in graphc.explain(compiled, x).code  # (explain runs one more step)
