"""Compiled equals eager on edge-case inputs, for every primitive.

Each primitive of the registry is exercised by one case: the first case of ``op_cases.CASES`` that
calls it directly, or one of ``EXTRA`` below (primitives the gradient table does not call: the
comparisons, logical and bitwise ops, integer division, index checks, creation ops...), or it is
listed in ``NOT_EXERCISED`` with the reason. The case's function is compiled once and run, compiled
and eagerly, on variants of its inputs: as they are, with NaN/inf in every float operand, every
operand a non-contiguous view, index-like integer operands negative (in range), out of range past
either end, or with a zero (a zero divisor), and with empty dimensions. Either both raise the same
exception type, or the outputs agree (dtype, shape, values with NaN at the same places) and share
memory with the inputs and with each other exactly where eager's do.
"""
from __future__ import annotations

import math
import os
import re
import sys
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc.compiler.api import CompiledBackward
from graphc.ir import PRIMITIVES
from graphc.ir import dtypes as dt
from graphc.ir import prims as P

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_cases import CASES, Fixed  # noqa: E402
from test_compile_ops import F64, _close, _sharing  # noqa: E402

_rng = np.random.default_rng(7)


def _f(*shape):
    return _rng.uniform(-2.0, 2.0, size=shape)


def _i(*shape, hi=4):
    return _rng.integers(0, hi, size=shape)


def _b(*shape):
    return _rng.random(shape) < 0.5


def _binary(prim, a, b):
    return (lambda x, y: prim(x, y)), (a, b)


def _unary(prim, a, **attrs):
    return (lambda x: prim(x, **attrs)), (a,)


# primitive -> (function, numpy arguments), for primitives no op_cases entry calls directly
EXTRA = {
    **{name: _binary(getattr(P, name), _f(3, 4), _f(4)) for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{name: _binary(getattr(P, name), _b(3, 4), _b(3, 4)) for name in ("logical_and", "logical_or", "logical_xor")},
    **{name: _binary(getattr(P, name), _i(3, 4, hi=9), _i(4, hi=9)) for name in ("bitwise_and", "bitwise_or",
                                                                                   "bitwise_xor")},
    **{name: _unary(getattr(P, name), _f(3, 4)) for name in ("isnan", "isinf", "isfinite", "stop_gradient")},
    "logical_not": _unary(P.logical_not, _b(3, 4)),
    "bitwise_not": _unary(P.bitwise_not, _i(3, 4, hi=9)),
    # integer operands: division by zero raises (the zero variant), as eager mode does
    "floor_divide": _binary(P.floor_divide, _i(3, 4, hi=9) - 4, _i(4, hi=5) + 1),
    "remainder": _binary(P.remainder, _i(3, 4, hi=9) - 4, _i(4, hi=5) + 1),
    "argmax": _unary(P.argmax, _f(3, 4), dim=1, keepdim=False),
    "argmin": _unary(P.argmin, _f(3, 4), dim=None, keepdim=True),
    "cumargmax": _unary(P.cumargmax, _f(3, 4), dim=1),
    "cumargmin": _unary(P.cumargmin, _f(3, 4), dim=0),
    "argsort": _unary(P.argsort, _f(3, 4), dim=1, descending=False),
    "searchsorted": ((lambda s, v: P.searchsorted(s, v, right=False, out_int32=False)),
                     (np.sort(_f(3, 5), axis=1), _f(3, 2))),
    "det_sign": _unary(P.det_sign, _f(2, 3, 3)),
    "index_check": ((lambda i: P.index_check(i, size=4, dim=0, mode="index")), (_i(5),)),
    # F.embedding becomes a composite node while tracing (and checks its indices with index_check)
    "composite": ((lambda w, i: F.embedding(i, w)), (_f(4, 3), _i(2, 3))),
    "full": ((lambda x: x + P.full(shape=(3,), value=1.5, dtype=dt.float64)), (_f(2, 3),)),
    "arange": ((lambda x: x * P.arange(start=0, end=3, step=1, dtype=dt.float64)), (_f(2, 3),)),
    "rand_uniform": ((lambda k: P.rand_uniform(k, shape=(2, 3), dtype=dt.float64, stream=0)),
                     (np.array([3, 4], dtype=np.int64),)),
    # LU, LDL and least-squares results that carry no gradient (the others have op_cases)
    "lu_pivots": _unary(P.lu_pivots, _f(2, 4, 3)),
    "lu_permutation": _unary(P.lu_permutation, np.array([[2, 3, 3], [3, 2, 3]], np.int32), m=4),
    "ldl_factor": _unary(P.ldl_factor, _f(2, 3, 3), hermitian=False, check_errors=False),
    "ldl_pivots": _unary(P.ldl_pivots, _f(2, 3, 3), hermitian=False),
    "ldl_info": _unary(P.ldl_info, _f(2, 3, 3), hermitian=False),
    "ldl_solve": ((lambda a, p, b: P.ldl_solve(a, p, b, hermitian=False)),
                  (_f(3, 3), np.array([3, 3, 3], np.int32), _f(3, 2))),
    "lstsq_rank": _unary(P.lstsq_rank, _f(2, 4, 3), rcond=1e-7, driver="gelsy"),
    # special functions without a derivative (the differentiable ones have op_cases); positive
    # operands where their domain needs them (the variants add zeros, negatives, inf and nan)
    **{name: _unary(getattr(P, name), _f(3, 4)) for name in (
        "airy_ai", "bessel_j0", "bessel_j1", "modified_bessel_i0", "modified_bessel_i1")},
    **{name: _unary(getattr(P, name), np.abs(_f(3, 4)) + 0.1) for name in (
        "bessel_y0", "bessel_y1", "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0",
        "scaled_modified_bessel_k1")},
    # a data-dependent shape: a graph break, so this runs eagerly in both; exercised all the same
    "nonzero": _unary(P.nonzero, _i(3, 4, hi=2)),
}

NOT_EXERCISED = {
    "collective": "it exchanges data between processes: tests/distributed/checks.py compiles whole training "
                  "steps through DistributedDataParallel (its collective nodes) under mpiexec, 2 and 3 processes",
    "fused": "fusion groups are made by the fusion pass, never traced from user code; every case with "
             "two pointwise ops in a row runs one",
    "call": "outlined calls are made by the outline pass from repeated module calls, never traced as such; "
            "tests/test_outline.py compiles such programs against eager mode and finite differences",
}

_traced = re.compile(r"= (\w+)\(")


def _case(name: str):
    """(function, numpy arguments) exercising primitive ``name``."""
    if name in EXTRA:
        return EXTRA[name]
    for c in CASES:
        if c.prims == frozenset({name}):
            return c.fn, tuple(a.value if isinstance(a, Fixed) else a for a in c.args)
    return None


def test_every_primitive_is_exercised_or_listed():
    missing = [n for n in PRIMITIVES if _case(n) is None and n not in NOT_EXERCISED]
    assert not missing, f"primitives without an edge-case check (add them to EXTRA): {missing}"
    assert not set(NOT_EXERCISED) & {n for n in PRIMITIVES if _case(n) is not None}
    assert all(len(why) > 20 for why in NOT_EXERCISED.values())


# ---- input variants ----------------------------------------------------------------------------

def _arrays(args):
    return [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]


def _replace(args, fn, kinds: str) -> tuple | None:
    """``args`` with ``fn`` applied to the arrays of the given numpy kinds; None if there is none."""
    hit = [i for i in _arrays(args) if args[i].dtype.kind in kinds and args[i].size]
    if not hit:
        return None
    return tuple(fn(a) if i in hit else a for i, a in enumerate(args))


def _nan_inf(a):
    a = a.copy()
    flat = a.reshape(-1)
    for k, v in enumerate((np.nan, np.inf, -np.inf)[:flat.size]):
        flat[(k * 5) % flat.size] = v
    return a


def _with_zero(a):
    a = a.copy()
    a.reshape(-1)[0] = 0
    return a


def _empty(args, only_kinds: str = "") -> tuple | None:
    """Arrays cut to size 0 along dimension 0: every integer array (``only_kinds="iu"``), else the
    first array and the others of its rank and leading size (so broadcasting still holds)."""
    idx = [i for i in _arrays(args) if args[i].ndim and (not only_kinds or args[i].dtype.kind in only_kinds)]
    if not idx:
        return None
    if not only_kinds:
        first = args[idx[0]]
        idx = [i for i in idx if args[i].ndim == first.ndim and args[i].shape[0] == first.shape[0]]
    return tuple(a[:0] if i in idx else a for i, a in enumerate(args))


def _variants(args):
    """(label, arguments, non-contiguous?) for every edge case that applies to ``args``."""
    out = [("as-is", args, False), ("non-contiguous", args, True)]
    for label, new in [
        ("nan-inf", _replace(args, _nan_inf, "f")),
        ("negative-index", _replace(args, lambda a: -(a + 1), "i")),
        ("index-past-end", _replace(args, lambda a: a + 1000, "iu")),
        ("index-before-start", _replace(args, lambda a: -(a + 1000), "i")),
        ("zero-divisor", _replace(args, _with_zero, "iu")),
        ("empty", _empty(args)),
        ("empty-index", _empty(args, "iu")),
    ]:
        if new is not None:
            out.append((label, new, False))
    return out


def _tensor(a, strided: bool):
    if not isinstance(a, np.ndarray):
        return a
    if not strided or a.ndim == 0:
        return graphc.tensor(a)
    t = graphc.tensor(np.repeat(a, 2, axis=-1))[..., ::2]   # a view with stride 2 in its last dim
    assert not t.is_contiguous() or a.shape[-1] <= 1
    return t


def _call(fn, args, strided: bool):
    inputs = [_tensor(a, strided) for a in args]
    try:
        out = fn(*inputs)
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return inputs, None, e
    return inputs, (tuple(out) if isinstance(out, (tuple, list)) else (out,)), None


def _check(name: str, fn, compiled, label: str, args, strided: bool) -> None:
    e_in, e_out, e_err = _call(fn, args, strided)
    c_in, c_out, c_err = _call(compiled, args, strided)
    what = f"{name} [{label}]"
    if e_err is not None or c_err is not None:
        assert type(c_err) is type(e_err), f"{what}: eager raised {e_err!r}, compiled {c_err!r}"
        return
    assert len(c_out) == len(e_out), what
    for k, (c, e) in enumerate(zip(c_out, e_out)):
        _close(c.numpy(), e.numpy(), F64, f"{what} output {k}")
    assert _sharing(c_in, c_out) == _sharing(e_in, e_out), f"{what}: memory shared differently"


@pytest.mark.parametrize("name", sorted(n for n in PRIMITIVES if n not in NOT_EXERCISED))
def test_compiled_matches_eager_on_edge_inputs(name):
    fn, args = _case(name)
    compiled = graphc.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # graph breaks (nonzero) and recompiles for the empty variants
        for label, new_args, strided in _variants(args):
            _check(name, fn, compiled, label, new_args, strided)
    traced = {m for e in compiled.cache.values() if e.eager_reason is None
              for m in _traced.findall(e.stages["traced"])}
    if name != "nonzero":  # the case really compiles the primitive
        assert name in traced, f"{name}: not in the traced graphs ({sorted(traced)})"


# ---- the reported cases, named ---------------------------------------------------------------

def _raises_like_eager(fn, *args):
    with pytest.raises(Exception) as eager:
        fn(*args)
    with pytest.raises(type(eager.value), match=re.escape(str(eager.value))):
        graphc.compile(fn)(*args)
    return eager.value


def test_negative_index_out_of_range_raises_as_in_eager():
    a, i = graphc.arange(5.0), graphc.tensor([-9])
    e = _raises_like_eager(lambda a, i: a[i], a, i)
    assert isinstance(e, IndexError) and str(e) == "index -9 is out of bounds for dimension 0 with size 5"
    m = graphc.arange(20.0).reshape(4, 5)
    e = _raises_like_eager(lambda m, i: m[:, i], m, graphc.tensor([0, 5]))
    assert str(e) == "index 5 is out of bounds for dimension 1 with size 5"
    np.testing.assert_array_equal(graphc.compile(lambda a, i: a[i])(a, graphc.tensor([-5, 4])).numpy(), [0.0, 4.0])


def test_embedding_rejects_negative_indices_compiled():
    emb = graphc.nn.Embedding(4, 3)
    for bad in ([-3], [4]):
        e = _raises_like_eager(emb, graphc.tensor(bad))
        assert isinstance(e, IndexError) and str(e) == "index out of range in self"


@pytest.mark.parametrize("backend", ["numpy", "triton"])
def test_integer_division_by_zero_raises_compiled(backend):
    if backend == "triton":
        pytest.importorskip("triton")
    x, y = graphc.tensor([4, 5]), graphc.tensor([0, 1])
    for fn in (lambda x, y: x // y, lambda x, y: x % y, lambda x, y: (x // y) + 1, lambda x, y: x % 0):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(x, y)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            graphc.compile(fn, backend=backend)(x, y)
    # float division by zero is IEEE (inf), and a nonzero literal needs no check
    assert graphc.compile(lambda x: x // 0.0, backend=backend)(graphc.tensor([1.0])).item() == math.inf
    halve = graphc.compile(lambda x: x // 2, backend=backend)
    halve(x)
    assert "_check_divisor" not in next(iter(halve.cache.values())).stages["code"]


def test_output_that_views_an_input_aliases_it():
    x = graphc.arange(6.0)
    y = graphc.compile(lambda x: x[1:])(x)
    y[0] = 100.0
    assert x[1].item() == 100.0 and y._base is x and y._version == x._version
    for fn in (lambda x: x.view(2, 3), lambda x: x.view(2, 3).t(), lambda x: x.view(2, 3).transpose(0, 1),
               lambda x: x.expand(2, 6), lambda x: x.reshape(3, 2)[1], lambda x: x):
        x = graphc.arange(6.0)
        want = fn(x)
        got = graphc.compile(fn)(x)
        assert (got is x) == (want is x) and (got._base is x) == (want._base is x)
        assert got.stride() == want.stride() and got.storage_offset() == want.storage_offset()
    # an op the passes remove (x + 0, x * 1) is no view: the output is new memory, as eagerly
    for fn in (lambda x: x + 0, lambda x: (x * 1).view(2, 3)):
        x = graphc.arange(6.0)
        got = graphc.compile(fn)(x)
        assert got._base is None and not np.shares_memory(got.numpy(), x.numpy())


def test_output_views_of_updated_inputs_and_of_other_outputs():
    def f(x):
        x.add_(1)
        y = x * 2
        return x[1:], y, y.t()

    x, xe = graphc.ones(2, 3), graphc.ones(2, 3)
    got, want = graphc.compile(f)(x), f(xe)
    assert got[0]._base is x and want[0]._base is xe
    assert got[2]._base is got[1] and want[2]._base is want[1]
    got[0][0, 0] = 7.0
    assert x[1, 0].item() == 7.0 and x._version == got[0]._version
    got[2][0, 0] = 9.0
    assert got[1][0, 0].item() == 9.0
    np.testing.assert_array_equal(got[1].numpy()[1:], want[1].numpy()[1:])


def test_views_of_inputs_keep_their_eager_gradients():
    x = graphc.randn(3, 4, requires_grad=True)
    t, s = graphc.compile(lambda x: (x.t(), x.sin()))(x)
    assert t._base is x and isinstance(s.grad_fn, CompiledBackward)
    (t.sum() * 2 + s.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 + np.cos(x.detach().numpy()), rtol=1e-6)


def test_an_updated_argument_is_the_calls_own_tensor():
    # the compiled entry is traced with the first call's tensor; later calls with other tensors
    # of the same shape must update (and return) their own
    f = graphc.compile(lambda p, g: p.mul_(0.5).add_(g))
    a, b, g = graphc.ones(4), graphc.full((4,), 3.0), graphc.ones(4)
    ra, rb = f(a, g), f(b, g)
    assert a.tolist() == [1.5] * 4 and b.tolist() == [2.5] * 4
    assert ra is a and rb is b
    h = graphc.compile(lambda p: p.copy_(p.roll(1, 0) + 1))
    c, d = graphc.zeros(3), graphc.arange(3.0)
    h(c)
    h(d)
    assert c.tolist() == [1.0] * 3 and d.tolist() == [3.0, 1.0, 2.0]
