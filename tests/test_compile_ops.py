"""Every primitive, composite and public op of ``op_cases.CASES``, compiled with ``graphc.compile``
and run against eager mode: forward outputs and the gradients of every differentiable input agree.

* float64 (the table's inputs): rtol 1e-10; float32 (float inputs cast): rtol 1e-5.
* Gradients: ``autograd.grad`` of all float outputs with fixed random cotangents, through the
  compiled backward graph (``CompiledFunctionBackward``) against eager autograd.
* Cases that cannot be one graph (their output shape or order depends on the data) are listed in
  ``GRAPH_BREAKS`` with the reason: they must warn with a graph break naming the case's line in
  op_cases.py, run eagerly, and still agree. Every other case must compile without a break.
* Compiled outputs share memory with the inputs and with each other exactly where eager outputs
  do (a view of an input is a view of it, as in PyTorch); the others own their memory.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

import graphc
from graphc.compiler.api import CompiledBackward
from graphc.passes import manager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_cases import CASES, Case, Fixed  # noqa: E402

# case id -> what the graph-break reason says. These need concrete values while tracing.
GRAPH_BREAKS = {
    "api-getitem-mask": "_np_key (graphc/indexing.py) needs the tensor's values",   # x[bool mask]: data-dependent shape
    "api-masked_select": "masked_select (graphc/shape_ops.py) needs the tensor's values",  # data-dependent shape
}

F64 = dict(rtol=1e-10, atol=1e-12)
F32 = dict(rtol=1e-5, atol=1e-6)


def _convert(a, dtype):
    """A case argument as a tensor (float arrays require grad), cast to ``dtype`` if float."""
    if isinstance(a, Fixed):
        v = np.array(a.value)
        if dtype is not None and v.dtype.kind == "f":
            v = v.astype(dtype)
        return graphc.tensor(v)
    if isinstance(a, np.ndarray):
        v = a.copy()
        if dtype is not None and v.dtype.kind == "f":
            v = v.astype(dtype)
        return graphc.tensor(v, requires_grad=v.dtype.kind == "f")
    return a


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _run(fn, case: Case, dtype):
    """Forward outputs and gradients of the differentiable inputs, for the given callable."""
    inputs = [_convert(a, dtype) for a in case.args]
    outs = _as_tuple(fn(*inputs))
    diff = [t for t in inputs if isinstance(t, graphc.Tensor) and t.requires_grad]
    roots = [o for o in outs if isinstance(o, graphc.Tensor) and o.requires_grad]
    grads = None
    if diff and roots:
        rng = np.random.default_rng(11)
        cts = [graphc.tensor(rng.uniform(0.5, 1.5, size=tuple(o.shape)).astype(o.detach().numpy().dtype))
               for o in roots]
        grads = graphc.autograd.grad(roots, diff, cts, allow_unused=True)
    return inputs, outs, grads


def _close(got, want, tol, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, err_msg=what, **tol)


def _check_case(case: Case, dtype, tol, backend: str = "inductor"):
    e_inputs, e_outs, e_grads = _run(case.fn, case, dtype)
    # a function of its own per test: compile(case.fn) is shared, and warns of a graph break once
    compiled = graphc.compile(lambda *args: case.fn(*args), backend=backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c_inputs, c_outs, c_grads = _run(compiled, case, dtype)
    breaks = [str(w.message) for w in caught if "graph break" in str(w.message)]
    entry = next(iter(compiled.cache.values()))
    if case.id in GRAPH_BREAKS:
        assert len(breaks) == 1, breaks
        assert "op_cases.py:" in breaks[0] and GRAPH_BREAKS[case.id] in breaks[0], breaks[0]
        assert entry.eager_reason is not None and entry.forward is None
    else:
        assert not breaks, breaks
        assert entry.eager_reason is None and entry.forward is not None

    assert len(c_outs) == len(e_outs)
    for i, (c, e) in enumerate(zip(c_outs, e_outs)):
        if e is None:
            assert c is None
            continue
        assert c.requires_grad == e.requires_grad, f"output {i} requires_grad"
        _close(c.detach().numpy(), e.detach().numpy(), tol, f"output {i}")
        aliased = e._base is not None or any(e is t for t in e_inputs)  # an input or a view: eager's grad_fn
        if case.id not in GRAPH_BREAKS and c.requires_grad and not aliased:
            assert isinstance(c.grad_fn, CompiledBackward)
    assert (c_grads is None) == (e_grads is None)
    for i, (c, e) in enumerate(zip(c_grads or (), e_grads or ())):
        assert (c is None) == (e is None), f"gradient {i}: {c} vs {e}"
        if e is not None:
            _close(c.numpy(), e.numpy(), tol, f"gradient {i}")

    # outputs share memory with the inputs and with each other where eager's do, and nowhere else
    if case.id not in GRAPH_BREAKS:
        assert _sharing(c_inputs, c_outs) == _sharing(e_inputs, e_outs)


def _sharing(inputs, outs) -> list:
    """Which (output, input) and (output, earlier output) pairs share memory."""
    in_arrays = [t._data for t in inputs if isinstance(t, graphc.Tensor)]
    out_arrays = [o._data for o in outs if o is not None]
    return [(i, [np.shares_memory(a, b) for b in in_arrays], [np.shares_memory(a, b) for b in out_arrays[:i]])
            for i, a in enumerate(out_arrays)]


def _params(cases):
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize("case", _params(CASES))
def test_compiled_matches_eager_float64(case):
    _check_case(case, None, F64)


def _has_float(case: Case) -> bool:
    return any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in case.args)


@pytest.mark.parametrize("case", _params([c for c in CASES if _has_float(c)]))
def test_compiled_matches_eager_float32(case):
    _check_case(case, np.float32, F32)


def test_graph_break_list_is_current():
    ids = {c.id for c in CASES}
    assert set(GRAPH_BREAKS) <= ids


def test_every_compiled_graph_round_trips_through_text():
    """conftest turns the check on for the whole suite; a new graph really goes through it."""
    assert manager.CHECK_ROUNDTRIP
    before = manager.roundtrip_checked
    f = graphc.compile(lambda x: (x * 3.25).sin().sum(0))
    f(graphc.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)).sum().backward()
    assert manager.roundtrip_checked > before


def test_roundtrip_check_detects_a_printer_parser_mismatch(monkeypatch):
    from graphc.ir import printer
    g = printer.parse_graph("graph g(%x: f32[2]) {\n  %0: f32[2] = exp(%x)\n  return %0\n}\n")
    monkeypatch.setattr(manager, "parse_graph", lambda text: printer.parse_graph(text.replace("exp", "log")))
    manager._checked_texts.clear()
    with pytest.raises(manager.RoundTripError, match="changes in a print/parse round trip"):
        manager.check_roundtrip(g, "under test")


# ---- dtype promotion: every operand-dtype pair through elementwise ops -----------------------

_DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
_BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "rem": lambda a, b: a % b,
           "pow": lambda a, b: a ** b, "maximum": lambda a, b: graphc.maximum(a, b),
           "eq": lambda a, b: a == b, "where": lambda a, b: graphc.where(a > 1, a, b)}


@pytest.mark.parametrize("op", list(_BINARY))
def test_dtype_promotion_matches_eager(op, backend: str = "inductor"):
    """Result dtypes and values of tensor-tensor and tensor-scalar ops, compiled vs eager (numpy's
    own result types differ from PyTorch's in places, e.g. bool // bool; the graph's type wins)."""
    fn = _BINARY[op]
    # a new function per pair: compile(fn) of one function is shared, and these are 88 signatures
    compile = lambda f: graphc.compile(lambda a, b: f(a, b), backend=backend)  # noqa: E731
    rng = np.random.default_rng(12)
    for d1 in _DTYPES:
        a = graphc.tensor(rng.integers(1, 4, size=(2, 3))).to(getattr(graphc, d1))
        for other in _DTYPES + [3, 2.5, True]:
            b = other if not isinstance(other, str) else \
                graphc.tensor(rng.integers(1, 4, size=(3,))).to(getattr(graphc, other))
            try:
                want = fn(a, b)
            except (RuntimeError, TypeError) as e:   # eager refuses: so must compiled code
                with pytest.raises(type(e)):
                    compile(fn)(a, b)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error")   # no graph break, no numpy warning
                got = compile(fn)(a, b)
            what = f"{d1} {op} {other}"
            assert got.dtype == want.dtype, what
            np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64),
                                       rtol=1e-3 if want.dtype == graphc.float16 else 1e-6, err_msg=what)


# ---- the non-differentiable primitives (no gradcheck case calls them directly) ---------------

from graphc.ir import dtypes as _dt  # noqa: E402
from graphc.ir import prims as P  # noqa: E402

_B1 = np.array([[True, False, True], [False, False, True]])
_B2 = np.array([[True, True, False], [False, True, True]])
_I1 = np.array([[5, -3, 12], [0, 7, -8]], dtype=np.int32)
_I2 = np.array([[3, 6, -1], [9, 2, 4]], dtype=np.int32)
_F = np.array([[1.0, np.inf, np.nan], [-np.inf, 0.0, -2.5]])
NONDIFF = {
    "arange": (lambda x: x + P.arange(start=1, end=7, step=2, dtype=_dt.float64), [np.zeros(3)]),
    "arange-int-neg-step": (lambda x: P.arange(start=5, end=-1, step=-2, dtype=_dt.int64) * x, [np.arange(3)]),
    "bitwise": (lambda a, b: (P.bitwise_and(a, b), P.bitwise_or(a, b), P.bitwise_xor(a, b), P.bitwise_not(a)),
                [_I1, _I2]),
    "bitwise-bool": (lambda a, b: (P.bitwise_and(a, b), P.bitwise_xor(a, b), P.bitwise_not(a)), [_B1, _B2]),
    "logical": (lambda a, b: (P.logical_not(a), P.logical_or(a, b), P.logical_xor(a, b), P.logical_and(a, b)),
                [_B1, _I2]),
    "isfinite-isnan-isinf": (lambda x: (P.isfinite(x), P.isnan(x), P.isinf(x)), [_F]),
    "compare": (lambda a, b: (P.eq(a, b), P.ne(a, b), P.lt(a, b), P.le(a, b), P.gt(a, b), P.ge(a, b)), [_I1, _I2]),
    "argmax-argmin": (lambda x: (P.argmax(x, dim=1, keepdim=False), P.argmin(x, dim=0, keepdim=True)), [_I1]),
    "floor_divide": (lambda a, b: P.floor_divide(a, b), [_I1, _I2]),
    "full": (lambda x: x * P.full(shape=(2, 3), value=1.5, dtype=_dt.float32), [np.ones((2, 3), np.float32)]),
    "rand_uniform": (lambda key: P.rand_uniform(key, shape=(2, 3), dtype=_dt.float32, stream=3),
                     [np.array([7, 11], dtype=np.int64)]),
}


@pytest.mark.parametrize("name", list(NONDIFF))
def test_non_differentiable_primitives_compile(name):
    fn, args = NONDIFF[name]
    want = _as_tuple(fn(*[graphc.tensor(a) for a in args]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = graphc.compile(fn)
        got = _as_tuple(compiled(*[graphc.tensor(a) for a in args]))
    assert next(iter(compiled.cache.values())).forward is not None
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_nonzero_is_a_graph_break():
    x = graphc.tensor([[0.0, 1.0], [2.0, 0.0]])
    with pytest.warns(UserWarning, match=r"graph break .*test_compile_ops.py:\d+: nonzero has a data-dependent"):
        got = graphc.compile(lambda x: P.nonzero(x) * 2)(x)
    np.testing.assert_array_equal(got.numpy(), P.nonzero(x).numpy() * 2)
