"""The gradient test case table, shared by test_gradcheck_ops.py and test_vjp_coverage.py.

Each ``Case`` is a function of some tensors plus the numpy inputs to call it with:

* float numpy arrays become leaf tensors with ``requires_grad=True`` (float64 for gradcheck);
* ``Fixed(array)`` becomes a tensor without grad (masks, float operands we do not differentiate);
* integer / bool arrays become index or mask tensors (never differentiated);
* anything else (Python numbers, dtypes) is passed through unchanged.

``prim_case`` calls one primitive of ``graphc.ir.prims`` directly and ``comp_case`` calls one entry
of the ``COMPOSITES`` table directly, so the coverage they claim (``Case.prims`` /
``Case.composites``) is true by construction; ``api_case`` goes through the public PyTorch-style
API. Where given, ``ref`` is the forward result computed with numpy and ``grad_ref(g, *args)`` the
vector-Jacobian product for the cotangent ``g`` of the first float output, derived by hand and
computed with numpy: both are independent of graphc.

Inputs are chosen away from points where an op is not differentiable (abs at 0, ties for max,
integers for floor, ...), so central finite differences are valid there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import graphc
import graphc.nn.functional as F
from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.passes.decompositions import COMPOSITES

_rng = np.random.default_rng(20240611)


# ---- input makers --------------------------------------------------------------------------

def U(*shape, lo=-1.0, hi=1.0):
    return _rng.uniform(lo, hi, size=shape)


def POS(*shape, lo=0.5, hi=2.0):
    return _rng.uniform(lo, hi, size=shape)


def AWAY(*shape, gap=0.25, hi=1.5):
    """Values with |x| >= gap (away from 0), random signs."""
    return _rng.choice([-1.0, 1.0], size=shape) * _rng.uniform(gap, hi, size=shape)


def DISTINCT(*shape, lo=-2.0, hi=2.0):
    """Pairwise distinct values, at least (hi-lo)/(n-1) apart, in random order."""
    n = int(np.prod(shape))
    return _rng.permutation(np.linspace(lo, hi, n)).reshape(shape)


def FRACT(*shape, lo=0.15, hi=0.35):
    """Integers plus a fractional part in [lo, hi] (or 1-hi..1-lo): away from floor/round jumps."""
    k = _rng.integers(-3, 3, size=shape).astype(np.float64)
    f = _rng.uniform(lo, hi, size=shape)
    f = np.where(_rng.random(shape) < 0.5, f, 1.0 - f)
    return k + f


@dataclass(frozen=True)
class Fixed:
    """A tensor operand that does not require grad."""
    value: Any


@dataclass
class Case:
    id: str
    fn: Callable
    args: tuple
    prims: frozenset = frozenset()
    composites: frozenset = frozenset()
    ref: Callable | None = None
    grad_ref: Callable | None = None
    gradcheck: bool = True
    gradgrad: bool = False
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3


CASES: list[Case] = []


def _add(case: Case) -> Case:
    CASES.append(case)
    return case


def prim_case(name: str, *args, id: str | None = None, ref=None, grad_ref=None, **kw):
    """A case calling ``graphc.ir.prims.<name>`` with normalized attributes ``attrs``."""
    attrs = kw.pop("attrs", {})
    prim = getattr(P, name)

    def fn(*xs):
        return prim(*xs, **attrs)

    return _add(Case(f"prim-{id or name}", fn, args, prims=frozenset({name}), ref=ref,
                     grad_ref=grad_ref, **kw))


def comp_case(name: str, *args, id: str | None = None, ref=None, grad_ref=None, **kw):
    """A case calling ``COMPOSITES[name].fn`` (positional operands, keyword ``attrs``)."""
    attrs = kw.pop("attrs", {})
    comp = COMPOSITES[name]

    def fn(*xs):
        return comp.fn(*xs, **attrs)

    return _add(Case(f"comp-{id or name}", fn, args, composites=frozenset({name}), ref=ref,
                     grad_ref=grad_ref, **kw))


def api_case(id: str, fn, *args, ref=None, grad_ref=None, **kw):
    return _add(Case(f"api-{id}", fn, args, ref=ref, grad_ref=grad_ref, **kw))


# ---- numpy helpers for references ----------------------------------------------------------

def unbroadcast(g, shape):
    """Sum a broadcast gradient back to ``shape`` (numpy)."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def np_erf(x):
    return np.vectorize(math.erf)(x)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(x, axis, keepdims=False):
    m = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def prod_of_others(x, axis):
    """d prod(x, axis) / dx_i = product of the other elements of the group, also at zeros."""
    xm = np.moveaxis(x, axis, -1)
    out = np.empty_like(xm)
    n = xm.shape[-1]
    for i in range(n):
        out[..., i] = np.prod(np.delete(xm, i, axis=-1), axis=-1)
    return np.moveaxis(out, -1, axis)


# =============================================================================================
# Primitives, called directly
# =============================================================================================

LN2, LN10 = math.log(2.0), math.log(10.0)

# name: (input, numpy forward, numpy derivative f'(x))
UNARY = {
    "neg": (U(3, 4), np.negative, lambda x: -np.ones_like(x)),
    "abs": (AWAY(3, 4), np.abs, np.sign),
    "sign": (AWAY(3, 4), np.sign, np.zeros_like),
    "floor": (FRACT(3, 4), np.floor, np.zeros_like),
    "ceil": (FRACT(3, 4), np.ceil, np.zeros_like),
    "round": (FRACT(3, 4), np.round, np.zeros_like),
    "trunc": (FRACT(3, 4), np.trunc, np.zeros_like),
    "exp": (U(3, 4), np.exp, np.exp),
    "exp2": (U(3, 4), np.exp2, lambda x: np.exp2(x) * LN2),
    "expm1": (U(3, 4), np.expm1, np.exp),
    "log": (POS(3, 4), np.log, lambda x: 1 / x),
    "log2": (POS(3, 4), np.log2, lambda x: 1 / (x * LN2)),
    "log10": (POS(3, 4), np.log10, lambda x: 1 / (x * LN10)),
    "log1p": (U(3, 4, lo=-0.5), np.log1p, lambda x: 1 / (1 + x)),
    "sin": (U(3, 4, lo=-3, hi=3), np.sin, np.cos),
    "cos": (U(3, 4, lo=-3, hi=3), np.cos, lambda x: -np.sin(x)),
    "tan": (U(3, 4), np.tan, lambda x: 1 / np.cos(x) ** 2),
    "asin": (U(3, 4, lo=-0.8, hi=0.8), np.arcsin, lambda x: 1 / np.sqrt(1 - x * x)),
    "acos": (U(3, 4, lo=-0.8, hi=0.8), np.arccos, lambda x: -1 / np.sqrt(1 - x * x)),
    "atan": (U(3, 4, lo=-2, hi=2), np.arctan, lambda x: 1 / (1 + x * x)),
    "sinh": (U(3, 4, lo=-2, hi=2), np.sinh, np.cosh),
    "cosh": (U(3, 4, lo=-2, hi=2), np.cosh, np.sinh),
    "tanh": (U(3, 4, lo=-2, hi=2), np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "sigmoid": (U(3, 4, lo=-3, hi=3), np_sigmoid, lambda x: np_sigmoid(x) * (1 - np_sigmoid(x))),
    "sqrt": (POS(3, 4), np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    "rsqrt": (POS(3, 4), lambda x: 1 / np.sqrt(x), lambda x: -0.5 * x ** -1.5),
    "reciprocal": (AWAY(3, 4, gap=0.4), lambda x: 1 / x, lambda x: -1 / (x * x)),
    "erf": (U(3, 4, lo=-2, hi=2), np_erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)),
    "copy": (U(3, 4), np.copy, np.ones_like),
}
GRADGRAD_UNARY = {"exp", "tanh", "sigmoid", "log", "sin", "sqrt", "erf"}

for _name, (_x, _f, _df) in UNARY.items():
    prim_case(_name, _x, ref=_f, grad_ref=lambda g, x, _df=_df: (g * _df(x),),
              gradgrad=_name in GRADGRAD_UNARY)

# cast: to float32 (the gradient comes back as float64), and a float32 round trip, whose
# rounding needs a larger finite-difference step
prim_case("cast", U(3, 4), id="cast-f32", attrs={"dtype": dt.float32}, gradcheck=False,
          ref=lambda x: x.astype(np.float32), grad_ref=lambda g, x: (g.astype(np.float64),))
_add(Case("prim-cast-f32-roundtrip", lambda x: P.cast(P.cast(x, dtype=dt.float32), dtype=dt.float64),
          (U(3, 4),), prims=frozenset({"cast"}), ref=lambda x: x.astype(np.float32).astype(np.float64),
          grad_ref=lambda g, x: (g,), eps=1e-3, atol=1e-3))
prim_case("cast", U(3, 4), id="cast-same", attrs={"dtype": dt.float64}, ref=lambda x: x,
          grad_ref=lambda g, x: (g,))

# ---- binary, with broadcasting (3,1,4) x (2,4) -> (3,2,4) ------------------------------------

_A, _B = (3, 1, 4), (2, 4)


def _bin(name, x, y, dfx, dfy, f, id=None, **kw):
    def grad_ref(g, x, y):
        gx = unbroadcast(g * dfx(x, y), np.shape(x)) if dfx is not None else None
        gy = unbroadcast(g * dfy(x, y), np.shape(y)) if dfy is not None else None
        return tuple(v for v in (gx, gy) if v is not None)
    return prim_case(name, x, y, id=id, ref=f, grad_ref=grad_ref, **kw)


_bin("add", U(*_A), U(*_B), lambda x, y: 1.0, lambda x, y: 1.0, np.add)
_bin("sub", U(*_A), U(*_B), lambda x, y: 1.0, lambda x, y: -1.0, np.subtract)
_bin("mul", U(*_A), U(*_B), lambda x, y: y + 0 * x, lambda x, y: x + 0 * y, np.multiply, gradgrad=True)
_bin("div", U(*_A), AWAY(*_B, gap=0.5), lambda x, y: 1 / y + 0 * x, lambda x, y: -x / (y * y),
     np.divide, gradgrad=True)
_bin("pow", POS(*_A), U(*_B, lo=-2, hi=2), lambda x, y: y * x ** (y - 1),
     lambda x, y: x ** y * np.log(x), np.power, gradgrad=True)
_pool = DISTINCT(20)
_bin("maximum", _pool[:12].reshape(_A), _pool[12:].reshape(_B),
     lambda x, y: (x > y).astype(float), lambda x, y: (y > x).astype(float), np.maximum)
_pool = DISTINCT(20)
_bin("minimum", _pool[:12].reshape(_A), _pool[12:].reshape(_B),
     lambda x, y: (x < y).astype(float), lambda x, y: (y < x).astype(float), np.minimum)
_bin("atan2", U(*_A), AWAY(*_B), lambda y, x: x / (x * x + y * y), lambda y, x: -y / (x * x + y * y),
     np.arctan2)

# remainder: x = y * (k + f) with f in (0.2, 0.8), so x / y stays away from integers
_ry = AWAY(4, gap=0.7)
_rx = _ry * (_rng.integers(-3, 3, size=(3, 4)) + _rng.uniform(0.2, 0.8, size=(3, 4)))
_bin("remainder", _rx, _ry, lambda x, y: np.ones_like(x + y), lambda x, y: -np.floor(x / y), np.remainder)

# Python-scalar operands
_bin("mul", U(3, 4), 2.5, lambda x, y: y + 0 * x, None, np.multiply, id="mul-scalar")
_bin("sub", 3.0, U(3, 4), None, lambda x, y: -np.ones_like(y), np.subtract, id="sub-scalar-first")
_bin("div", 2.0, AWAY(3, 4, gap=0.5), None, lambda x, y: -x / (y * y), np.divide, id="div-scalar-first")
_bin("pow", U(3, 4), 3.0, lambda x, y: 3.0 * x ** 2, None, np.power, id="pow-scalar-exp", gradgrad=True)
_bin("pow", POS(3, 4), 0.5, lambda x, y: 0.5 * x ** -0.5, None, np.power, id="pow-sqrt-exp")
_bin("pow", 2.5, U(3, 4), None, lambda x, y: 2.5 ** y * math.log(2.5), np.power, id="pow-scalar-base")
_bin("maximum", DISTINCT(3, 4), 0.1, lambda x, y: (x > y).astype(float), None, np.maximum,
     id="maximum-scalar")
# a negative base with (fixed) integer exponents
prim_case("pow", AWAY(3, 4), Fixed(np.array([2.0, 3.0, 1.0, 4.0])), id="pow-negbase-intexp",
          ref=np.power, grad_ref=lambda g, x, y: (g * y * x ** (y - 1),))

_cond = np.array([[True, False, True, True], [False, True, False, False]])
prim_case("where", _cond, U(*_A), U(1, 4), ref=np.where,
          grad_ref=lambda g, c, x, y: (unbroadcast(np.where(c, g, 0), x.shape),
                                       unbroadcast(np.where(c, 0, g), y.shape)))
prim_case("where", _cond, U(2, 4), 0.5, id="where-scalar", ref=np.where,
          grad_ref=lambda g, c, x, y: (np.where(c, g, 0),))

# ---- reductions -----------------------------------------------------------------------------


def _sum_grad(shape, dims, keepdim):
    def grad_ref(g, x):
        if not keepdim:
            g = np.expand_dims(g, dims)
        return (np.broadcast_to(g, shape).copy(),)
    return grad_ref


prim_case("sum", U(2, 3, 4), id="sum-02", attrs={"dims": (0, 2), "keepdim": False},
          ref=lambda x: x.sum(axis=(0, 2)), grad_ref=_sum_grad((2, 3, 4), (0, 2), False))
prim_case("sum", U(2, 3, 4), id="sum-1-keep", attrs={"dims": (1,), "keepdim": True},
          ref=lambda x: x.sum(axis=1, keepdims=True), grad_ref=_sum_grad((2, 3, 4), (1,), True))
prim_case("sum", U(2, 3), id="sum-all", attrs={"dims": (0, 1), "keepdim": False},
          ref=lambda x: x.sum(), grad_ref=_sum_grad((2, 3), (0, 1), False))
prim_case("sum", U(2, 3), id="sum-none", attrs={"dims": (), "keepdim": False},
          ref=lambda x: x.copy(), grad_ref=lambda g, x: (g,))

_prod_x = AWAY(3, 4, gap=0.5)
prim_case("prod", _prod_x, id="prod-1", attrs={"dims": (1,), "keepdim": False},
          ref=lambda x: x.prod(axis=1), grad_ref=lambda g, x: (g[:, None] * prod_of_others(x, 1),))
_prod_z = AWAY(3, 4, gap=0.5)
_prod_z[1, 2] = 0.0                   # one zero in row 1
_prod_z[2, 0] = _prod_z[2, 3] = 0.0   # two zeros in row 2
prim_case("prod", _prod_z, id="prod-zeros", attrs={"dims": (1,), "keepdim": True},
          ref=lambda x: x.prod(axis=1, keepdims=True), grad_ref=lambda g, x: (g * prod_of_others(x, 1),))
prim_case("prod", _prod_z[:2], id="prod-all-zero", attrs={"dims": (0, 1), "keepdim": False},
          ref=lambda x: x.prod(),
          grad_ref=lambda g, x: (g * prod_of_others(x.reshape(-1), 0).reshape(x.shape),))


def _extreme_grad(dims, keepdim, kind):
    def grad_ref(g, x):
        red = x.max(axis=dims, keepdims=True) if kind == "max" else x.min(axis=dims, keepdims=True)
        hit = (x == red).astype(float)
        gk = g if keepdim else np.expand_dims(g, dims)
        return (gk * hit / hit.sum(axis=dims, keepdims=True),)
    return grad_ref


for _kind in ("max", "min"):
    _np_red = np.max if _kind == "max" else np.min
    prim_case(f"a{_kind}", DISTINCT(3, 4), id=f"a{_kind}-1", attrs={"dims": (1,), "keepdim": False},
              ref=lambda x, f=_np_red: f(x, axis=1), grad_ref=_extreme_grad((1,), False, _kind))
    prim_case(f"a{_kind}", DISTINCT(2, 3, 2), id=f"a{_kind}-02-keep", attrs={"dims": (0, 2), "keepdim": True},
              ref=lambda x, f=_np_red: f(x, axis=(0, 2), keepdims=True),
              grad_ref=_extreme_grad((0, 2), True, _kind))
# two-way ties: the gradient is split evenly, which central differences see as well
_ties = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, -1.0, 0.5, 2.0], [0.25, 0.5, 0.75, 1.0]])
prim_case("amax", _ties, id="amax-ties", attrs={"dims": (1,), "keepdim": False},
          ref=lambda x: x.max(axis=1), grad_ref=_extreme_grad((1,), False, "max"))
# three-way ties: PyTorch gives each 1/3 (finite differences cannot see that: analytic only)
_ties3 = np.array([[2.0, 2.0, 2.0, 1.0], [-1.0, 0.0, -1.0, -1.0]])
prim_case("amin", _ties3, id="amin-ties3", attrs={"dims": (1,), "keepdim": False}, gradcheck=False,
          ref=lambda x: x.min(axis=1), grad_ref=lambda g, x: (
              g[:, None] * np.array([[0, 0, 0, 1], [1 / 3, 0, 1 / 3, 1 / 3]]),))


def _cumsum_grad(dim):
    def grad_ref(g, x):
        return (np.flip(np.cumsum(np.flip(g, dim), axis=dim), dim),)
    return grad_ref


prim_case("cumsum", U(3, 4), id="cumsum-1", attrs={"dim": 1}, ref=lambda x: np.cumsum(x, axis=1),
          grad_ref=_cumsum_grad(1))
prim_case("cumsum", U(3, 4), id="cumsum-0", attrs={"dim": 0}, ref=lambda x: np.cumsum(x, axis=0),
          grad_ref=_cumsum_grad(0))

# ---- movement -------------------------------------------------------------------------------

prim_case("reshape", U(2, 3, 4), attrs={"shape": (4, 6)}, ref=lambda x: x.reshape(4, 6),
          grad_ref=lambda g, x: (g.reshape(x.shape),))
prim_case("permute", U(2, 3, 4), attrs={"dims": (2, 0, 1)}, ref=lambda x: x.transpose(2, 0, 1),
          grad_ref=lambda g, x: (g.transpose(1, 2, 0),))
prim_case("expand", U(3, 1, 4), attrs={"shape": (2, 3, 5, 4)},
          ref=lambda x: np.broadcast_to(x, (2, 3, 5, 4)),
          grad_ref=lambda g, x: (g.sum(axis=0).sum(axis=1, keepdims=True),))


def _slice_grad(sl):
    def grad_ref(g, x):
        out = np.zeros_like(x)
        out[sl] = g
        return (out,)
    return grad_ref


prim_case("slice", U(5, 6), attrs={"index": ((1, 5, 2), (0, 6, 1))}, ref=lambda x: x[1:5:2],
          grad_ref=_slice_grad(np.s_[1:5:2]))
# negative steps; a stop of -1 means "through element 0"
prim_case("slice", U(5, 6), id="slice-negstep", attrs={"index": ((4, -1, -2), (5, 0, -1))},
          ref=lambda x: x[4::-2, 5:0:-1], grad_ref=_slice_grad(np.s_[4::-2, 5:0:-1]))


def _select_grad(g, x):
    out = np.zeros_like(x)
    out[:, 2] = g
    return (out,)


prim_case("select", U(4, 3, 2), attrs={"dim": 1, "index": 2}, ref=lambda x: x[:, 2], grad_ref=_select_grad)
prim_case("select", U(3), id="select-to-0d", attrs={"dim": 0, "index": 0}, ref=lambda x: x[0],
          grad_ref=lambda g, x: (np.eye(3)[0] * g,))


def _slice_scatter_ref(x, src):
    out = x.copy()
    out[1:5:2] = src
    return out


def _slice_scatter_grad(g, x, src):
    gx = g.copy()
    gx[1:5:2] = 0
    return gx, g[1:5:2]


prim_case("slice_scatter", U(5, 3), U(2, 3), attrs={"index": ((1, 5, 2), (0, 3, 1))},
          ref=_slice_scatter_ref, grad_ref=_slice_scatter_grad)
prim_case("pad", U(2, 3), attrs={"pads": ((1, 2), (0, 1)), "value": 0.5},
          ref=lambda x: np.pad(x, ((1, 2), (0, 1)), constant_values=0.5),
          grad_ref=lambda g, x: (g[1:3, 0:3],))
prim_case("concat", U(2, 3), U(2, 1), U(2, 2), attrs={"axis": 1},
          ref=lambda *xs: np.concatenate(xs, axis=1),
          grad_ref=lambda g, a, b, c: (g[:, :3], g[:, 3:4], g[:, 4:]))


def _take_grad(g, x, idx):
    out = np.zeros_like(x)
    np.add.at(out, (slice(None), idx), g)
    return (out,)


prim_case("take", U(3, 4), np.array([[0, 2, 2], [3, 0, 0]]), attrs={"axis": 1},
          ref=lambda x, i: np.take(x, i, axis=1), grad_ref=_take_grad)

_gidx = np.array([[0, 4, 4], [2, 1, 0]])


def _gather_grad(g, x, idx):
    out = np.zeros_like(x)
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            out[i, idx[i, j]] += g[i, j]
    return (out,)


prim_case("gather", U(3, 5), _gidx, attrs={"axis": 1},
          ref=lambda x, i: np.take_along_axis(x[:2], i, axis=1), grad_ref=_gather_grad)

_sidx = np.array([[0, 3, 1], [4, 2, 0]])  # unique positions within each row: scatter is deterministic


def _scatter_ref(x, idx, src):
    out = x.copy()
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            out[i, idx[i, j]] = src[i, j]
    return out


def _scatter_grad(g, x, idx, src):
    gx, gs = g.copy(), np.zeros_like(src)
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            gx[i, idx[i, j]] = 0
            gs[i, j] = g[i, idx[i, j]]
    return gx, gs


prim_case("scatter", U(3, 5), _sidx, U(3, 4), attrs={"axis": 1}, ref=_scatter_ref, grad_ref=_scatter_grad)

_saidx = np.array([[0, 1, 0, 2], [1, 1, 2, 0]])  # duplicates: contributions add up


def _scatter_add_ref(x, idx, src):
    out = x.copy()
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            out[idx[i, j], j] += src[i, j]
    return out


def _scatter_add_grad(g, x, idx, src):
    gs = np.zeros_like(src)
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            gs[i, j] = g[idx[i, j], j]
    return g.copy(), gs


prim_case("scatter_add", U(3, 5), _saidx, U(3, 5), attrs={"axis": 0}, ref=_scatter_add_ref,
          grad_ref=_scatter_add_grad)


def _index_add_ref(x, idx, src):
    out = x.copy()
    np.add.at(out, idx, src)
    return out


prim_case("index_add", U(4, 3), np.array([0, 2, 0]), U(3, 3), attrs={"axis": 0}, ref=_index_add_ref,
          grad_ref=lambda g, x, idx, src: (g.copy(), g[idx]))

# ---- matmul in every rank combination --------------------------------------------------------


def _mm_grad_2d(g, a, b):
    return g @ b.T, a.T @ g


MATMUL_SHAPES = [
    ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((2, 4), (4, 3)),
    ((5, 2, 4), (5, 4, 3)), ((5, 2, 4), (4, 3)), ((2, 4), (5, 4, 3)),
    ((2, 1, 2, 4), (3, 4, 2)), ((5, 2, 4), (4,)), ((4,), (5, 4, 3)), ((1, 2, 4), (3, 4, 2)),
]
for _sa, _sb in MATMUL_SHAPES:
    _two = len(_sa) == 2 and len(_sb) == 2
    prim_case("matmul", U(*_sa), U(*_sb), id=f"matmul-{_sa}x{_sb}".replace(" ", ""), ref=np.matmul,
              grad_ref=_mm_grad_2d if _two else None, gradgrad=_two)


# =============================================================================================
# Composites, called through the COMPOSITES table
# =============================================================================================

prim_case("relu", AWAY(3, 4), ref=lambda x: np.maximum(x, 0), grad_ref=lambda g, x: (g * (x > 0),))
_cx = DISTINCT(3, 4, lo=-1.05, hi=1.0)   # never on -0.5 / 0.5
comp_case("clamp", _cx, attrs={"min": -0.5, "max": 0.5}, ref=lambda x: np.clip(x, -0.5, 0.5),
          grad_ref=lambda g, x: (g * ((x > -0.5) & (x < 0.5)),))
comp_case("clamp", _cx, id="clamp-min-only", attrs={"min": 0.1}, ref=lambda x: np.maximum(x, 0.1),
          grad_ref=lambda g, x: (g * (x > 0.1),))
# tensor bounds get the gradient where they are the result
_cpool = DISTINCT(20)
comp_case("clamp", _cpool[:12].reshape(3, 4), _cpool[12:16] - 0.5, _cpool[16:] + 0.5, id="clamp-tensors",
          ref=lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
          grad_ref=lambda g, x, lo, hi: (
              g * ((x > lo) & (x < hi)),
              (g * ((x < lo) & (lo < hi))).sum(0),
              (g * (np.maximum(x, lo) > hi)).sum(0)))
# at the boundaries the gradient passes (PyTorch's convention); analytic check only
comp_case("clamp", np.array([[-0.5, 0.5, 0.0, -1.0], [1.0, 0.25, -0.5, 0.5]]), id="clamp-boundary",
          attrs={"min": -0.5, "max": 0.5}, gradcheck=False,
          ref=lambda x: np.clip(x, -0.5, 0.5),
          grad_ref=lambda g, x: (g * np.array([[1, 1, 1, 0], [0, 1, 1, 1]]),))
comp_case("square", U(3, 4), ref=np.square, grad_ref=lambda g, x: (2 * x * g,))
comp_case("erfc", U(3, 4), ref=lambda x: 1 - np_erf(x),
          grad_ref=lambda g, x: (-2 / math.sqrt(math.pi) * np.exp(-x * x) * g,))
comp_case("frac", FRACT(3, 4), ref=lambda x: x - np.trunc(x), grad_ref=lambda g, x: (g.copy(),))
_fy = AWAY(4, gap=0.7)
_fx = _fy * (_rng.integers(-3, 3, size=(3, 4)) + _rng.uniform(0.2, 0.8, size=(3, 4)))
comp_case("fmod", _fx, _fy, ref=np.fmod,
          grad_ref=lambda g, x, y: (g.copy(), (-g * np.trunc(x / y)).sum(0)))
comp_case("lerp", U(3, 4), U(4), U(3, 1), ref=lambda s, e, w: s + w * (e - s),
          grad_ref=lambda g, s, e, w: (g * (1 - w), (g * w).sum(0), (g * (e - s)).sum(1, keepdims=True)))
comp_case("lerp", U(3, 4), U(3, 4), 0.3, id="lerp-scalar-weight", ref=lambda s, e, w: s + w * (e - s),
          grad_ref=lambda g, s, e, w: (0.7 * g, 0.3 * g))
comp_case("addcmul", U(3, 4), U(4), U(3, 1), attrs={"value": 0.5},
          ref=lambda x, a, b: x + 0.5 * a * b,
          grad_ref=lambda g, x, a, b: (g, (0.5 * g * b).sum(0), (0.5 * g * a).sum(1, keepdims=True)))
comp_case("addcdiv", U(3, 4), U(3, 4), AWAY(3, 4, gap=0.5), attrs={"value": -2.0},
          ref=lambda x, a, b: x - 2 * a / b,
          grad_ref=lambda g, x, a, b: (g, -2 * g / b, 2 * g * a / (b * b)))
comp_case("silu", U(3, 4, lo=-3, hi=3), ref=lambda x: x * np_sigmoid(x),
          grad_ref=lambda g, x: (g * np_sigmoid(x) * (1 + x * (1 - np_sigmoid(x))),))
comp_case("gelu", U(3, 4, lo=-3, hi=3), ref=lambda x: 0.5 * x * (1 + np_erf(x / math.sqrt(2))),
          grad_ref=lambda g, x: (g * (0.5 * (1 + np_erf(x / math.sqrt(2)))
                                      + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)),))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_tanh_grad(g, x):
    k = math.sqrt(2 / math.pi)
    t = np.tanh(k * (x + 0.044715 * x ** 3))
    return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)),)


comp_case("gelu", U(3, 4, lo=-3, hi=3), id="gelu-tanh", attrs={"approximate": "tanh"}, ref=_gelu_tanh,
          grad_ref=_gelu_tanh_grad)
# beta=2, threshold=4: x > 2 is linear, below it log(1 + exp(2x)) / 2
_spx = np.array([[-3.0, -1.0, -0.2, 0.0], [0.3, 1.2, 1.9, 2.1], [2.5, 3.0, -30.0, 30.0]])
comp_case("softplus", _spx, attrs={"beta": 2.0, "threshold": 4.0}, gradgrad=True,
          ref=lambda x: np.where(2 * x > 4, x, np.log1p(np.exp(2 * x)) / 2),
          grad_ref=lambda g, x: (g * np.where(2 * x > 4, 1.0, np_sigmoid(2 * x)),))

comp_case("mean", U(2, 3, 4), attrs={"dims": (0, 2)}, ref=lambda x: x.mean(axis=(0, 2)),
          grad_ref=lambda g, x: (np.broadcast_to(g[None, :, None] / 8, x.shape).copy(),))
for _corr in (0, 1, 2):
    comp_case("var", U(3, 5), id=f"var-corr{_corr}", attrs={"dims": (1,), "correction": _corr},
              ref=lambda x, c=_corr: x.var(axis=1, ddof=c),
              grad_ref=lambda g, x, c=_corr: (g[:, None] * 2 * (x - x.mean(1, keepdims=True)) / (5 - c),))
    comp_case("std", U(3, 5), id=f"std-corr{_corr}", attrs={"dims": (1,), "correction": _corr, "keepdim": True},
              ref=lambda x, c=_corr: x.std(axis=1, ddof=c, keepdims=True),
              grad_ref=lambda g, x, c=_corr: (
                  g * (x - x.mean(1, keepdims=True)) / ((5 - c) * x.std(axis=1, ddof=c, keepdims=True)),))
comp_case("logsumexp", U(3, 4, lo=-3, hi=3), attrs={"dims": (1,)}, ref=lambda x: np_logsumexp(x, 1), gradgrad=True,
          grad_ref=lambda g, x: (g[:, None] * np_softmax(x, 1),))
comp_case("logsumexp", U(2, 3, 4), id="logsumexp-02-keep", attrs={"dims": (0, 2), "keepdim": True},
          ref=lambda x: np.log(np.exp(x).sum(axis=(0, 2), keepdims=True)),
          grad_ref=lambda g, x: (g * np.exp(x) / np.exp(x).sum(axis=(0, 2), keepdims=True),))
comp_case("softmax", U(3, 4, lo=-2, hi=2), attrs={"dim": 1}, ref=lambda x: np_softmax(x, 1),
          grad_ref=lambda g, x: (np_softmax(x, 1) * (g - (g * np_softmax(x, 1)).sum(1, keepdims=True)),),
          gradgrad=True)
comp_case("log_softmax", U(3, 4, lo=-2, hi=2), attrs={"dim": 0}, ref=lambda x: np.log(np_softmax(x, 0)), gradgrad=True,
          grad_ref=lambda g, x: (g - np_softmax(x, 0) * g.sum(0, keepdims=True),))


def _norm_ref(p, axis):
    def ref(x):
        a = np.abs(x)
        if p == math.inf:
            return a.max(axis=axis)
        if p == -math.inf:
            return a.min(axis=axis)
        return (a ** p).sum(axis=axis) ** (1 / p)
    return ref


def _norm_grad(p, axis):
    def grad_ref(g, x):
        a = np.abs(x)
        n = np.expand_dims(_norm_ref(p, axis)(x), axis)
        g = np.expand_dims(g, axis)
        if abs(p) == math.inf:
            hit = (a == n).astype(float)
            return (g * np.sign(x) * hit / hit.sum(axis=axis, keepdims=True),)
        return (g * np.sign(x) * a ** (p - 1) * n ** (1 - p),)
    return grad_ref


for _p in (1.0, 2.0, 3.0, 0.5, math.inf, -math.inf):
    comp_case("norm", DISTINCT(3, 4, lo=0.3, hi=2.0) * _rng.choice([-1, 1], size=(3, 4)),
              id=f"norm-p{_p}", attrs={"p": _p, "dims": (1,)}, ref=_norm_ref(_p, 1), grad_ref=_norm_grad(_p, 1))

for _kind, _np_arg in (("max", np.argmax), ("min", np.argmin)):
    def _sel_grad(g, x, _a=_np_arg):
        out = np.zeros_like(x)
        out[np.arange(x.shape[0]), _a(x, axis=1)] = g
        return (out,)

    comp_case(f"{_kind}_dim", DISTINCT(3, 4), attrs={"dim": 1},
              ref=lambda x, _a=_np_arg, f=getattr(np, _kind): (f(x, axis=1), _a(x, axis=1)),
              grad_ref=_sel_grad)
comp_case("linear", U(2, 3, 4), U(5, 4), U(5), ref=lambda x, w, b: x @ w.T + b,
          grad_ref=lambda g, x, w, b: (g @ w, np.einsum("bio,bij->oj", g, x), g.sum((0, 1))))
comp_case("linear", U(3, 4), U(5, 4), id="linear-nobias", ref=lambda x, w: x @ w.T,
          grad_ref=lambda g, x, w: (g @ w, g.T @ x))


# =============================================================================================
# The public API
# =============================================================================================

api_case("exp", graphc.exp, U(3, 4), ref=np.exp, grad_ref=lambda g, x: (g * np.exp(x),))
api_case("sum-dim1-keepdim", lambda x: x.sum(dim=1, keepdim=True), U(2, 3, 4),
         ref=lambda x: x.sum(1, keepdims=True), grad_ref=lambda g, x: (np.broadcast_to(g, x.shape).copy(),))
api_case("sum-all", lambda x: x.sum(), U(2, 3), ref=np.sum,
         grad_ref=lambda g, x: (np.full(x.shape, float(g)),))
api_case("sum-neg-dims", lambda x: graphc.sum(x, (0, -1)), U(2, 3, 4), ref=lambda x: x.sum((0, 2)),
         grad_ref=lambda g, x: (np.broadcast_to(g[None, :, None], x.shape).copy(),))
api_case("mean-dim", lambda x: x.mean(dim=-1), U(3, 4), ref=lambda x: x.mean(-1),
         grad_ref=lambda g, x: (np.repeat(g[:, None] / 4, 4, axis=1),))
api_case("softmax", lambda x: graphc.softmax(x, dim=-1), U(3, 4, lo=-2, hi=2),
         ref=lambda x: np_softmax(x, -1),
         grad_ref=lambda g, x: (np_softmax(x, 1) * (g - (g * np_softmax(x, 1)).sum(1, keepdims=True)),),
         gradgrad=True)
api_case("softmax-dim0-method", lambda x: x.softmax(0), U(3, 4), ref=lambda x: np_softmax(x, 0))
api_case("log_softmax", lambda x: graphc.log_softmax(x, 1), U(3, 4, lo=-2, hi=2),
         ref=lambda x: np.log(np_softmax(x, 1)),
         grad_ref=lambda g, x: (g - np_softmax(x, 1) * g.sum(1, keepdims=True),))
api_case("logsumexp", lambda x: graphc.logsumexp(x, 1), U(3, 4, lo=-3, hi=3), ref=lambda x: np_logsumexp(x, 1),
         grad_ref=lambda g, x: (g[:, None] * np_softmax(x, 1),))
api_case("logsumexp-method-multi", lambda x: x.logsumexp(dim=(0, 1), keepdim=True), U(3, 4),
         ref=lambda x: np.log(np.exp(x).sum(keepdims=True)),
         grad_ref=lambda g, x: (g * np.exp(x) / np.exp(x).sum(),))


def _getitem_grad(key):
    def grad_ref(g, x):
        out = np.zeros_like(x)
        np.add.at(out, key, g)
        return (out,)
    return grad_ref


_GETITEM = {
    "slices": np.s_[1:3, ::2],
    "int": np.s_[1],
    "ellipsis-none": np.s_[..., None, 0],
    "neg-int": np.s_[:, -1],
    "list-repeat": [0, 2, 2],
    "two-lists": ([0, 1, 1], [2, 3, 2]),
    "col-list": np.s_[:, [1, 0, 1]],
}
for _k, _key in _GETITEM.items():
    api_case(f"getitem-{_k}", lambda x, k=_key: x[k], U(3, 4),
             ref=lambda x, k=_key: x[tuple(k) if isinstance(k, tuple) else k],
             grad_ref=_getitem_grad(_key))
_gi = np.array([[2, 0], [1, 2]])
api_case("getitem-tensor", lambda x, i: x[i], U(3, 4), _gi, ref=lambda x, i: x[i],
         grad_ref=lambda g, x, i: _getitem_grad(i)(g, x))
_mask = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
api_case("getitem-mask", lambda x, m: x[m], U(3, 4), _mask, ref=lambda x, m: x[m],
         grad_ref=lambda g, x, m: (_scatter_mask(g, m),))


def _scatter_mask(g, m):
    out = np.zeros(m.shape)
    out[m] = g
    return out


api_case("expand", lambda x: x.expand(2, 3, 4), U(3, 1), ref=lambda x: np.broadcast_to(x, (2, 3, 4)),
         grad_ref=lambda g, x: (g.sum(0).sum(1, keepdims=True),))
api_case("expand-minus1", lambda x: x.expand(-1, 4), U(3, 1), ref=lambda x: np.broadcast_to(x, (3, 4)),
         grad_ref=lambda g, x: (g.sum(1, keepdims=True),))
api_case("broadcast_to", lambda x: graphc.broadcast_to(x, (2, 4)), U(4),
         ref=lambda x: np.broadcast_to(x, (2, 4)), grad_ref=lambda g, x: (g.sum(0),))
api_case("cat-dim1", lambda a, b, c: graphc.cat([a, b, c], dim=1), U(2, 3), U(2, 1), U(2, 2),
         ref=lambda *xs: np.concatenate(xs, 1), grad_ref=lambda g, a, b, c: (g[:, :3], g[:, 3:4], g[:, 4:]))
api_case("cat-dim-neg", lambda a, b: graphc.cat((a, b), -2), U(1, 3), U(2, 3),
         ref=lambda *xs: np.concatenate(xs, 0), grad_ref=lambda g, a, b: (g[:1], g[1:]))
api_case("stack", lambda a, b: graphc.stack([a, b], dim=1), U(2, 3), U(2, 3),
         ref=lambda a, b: np.stack([a, b], 1), grad_ref=lambda g, a, b: (g[:, 0], g[:, 1]))
api_case("gather", lambda x, i: x.gather(1, i), U(3, 5), _gidx,
         ref=lambda x, i: np.take_along_axis(x[:2], i, axis=1), grad_ref=_gather_grad)
api_case("scatter-src", lambda x, i, s: x.scatter(1, i, s), U(3, 5), _sidx, U(3, 4),
         ref=_scatter_ref, grad_ref=_scatter_grad)
api_case("scatter-value", lambda x, i: x.scatter(1, i, 2.0), U(3, 5), _sidx,
         ref=lambda x, i: _scatter_ref(x, i, np.full((2, 3), 2.0)),
         grad_ref=lambda g, x, i: (_scatter_grad(g, x, i, np.zeros((2, 3)))[0],))
api_case("scatter_add", lambda x, i, s: x.scatter_add(0, i, s), U(3, 5), _saidx, U(3, 5),
         ref=_scatter_add_ref, grad_ref=_scatter_add_grad)
api_case("index_select-0", lambda x, i: x.index_select(0, i), U(3, 4), np.array([2, 0, 2]),
         ref=lambda x, i: x[i], grad_ref=lambda g, x, i: _getitem_grad(i)(g, x))
api_case("index_select-1", lambda x, i: graphc.index_select(x, 1, i), U(3, 4), np.array([3, 3, 1]),
         ref=lambda x, i: x[:, i], grad_ref=lambda g, x, i: _take_grad(g, x, i))
api_case("index_add-alpha", lambda x, i, s: x.index_add(0, i, s, alpha=2.0), U(4, 3), np.array([0, 2, 0]),
         U(3, 3), ref=lambda x, i, s: _index_add_ref(x, i, 2 * s),
         grad_ref=lambda g, x, i, s: (g.copy(), 2 * g[i]))
api_case("masked_fill", lambda x, m: x.masked_fill(m, 0.5), U(3, 4), _mask,
         ref=lambda x, m: np.where(m, 0.5, x), grad_ref=lambda g, x, m: (np.where(m, 0.0, g),))
api_case("masked_fill-broadcast", lambda x, m: x.masked_fill(m, -1.0), U(3, 4), _mask[0],
         ref=lambda x, m: np.where(m, -1.0, x), grad_ref=lambda g, x, m: (np.where(m, 0.0, g),))
api_case("where", lambda c, x, y: graphc.where(c, x, y), _cond, U(*_A), U(2, 1),
         ref=np.where, grad_ref=lambda g, c, x, y: (unbroadcast(np.where(c, g, 0), x.shape),
                                                    unbroadcast(np.where(c, 0, g), y.shape)))
api_case("where-scalar", lambda c, x: graphc.where(c, x, 0.0), _cond, U(2, 4), ref=lambda c, x: np.where(c, x, 0.0),
         grad_ref=lambda g, c, x: (np.where(c, g, 0.0),))

for _sa, _sb in MATMUL_SHAPES:
    api_case(f"matmul-op-{_sa}x{_sb}".replace(" ", ""), lambda a, b: a @ b, U(*_sa), U(*_sb), ref=np.matmul,
             grad_ref=_mm_grad_2d if len(_sa) == 2 and len(_sb) == 2 else None)
api_case("mm", graphc.mm, U(2, 4), U(4, 3), ref=np.matmul, grad_ref=_mm_grad_2d, gradgrad=True)
api_case("bmm", lambda a, b: a.bmm(b), U(2, 2, 3), U(2, 3, 2), ref=np.matmul)
api_case("mv", graphc.mv, U(2, 4), U(4), ref=np.matmul, grad_ref=lambda g, a, b: (np.outer(g, b), a.T @ g))
api_case("dot", graphc.dot, U(4), U(4), ref=np.dot, grad_ref=lambda g, a, b: (g * b, g * a))
api_case("outer", graphc.outer, U(3), U(4), ref=np.outer,
         grad_ref=lambda g, a, b: (g @ b, a @ g))
api_case("addmm", lambda c, a, b: graphc.addmm(c, a, b, beta=0.5, alpha=2.0), U(3), U(2, 4), U(4, 3),
         ref=lambda c, a, b: 0.5 * c + 2 * a @ b,
         grad_ref=lambda g, c, a, b: (0.5 * g.sum(0), 2 * g @ b.T, 2 * a.T @ g))
api_case("einsum-bmm", lambda a, b: graphc.einsum("bij,bjk->bik", a, b), U(2, 2, 3), U(2, 3, 2),
         ref=lambda a, b: np.einsum("bij,bjk->bik", a, b))
api_case("linear", graphc.linear, U(3, 4), U(2, 4), U(2), ref=lambda x, w, b: x @ w.T + b,
         grad_ref=lambda g, x, w, b: (g @ w, g.T @ x, g.sum(0)))

api_case("pow-tensor-exp", lambda x, y: x ** y, POS(*_A), U(*_B, lo=-2, hi=2), ref=np.power,
         grad_ref=lambda g, x, y: (unbroadcast(g * y * x ** (y - 1), x.shape),
                                   unbroadcast(g * x ** y * np.log(x), y.shape)), gradgrad=True)
api_case("pow-int-exp", lambda x: x ** 2, U(3, 4), ref=np.square, grad_ref=lambda g, x: (2 * g * x,),
         gradgrad=True)
api_case("pow-method", lambda x: x.pow(3), U(3, 4), ref=lambda x: x ** 3, grad_ref=lambda g, x: (3 * g * x * x,))
api_case("pow-half", lambda x: graphc.pow(x, 0.5), POS(3, 4), ref=np.sqrt,
         grad_ref=lambda g, x: (0.5 * g / np.sqrt(x),))
api_case("pow-neg-frac", lambda x: x ** -1.5, POS(3, 4), ref=lambda x: x ** -1.5,
         grad_ref=lambda g, x: (-1.5 * g * x ** -2.5,))
api_case("rpow", lambda x: 2 ** x, U(3, 4), ref=lambda x: 2.0 ** x, grad_ref=lambda g, x: (g * 2.0 ** x * LN2,))
api_case("pow-zero-exp", lambda x: x ** 0, U(3, 4), ref=lambda x: np.ones_like(x),
         grad_ref=lambda g, x: (np.zeros_like(x),))
# 0 ** 0 with a tensor exponent: d/dx is 0 there (PyTorch), not nan; analytic check only
api_case("pow-zero-base-zero-exp", lambda x, y: graphc.pow(x, y), np.array([0.0, 0.0, 2.0]),
         Fixed(np.array([0.0, 2.0, 0.0])), gradcheck=False, ref=np.power,
         grad_ref=lambda g, x, y: (g * np.array([0.0, 0.0, 0.0]),))

for _kind, _np_arg in (("max", np.argmax), ("min", np.argmin)):
    api_case(f"{_kind}-dim-values", lambda x, k=_kind: getattr(x, k)(dim=1).values, DISTINCT(3, 4),
             ref=lambda x, f=getattr(np, _kind): f(x, 1),
             grad_ref=lambda g, x, a=_np_arg: (_onehot(x, a(x, 1), g),))
    api_case(f"{_kind}-dim-keepdim-tuple", lambda x, k=_kind: getattr(graphc, k)(x, 0, keepdim=True),
             DISTINCT(3, 4), ref=lambda x, f=getattr(np, _kind), a=_np_arg: (
                 f(x, 0, keepdims=True), a(x, 0)[None]))
    api_case(f"{_kind}-all", lambda x, k=_kind: getattr(x, k)(), DISTINCT(3, 4), ref=getattr(np, _kind))
# ties in max(dim): the gradient goes to the index it returns (the first), PyTorch's convention
api_case("max-dim-ties", lambda x: x.max(1)[0], _ties, gradcheck=False, ref=lambda x: x.max(1),
         grad_ref=lambda g, x: (_onehot(x, np.argmax(x, 1), g),))
# ties in amax / max(): evenly split
api_case("amax-ties-method", lambda x: x.amax(dim=1), np.concatenate([_ties, _ties3[:1]]), gradcheck=False,
         ref=lambda x: x.max(1), grad_ref=lambda g, x: (_even_split(g, x),))
api_case("max-all-ties", lambda x: x.max(), _ties, gradcheck=False, ref=np.max,
         grad_ref=lambda g, x: (g * (x == 3.0) / 2,))
api_case("maximum-ties", graphc.maximum, np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 4.0]),
         gradcheck=False, ref=np.maximum,
         grad_ref=lambda g, a, b: (g * np.array([0.5, 1, 0]), g * np.array([0.5, 0, 1])))


def _onehot(x, idx, g):
    out = np.zeros_like(x)
    out[np.arange(x.shape[0]), idx] = g
    return out


def _even_split(g, x):
    hit = (x == x.max(1, keepdims=True)).astype(float)
    return g[:, None] * hit / hit.sum(1, keepdims=True)


api_case("cumsum", lambda x: graphc.cumsum(x, -1), U(3, 4), ref=lambda x: np.cumsum(x, -1),
         grad_ref=_cumsum_grad(1))
api_case("cumsum-method-dim0", lambda x: x.cumsum(0), U(3, 4), ref=lambda x: np.cumsum(x, 0),
         grad_ref=_cumsum_grad(0))
api_case("prod-dim", lambda x: x.prod(1), _prod_x, ref=lambda x: x.prod(1), gradgrad=True,
         grad_ref=lambda g, x: (g[:, None] * prod_of_others(x, 1),))
api_case("prod-zeros", lambda x: graphc.prod(x, -1, keepdim=True), _prod_z, ref=lambda x: x.prod(-1, keepdims=True),
         grad_ref=lambda g, x: (g * prod_of_others(x, 1),))
api_case("prod-all-one-zero", lambda x: x.prod(), _prod_z[:2], ref=np.prod,
         grad_ref=lambda g, x: (g * prod_of_others(x.reshape(-1), 0).reshape(x.shape),))
api_case("prod-all-two-zeros", lambda x: x.prod(), _prod_z[2:], ref=np.prod,
         grad_ref=lambda g, x: (np.zeros_like(x),))

_nx = DISTINCT(3, 4, lo=0.3, hi=2.0) * _rng.choice([-1, 1], size=(3, 4))
api_case("norm-p1-dim", lambda x: x.norm(p=1, dim=1), _nx, ref=_norm_ref(1.0, 1), grad_ref=_norm_grad(1.0, 1))
api_case("norm-p2-dim", lambda x: graphc.norm(x, 2, dim=1), _nx, ref=_norm_ref(2.0, 1), gradgrad=True,
         grad_ref=_norm_grad(2.0, 1))
api_case("norm-inf-dim", lambda x: x.norm(float("inf"), dim=1), _nx, ref=_norm_ref(math.inf, 1),
         grad_ref=_norm_grad(math.inf, 1))
api_case("norm-fro-all", lambda x: x.norm(), _nx, ref=lambda x: np.sqrt((x * x).sum()),
         grad_ref=lambda g, x: (g * x / np.sqrt((x * x).sum()),))
api_case("norm-keepdim", lambda x: x.norm(dim=0, keepdim=True), _nx,
         ref=lambda x: np.sqrt((x * x).sum(0, keepdims=True)),
         grad_ref=lambda g, x: (g * x / np.sqrt((x * x).sum(0, keepdims=True)),))
api_case("norm-inf-ties", lambda x: x.norm(float("inf"), dim=1), np.array([[1.0, -3.0, 3.0, 0.5]]),
         gradcheck=False, ref=lambda x: np.abs(x).max(1),
         grad_ref=lambda g, x: (g[:, None] * np.array([[0.0, -0.5, 0.5, 0.0]]),))
# at a zero vector the 2-norm has gradient 0 (PyTorch masks the 0/0), not nan
api_case("norm-p2-at-zero", lambda x: x.norm(dim=1), np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]]),
         gradcheck=False, ref=lambda x: np.sqrt((x * x).sum(1)),
         grad_ref=lambda g, x: (np.array([[0, 0, 0], [0.6 * g[1], 0.8 * g[1], 0]]),))
api_case("dist", lambda a, b: graphc.dist(a, b), U(3, 4), U(4), ref=lambda a, b: np.sqrt(((a - b) ** 2).sum()))

api_case("var-default", lambda x: x.var(1), U(3, 5), ref=lambda x: x.var(1, ddof=1),
         grad_ref=lambda g, x: (g[:, None] * 2 * (x - x.mean(1, keepdims=True)) / 4,))
api_case("var-correction0", lambda x: graphc.var(x, 0, correction=0), U(3, 5), ref=lambda x: x.var(0),
         grad_ref=lambda g, x: (g[None] * 2 * (x - x.mean(0, keepdims=True)) / 3,))
api_case("var-all-corr2", lambda x: x.var(correction=2), U(3, 5), ref=lambda x: x.var(ddof=2),
         grad_ref=lambda g, x: (g * 2 * (x - x.mean()) / 13,))
api_case("std-unbiased-false", lambda x: x.std(dim=0, unbiased=False), U(3, 4), ref=lambda x: x.std(0),
         grad_ref=lambda g, x: (g[None] * (x - x.mean(0)) / (3 * x.std(0)),))
api_case("std-correction-keepdim", lambda x: graphc.std(x, 1, correction=2, keepdim=True), U(3, 5), gradgrad=True,
         ref=lambda x: x.std(1, ddof=2, keepdims=True),
         grad_ref=lambda g, x: (g * (x - x.mean(1, keepdims=True)) / (3 * x.std(1, ddof=2, keepdims=True)),))
api_case("var_mean", lambda x: graphc.var_mean(x, 1), U(3, 4), ref=lambda x: (x.var(1, ddof=1), x.mean(1)))
# a constant row: std is 0 and its gradient is 0 there (PyTorch masks it), not nan
api_case("std-at-zero", lambda x: x.std(1), np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]), gradcheck=False,
         ref=lambda x: x.std(1, ddof=1),
         grad_ref=lambda g, x: (np.array([[0.0, 0.0, 0.0], [-0.5 * g[1], 0.0, 0.5 * g[1]]]),))

_clx = DISTINCT(3, 4, lo=-1.05, hi=1.0)
api_case("clamp", lambda x: x.clamp(-0.5, 0.5), _clx, ref=lambda x: np.clip(x, -0.5, 0.5),
         grad_ref=lambda g, x: (g * ((x > -0.5) & (x < 0.5)),))
api_case("clamp-boundaries", lambda x: graphc.clamp(x, min=-0.5, max=0.5),
         np.array([[-0.5, 0.5, 0.0, -1.0], [1.0, 0.25, -0.5, 0.5]]), gradcheck=False,
         ref=lambda x: np.clip(x, -0.5, 0.5), grad_ref=lambda g, x: (g * np.array([[1, 1, 1, 0], [0, 1, 1, 1]]),))
api_case("clamp_min", lambda x: x.clamp_min(0.2), _clx, ref=lambda x: np.maximum(x, 0.2),
         grad_ref=lambda g, x: (g * (x > 0.2),))
api_case("clamp_max-fn", lambda x: graphc.clamp_max(x, -0.2), _clx, ref=lambda x: np.minimum(x, -0.2),
         grad_ref=lambda g, x: (g * (x < -0.2),))
api_case("clamp-tensor-bounds", lambda x, lo: graphc.clamp(x, min=lo), _cpool[:12].reshape(3, 4),
         _cpool[12:16] - 0.5, ref=np.maximum,
         grad_ref=lambda g, x, lo: (g * (x > lo), (g * (x < lo)).sum(0)))
api_case("clip", lambda x: graphc.clip(x, max=0.3), _clx, ref=lambda x: np.minimum(x, 0.3))

# unary math through the API
api_case("abs", graphc.abs, AWAY(3, 4), ref=np.abs, grad_ref=lambda g, x: (g * np.sign(x),))
api_case("sqrt-method", lambda x: x.sqrt(), POS(3, 4), ref=np.sqrt, grad_ref=lambda g, x: (0.5 * g / np.sqrt(x),))
api_case("relu", graphc.relu, AWAY(3, 4), ref=lambda x: np.maximum(x, 0), grad_ref=lambda g, x: (g * (x > 0),))
api_case("sigmoid", lambda x: x.sigmoid(), U(3, 4), ref=np_sigmoid,
         grad_ref=lambda g, x: (g * np_sigmoid(x) * (1 - np_sigmoid(x)),), gradgrad=True)
api_case("tanh", graphc.tanh, U(3, 4), ref=np.tanh, grad_ref=lambda g, x: (g * (1 - np.tanh(x) ** 2),),
         gradgrad=True)
api_case("log-method", lambda x: x.log(), POS(3, 4), ref=np.log, grad_ref=lambda g, x: (g / x,))
api_case("square", graphc.square, U(3, 4), ref=np.square, grad_ref=lambda g, x: (2 * g * x,))
api_case("erfc", graphc.erfc, U(3, 4), ref=lambda x: 1 - np_erf(x))
api_case("reciprocal", lambda x: x.reciprocal(), AWAY(3, 4, gap=0.5), ref=lambda x: 1 / x)
api_case("rsqrt", graphc.rsqrt, POS(3, 4), ref=lambda x: x ** -0.5)
api_case("neg-op", lambda x: -x, U(3, 4), ref=np.negative, grad_ref=lambda g, x: (-g,))

# binary arithmetic with broadcasting through the API / operators
api_case("add-alpha", lambda x, y: graphc.add(x, y, alpha=2.0), U(*_A), U(*_B), ref=lambda x, y: x + 2 * y,
         grad_ref=lambda g, x, y: (unbroadcast(g, x.shape), unbroadcast(2 * g, y.shape)))
api_case("sub-op", lambda x, y: x - y, U(*_A), U(*_B), ref=np.subtract,
         grad_ref=lambda g, x, y: (unbroadcast(g, x.shape), unbroadcast(-g, y.shape)))
api_case("rsub-scalar", lambda x: 1.0 - x, U(3, 4), ref=lambda x: 1.0 - x, grad_ref=lambda g, x: (-g,))
api_case("mul-op", lambda x, y: x * y, U(*_A), U(*_B), ref=np.multiply,
         grad_ref=lambda g, x, y: (unbroadcast(g * y, x.shape), unbroadcast(g * x, y.shape)), gradgrad=True)
api_case("div-op", lambda x, y: x / y, U(*_A), AWAY(*_B, gap=0.5), ref=np.divide,
         grad_ref=lambda g, x, y: (unbroadcast(g / y, x.shape), unbroadcast(-g * x / y ** 2, y.shape)))
api_case("rdiv-scalar", lambda x: 2.0 / x, AWAY(3, 4, gap=0.5), ref=lambda x: 2.0 / x,
         grad_ref=lambda g, x: (-2.0 * g / x ** 2,))
api_case("div-scalar", lambda x: x / 4, U(3, 4), ref=lambda x: x / 4, grad_ref=lambda g, x: (g / 4,))
api_case("mul-int-tensor", lambda x, k: x * k, U(3, 4), np.array([1, 2, 3, 4]), ref=np.multiply,
         grad_ref=lambda g, x, k: (g * k,))
api_case("maximum", graphc.maximum, _pool[:12].reshape(_A), _pool[12:].reshape(_B), ref=np.maximum)
api_case("atan2", graphc.atan2, U(3, 4), AWAY(4), ref=np.arctan2)
api_case("remainder", graphc.remainder, _rx, _ry, ref=np.remainder)
api_case("fmod", graphc.fmod, _fx, _fy, ref=np.fmod)
api_case("lerp", graphc.lerp, U(3, 4), U(3, 4), U(4), ref=lambda s, e, w: s + w * (e - s))
api_case("addcmul", lambda x, a, b: graphc.addcmul(x, a, b, value=3.0), U(3, 4), U(3, 4), U(4),
         ref=lambda x, a, b: x + 3 * a * b)
api_case("addcdiv", lambda x, a, b: x.addcdiv(a, b, value=0.5), U(3, 4), U(3, 4), AWAY(3, 4, gap=0.5),
         ref=lambda x, a, b: x + 0.5 * a / b)
api_case("float32-mixed", lambda x, y: x * y, U(3, 4), Fixed(U(3, 4).astype(np.float32)),
         ref=np.multiply, grad_ref=lambda g, x, y: (g * y,))

# movement through the API
api_case("t", lambda x: x.t(), U(3, 4), ref=lambda x: x.T, grad_ref=lambda g, x: (g.T,))
api_case("transpose", lambda x: x.transpose(0, 2), U(2, 3, 4), ref=lambda x: x.transpose(2, 1, 0),
         grad_ref=lambda g, x: (g.transpose(2, 1, 0),))
api_case("permute", lambda x: x.permute(1, 2, 0), U(2, 3, 4), ref=lambda x: x.transpose(1, 2, 0),
         grad_ref=lambda g, x: (g.transpose(2, 0, 1),))
api_case("view", lambda x: x.view(4, -1), U(2, 3, 4), ref=lambda x: x.reshape(4, 6),
         grad_ref=lambda g, x: (g.reshape(x.shape),))
api_case("reshape-method", lambda x: x.reshape(-1), U(2, 3), ref=lambda x: x.reshape(-1),
         grad_ref=lambda g, x: (g.reshape(x.shape),))
api_case("flatten", lambda x: x.flatten(1), U(2, 3, 2), ref=lambda x: x.reshape(2, 6))
api_case("squeeze-unsqueeze", lambda x: x.squeeze(1).unsqueeze(0), U(3, 1, 4), ref=lambda x: x.reshape(1, 3, 4))
api_case("flip", lambda x: x.flip(0, 1), U(3, 4), ref=lambda x: x[::-1, ::-1],
         grad_ref=lambda g, x: (g[::-1, ::-1].copy(),))
api_case("roll", lambda x: x.roll(1, 1), U(3, 4), ref=lambda x: np.roll(x, 1, 1),
         grad_ref=lambda g, x: (np.roll(g, -1, 1),))
api_case("narrow", lambda x: x.narrow(1, 1, 2), U(3, 4), ref=lambda x: x[:, 1:3])
api_case("select", lambda x: x.select(1, -2), U(3, 4), ref=lambda x: x[:, -2])
api_case("split", lambda x: x.split([1, 3], dim=1), U(3, 4), ref=lambda x: (x[:, :1], x[:, 1:]))
api_case("chunk", lambda x: graphc.chunk(x, 2, 0), U(4, 3), ref=lambda x: (x[:2], x[2:]))
api_case("unbind", lambda x: x.unbind(1), U(2, 3), ref=lambda x: tuple(x[:, i] for i in range(3)))
api_case("tril", lambda x: x.tril(), U(3, 4), ref=np.tril, grad_ref=lambda g, x: (np.tril(g),))
api_case("triu-offset", lambda x: graphc.triu(x, 1), U(3, 4), ref=lambda x: np.triu(x, 1),
         grad_ref=lambda g, x: (np.triu(g, 1),))
api_case("diagonal", lambda x: x.diagonal(), U(3, 4), ref=lambda x: np.diagonal(x).copy())
api_case("trace", lambda x: x.trace(), U(3, 3), ref=np.trace, grad_ref=lambda g, x: (g * np.eye(3),))
api_case("repeat", lambda x: x.repeat(2, 3), U(2, 2), ref=lambda x: np.tile(x, (2, 3)),
         grad_ref=lambda g, x: (g.reshape(2, 2, 3, 2).sum((0, 2)),))
api_case("tile", lambda x: graphc.tile(x, (2,)), U(3), ref=lambda x: np.tile(x, 2))
api_case("clone", lambda x: x.clone(), U(3, 4), ref=np.copy, grad_ref=lambda g, x: (g,))
api_case("to-float32-and-back", lambda x: x.float().double(), U(3, 4), eps=1e-3, atol=1e-3,
         ref=lambda x: x.astype(np.float32).astype(np.float64))
api_case("sort-values", lambda x: x.sort(1).values, DISTINCT(3, 4), ref=lambda x: np.sort(x, 1))
api_case("topk-values", lambda x: x.topk(2).values, DISTINCT(3, 4), ref=lambda x: -np.sort(-x, 1)[:, :2])


# =============================================================================================
# Neural-network primitives and composites (passes/nn_decompositions.py, graphc.nn.functional)
# =============================================================================================

def _win(size, k, s, lo, hi, d):
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def np_unfold(x, kernel, stride, padding, dilation, value=0.0):
    """(N, C, *sp) -> (N, C, *out_sp, *kernel), one window per output position (loops)."""
    nsp = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding], constant_values=value)
    out_sp = [_win(x.shape[2 + i], kernel[i], stride[i], *padding[i], dilation[i]) for i in range(nsp)]
    out = np.empty(x.shape[:2] + tuple(out_sp) + tuple(kernel))
    for o in np.ndindex(*out_sp):
        for k in np.ndindex(*kernel):
            pos = tuple(o[i] * stride[i] + k[i] * dilation[i] for i in range(nsp))
            out[(slice(None), slice(None)) + o + k] = xp[(slice(None), slice(None)) + pos]
    return out


def np_fold(cols, size, kernel, stride, padding, dilation):
    nsp = len(kernel)
    out_sp = cols.shape[2:2 + nsp]
    padded = np.zeros(cols.shape[:2] + tuple(size[i] + sum(padding[i]) for i in range(nsp)))
    for o in np.ndindex(*out_sp):
        for k in np.ndindex(*kernel):
            pos = tuple(o[i] * stride[i] + k[i] * dilation[i] for i in range(nsp))
            padded[(slice(None), slice(None)) + pos] += cols[(slice(None), slice(None)) + o + k]
    return padded[(slice(None), slice(None)) + tuple(slice(p[0], p[0] + s) for p, s in zip(padding, size))]


def np_conv(x, w, b, stride, padding, dilation, groups):
    nsp = w.ndim - 2
    cols = np_unfold(x, w.shape[2:], stride, padding, dilation)   # N, C, *o, *k
    n, c = x.shape[:2]
    oc, cg = w.shape[:2]
    out_sp = cols.shape[2:2 + nsp]
    y = np.zeros((n, oc) + out_sp)
    ocg = oc // groups
    for o in range(oc):
        g = o // ocg
        patch = cols[:, g * cg:(g + 1) * cg]            # N, cg, *o, *k
        kern = w[o][(slice(None),) + (None,) * nsp]       # cg, 1.., *k
        y[:, o] = (patch * kern).sum(axis=(1,) + tuple(range(2 + nsp, 2 + 2 * nsp)))
    if b is not None:
        y += b.reshape((1, oc) + (1,) * nsp)
    return y


def np_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    n, cin, h, wd = x.shape
    cig, ocg = cin // groups, w.shape[1]
    kh, kw = w.shape[2:]
    size = [(x.shape[2 + i] - 1) * stride[i] - sum(padding[i]) + dilation[i] * (w.shape[2 + i] - 1)
            + output_padding[i] + 1 for i in range(2)]
    full = np.zeros((n, groups * ocg, size[0] + sum(padding[0]), size[1] + sum(padding[1])))
    for ci in range(cin):
        g = ci // cig
        for o in range(ocg):
            for i in range(h):
                for j in range(wd):
                    for a in range(kh):
                        for c in range(kw):
                            full[:, g * ocg + o, i * stride[0] + a * dilation[0], j * stride[1] + c * dilation[1]] += \
                                x[:, ci, i, j] * w[ci, o, a, c]
    y = full[:, :, padding[0][0]:padding[0][0] + size[0], padding[1][0]:padding[1][0] + size[1]]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def np_max_pool(x, kernel, stride, padding, dilation):
    cols = np_unfold(x, kernel, stride, padding, dilation, value=-np.inf)
    nsp = len(kernel)
    return cols.max(axis=tuple(range(2 + nsp, 2 + 2 * nsp)))


def np_max_pool_grad(g, x, kernel, stride, padding, dilation):
    """Each window's gradient goes to its first maximum (PyTorch's convention)."""
    nsp = len(kernel)
    cols = np_unfold(x, kernel, stride, padding, dilation, value=-np.inf)
    out_sp = cols.shape[2:2 + nsp]
    gx = np.zeros(tuple(x.shape[i] + (sum(padding[i - 2]) if i >= 2 else 0) for i in range(x.ndim)))
    for nc in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*out_sp):
            win = cols[nc + o].reshape(-1)
            k = np.unravel_index(int(np.argmax(win)), kernel)
            pos = tuple(o[i] * stride[i] + k[i] * dilation[i] for i in range(nsp))
            gx[nc + pos] += g[nc + o]
    return gx[(slice(None), slice(None)) + tuple(slice(p[0], p[0] + s) for p, s in zip(padding, x.shape[2:]))]


_unf = dict(kernel=(2, 3), stride=(1, 2), padding=((1, 0), (0, 1)), dilation=(1, 1))
prim_case("unfold", U(1, 2, 4, 5), attrs=_unf, ref=lambda x: np_unfold(x, **_unf),
          grad_ref=lambda g, x: (np_fold(g, (4, 5), **_unf),))
_unf_d = dict(kernel=(2,), stride=(2,), padding=((1, 2),), dilation=(2,), value=-1.5)
prim_case("unfold", U(2, 2, 5), id="unfold-1d-dilated-value", attrs=_unf_d, ref=lambda x: np_unfold(x, **_unf_d))
_fld = dict(size=(4, 5), kernel=(2, 2), stride=(1, 2), padding=((0, 1), (1, 0)), dilation=(2, 1))
_fld_out = tuple(_win(_fld["size"][i], _fld["kernel"][i], _fld["stride"][i], *_fld["padding"][i],
                      _fld["dilation"][i]) for i in range(2))
prim_case("fold", U(1, 2, *_fld_out, 2, 2), attrs=_fld, ref=lambda c: np_fold(c, **_fld),
          grad_ref=lambda g, c: (np_unfold(g, _fld["kernel"], _fld["stride"], _fld["padding"], _fld["dilation"]),))

_conv2 = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
comp_case("conv", U(2, 2, 4, 4), U(3, 2, 3, 3), U(3),
          attrs=dict(zip(("stride", "padding", "dilation", "groups"), _conv2)),
          ref=lambda x, w, b: np_conv(x, w, b, *_conv2))
_conv_g = ((2, 1), ((0, 1), (1, 0)), (1, 2), 2)
comp_case("conv", U(1, 4, 5, 5), U(2, 2, 2, 2), None, id="conv-strided-dilated-groups",
          attrs=dict(zip(("stride", "padding", "dilation", "groups"), _conv_g)),
          ref=lambda x, w, b: np_conv(x, w, None, *_conv_g))
_conv1 = ((2,), ((1, 1),), (1,), 1)
comp_case("conv", U(2, 2, 6), U(3, 2, 3), U(3), id="conv1d",
          attrs=dict(zip(("stride", "padding", "dilation", "groups"), _conv1)),
          ref=lambda x, w, b: np_conv(x, w, b, *_conv1))
_convt = dict(stride=(2, 1), padding=((1, 1), (0, 0)), output_padding=(1, 0), groups=1, dilation=(1, 2))
comp_case("conv_transpose", U(1, 2, 3, 3), U(2, 3, 2, 2), U(3), attrs=_convt,
          ref=lambda x, w, b: np_conv_transpose2d(x, w, b, **_convt))
_convt_g = dict(stride=(1, 2), padding=((0, 0), (1, 1)), output_padding=(0, 1), groups=2, dilation=(1, 1))
comp_case("conv_transpose", U(1, 4, 2, 3), U(4, 1, 2, 3), None, id="conv_transpose-groups", attrs=_convt_g,
          ref=lambda x, w, b: np_conv_transpose2d(x, w, None, **_convt_g))

_mp = dict(kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1))
comp_case("max_pool", DISTINCT(1, 2, 4, 4), attrs=_mp, ref=lambda x: np_max_pool(x, **_mp),
          grad_ref=lambda g, x: (np_max_pool_grad(g, x, **_mp),))
_mp2 = dict(kernel=(3, 2), stride=(1, 2), padding=((1, 1), (0, 1)), dilation=(1, 1))
comp_case("max_pool", DISTINCT(2, 1, 4, 5), id="max_pool-overlap-pad", attrs=_mp2,
          ref=lambda x: np_max_pool(x, **_mp2), grad_ref=lambda g, x: (np_max_pool_grad(g, x, **_mp2),))
# ties inside a window: the first maximum takes the whole gradient
_mp_ties = np.array([[[[1.0, 1.0, 0.0, 2.0], [0.5, 1.0, 2.0, 2.0]]]])
comp_case("max_pool", _mp_ties, id="max_pool-ties", attrs=_mp, gradcheck=False,
          ref=lambda x: np_max_pool(x, **_mp), grad_ref=lambda g, x: (np_max_pool_grad(g, x, **_mp),))


def np_avg_pool(x, kernel, stride, padding, count_include_pad):
    total = np_unfold(x, kernel, stride, padding, (1,) * len(kernel)).sum(axis=(-2, -1))
    if count_include_pad:
        return total / np.prod(kernel)
    ones = np.ones((1, 1) + x.shape[2:])
    return total / np_unfold(ones, kernel, stride, padding, (1,) * len(kernel)).sum(axis=(-2, -1))


for _cip in (True, False):
    comp_case("avg_pool", U(1, 2, 5, 5), id=f"avg_pool-cip{_cip}",
              attrs=dict(kernel=(3, 3), stride=(2, 2), padding=((1, 1), (1, 1)), count_include_pad=_cip,
                         divisor_override=None, real_padding=(1, 1)),
              ref=lambda x, c=_cip: np_avg_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)), c))
comp_case("adaptive_avg_pool", U(1, 2, 5, 6), attrs={"output_size": (2, 3)},
          ref=lambda x: np.stack([np.stack([x[:, :, (i * 5) // 2:-(-((i + 1) * 5) // 2), 2 * j:2 * j + 2].mean((2, 3))
                                            for j in range(3)], -1) for i in range(2)], -2))


def np_layer_norm(x, ndims, w, b, eps):
    ax = tuple(range(x.ndim - ndims, x.ndim))
    y = (x - x.mean(ax, keepdims=True)) / np.sqrt(x.var(ax, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


comp_case("layer_norm", U(2, 3, 4), 1, U(4), U(4), 1e-5, ref=np_layer_norm, gradgrad=True)
comp_case("layer_norm", U(2, 3, 4), 2, None, None, 1e-5, id="layer_norm-2d-noaffine", ref=np_layer_norm)


def np_group_norm(x, groups, w, b, eps):
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1)
    y = ((xg - xg.mean(2, keepdims=True)) / np.sqrt(xg.var(2, keepdims=True) + eps)).reshape(x.shape)
    sh = (c,) + (1,) * (x.ndim - 2)
    return y * w.reshape(sh) + b.reshape(sh)


comp_case("group_norm", U(2, 4, 3), 2, U(4), U(4), 1e-5, ref=np_group_norm)


def np_batch_norm_train(x, m_, v_, w, b, training, eps):
    ax = (0, 2)
    m, v = x.mean(ax), x.var(ax)
    y = (x - m[None, :, None]) / np.sqrt(v[None, :, None] + eps) * w[None, :, None] + b[None, :, None]
    cnt = x.size // x.shape[1]
    return y, m, v * cnt / (cnt - 1)


comp_case("batch_norm", U(4, 3, 2), None, None, U(3), U(3), True, 1e-5, id="batch_norm-train",
          ref=np_batch_norm_train)
_rm, _rv = Fixed(U(3)), Fixed(POS(3))
comp_case("batch_norm", U(4, 3, 2), _rm, _rv, U(3), U(3), False, 1e-5, id="batch_norm-eval",
          ref=lambda x, m, v, w, b, t, e: ((x - m[:, None]) / np.sqrt(v[:, None] + e) * w[:, None] + b[:, None],
                                           None, None))


def _embedding_grad(g, w, idx, pad):
    out = np.zeros_like(w)
    np.add.at(out, idx, g)
    if pad is not None:
        out[pad] = 0.0  # the padding row gets no gradient
    return (out,)


_eidx = np.array([[0, 1, 3], [1, 4, 0]])
# padding_idx: by design not the true derivative (the padding row is frozen): analytic check only
comp_case("embedding", U(5, 3), _eidx, 1, gradcheck=False, ref=lambda w, i, p: w[i], grad_ref=_embedding_grad)
comp_case("embedding", U(5, 3), _eidx, None, id="embedding-nopad", ref=lambda w, i, p: w[i],
          grad_ref=_embedding_grad)

comp_case("leaky_relu", AWAY(3, 4), 0.1, ref=lambda x, s: np.where(x > 0, x, s * x),
          grad_ref=lambda g, x, s: (g * np.where(x > 0, 1.0, s),))
comp_case("elu", AWAY(3, 4), 1.5, 1.2, 0.8, ref=lambda x, a, s, i: s * np.where(x > 0, x, a * np.expm1(i * x)),
          grad_ref=lambda g, x, a, s, i: (g * s * np.where(x > 0, 1.0, a * i * np.exp(i * x)),))
_htx = DISTINCT(3, 4, lo=-1.55, hi=1.5)   # never on the +-1 boundaries
comp_case("hardtanh", _htx, -1.0, 1.0, ref=lambda x, lo, hi: np.clip(x, lo, hi),
          grad_ref=lambda g, x, lo, hi: (g * ((x > lo) & (x < hi)),))
_hsx = DISTINCT(3, 4, lo=-4.05, hi=4.0)   # never on the +-3 kinks
comp_case("hardsigmoid", _hsx, ref=lambda x: np.clip(x + 3, 0, 6) / 6,
          grad_ref=lambda g, x: (g * ((x > -3) & (x < 3)) / 6,))
comp_case("hardswish", _hsx, ref=lambda x: x * np.clip(x + 3, 0, 6) / 6,
          grad_ref=lambda g, x: (g * np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6)),))
comp_case("mish", U(3, 4, lo=-3, hi=3), ref=lambda x: x * np.tanh(np.log1p(np.exp(x))))
comp_case("logsigmoid", U(3, 4, lo=-5, hi=5), ref=lambda x: np.log(np_sigmoid(x)),
          grad_ref=lambda g, x: (g * (1 - np_sigmoid(x)),))
comp_case("softsign", AWAY(3, 4), ref=lambda x: x / (1 + np.abs(x)),
          grad_ref=lambda g, x: (g / (1 + np.abs(x)) ** 2,))
comp_case("glu", U(3, 4), 1, ref=lambda x, d: x[:, :2] * np_sigmoid(x[:, 2:]))
comp_case("prelu", AWAY(2, 3, 4), U(3), ref=lambda x, w: np.where(x > 0, x, x * w[:, None]),
          grad_ref=lambda g, x, w: (g * np.where(x > 0, 1.0, w[:, None]),
                                    (g * np.where(x > 0, 0.0, x)).sum((0, 2))))

_lx = U(3, 4)
_ly = _lx + AWAY(3, 4, gap=0.3, hi=2.0)    # |x - y| >= 0.3: away from the kinks at 0 and at beta/delta
comp_case("mse_loss", U(3, 4), U(3, 4), "mean", ref=lambda x, y, r: ((x - y) ** 2).mean(),
          grad_ref=lambda g, x, y, r: (g * 2 * (x - y) / 12, -g * 2 * (x - y) / 12))
comp_case("l1_loss", _lx, _ly, "sum", ref=lambda x, y, r: np.abs(x - y).sum(),
          grad_ref=lambda g, x, y, r: (g * np.sign(x - y), -g * np.sign(x - y)))
_ld = np.abs(_lx - _ly)
_beta = float(np.sort(_ld.reshape(-1))[5] + np.sort(_ld.reshape(-1))[6]) / 2  # between two |d| values
comp_case("smooth_l1_loss", _lx, _ly, "none", _beta,
          ref=lambda x, y, r, b: np.where(np.abs(x - y) < b, 0.5 * (x - y) ** 2 / b, np.abs(x - y) - 0.5 * b))
comp_case("huber_loss", _lx, _ly, "mean", _beta,
          ref=lambda x, y, r, d: np.where(np.abs(x - y) <= d, 0.5 * (x - y) ** 2, d * (np.abs(x - y) - 0.5 * d)).mean())

_nll_t = np.array([0, 2, 1, -100])
_nll_w = np.array([0.5, 1.0, 2.0])


def np_nll(logp, t, w, ignore, reduction):
    valid = t != ignore
    safe = np.where(valid, t, 0)
    ww = valid * (w[safe] if w is not None else 1.0)
    loss = -logp[np.arange(len(t)), safe] * ww
    return loss.sum() / ww.sum() if reduction == "mean" else loss


comp_case("nll_loss", np.log(np_softmax(U(4, 3), 1)), _nll_t, Fixed(_nll_w), -100, "mean", ref=np_nll,
          grad_ref=lambda g, lp, t, w, ig, r: (np.array([[-g * w[c] / (w[0] + w[2] + w[1]) if c == tc else 0.0
                                                         for c in range(3)] for tc in t]),))
comp_case("cross_entropy", U(4, 3), _nll_t, None, -100, "mean", 0.0,
          ref=lambda x, t, w, ig, r, ls: np_nll(np.log(np_softmax(x, 1)), t, None, ig, r))
comp_case("cross_entropy", U(4, 3), _nll_t, Fixed(_nll_w), -100, "sum", 0.1, id="cross_entropy-smoothing-weight")
comp_case("cross_entropy", U(2, 3, 2), np_softmax(U(2, 3, 2), 1), None, -100, "mean", 0.0, id="cross_entropy-probs",
          ref=lambda x, p, w, ig, r, ls: (-(np.log(np_softmax(x, 1)) * p).sum(1)).mean())
comp_case("binary_cross_entropy", U(3, 4, lo=0.1, hi=0.9), Fixed(_rng.uniform(0, 1, (3, 4))), None, "mean",
          ref=lambda p, y, w, r: (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(),
          grad_ref=lambda g, p, y, w, r: (g * (p - y) / (p * (1 - p)) / 12,))
comp_case("binary_cross_entropy_with_logits", U(3, 4, lo=-3, hi=3), U(3, 4, lo=0, hi=1), None, POS(4), "sum",
          ref=lambda x, y, w, pw, r: (-(pw * y * np.log(np_sigmoid(x)) + (1 - y) * np.log(1 - np_sigmoid(x)))).sum())
comp_case("kl_div", np.log(np_softmax(U(3, 4), 1)), np_softmax(U(3, 4), 1), "batchmean", False,
          ref=lambda lq, t, r, lt: (t * (np.log(t) - lq)).sum() / 3)
comp_case("kl_div", np.log(np_softmax(U(3, 4), 1)), np.log(np_softmax(U(3, 4), 1)), "sum", True,
          id="kl_div-log-target", ref=lambda lq, t, r, lt: (np.exp(t) * (t - lq)).sum())


def np_sdpa(q, k, v, mask, scale):
    s = q @ np.swapaxes(k, -1, -2) * scale + (0 if mask is None else mask)
    return np_softmax(s, -1) @ v


comp_case("scaled_dot_product_attention", U(2, 3, 4), U(2, 5, 4), U(2, 5, 2),
          Fixed(np.where((_rng.random((3, 5)) < 0.3) & (np.arange(5) > 0), -np.inf, 0.0)), 0.5,
          ref=np_sdpa)

# ---- custom_vjp: a custom autograd.Function's output (the VJP is its traced backward graph) -----

def _cube_backward_graph():
    """The backward of x**3 as a traced custom Function's would be: (cotangent, x) -> 3 x^2 g."""
    from graphc.ir.graph import Graph, building
    from graphc.ir.primitive import TensorType
    body = Graph("cube_backward")
    g, x = (body.add_input(TensorType((3, 4), dt.float64), "input", n) for n in ("ct0", "c1"))
    with building(body):
        body.set_outputs([P.mul(P.mul(P.mul(x, x), 3.0), g)])
    return body


_CUBE_BWD = _cube_backward_graph()
# the forward value is detached (as tracing computes it); the gradient comes only from the rule
_add(Case("prim-custom_vjp", lambda x: P.custom_vjp(P.stop_gradient(P.mul(P.mul(x, x), x)), x, x, bwd=_CUBE_BWD,
                                                    index=0, n_inputs=1, has_grad=(True,), fn="cube"),
          (U(3, 4),), prims=frozenset({"custom_vjp"}), ref=lambda x: x ** 3, grad_ref=lambda g, x: (3 * x * x * g,)))


# ---- the same through graphc.nn.functional ---------------------------------------------------

api_case("F.conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), U(2, 2, 5, 5), U(3, 2, 3, 3), U(3),
         ref=lambda x, w, b: np_conv(x, w, b, (2, 2), ((1, 1), (1, 1)), (1, 1), 1))
api_case("F.conv2d-same-dilated", lambda x, w: F.conv2d(x, w, padding="same", dilation=2), U(1, 2, 5, 4),
         U(2, 2, 2, 3), ref=lambda x, w: np_conv(x, w, None, (1, 1), ((1, 1), (2, 2)), (2, 2), 1))
api_case("F.conv1d-unbatched-groups", lambda x, w: F.conv1d(x, w, groups=2), U(4, 6), U(2, 2, 3),
         ref=lambda x, w: np_conv(x[None], w, None, (1,), ((0, 0),), (1,), 2)[0])
api_case("F.conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
         U(1, 2, 3, 3), U(2, 3, 3, 3), U(3),
         ref=lambda x, w, b: np_conv_transpose2d(x, w, b, (2, 2), ((1, 1), (1, 1)), (1, 1), 1, (1, 1)))
api_case("F.max_pool2d", lambda x: F.max_pool2d(x, 2), DISTINCT(1, 2, 4, 4),
         ref=lambda x: np_max_pool(x, **_mp), grad_ref=lambda g, x: (np_max_pool_grad(g, x, **_mp),))
api_case("F.max_pool2d-ceil-pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
         DISTINCT(1, 2, 6, 6))
api_case("F.avg_pool2d-ceil-nopadcount", lambda x: F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False),
         U(1, 2, 5, 5))
api_case("F.avg_pool2d-pad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), U(1, 2, 5, 5),
         ref=lambda x: np_avg_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)), True))
api_case("F.adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), U(1, 2, 5, 6))
api_case("F.adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, 2), DISTINCT(1, 1, 4, 5))
api_case("F.unfold", lambda x: F.unfold(x, 2, padding=1, stride=2), U(1, 2, 4, 3),
         ref=lambda x: np_unfold(x, (2, 2), (2, 2), ((1, 1), (1, 1)), (1, 1))
         .transpose(0, 1, 4, 5, 2, 3).reshape(1, 8, 6))
api_case("F.fold", lambda c: F.fold(c, (4, 3), 2, padding=1, stride=2), U(1, 8, 6),
         ref=lambda c: np_fold(c.reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 4, 5, 2, 3), (4, 3), (2, 2), (2, 2),
                               ((1, 1), (1, 1)), (1, 1)))
api_case("F.layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), U(2, 3, 4), U(4), U(4),
         ref=lambda x, w, b: np_layer_norm(x, 1, w, b, 1e-5))
api_case("F.group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), U(2, 4, 3), U(4), U(4),
         ref=lambda x, w, b: np_group_norm(x, 2, w, b, 1e-5))
api_case("F.batch_norm-train", lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True), U(4, 3, 2),
         Fixed(np.zeros(3)), Fixed(np.ones(3)), U(3), U(3),
         ref=lambda x, m, v, w, b: np_batch_norm_train(x, m, v, w, b, True, 1e-5)[0])
api_case("F.embedding", lambda i, w: F.embedding(i, w, padding_idx=0), _eidx, U(5, 3), gradcheck=False,
         ref=lambda i, w: w[i], grad_ref=lambda g, i, w: _embedding_grad(g, w, i, 0))
api_case("F.embedding-nopad", lambda i, w: F.embedding(i, w), _eidx, U(5, 3), ref=lambda i, w: w[i])
api_case("F.cross_entropy", lambda x, t: F.cross_entropy(x, t), U(4, 3), np.array([0, 2, 1, 1]), gradgrad=True,
         ref=lambda x, t: np_nll(np.log(np_softmax(x, 1)), t, None, -100, "mean"),
         grad_ref=lambda g, x, t: (g * (np_softmax(x, 1) - np.eye(3)[t]) / 4,))
api_case("F.nll_loss-weight", lambda x, t: F.nll_loss(x, t, weight=graphc.tensor(_nll_w), ignore_index=-100),
         np.log(np_softmax(U(4, 3), 1)), _nll_t, ref=lambda x, t: np_nll(x, t, _nll_w, -100, "mean"))
api_case("F.mse_loss", F.mse_loss, U(3, 4), U(3, 4), ref=lambda x, y: ((x - y) ** 2).mean())
api_case("F.bce_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y), U(3, 4, lo=-3, hi=3),
         Fixed(_rng.uniform(0, 1, (3, 4))),
         ref=lambda x, y: (-(y * np.log(np_sigmoid(x)) + (1 - y) * np.log(1 - np_sigmoid(x)))).mean(),
         grad_ref=lambda g, x, y: (g * (np_sigmoid(x) - y) / 12,))
api_case("F.normalize", lambda x: F.normalize(x, dim=1), _nx, ref=lambda x: x / np.sqrt((x * x).sum(1, keepdims=True)))
api_case("F.cosine_similarity", F.cosine_similarity, U(3, 4), U(3, 4),
         ref=lambda a, b: (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1)))
api_case("F.softmax", lambda x: F.softmax(x, dim=0), U(3, 4), ref=lambda x: np_softmax(x, 0))
api_case("F.gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), U(3, 4, lo=-3, hi=3), ref=_gelu_tanh,
         grad_ref=_gelu_tanh_grad)
api_case("F.silu", F.silu, U(3, 4, lo=-3, hi=3), ref=lambda x: x * np_sigmoid(x))
api_case("F.softplus", lambda x: F.softplus(x, beta=2.0, threshold=4.0), _spx,
         ref=lambda x: np.where(2 * x > 4, x, np.log1p(np.exp(2 * x)) / 2))
api_case("F.leaky_relu", lambda x: F.leaky_relu(x, 0.2), AWAY(3, 4), ref=lambda x: np.where(x > 0, x, 0.2 * x))
api_case("F.elu", F.elu, AWAY(3, 4), ref=lambda x: np.where(x > 0, x, np.expm1(x)))
api_case("F.sdpa-causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
         U(2, 3, 4), U(2, 3, 4), U(2, 3, 2),
         ref=lambda q, k, v: np_sdpa(q, k, v, np.where(np.tril(np.ones((3, 3))) > 0, 0.0, -np.inf), 0.5))
api_case("F.linear", F.linear, U(2, 3, 4), U(5, 4), U(5), ref=lambda x, w, b: x @ w.T + b)

# ---- edge cases: 0-d and empty tensors, reuse, in-place ops, dtypes, boundary conventions -----

_s0 = np.array(0.7)
api_case("0d-mul-broadcast", lambda s, x: s * x, _s0, U(3, 4), ref=np.multiply,
         grad_ref=lambda g, s, x: ((g * x).sum(), g * s))
api_case("0d-exp", graphc.exp, _s0, ref=np.exp, grad_ref=lambda g, s: (g * np.exp(s),))
api_case("0d-softmax", lambda s: graphc.softmax(s, 0), _s0, ref=lambda s: np.array(1.0),
         grad_ref=lambda g, s: (np.array(0.0),))
api_case("0d-log_softmax", lambda s: s.log_softmax(-1), _s0, ref=lambda s: np.array(0.0),
         grad_ref=lambda g, s: (np.array(0.0),))
api_case("0d-cumsum", lambda s: s.cumsum(0), _s0, ref=lambda s: s.copy(), grad_ref=lambda g, s: (g,))
api_case("0d-max-dim", lambda s: s.max(0).values, _s0, ref=lambda s: s.copy(), grad_ref=lambda g, s: (g,))
api_case("0d-amax", lambda s: s.amax(), _s0, ref=lambda s: s.copy(), grad_ref=lambda g, s: (g,))
api_case("0d-norm", lambda s: s.norm(), np.array(-0.7), ref=np.abs, grad_ref=lambda g, s: (g * np.sign(s),))
api_case("0d-prod", lambda s: s.prod(), _s0, ref=lambda s: s.copy(), grad_ref=lambda g, s: (g,))
api_case("0d-logsumexp", lambda s: s.logsumexp(0), _s0, ref=lambda s: s.copy(), grad_ref=lambda g, s: (g,))
api_case("0d-expand", lambda s: s.expand(2, 3), _s0, ref=lambda s: np.full((2, 3), s),
         grad_ref=lambda g, s: (g.sum(),))
api_case("0d-where", lambda c, s, x: graphc.where(c, s, x), _cond, _s0, U(2, 4), ref=np.where,
         grad_ref=lambda g, c, s, x: (np.where(c, g, 0).sum(), np.where(c, 0, g)))
api_case("1d-dot-0d-out", lambda a, b: a @ b, U(4), U(4), ref=np.dot, grad_ref=lambda g, a, b: (g * b, g * a))
api_case("empty-sum", lambda x: x.sum(0), np.zeros((0, 3)), ref=lambda x: np.zeros(3),
         grad_ref=lambda g, x: (np.zeros((0, 3)),))
api_case("empty-mm", lambda a, b: a @ b, np.zeros((2, 0)), np.zeros((0, 3)), gradcheck=False,
         ref=lambda a, b: np.zeros((2, 3)), grad_ref=lambda g, a, b: (np.zeros((2, 0)), np.zeros((0, 3))))
api_case("empty-cat", lambda a, b: graphc.cat([a, b]), np.zeros((0, 4)), U(3, 4), ref=lambda a, b: b.copy(),
         grad_ref=lambda g, a, b: (np.zeros((0, 4)), g))
api_case("reuse-input", lambda x: x * x + x.exp() * x, U(3, 4), ref=lambda x: x * x + np.exp(x) * x,
         grad_ref=lambda g, x: (g * (2 * x + np.exp(x) * (1 + x)),), gradgrad=True)
api_case("pow-int-tensor-exp", lambda x, k: x ** k, U(3, 4), np.array([1, 2, 3, 0]), ref=np.power,
         grad_ref=lambda g, x, k: (g * k * x ** np.maximum(k - 1, 0) * (k != 0),))
api_case("masked_fill-tensor-value", lambda x, m, v: x.masked_fill(m, v), U(3, 4), _mask, np.array(2.0),
         ref=lambda x, m, v: np.where(m, v, x), grad_ref=lambda g, x, m, v: (np.where(m, 0.0, g), g[m].sum()))


def _setitem_cols(x, v):
    y = x * 1
    y[:, [0, 2]] = v
    return y


api_case("setitem-tensor", _setitem_cols, U(3, 4), U(3, 2),
         ref=lambda x, v: np.concatenate([v[:, :1], x[:, 1:2], v[:, 1:], x[:, 3:]], 1),
         grad_ref=lambda g, x, v: (g * np.array([0, 1, 0, 1]), g[:, [0, 2]]))


def _setitem_mask(x, m, v):
    y = x * 1
    y[m] = v
    return y


api_case("setitem-mask-0d", _setitem_mask, U(3, 4), _mask, np.array(1.5), ref=lambda x, m, v: np.where(m, v, x),
         grad_ref=lambda g, x, m, v: (np.where(m, 0.0, g), g[m].sum()))
api_case("inplace-exp-clamp-mul", lambda x: (x * 1).exp_().clamp_(0.5, 2.0).mul_(3), U(3, 4),
         ref=lambda x: 3 * np.clip(np.exp(x), 0.5, 2.0),
         grad_ref=lambda g, x: (3 * g * np.exp(x) * ((np.exp(x) > 0.5) & (np.exp(x) < 2.0)),))


def _inplace_on_view(x):
    y = x * 1
    y[1:].mul_(2)
    y.t()[0].add_(5)
    return y.sin()


def _inplace_on_view_ref(x):
    return np.sin(_before_sin(x))


api_case("inplace-on-views", _inplace_on_view, U(3, 4), ref=_inplace_on_view_ref,
         grad_ref=lambda g, x: (g * np.cos(_before_sin(x)) * np.where(np.arange(3)[:, None] >= 1, 2.0, 1.0),))


def _before_sin(x):
    y = x.copy()
    y[1:] *= 2
    y[:, 0] += 5
    return y


api_case("index_add_-inplace", lambda x, s: (x * 1).index_add_(0, graphc.tensor([0, 0]), s), U(3, 4), U(2, 4),
         ref=lambda x, s: x + np.array([[1.0], [0], [0]]) * s.sum(0),
         grad_ref=lambda g, x, s: (g, np.stack([g[0], g[0]])))
api_case("scatter_-inplace", lambda x, s: (x * 1).scatter_(1, graphc.tensor([[0], [1], [2]]), s), U(3, 4), U(3, 1),
         ref=lambda x, s: np.where(np.eye(3, 4) > 0, s, x),
         grad_ref=lambda g, x, s: (np.where(np.eye(3, 4) > 0, 0.0, g), (g * np.eye(3, 4)).sum(1, keepdims=True)))
api_case("masked_fill_-inplace", lambda x, m: (x * 1).masked_fill_(m, 0.0), U(3, 4), _mask,
         ref=lambda x, m: np.where(m, 0.0, x), grad_ref=lambda g, x, m: (np.where(m, 0.0, g),))
# a float32 input keeps float32 gradients, also when mixed with float64
api_case("float32-grad-dtype", lambda a, b: a * b + a.exp(), U(3, 4).astype(np.float32), U(4), gradcheck=False,
         ref=lambda a, b: a * b + np.exp(a.astype(np.float64)),
         grad_ref=lambda g, a, b: (g * (b + np.exp(a.astype(np.float64))), (g * a).sum(0)))
_n2n = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
api_case("nan_to_num", lambda x: graphc.nan_to_num(x, nan=0.5), _n2n, gradcheck=False,
         ref=lambda x: np.nan_to_num(x, nan=0.5), grad_ref=lambda g, x: (g * np.isfinite(x),))
api_case("nan_to_num-finite", lambda x: graphc.nan_to_num(x), U(3, 4), ref=np.nan_to_num,
         grad_ref=lambda g, x: (g,))
def _n2n_div_grad(g, x, y):
    # no gradient flows out of the inf entries: 0 / 0 = nan at x, as in PyTorch
    with np.errstate(all="ignore"):
        return (g * np.isfinite(x / y) / y,)


api_case("nan_to_num-of-inf", lambda x, y: graphc.nan_to_num(x / y), U(3, 4), Fixed(np.where(U(3, 4) > 0, 1.0, 0.0)),
         gradcheck=False,
         ref=lambda x, y: np.nan_to_num(np.divide(x, y, where=y != 0, out=np.copysign(np.full_like(x, np.inf), x))),
         grad_ref=_n2n_div_grad)


# PyTorch's conventions at kinks (analytic checks on exactly the kink points)
_kinks = np.array([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0])
api_case("F.hardtanh-boundaries", F.hardtanh, _kinks, gradcheck=False, ref=lambda x: np.clip(x, -1, 1),
         grad_ref=lambda g, x: (g * ((x > -1) & (x < 1)),))
api_case("F.relu6-boundaries", F.relu6, _kinks, gradcheck=False, ref=lambda x: np.clip(x, 0, 6),
         grad_ref=lambda g, x: (g * ((x > 0) & (x < 6)),))
api_case("F.hardsigmoid-boundaries", F.hardsigmoid, _kinks, gradcheck=False, ref=lambda x: np.clip(x + 3, 0, 6) / 6,
         grad_ref=lambda g, x: (g * ((x > -3) & (x < 3)) / 6,))
api_case("F.hardswish-boundaries", F.hardswish, _kinks, gradcheck=False, ref=lambda x: x * np.clip(x + 3, 0, 6) / 6,
         grad_ref=lambda g, x: (g * np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2 * x + 3) / 6)),))
api_case("F.elu-at-zero", lambda x: F.elu(x, 2.0), _kinks, gradcheck=False,
         ref=lambda x: np.where(x > 0, x, 2 * np.expm1(x)),
         grad_ref=lambda g, x: (g * np.where(x > 0, 1.0, 2 * np.exp(x)),))
api_case("F.celu-at-zero", lambda x: F.celu(x, 0.5), _kinks, gradcheck=False,
         ref=lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)),
         grad_ref=lambda g, x: (g * np.where(x > 0, 1.0, np.exp(x / 0.5)),))
api_case("F.relu-at-zero", F.relu, _kinks, gradcheck=False, ref=lambda x: np.maximum(x, 0),
         grad_ref=lambda g, x: (g * (x > 0),))
api_case("F.leaky_relu-at-zero", lambda x: F.leaky_relu(x, 0.1), _kinks, gradcheck=False,
         ref=lambda x: np.where(x > 0, x, 0.1 * x), grad_ref=lambda g, x: (g * np.where(x > 0, 1.0, 0.1),))
api_case("abs-at-zero", graphc.abs, _kinks, gradcheck=False, ref=np.abs, grad_ref=lambda g, x: (g * np.sign(x),))

# more of the functional API
for _mode in ("reflect", "replicate", "circular"):
    api_case(f"F.pad-{_mode}", lambda x, m=_mode: F.pad(x, (1, 2, 2, 1), mode=m), U(1, 2, 3, 3),
             ref=lambda x, m=_mode: np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 2)), mode={"replicate": "edge",
                                                                                     "circular": "wrap"}.get(m, m)))
api_case("F.pad-constant", lambda x: F.pad(x, (1, 0, 0, 2), value=0.5), U(2, 3),
         ref=lambda x: np.pad(x, ((0, 2), (1, 0)), constant_values=0.5), grad_ref=lambda g, x: (g[:2, 1:],))
api_case("F.interpolate-nearest", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), U(1, 2, 2, 3),
         ref=lambda x: x.repeat(2, axis=2).repeat(2, axis=3),
         grad_ref=lambda g, x: (g.reshape(1, 2, 2, 2, 3, 2).sum((3, 5)),))
api_case("F.interpolate-bilinear", lambda x: F.interpolate(x, size=(5, 4), mode="bilinear", align_corners=False),
         U(1, 2, 3, 3))
api_case("F.softmin", lambda x: F.softmin(x, 1), U(3, 4), ref=lambda x: np_softmax(-x, 1))
api_case("F.instance_norm", F.instance_norm, U(2, 2, 3, 3),
         ref=lambda x: (x - x.mean((2, 3), keepdims=True)) / np.sqrt(x.var((2, 3), keepdims=True) + 1e-5))
api_case("F.rms_norm", lambda x, w: F.rms_norm(x, (4,), w, eps=1e-6), U(3, 4), U(4),
         ref=lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w)
api_case("F.bilinear", F.bilinear, U(2, 3), U(2, 4), U(5, 3, 4), U(5),
         ref=lambda a, b, w, c: np.einsum("ni,oij,nj->no", a, w, b) + c)
api_case("F.pairwise_distance", F.pairwise_distance, U(3, 4), U(3, 4),
         ref=lambda a, b: np.sqrt(((a - b + 1e-6) ** 2).sum(-1)))
api_case("F.cross_entropy-2d-target", lambda x, t: F.cross_entropy(x, t), U(2, 3, 2, 2),
         np.array([[[0, 1], [2, 1]], [[0, 0], [1, 2]]]),
         ref=lambda x, t: -np.take_along_axis(np.log(np_softmax(x, 1)), t[:, None], 1).mean())
api_case("F.cross_entropy-unbatched", lambda x: F.cross_entropy(x, graphc.tensor(2)), U(4),
         ref=lambda x: -np.log(np_softmax(x, 0))[2], grad_ref=lambda g, x: (g * (np_softmax(x, 0) - np.eye(4)[2]),))
api_case("F.cross_entropy-smoothing", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2), U(4, 3),
         np.array([0, 2, 1, 1]),
         ref=lambda x, t: (-(np.log(np_softmax(x, 1)) * (0.8 * np.eye(3)[t] + 0.2 / 3)).sum(1)).mean())
api_case("F.max_pool1d", lambda x: F.max_pool1d(x, 3, stride=2, padding=1), DISTINCT(2, 2, 6))
api_case("F.avg_pool1d", lambda x: F.avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False), U(2, 2, 6))
api_case("F.conv3d", lambda x, w: F.conv3d(x, w, padding=(1, 0, 0)), U(1, 2, 3, 3, 2), U(1, 2, 2, 2, 1),
         ref=lambda x, w: np_conv(x, w, None, (1, 1, 1), ((1, 1), (0, 0), (0, 0)), (1, 1, 1), 1))
api_case("F.conv_transpose1d", lambda x, w: F.conv_transpose1d(x, w, stride=2), U(1, 2, 4), U(2, 1, 3))
api_case("einsum-outer", lambda a, b: graphc.einsum("i,j->ij", a, b), U(3), U(4), ref=np.outer)
api_case("einsum-sum-transpose", lambda a: graphc.einsum("ij->ji", a) * graphc.einsum("ij->", a), U(3, 4),
         ref=lambda a: a.T * a.sum())
api_case("baddbmm", lambda c, a, b: graphc.baddbmm(c, a, b, beta=0.5, alpha=2.0), U(2, 2, 2), U(2, 2, 3), U(2, 3, 2),
         ref=lambda c, a, b: 0.5 * c + 2 * a @ b)
api_case("take_along_dim", lambda x, i: graphc.take_along_dim(x, i, 1), U(4, 3), np.array([[0], [2], [1], [1]]),
         ref=lambda x, i: np.take_along_axis(x, i, 1))
api_case("movedim", lambda x: x.movedim(1, -1), U(2, 3, 2), ref=lambda x: np.moveaxis(x, 1, -1))
api_case("unflatten", lambda x: x.unflatten(0, (2, 2)), U(4, 3), ref=lambda x: x.reshape(2, 2, 3))
api_case("repeat_interleave", lambda x: x.repeat_interleave(2, dim=0), U(2, 3), ref=lambda x: np.repeat(x, 2, 0))
api_case("diag-vector", graphc.diag, U(3), ref=np.diag, grad_ref=lambda g, x: (np.diag(g).copy(),))
api_case("diag-matrix-offset", lambda x: graphc.diag(x, -1), U(4, 3), ref=lambda x: np.diag(x, -1).copy())
api_case("masked_select", lambda x, m: x.masked_select(m), U(3, 4), _mask, ref=lambda x, m: x[m])
api_case("dropout-eval", lambda x: F.dropout(x, 0.5, training=False), U(3, 4), ref=np.copy, grad_ref=lambda g, x: (g,))

# second derivatives at exactly 0, where max/abs-based formulations lose them
_z0 = np.array([[-2.0, -0.5, 0.0], [0.0, 0.7, 3.0]])
comp_case("logsigmoid", _z0, id="logsigmoid-at-zero", gradgrad=True, ref=lambda x: np.log(np_sigmoid(x)))
comp_case("binary_cross_entropy_with_logits", _z0, Fixed(np.array([[0.0, 1.0, 0.3], [1.0, 0.5, 0.0]])), None, None,
          "sum", id="bce_with_logits-at-zero", gradgrad=True,
          ref=lambda x, y, w, pw, r: (-(y * np.log(np_sigmoid(x)) + (1 - y) * np.log(1 - np_sigmoid(x)))).sum())
_sl_y = _z0 + np.array([[0.0, 0.3, -2.0], [0.0, 1.5, -0.2]])   # diffs 0 (twice), inside and outside beta=1
comp_case("smooth_l1_loss", _z0, _sl_y, "sum", 1.0, id="smooth_l1-at-zero", gradgrad=True,
          ref=lambda x, y, r, b: np.where(np.abs(x - y) < b, 0.5 * (x - y) ** 2 / b, np.abs(x - y) - 0.5 * b).sum())
comp_case("huber_loss", _z0, _sl_y, "sum", 1.0, id="huber-at-zero", gradgrad=True,
          ref=lambda x, y, r, d: np.where(np.abs(x - y) <= d, 0.5 * (x - y) ** 2, d * (np.abs(x - y) - 0.5 * d)).sum())
comp_case("conv", U(1, 2, 3, 3), U(2, 2, 2, 2), U(2), id="conv-small-gradgrad", gradgrad=True,
          attrs=dict(stride=(1, 1), padding=((0, 1), (1, 0)), dilation=(1, 1), groups=1),
          ref=lambda x, w, b: np_conv(x, w, b, (1, 1), ((0, 1), (1, 0)), (1, 1), 1))
api_case("F.sdpa-gradgrad", F.scaled_dot_product_attention, U(1, 2, 3), U(1, 3, 3), U(1, 3, 2), gradgrad=True,
         ref=lambda q, k, v: np_sdpa(q, k, v, None, 1 / math.sqrt(3)))


# =============================================================================================
# Scans, special functions, order statistics and dense linear algebra (see test_more_ops.py)
# =============================================================================================

def np_digamma(x):
    """psi(x) for x > 0: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then the asymptotic series."""
    x = np.array(x, dtype=np.float64)
    acc = np.zeros_like(x)
    while np.any(x < 10):
        small = x < 10
        acc = acc - np.where(small, 1 / x, 0)
        x = np.where(small, x + 1, x)
    x2 = 1 / (x * x)
    return acc + np.log(x) - 0.5 / x - x2 * (1 / 12 - x2 * (1 / 120 - x2 * (1 / 252 - x2 * (1 / 240 - x2 / 132))))


def np_trigamma(x):
    x = np.array(x, dtype=np.float64)
    acc = np.zeros_like(x)
    while np.any(x < 10):
        small = x < 10
        acc = acc + np.where(small, 1 / (x * x), 0)
        x = np.where(small, x + 1, x)
    x2 = 1 / (x * x)
    return acc + 1 / x + x2 / 2 + x2 / x * (1 / 6 - x2 * (1 / 30 - x2 * (1 / 42 - x2 / 30)))


def np_erfinv(y):
    """Newton's method on math.erf."""
    x = np.zeros_like(y)
    for _ in range(60):
        x = x - (np_erf(x) - y) / (2 / math.sqrt(math.pi) * np.exp(-x * x))
    return x


def np_bessel_i(x, nu: int):
    """The modified Bessel function I_nu(x) (nu = 0, 1) by its power series (|x| <= 10 here)."""
    x = np.asarray(x, dtype=np.float64)
    term = (x / 2) ** nu / math.factorial(nu)
    total = term
    for k in range(1, 80):
        term = term * (x / 2) ** 2 / (k * (k + nu))
        total = total + term
    return total


def np_erfcx(x):
    return np.exp(x * x) * np.vectorize(math.erfc)(x)


def np_log_ndtr(x):
    return np.log(0.5 * np.vectorize(math.erfc)(-np.asarray(x) / math.sqrt(2)))


def np_igamma(a, x):
    """P(a, x) by its series x^a e^-x / Gamma(a + 1) * sum_k x^k / ((a + 1) ... (a + k)) (x < 10 here)."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    term, total = np.ones_like(x), np.ones_like(x)
    for k in range(1, 200):
        term = term * x / (a + k)
        total = total + term
    return total * np.exp(a * np.log(x) - x - np.vectorize(math.lgamma)(a + 1))


def np_zeta(x, q):
    """Hurwitz's zeta by Euler-Maclaurin: the first 30 terms, the integral of the rest and three corrections."""
    x, q = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(q, np.float64))
    n = 30
    head = sum((k + q) ** -x for k in range(n))
    t = n + q
    return (head + t ** (1 - x) / (x - 1) + t ** -x / 2 + x * t ** (-x - 1) / 12
            - x * (x + 1) * (x + 2) * t ** (-x - 3) / 720)


def np_cumprod_grad(g, x):
    """VJP of cumprod along the last axis by brute force: d out_i / d x_j = prod_{k <= i, k != j} x_k."""
    out = np.zeros_like(x)
    n = x.shape[-1]
    for r in np.ndindex(*x.shape[:-1]):
        for j in range(n):
            out[r + (j,)] = sum(g[r + (i,)] * np.prod(np.delete(x[r][:i + 1], j)) for i in range(j, n))
    return out


def np_cumext(x, better):
    """(values, indices) of the running max/min along the last axis; ties take the later index."""
    vals, idx = np.empty_like(x), np.empty(x.shape, np.int64)
    for r in np.ndindex(*x.shape[:-1]):
        best = 0
        for i in range(x.shape[-1]):
            if better(x[r + (i,)], x[r + (best,)]) or x[r + (i,)] == x[r + (best,)]:
                best = i
            vals[r + (i,)], idx[r + (i,)] = x[r + (best,)], best
    return vals, idx


def _cumext_grad(better):
    def grad_ref(g, x):
        _, idx = np_cumext(x, better)
        out = np.zeros_like(x)
        for r in np.ndindex(*x.shape[:-1]):
            np.add.at(out[r], idx[r], g[r])
        return (out,)
    return grad_ref


_zeros_x = np.array([[1.5, 0.0, -2.0, 0.5, 1.2], [0.0, 0.7, 0.0, -1.1, 2.0], [0.8, -1.3, 0.6, 1.1, -0.9]])
comp_case("cumprod", _zeros_x, id="cumprod-with-zeros", attrs={"dim": 1}, gradgrad=True,
          ref=lambda x: np.cumprod(x, axis=1), grad_ref=lambda g, x: (np_cumprod_grad(g, x),))
comp_case("cumprod", U(4, 3), id="cumprod-dim0", attrs={"dim": 0}, ref=lambda x: np.cumprod(x, axis=0),
          grad_ref=lambda g, x: (np_cumprod_grad(g.T, x.T).T,))
comp_case("logcumsumexp", U(3, 6, lo=-3, hi=3), attrs={"dim": 1}, gradgrad=True,
          ref=lambda x: np.logaddexp.accumulate(x, axis=1),
          grad_ref=lambda g, x: ((np.flip(np.cumsum(np.flip(g * np.exp(-np.logaddexp.accumulate(x, 1)), 1), 1), 1)
                                  * np.exp(x)),))
comp_case("cummax", DISTINCT(3, 5), attrs={"dim": 1}, ref=lambda x: np_cumext(x, np.greater),
          grad_ref=_cumext_grad(np.greater))
comp_case("cummin", DISTINCT(3, 5), attrs={"dim": 1}, ref=lambda x: np_cumext(x, np.less),
          grad_ref=_cumext_grad(np.less))
comp_case("logaddexp", U(3, 4, lo=-3, hi=3), U(4, lo=-3, hi=3), gradgrad=True, ref=np.logaddexp,
          grad_ref=lambda g, a, b: (g * np_sigmoid(a - b), unbroadcast(g * np_sigmoid(b - a), (4,))))
comp_case("logaddexp", _z0, _z0 * 1.0, id="logaddexp-ties", gradgrad=True, ref=np.logaddexp,
          grad_ref=lambda g, a, b: (g * 0.5, g * 0.5))
comp_case("logaddexp2", U(3, 4), U(3, 4), ref=np.logaddexp2,
          grad_ref=lambda g, a, b: (g / (1 + 2.0 ** (b - a)), g / (1 + 2.0 ** (a - b))))
comp_case("xlog1py", POS(3, 4), U(3, 4, lo=-0.5), ref=lambda x, y: x * np.log1p(y),
          grad_ref=lambda g, x, y: (g * np.log1p(y), g * x / (1 + y)))
# (at 0 the second derivative is 0, as in PyTorch, whose sinc backward masks 0 out)
comp_case("sinc", np.array([[0.0, 0.3, -1.7], [2.4, -0.6, 1.1]]), ref=np.sinc)
comp_case("logit", U(3, 4, lo=0.1, hi=0.9), ref=lambda x: np.log(x / (1 - x)),
          grad_ref=lambda g, x: (g / (x * (1 - x)),))
comp_case("logit", np.array([0.05, 0.3, 0.6, 0.95]), id="logit-eps", attrs={"eps": 0.1},
          ref=lambda x: np.log(np.clip(x, 0.1, 0.9) / (1 - np.clip(x, 0.1, 0.9))),
          grad_ref=lambda g, x: (np.where((x > 0.1) & (x < 0.9), g / (x * (1 - x)), 0.0),))
comp_case("entr", POS(3, 4, lo=0.2), ref=lambda x: -x * np.log(x), grad_ref=lambda g, x: (-g * (1 + np.log(x)),))


def np_cdist(a, b, p):
    d = np.abs(a[..., :, None, :] - b[..., None, :, :])
    return d.max(-1) if p == math.inf else (d ** p).sum(-1) ** (1 / p)


for _p in (2.0, 1.0, 3.0, math.inf):
    comp_case("cdist", DISTINCT(4, 3), DISTINCT(5, 3, lo=-1.9, hi=2.1), id=f"cdist-p{_p}", attrs={"p": _p},
              ref=lambda a, b, p=_p: np_cdist(a, b, p))
comp_case("cdist", U(2, 3, 2), U(4, 2), id="cdist-batched", attrs={"p": 2.0}, ref=lambda a, b: np_cdist(a, b, 2))

# special functions
prim_case("lgamma", POS(3, 4, lo=0.3, hi=5.0), ref=np.vectorize(math.lgamma),
          grad_ref=lambda g, x: (g * np_digamma(x),))
prim_case("polygamma", POS(3, 4, lo=0.3, hi=5.0), id="digamma", attrs={"n": 0}, ref=np_digamma,
          grad_ref=lambda g, x: (g * np_trigamma(x),), gradgrad=True)
prim_case("polygamma", POS(3, 4), id="trigamma", attrs={"n": 1}, ref=np_trigamma)
prim_case("erfinv", U(3, 4, lo=-0.9, hi=0.9), ref=np_erfinv,
          grad_ref=lambda g, y: (g * math.sqrt(math.pi) / 2 * np.exp(np_erfinv(y) ** 2),))
prim_case("i0", U(3, 4, lo=-3.0, hi=3.0), ref=lambda x: np_bessel_i(x, 0),
          grad_ref=lambda g, x: (g * np_bessel_i(x, 1),), gradgrad=True)
prim_case("i0e", AWAY(3, 4, gap=0.2, hi=3.0), ref=lambda x: np.exp(-abs(x)) * np_bessel_i(x, 0),
          grad_ref=lambda g, x: (g * np.exp(-abs(x)) * (np_bessel_i(x, 1) - np.sign(x) * np_bessel_i(x, 0)),))
# i1'(x) = i0(x) - i1(x) / x, 1/2 at 0 (the case's last element)
_i1x = np.append(U(5, lo=-3.0, hi=3.0), 0.0)
prim_case("i1", _i1x, ref=lambda x: np_bessel_i(x, 1), grad_ref=lambda g, x: (g * np.where(
    x == 0, 0.5, np_bessel_i(x, 0) - np_bessel_i(x, 1) / np.where(x == 0, 1, x)),))
prim_case("i1e", AWAY(3, 4, gap=0.2, hi=3.0), ref=lambda x: np.exp(-abs(x)) * np_bessel_i(x, 1),
          grad_ref=lambda g, x: (g * np.exp(-abs(x)) * (np_bessel_i(x, 0) - np_bessel_i(x, 1) * (np.sign(x) + 1 / x)),))
prim_case("erfcx", U(3, 4, lo=-1.5, hi=3.0), ref=np_erfcx,
          grad_ref=lambda g, x: (g * (2 * x * np_erfcx(x) - 2 / math.sqrt(math.pi)),))
prim_case("log_ndtr", U(3, 4, lo=-4.0, hi=3.0), ref=np_log_ndtr,
          grad_ref=lambda g, x: (g * np.exp(-x * x / 2 - np_log_ndtr(x)) / math.sqrt(2 * math.pi),))
# the incomplete gamma functions and zeta are differentiable in their second operand only
_ga, _gx = Fixed(POS(3, 1, lo=0.5, hi=3.0)), POS(4, lo=0.3, hi=4.0)
prim_case("igamma", _ga, _gx, ref=np_igamma, grad_ref=lambda g, a, x: (unbroadcast(
    g * np.exp((a - 1) * np.log(x) - x - np.vectorize(math.lgamma)(a)), x.shape),))
prim_case("igammac", _ga, _gx, ref=lambda a, x: 1 - np_igamma(a, x), grad_ref=lambda g, a, x: (unbroadcast(
    -g * np.exp((a - 1) * np.log(x) - x - np.vectorize(math.lgamma)(a)), x.shape),))
prim_case("zeta", Fixed(POS(3, 1, lo=1.5, hi=4.0)), POS(3, 4, lo=0.5, hi=3.0), ref=np_zeta,
          grad_ref=lambda g, x, q: (-g * x * np_zeta(x + 1, q),))
_xl = np.where(U(3, 1, 4) > 0.6, 0.0, U(3, 1, 4))
prim_case("xlogy", _xl, POS(2, 4), ref=lambda x, y: np.where(x == 0, 0.0, x * np.log(y)),
          grad_ref=lambda g, x, y: (unbroadcast(g * np.log(y), x.shape), unbroadcast(g * x / y, y.shape)))


# dense linear algebra: well-conditioned inputs, distinct singular values / eigenvalues
def WELL(*shape, n=None):
    n = shape[-1]
    return U(*shape) + 2.5 * np.eye(n)


def _sym(a):
    return P.add(a, P.permute(a, dims=tuple(range(len(a.shape) - 2)) + (len(a.shape) - 1, len(a.shape) - 2)))


def _spd(a):
    n = a.shape[-1]
    at = P.permute(a, dims=tuple(range(len(a.shape) - 2)) + (len(a.shape) - 1, len(a.shape) - 2))
    return P.add(P.matmul(a, at), graphc.tensor(3.0 * np.eye(n)))


def _spread(n):
    """A symmetric matrix with well-separated eigenvalues (the symmetrizing wrapper doubles it)."""
    return np.diag(np.arange(1.0, n + 1)) + 0.1 * U(n, n)


_inv = np.linalg.inv
prim_case("inv", WELL(2, 3, 3), gradgrad=True, ref=_inv,
          grad_ref=lambda g, a: (-np.swapaxes(_inv(a), -1, -2) @ g @ np.swapaxes(_inv(a), -1, -2),))
prim_case("det", WELL(2, 3, 3), gradgrad=True, ref=np.linalg.det,
          grad_ref=lambda g, a: (g[:, None, None] * np.linalg.det(a)[:, None, None] * np.swapaxes(_inv(a), -1, -2),))
prim_case("logabsdet", WELL(3, 3) * np.array([1.0, 1.0, -1.0]), ref=lambda a: np.log(np.abs(np.linalg.det(a))),
          grad_ref=lambda g, a: (g * _inv(a).T,))
prim_case("solve", WELL(2, 3, 3), U(3, 2), ref=lambda a, b: _inv(a) @ b,
          grad_ref=lambda g, a, b: (-(np.swapaxes(_inv(a), -1, -2) @ g) @ np.swapaxes(_inv(a) @ b, -1, -2),
                                    (np.swapaxes(_inv(a), -1, -2) @ g).sum(0)))
_add(Case("prim-cholesky", lambda a: P.cholesky(_spd(a)), (U(2, 3, 3),), prims=frozenset({"cholesky"}),
          gradgrad=True))
for _m, _n in ((4, 3), (3, 3), (2, 4)):
    prim_case("qr_q", U(_m, _n), id=f"qr_q-{_m}x{_n}", attrs={"mode": "reduced"})
    prim_case("qr_r", U(_m, _n), id=f"qr_r-{_m}x{_n}", attrs={"mode": "reduced"})
    prim_case("svd_u", U(_m, _n), id=f"svd_u-{_m}x{_n}", attrs={"full_matrices": False})
    prim_case("svd_vh", U(_m, _n), id=f"svd_vh-{_m}x{_n}", attrs={"full_matrices": False})
    prim_case("svdvals", U(_m, _n), id=f"svdvals-{_m}x{_n}")
    prim_case("pinv", U(_m, _n), id=f"pinv-{_m}x{_n}", attrs={"atol": 0.0, "rtol": 1e-12, "hermitian": False},
              ref=np.linalg.pinv)
prim_case("qr_q", U(2, 3, 3), id="qr_q-batched-complete-square", attrs={"mode": "complete"})
# with full_matrices, only the first min(m, n) singular vectors are determined (and differentiable)
_add(Case("prim-svd_u-full", lambda a: P.slice(P.svd_u(a, full_matrices=True), index=((0, 4, 1), (0, 2, 1))),
          (U(4, 2),), prims=frozenset({"svd_u"})))
_add(Case("prim-svd_vh-full", lambda a: P.slice(P.svd_vh(a, full_matrices=True), index=((0, 2, 1), (0, 4, 1))),
          (U(2, 4),), prims=frozenset({"svd_vh"})))
prim_case("svdvals", U(2, 3, 2), id="svdvals-batched", gradgrad=True)
_add(Case("prim-eigvalsh", lambda a: P.eigvalsh(_sym(a), uplo="L"), (_spread(4),), prims=frozenset({"eigvalsh"}),
          gradgrad=True))
_add(Case("prim-eigh_vectors", lambda a: P.eigh_vectors(_sym(a), uplo="L"), (_spread(4),),
          prims=frozenset({"eigh_vectors"})))
_add(Case("prim-eigh_vectors-upper", lambda a: P.eigh_vectors(_sym(a), uplo="U"), (_spread(3),),
          prims=frozenset({"eigh_vectors"})))
_add(Case("prim-pinv-hermitian", lambda a: P.pinv(_sym(a), atol=0.0, rtol=1e-12, hermitian=True), (_spread(3),),
          prims=frozenset({"pinv"})))


def _np_lu_matrix(lu, piv):
    """A = P L U from packed LU factors and LAPACK's 1-based pivots (numpy, one matrix)."""
    n = lu.shape[-1]
    perm = np.arange(n)
    for i, p in enumerate(piv - 1):
        perm[[i, p]] = perm[[p, i]]
    a = (np.tril(lu, -1) + np.eye(n)) @ np.triu(lu)
    out = np.empty_like(a)
    out[perm] = a
    return out


def _np_lu_packed(a):
    """scipy.linalg.lu's L and U packed as LAPACK's getrf packs them (one matrix)."""
    import scipy.linalg
    _p, lo, up = scipy.linalg.lu(a)
    k = min(a.shape)
    out = np.zeros(a.shape)
    out[:, :k] += np.tril(lo, -1)
    out[:k, :] += up
    return out


# LU (tall, square, wide; full rank, well-separated pivots), solving with it, least squares
for _m, _n in ((4, 3), (3, 3), (3, 4)):
    prim_case("lu_factor", U(_m, _n) + np.eye(_m, _n), id=f"lu_factor-{_m}x{_n}", attrs={"check_errors": False},
              ref=_np_lu_packed, gradgrad=_m == _n)
prim_case("lu_factor", U(2, 3, 3), id="lu_factor-batched", attrs={"check_errors": False})
_piv3 = np.array([2, 3, 3], np.int32)
prim_case("lu_solve", WELL(3, 3), _piv3, U(3, 2), attrs={"adjoint": False}, gradgrad=True,
          ref=lambda lu, p, b: np.linalg.solve(_np_lu_matrix(lu, p), b))
prim_case("lu_solve", WELL(3, 3), _piv3, U(3, 2), id="lu_solve-adjoint", attrs={"adjoint": True},
          ref=lambda lu, p, b: np.linalg.solve(_np_lu_matrix(lu, p).T, b))
prim_case("lu_solve", WELL(2, 3, 3), np.array([[1, 3, 3], [3, 2, 3]], np.int32), U(3, 2), id="lu_solve-broadcast",
          attrs={"adjoint": False})
prim_case("lstsq", U(4, 3), U(4, 2), attrs={"rcond": 1e-12, "driver": "gelsy"}, gradgrad=True,
          ref=lambda a, b: np.linalg.pinv(a) @ b)
prim_case("lstsq", U(3, 4), U(3, 2), id="lstsq-wide-gelsd", attrs={"rcond": 1e-12, "driver": "gelsd"},
          ref=lambda a, b: np.linalg.pinv(a) @ b)
prim_case("lstsq", U(2, 4, 3), U(4, 1), id="lstsq-broadcast-gels", attrs={"rcond": 1e-12, "driver": "gels"},
          ref=lambda a, b: np.linalg.pinv(a) @ b)

# the public API over them
api_case("linalg.solve-vector", lambda a, b: graphc.linalg.solve(a, b), WELL(2, 3, 3), U(2, 3),
         ref=lambda a, b: np.einsum("bij,bj->bi", _inv(a), b))
api_case("linalg.solve-left-false", lambda a, b: graphc.linalg.solve(a, b, left=False), WELL(3, 3), U(2, 3),
         ref=lambda a, b: b @ _inv(a))
api_case("linalg.slogdet", lambda a: graphc.linalg.slogdet(a).logabsdet, WELL(2, 3, 3),
         ref=lambda a: np.log(np.abs(np.linalg.det(a))))
api_case("linalg.cholesky-upper", lambda a: graphc.linalg.cholesky(a @ a.mT + 3 * graphc.eye(3, dtype=a.dtype),
                                                                   upper=True), U(3, 3))
api_case("linalg.eigh", lambda a: graphc.linalg.eigh(a + a.mT), _spread(3))
api_case("linalg.svd-reconstruct", lambda a: (lambda u, s, vh: (u * s[..., None, :]) @ vh)(*graphc.linalg.svd(
    a, full_matrices=False)), U(4, 3), ref=lambda a: a, grad_ref=lambda g, a: (g,))
api_case("linalg.matrix_power", lambda a: graphc.linalg.matrix_power(a, 3), U(3, 3),
         ref=lambda a: a @ a @ a, grad_ref=lambda g, a: (g @ (a @ a).T + a.T @ g @ a.T + (a @ a).T @ g,))
api_case("linalg.matrix_power-neg", lambda a: graphc.linalg.matrix_power(a, -2), WELL(3, 3),
         ref=lambda a: _inv(a @ a))
api_case("linalg.pinv", lambda a: graphc.linalg.pinv(a), U(3, 4), ref=np.linalg.pinv)
api_case("linalg.solve_triangular", lambda a, b: graphc.linalg.solve_triangular(a, b, upper=False), WELL(3, 3),
         U(3, 2), ref=lambda a, b: _inv(np.tril(a)) @ b)
api_case("logdet", graphc.logdet, WELL(3, 3), ref=lambda a: np.log(np.linalg.det(a)))

# order statistics, differences, products
api_case("median-dim", lambda x: graphc.median(x, 1).values, DISTINCT(3, 5), ref=lambda x: np.median(x, 1))
api_case("median-dim-even", lambda x: graphc.median(x, 0, keepdim=True).values, DISTINCT(4, 3),
         ref=lambda x: np.sort(x, 0)[1:2])
api_case("median-all", graphc.median, DISTINCT(3, 3), ref=lambda x: np.median(x))
api_case("nanmedian-dim", lambda x: graphc.nanmedian(x, 1).values, DISTINCT(2, 5), ref=lambda x: np.median(x, 1))
api_case("mode", lambda x: graphc.mode(x, 1).values, np.array([[1.0, 2.0, 2.0, 3.0], [0.5, 0.5, 4.0, 4.0]]),
         gradcheck=False, ref=lambda x: np.array([2.0, 0.5]), grad_ref=lambda g, x: (np.array([[0, 0, g[0], 0], [0, g[1], 0, 0]]),))
api_case("diff", lambda x, p: graphc.diff(x, n=2, dim=1, prepend=p), U(3, 5), U(3, 1),
         ref=lambda x, p: np.diff(np.concatenate([p, x], 1), n=2, axis=1))
api_case("tensordot", lambda a, b: graphc.tensordot(a, b, dims=([1, 0], [0, 2])), U(3, 4, 2), U(4, 2, 3),
         ref=lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 2])))
api_case("kron", graphc.kron, U(2, 3), U(3, 2), ref=np.kron)
api_case("cross", lambda a, b: graphc.linalg.cross(a, b), U(4, 3), U(1, 3), ref=lambda a, b: np.cross(a, b))
api_case("trapezoid-x", lambda y, x: graphc.trapezoid(y, x, dim=0), U(4, 3), np.array([0.0, 0.5, 1.5, 3.0]),
         ref=lambda y, x: np.trapezoid(y, x, axis=0))
api_case("cumulative_trapezoid", lambda y: graphc.cumulative_trapezoid(y, dx=0.5), U(3, 4),
         ref=lambda y: np.cumsum((y[:, 1:] + y[:, :-1]) / 2 * 0.5, axis=1))
api_case("block_diag", graphc.block_diag, U(2, 3), U(1), U(2, 2),
         ref=lambda a, b, c: np.block([[a, np.zeros((2, 3))], [np.zeros((1, 3)), b[None], np.zeros((1, 2))],
                                       [np.zeros((2, 4)), c]]))
api_case("cartesian_prod", graphc.cartesian_prod, U(2), U(3),
         ref=lambda a, b: np.stack([np.repeat(a, 3), np.tile(b, 2)], 1))
api_case("index_fill", lambda x, v: x.index_fill(1, graphc.tensor([0, 2]), v), U(3, 4), U(),
         ref=lambda x, v: np.where(np.isin(np.arange(4), [0, 2]), v, x),
         grad_ref=lambda g, x, v: (np.where(np.isin(np.arange(4), [0, 2]), 0.0, g), g[:, [0, 2]].sum()))
api_case("masked_scatter", lambda x, s: x.masked_scatter(graphc.tensor([[True, False, True]]), s), U(2, 3), U(5))
api_case("put-accumulate", lambda x, s: x.put(graphc.tensor([0, 5, 0]), s, accumulate=True), U(2, 3), U(3))
api_case("float_power", lambda x: graphc.float_power(x, 2.5), POS(3, 4), ref=lambda x: x ** 2.5,
         grad_ref=lambda g, x: (g * 2.5 * x ** 1.5,))
api_case("mvlgamma", lambda x: graphc.mvlgamma(x, 3), POS(4, lo=2.0, hi=4.0),
         ref=lambda x: sum(np.vectorize(math.lgamma)(x - i / 2) for i in range(3)) + 1.5 * math.log(math.pi))


# ---- complex numbers and Fourier transforms: real float64 operands in and out, complex inside ---

def _z(x, y):
    return P.make_complex(x, y)


def _np_pairs(z):
    return np.stack([z.real, z.imag], -1)


_add(Case("prim-make_complex", lambda x, y: P.abs(P.mul(_z(x, y), _z(x, y))), (U(3, 4), U(4)),
          prims=frozenset({"make_complex"}), ref=lambda x, y: np.abs((x + 1j * y) ** 2)))
_add(Case("prim-view_as_real", lambda x, y: P.view_as_real(P.mul(_z(x, y), _z(x, y))), (U(3, 4), U(4)),
          prims=frozenset({"view_as_real"}), ref=lambda x, y: _np_pairs((x + 1j * y) ** 2)))
_add(Case("prim-real", lambda x, y: P.real(P.exp(_z(x, y))), (U(3, 4), U(3, 4)), prims=frozenset({"real"}),
          ref=lambda x, y: np.exp(x + 1j * y).real))
_add(Case("prim-imag", lambda x, y: P.imag(P.mul(P.sin(_z(x, y)), _z(y, x))), (U(3, 4), U(3, 4)),
          prims=frozenset({"imag"}), ref=lambda x, y: (np.sin(x + 1j * y) * (y + 1j * x)).imag))
_add(Case("prim-conj", lambda x, y: P.view_as_real(P.div(P.conj(_z(x, y)), P.add(_z(x, y), 3.0))),
          (U(3, 4), U(3, 4)), prims=frozenset({"conj"}),
          ref=lambda x, y: _np_pairs(np.conj(x + 1j * y) / (x + 1j * y + 3))))
_add(Case("prim-view_as_complex", lambda a: P.abs(P.matmul(P.view_as_complex(a), P.view_as_complex(a))),
          (U(3, 3, 2),), prims=frozenset({"view_as_complex"}),
          ref=lambda a: np.abs((a[..., 0] + 1j * a[..., 1]) @ (a[..., 0] + 1j * a[..., 1]))))
_add(Case("prim-sign-complex", lambda x, y: P.view_as_real(P.sign(_z(x, y))), (AWAY(3, 4), AWAY(3, 4)),
          prims=frozenset({"sign", "make_complex", "view_as_real"}),
          ref=lambda x, y: _np_pairs((x + 1j * y) / np.abs(x + 1j * y))))
for _dims, _norm, _fwd in (((1,), 0, True), ((0, 1), 2, False), ((0,), 1, True)):
    _add(Case(f"prim-fft_c2c-{_dims}-{_norm}-{_fwd}",
              lambda x, y, d=_dims, m=_norm, f=_fwd: P.view_as_real(P.fft_c2c(_z(x, y), dims=d, norm=m, forward=f)),
              (U(3, 5), U(3, 5)), prims=frozenset({"fft_c2c"}),
              ref=lambda x, y, d=_dims, m=_norm, f=_fwd: _np_pairs(
                  (np.fft.fftn if f else np.fft.ifftn)(x + 1j * y, axes=d, norm=(
                      ("backward", "ortho", "forward") if f else ("forward", "ortho", "backward"))[m]))))
for _n, _norm, _one in ((6, 0, True), (5, 1, True), (4, 2, False)):
    _add(Case(f"prim-fft_r2c-{_n}-{_norm}-{_one}",
              lambda x, m=_norm, o=_one: P.view_as_real(P.fft_r2c(x, dims=(1,), norm=m, onesided=o)),
              (U(2, _n),), prims=frozenset({"fft_r2c"}),
              ref=lambda x, m=_norm, o=_one: _np_pairs((np.fft.rfft if o else np.fft.fft)(
                  x, axis=1, norm=("backward", "ortho", "forward")[m]))))
for _n, _norm in ((6, 2), (7, 0), (1, 1)):
    _add(Case(f"prim-fft_c2r-{_n}-{_norm}",
              lambda x, y, n=_n, m=_norm: P.fft_c2r(_z(x, y), dims=(1,), norm=m, last_dim_size=n),
              (U(2, _n // 2 + 1), U(2, _n // 2 + 1)), prims=frozenset({"fft_c2r"}),
              ref=lambda x, y, n=_n, m=_norm: np.fft.irfft(x + 1j * y, n=n, axis=1,
                                                           norm=("forward", "ortho", "backward")[m])))
