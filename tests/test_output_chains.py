"""A new output's elementwise op that reads a chain of in-place temps for the last time computes
that chain in the output's own array (``memory_plan._in_outputs``): the op then runs in place and
no workspace array is streamed besides it. Results equal eager's (whole kernels and kernels in
row pieces, on several threads at once), a returned array is never written by a later call, and
the chains that must stay in the workspace (other shapes or dtypes, values read again) stay."""
import os
import re
import sys

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.codegen import numpy_codegen as NC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from threads import wrong_answers  # noqa: E402


def _code(fn, *args) -> str:
    return graphc.explain(graphc.compile(fn), *args).code


def _homes(code: str) -> list[str]:
    return [ln for ln in code.splitlines() if "-> computed in output" in ln]


FNS = {
    "gelu(tanh)": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "chain": lambda x: ((x * 1.5 + 0.5).sigmoid() * x - 0.25).tanh() * 2.0 + x,
    "two outputs": lambda x: ((x * 2.0).exp() * x + 1.0, (x - 3.0).abs() * 0.5),
}


@pytest.mark.parametrize("name", list(FNS))
@pytest.mark.parametrize("n", [3000, NC.CHUNKED_FROM * 2 + 77])  # whole; in row pieces
def test_chains_computed_in_the_output_equal_eager(name, n):
    fn = FNS[name]
    x = graphc.from_numpy(np.random.default_rng(n).standard_normal(n).astype(np.float32))
    code = _code(fn, x)
    assert _homes(code), code
    f = graphc.compile(fn)
    want = fn(x)
    want = want if isinstance(want, tuple) else (want,)
    first = f(x)
    first = first if isinstance(first, tuple) else (first,)
    kept = [t.numpy().copy() for t in first]
    for got, w in zip(first, want):
        np.testing.assert_allclose(got.numpy(), w.numpy(), rtol=2e-6, atol=1e-6)
    f(x * 3.0)  # a later call writes its own new arrays, not the ones returned before
    for got, k in zip(first, kept):
        np.testing.assert_array_equal(got.numpy(), k)


def test_chains_in_pieces_on_threads_give_each_call_its_answer(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")
    fn = FNS["gelu(tanh)"]
    xs = [graphc.from_numpy(np.random.default_rng(i).standard_normal(NC.CHUNKED_FROM * 3).astype(np.float32))
          for i in range(4)]
    want = [fn(x).numpy() for x in xs]
    f = graphc.compile(fn)
    assert "_in_pieces" in _code(fn, xs[0]) and _homes(_code(fn, xs[0]))
    assert wrong_answers(lambda i: np.allclose(f(xs[i]).numpy(), want[i], rtol=2e-6, atol=1e-6), reps=20) == []


def test_chains_that_must_stay_in_the_workspace_and_an_output_read_again():
    x = graphc.from_numpy(np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32))
    cases = {
        # the output's op reads the chain's value broadcast (a row vector): another shape
        "broadcast operand": (lambda x: x * (x.exp().sum(0, keepdim=True) + 1.0), False),
        # the output's op reads a float64 chain into a float32 output
        "other dtype": (lambda x: (x.double().exp() + 1.0).float() * x, False),
        # the chain is computed in the output t, which the other output's op reads afterwards
        "an output read again": (lambda x: (lambda t: (t * x, t))((x.exp() + 1.0).tanh()), True),
        # a chain two outputs read: only the one reading it last may take it
        "a chain read by two outputs": (lambda x: (lambda t: (t * 2.0, t + x))(x.exp() + 1.0), True),
    }
    for name, (fn, in_output) in cases.items():
        assert bool(_homes(_code(fn, x))) == in_output, name
        got, want = graphc.compile(fn)(x), fn(x)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_an_integer_chain_cast_to_a_float_output_stays_exact():
    # int32 and float32 arrays are the same size; computed in the float32 output's array,
    # i * 3 + 1 would round where int32 is exact
    i = graphc.from_numpy(np.random.default_rng(1).integers(1 << 25, 1 << 26, 4096).astype(np.int32))
    x = graphc.from_numpy(np.random.default_rng(2).standard_normal(4096).astype(np.float32))
    fn = lambda i, x: (i * 3 + 1).float() * x  # noqa: E731
    want = ((i.numpy().astype(np.int64) * 3 + 1).astype(np.float32) * x.numpy())
    np.testing.assert_array_equal(graphc.compile(fn)(i, x).numpy(), want)


def test_the_plan_text_names_the_chain_and_its_output():
    x = graphc.randn(64, 256)
    code = _code(lambda x: F.gelu(x, approximate="tanh") * 2.0 + x, x)
    homes = _homes(code)
    assert homes and all(h.strip().split(" -> computed in output ")[1] == "v0" for h in homes), code
    # every statement that writes one of these temps writes the output instead
    temps = [h.strip().split(" ->")[0].lstrip("# ").strip() for h in homes]
    body = [ln.strip() for ln in code.splitlines()
            if ln.startswith("    ") and not ln.strip().startswith("#") and "= _ws" not in ln]
    assert not any(re.search(rf"\b{t}\b", ln) for ln in body for t in temps), body


def _update(p, g):
    # p's new value is q + q * 0.5 for q = p * exp(g): q's chain starts (exp) before p is read,
    # so only the second term may be computed in p's own array
    p.mul_(g.exp()).add_(p * 0.5)


def _decay(p, g):
    p.mul_(0.9).add_(g * 0.1)


@pytest.mark.parametrize("fn", [_update, _decay])
@pytest.mark.parametrize("n", [3000, NC.CHUNKED_FROM * 2 + 77])
def test_chains_computed_in_the_input_an_update_is_written_into(fn, n):
    rng = np.random.default_rng(n)
    p0, g0 = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    p, g = graphc.from_numpy(p0.copy()), graphc.from_numpy(g0)
    code = graphc.explain(graphc.compile(fn), graphc.from_numpy(p0.copy()), g).code
    assert "(donated)" in code and _homes(code), code
    f = graphc.compile(fn)
    want = graphc.from_numpy(p0.copy())
    for _ in range(3):
        f(p, g)
        fn(want, g)
    np.testing.assert_allclose(p.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    assert np.abs(p.numpy() - p0).max() > 0.1   # it was updated
