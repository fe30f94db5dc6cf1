"""The numpy backend's code generator: one readable Python function per schedule.

Each primitive has an entry in ``LOWERINGS``: a function from (node, operand expressions) to a
numpy expression. A ``Kernel`` of the schedule becomes its body's ops one by one (numpy cannot
fuse loops), each writing with ``out=`` into the workspace buffer the memory plan gave it, its
inputs read through their views; an ``ExternCall`` is one library call (BLAS matmul, LAPACK,
sort, gather, ...: the primitive's numpy semantics in ``ir.prims``, declared extern here).
"""
from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np

from graphc.ir import prims as P
from graphc.ir.call import call
from graphc.ir.dtypes import fill_value, get_default_dtype
from graphc.ir.graph import Graph, Node, Value
from graphc.ir.primitive import PRIMITIVES, Primitive

from . import numpy_scalars, parts
# (what generated code calls lives in numpy_runtime: loading cached code needs no generator)
from .numpy_runtime import _BITS, WHERE_ZERO_FROM
from .host import HostWriter
from .schedule import Access, CallStep, ExternCall, Kernel, Schedule
from .views import reshape_strides

Lowering = Callable[[Node, list[str]], str]
_IDENT = re.compile(r"[A-Za-z_]\w*")

LOWERINGS: dict[Primitive, Lowering] = {}


def _ufunc(name: str) -> Lowering:
    return lambda node, a: f"np.{name}({', '.join(a)})"


def _impl_call(node: Node, a: list[str]) -> str:
    args = ", ".join(list(a) + [f"{k}={_literal(v)}" for k, v in node.attrs.items()])
    return f"_fix(_impl[{node.prim.name!r}]({args}), {node.output.dtype.np.name!r})"


def np_type(d) -> str:
    """The numpy type of DType ``d`` in generated code: ``np.float32``, or for a type numpy lacks
    (bfloat16, from ml_dtypes) the DType's own, which imports its package when first read."""
    return f"np.{d.np.name}" if isinstance(getattr(np, d.np.name, None), type) else f"_dtypes[{d.name!r}].np"


def _literal(v) -> str:
    from graphc.ir.dtypes import DType
    if isinstance(v, DType):
        return f"_dtypes[{v.name!r}]"
    if isinstance(v, float):
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return f"float('{v}')"
    if isinstance(v, tuple):
        return "(" + "".join(_literal(x) + ", " for x in v) + ")"
    return repr(v)


_OUT_CAPABLE: list[Primitive] = []
_UFUNCS: dict[Primitive, np.ufunc] = {}  # lowerings that are one numpy ufunc call on the operands
for _p, _name in [
    (P.neg, "negative"), (P.abs, "abs"), (P.exp, "exp"), (P.exp2, "exp2"), (P.expm1, "expm1"),
    (P.log, "log"), (P.log2, "log2"), (P.log10, "log10"), (P.log1p, "log1p"), (P.sin, "sin"),
    (P.cos, "cos"), (P.tan, "tan"), (P.asin, "arcsin"), (P.acos, "arccos"), (P.atan, "arctan"),
    (P.sinh, "sinh"), (P.cosh, "cosh"), (P.tanh, "tanh"), (P.sqrt, "sqrt"), (P.isnan, "isnan"),
    (P.isinf, "isinf"), (P.isfinite, "isfinite"), (P.logical_not, "logical_not"),
    (P.bitwise_not, "invert"), (P.add, "add"), (P.sub, "subtract"), (P.mul, "multiply"),
    (P.div, "true_divide"), (P.floor_divide, "floor_divide"), (P.remainder, "remainder"),
    (P.pow, "power"), (P.maximum, "maximum"), (P.minimum, "minimum"), (P.atan2, "arctan2"),
    (P.eq, "equal"), (P.ne, "not_equal"), (P.lt, "less"), (P.le, "less_equal"), (P.gt, "greater"),
    (P.ge, "greater_equal"), (P.logical_and, "logical_and"), (P.logical_or, "logical_or"),
    (P.logical_xor, "logical_xor"), (P.bitwise_and, "bitwise_and"), (P.bitwise_or, "bitwise_or"),
    (P.bitwise_xor, "bitwise_xor"), (P.matmul, "matmul"), (P.sign, "sign"), (P.reciprocal, "reciprocal"),
]:
    LOWERINGS[_p] = _ufunc(_name)
    _OUT_CAPABLE.append(_p)
    _UFUNCS[_p] = getattr(np, _name)


def _zero(x) -> bool:
    """+0 (``where(c, x, -0.0)`` must give -0.0 where it drops x, which the bits' product does not)."""
    return not isinstance(x, Value) and type(x) in (int, float) and x == 0 and math.copysign(1.0, x) > 0


def _where_lowering(n: Node, a: list[str]) -> str:
    """``where(c, x, 0)`` or ``where(c, 0, x)`` on a real float ``x`` of the result's dtype (the
    gradient of relu, of a max or of a slice) keeps or zeroes ``x``'s bits: an integer multiply of
    its bit pattern by the condition (``where_zero``), about 10x faster than ``np.where``, whose
    loop branches on every element. Any other ``where`` of real floats of the result's dtype
    selects bits (``where_bits``) from WHERE_ZERO_FROM elements on; below, and for other types,
    numpy's one call."""
    c, x, y = n.inputs
    if _running_max(c, x, y):
        return f"np.maximum({a[1]}, {a[2]})"
    out = n.output.dtype
    if not _float_bits_where(n):
        return f"_where_into({', '.join(a)}, {out.np.name!r})"
    keep = _zero_branch(n)
    if keep is not None:
        return f"_where_zero({a[0]}, {a[1] if keep else a[2]}, {keep})"
    if (math.prod(n.output.shape) >= WHERE_ZERO_FROM and any(isinstance(v, Value) for v in (x, y))
            and all(v.dtype is out if isinstance(v, Value) else type(v) in (int, float) for v in (x, y))):
        return f"_where_bits({', '.join(a)})"
    return f"_where_into({', '.join(a)}, {out.np.name!r})"


def _float_bits_where(n: Node) -> bool:
    """Whether where-node ``n`` selects real floats of an integer-sized type on a bool condition
    (then ``where_zero``/``where_bits`` select their bits)."""
    c, out = n.inputs[0], n.output.dtype
    return (isinstance(c, Value) and c.dtype.np == np.bool_ and out.is_floating_point and not out.is_complex
            and out.itemsize in _BITS)


def _zero_branch(n: Node) -> bool | None:
    """For a ``_float_bits_where`` node: True for ``where(c, x, 0)``, False for ``where(c, 0, x)``
    (``x`` a value of the result's type), None for any other form."""
    _, x, y = n.inputs
    for val, zero, keep in ((x, y, True), (y, x, False)):
        if isinstance(val, Value) and _zero(zero) and val.dtype is n.output.dtype:
            return keep
    return None


def _other_half(prev: Node | None, n: Node) -> bool:
    """Whether where-node ``n`` zeroes exactly the elements that ``prev``, the node before it in a
    kernel, keeps, of the same value on the same condition (``where(c, x, 0)`` and ``where(c, 0,
    x)``: a max's or a where's gradient halves). Then ``n`` is ``x`` with ``prev``'s elements
    zeroed, one xor of their bits (``where_rest``), which the kernel writes after ``prev`` (its
    buffer, still live or ``n``'s own, holds prev's result)."""
    if (prev is None or prev.prim is not P.where or n.prim is not P.where or prev.inputs[0] is not n.inputs[0]
            or not _float_bits_where(n)):
        return False
    keep, kept = _zero_branch(n), _zero_branch(prev)
    return (keep is not None and kept is not None and keep != kept
            and n.inputs[1 if keep else 2] is prev.inputs[1 if kept else 2])


def _running_max(c, x, y) -> bool:
    """``where(c, x, y)`` with ``c = (x > y) | isnan(x)`` (``x > y`` for integers and bools): a
    step of a running maximum (max pooling's). Its value is ``np.maximum(x, y)``, which propagates NaN and
    on equal operands, -0.0 and 0.0 included, returns the second: the earlier, as the ``where``
    does. One loop instead of np.where's, which branches on every element."""
    if not (isinstance(c, Value) and isinstance(x, Value) and isinstance(y, Value) and x.type == y.type):
        return False
    p = c.producer
    if x.dtype.is_floating_point:  # float32/64 only: the tie rule above was checked on their loops
        if x.dtype.np not in (np.float32, np.float64) or p is None or p.prim not in (P.logical_or, P.bitwise_or):
            return False
        p, nan = (q.producer if isinstance(q, Value) else None for q in p.inputs)
        if nan is None or nan.prim is not P.isnan or nan.inputs[0] is not x:
            return False
    elif x.dtype.is_complex:
        return False
    return p is not None and p.prim is P.gt and p.inputs[0] is x and p.inputs[1] is y


LOWERINGS[P.where] = _where_lowering
_OUT_CAPABLE.append(P.where)  # every form of it takes out=
# a cast that narrows a float is the impl's, which keeps overflow to inf quiet; so is a complex ->
# real cast, which keeps the real part (numpy's astype would warn)
LOWERINGS[P.cast] = lambda n, a: (
    _impl_call(n, a) if (n.attrs["dtype"].is_floating_point and n.inputs[0].dtype.itemsize > n.attrs["dtype"].itemsize)
    or (n.inputs[0].dtype.is_complex and not n.attrs["dtype"].is_complex)
    else f"np.asarray({a[0]}).astype({np_type(n.attrs['dtype'])})")
# into its planned buffer: a copy materializes a view as a C-contiguous array, which the plan's
# index maps then read as such (np.array keeps a transposed view's memory order, and every later
# reshape of that array would copy it again)
LOWERINGS[P.copy] = lambda n, a: f"_copy({a[0]})"
_OUT_CAPABLE.append(P.copy)
# eager mode's views of a complex array, copied here: the memory plan takes results for fresh arrays
for _p in (P.real, P.imag, P.view_as_real, P.view_as_complex):
    LOWERINGS[_p] = lambda n, a: f"np.array({_impl_call(n, a)})"
LOWERINGS[P.conj] = _ufunc("conjugate")
_OUT_CAPABLE.append(P.conj)
_UFUNCS[P.conj] = np.conjugate
LOWERINGS[P.stop_gradient] = lambda n, a: a[0]


def _clip_lowering(prim: Primitive, ufunc: str) -> Lowering:
    """minimum/maximum of a real float array and a nonzero number (a clamp): numpy's clip ufunc,
    whose loop is vectorized where np.minimum's with a broadcast number is not (0.14 against 0.38
    ns an element here); NaN stays NaN as in np.minimum. A zero bound keeps np.minimum, which
    returns the bound on a tie of -0.0 and 0.0 where clip returns x."""
    def lower(n: Node, a: list[str]) -> str:
        x, c = n.inputs
        if (isinstance(x, Value) and x.type == n.output.type and n.output.dtype.np in P.RELU_CLIPS
                and type(c) in (int, float) and c == c and c != 0):
            bounds = ("-np.inf", a[1]) if prim is P.minimum else (a[1], "np.inf")
            return f"_clip({a[0]}, {bounds[0]}, {bounds[1]})"
        return f"np.{ufunc}({', '.join(a)})"
    return lower


LOWERINGS[P.minimum] = _clip_lowering(P.minimum, "minimum")
LOWERINGS[P.maximum] = _clip_lowering(P.maximum, "maximum")
LOWERINGS[P.relu] = lambda n, a: (  # as eager mode's (ir/prims.py: _relu)
    f"_clip({a[0]}, 0.0, np.inf)" if n.output.dtype.np in P.RELU_CLIPS else f"np.maximum({a[0]}, 0)")
# numpy's rounding ufuncs on floats (round: half to even, as np.round); integers and bools are
# their own floor, which the impl copies (numpy < 2.3 would round them through float64)
_FLOAT_ONLY: dict[Primitive, np.ufunc] = {P.floor: np.floor, P.ceil: np.ceil, P.trunc: np.trunc,
                                          P.round: np.rint}
for _p, _uf in _FLOAT_ONLY.items():
    LOWERINGS[_p] = (lambda name: lambda n, a: (
        f"np.{name}({a[0]})" if n.output.dtype.is_floating_point else _impl_call(n, a)))(_uf.__name__)
    _OUT_CAPABLE.append(_p)
    _UFUNCS[_p] = _uf
LOWERINGS[P.rsqrt] = lambda n, a: f"_rsqrt({a[0]})"
# eager mode's own functions, which take out= (numpy passes on large float32 arrays, scipy's
# one-pass ufunc else: whichever is faster, see ir/prims.py)
LOWERINGS[P.sigmoid] = lambda n, a: (f"_expit({a[0]})" if P.sigmoid_is_expit(n.output.dtype.np, math.prod(n.output.shape))
                                     else f"_sigmoid({a[0]})")  # small: scipy's ufunc, no wrapper
LOWERINGS[P.erf] = lambda n, a: f"_erf({a[0]})"
_OUT_CAPABLE += [P.relu, P.rsqrt, P.sigmoid, P.erf]
LOWERINGS[P.full] = lambda n, a: (f"np.full({n.attrs['shape']!r}, {_literal(fill_value(n.attrs['value'], n.output.dtype))}, "
                                  f"{np_type(n.output.dtype)})")
# an int64 range of int bounds (a one-hot's class indices): numpy's own arange, exact in int64,
# without the reference implementation's float-safe arithmetic around it
LOWERINGS[P.arange] = lambda n, a: (
    f"np.arange({n.attrs['start']}, {n.attrs['start'] + n.output.shape[0] * n.attrs['step']}, {n.attrs['step']}, "
    "dtype=np.int64)" if n.output.dtype.np == np.int64 and all(type(n.attrs[k]) is int for k in ("start", "step"))
    else _impl_call(n, a))
LOWERINGS[P.concat] = lambda n, a: f"_concat(({', '.join(a)},), {n.attrs['axis']})"
# into a planned buffer: a large stack allocated afresh on every call costs page faults (the
# memory allocator may hand it back to the system between calls)
_OUT_CAPABLE.append(P.concat)


def _ufunc_reduce(n: Node, a: list[str]) -> str:
    """A reduction as its ufunc's reduce itself (np.sum and friends are a Python wrapper around it)."""
    name = P.REDUCE_UFUNCS[n.prim].__name__
    return f"np.{name}.reduce({a[0]}, axis={n.attrs['dims']!r}, keepdims={n.attrs['keepdim']})"


def _max_min_lowering(n: Node, a: list[str]) -> str:
    """amax/amin over the last axis of rows: numpy_runtime.reduce_rows (the ufunc's reduceat at the
    rows' starts, faster than its reduce along that axis); any other axes: the ufunc's reduce."""
    x = n.inputs[0]
    if x.ndim >= 2 and tuple(n.attrs["dims"]) == (x.ndim - 1,) and x.shape[-1] >= 1:
        return f"_reduce_rows(np.{P.REDUCE_UFUNCS[n.prim].__name__}, {a[0]}, {n.attrs['keepdim']})"
    return _ufunc_reduce(n, a)


for _p in P.REDUCE_UFUNCS:
    LOWERINGS[_p] = _max_min_lowering if _p in (P.amax, P.amin) else _ufunc_reduce


# a pad into its planned buffer: filled, its operand copied in (_statement); the reference
# implementation's allocation and Python layers cost 4.7 against 1.9 us (an LSTM gate's 16x64 into 16x256)
_OUT_CAPABLE.append(P.pad)

# A float sum over the last axis of rows up to SUM_ROWS_MAX long is a matrix-vector product with a
# ones vector (BLAS gemv): 2.5-5x faster than np.add.reduce along a contiguous axis (64x256
# float32: 2.5 vs 8.1 us), as accurate up to rows of a few hundred (float32 rows of 1024: within
# float32's epsilon times the sum of the magnitudes, as np.add.reduce's pairwise sum; longer rows
# keep the pairwise sum). Past SUM_ROWS_BLAS_MAX elements OpenBLAS runs gemv on its threads, which
# on a loaded machine can take ten times longer: einsum's single-threaded loop sums those (1024x1024:
# 107 vs 750 us).
SUM_ROWS_MAX = 1024


def _sum_lowering(n: Node, a: list[str]) -> str:
    x = n.inputs[0]
    if (x.ndim >= 3 and tuple(n.attrs["dims"]) == (0,) + tuple(range(2, x.ndim)) and x.dtype is n.output.dtype
            and x.dtype.np in (np.float32, np.float64)):
        return f"_sum_channels({a[0]}, {n.attrs['keepdim']})"
    if (x.ndim >= 2 and tuple(n.attrs["dims"]) == (x.ndim - 1,) and 1 < x.shape[-1] <= SUM_ROWS_MAX
            and x.dtype is n.output.dtype and x.dtype.np in (np.float32, np.float64)):
        return f"_sum_rows({a[0]}, {n.attrs['keepdim']})"
    return _ufunc_reduce(n, a)


LOWERINGS[P.sum] = _sum_lowering


# x @ W.T where x has few rows: OpenBLAS (0.3.31, AMD EPYC, one thread) is faster computing
# (W @ x.T).T and copying it (``_matmul_nt``): (64,784)@(784,512) float32 559-575 against 672-684
# us, (64,512)@(512,256) 196 against 224, (16,64)@(64,256) 9.7 against 14.2; but slower with more
# rows or a short inner dimension ((512,64)@(64,64) 128 against 46, (64,64)@(64,256) 35 against
# 30): only the shapes below take it.
def matmul_nt_pays(m: int, k: int, n: int) -> bool:
    return (m <= 32 and k >= 32 and n >= 128) or (m <= 64 and k >= 256 and n >= 256)


def _matmul_lowering(n: Node, a: list[str]) -> str:
    x, y = n.inputs
    if (x.ndim == 2 and y.ndim == 2 and x.dtype is y.dtype and x.dtype.np in (np.float32, np.float64)
            and matmul_nt_pays(*x.shape, y.shape[1])):
        return f"_matmul_nt({a[0]}, {a[1]})"
    return f"np.matmul({a[0]}, {a[1]})"


LOWERINGS[P.matmul] = _matmul_lowering
for _p in PRIMITIVES.values():
    LOWERINGS.setdefault(_p, _impl_call)

# Lowerings that are a single numpy call accepting ``out=`` (the memory planner's targets).
WRITES_INTO = frozenset(_OUT_CAPABLE) | frozenset(P.REDUCE_UFUNCS)
# Lowerings that always return a new array. Any other result may be a view of an operand
# (reference implementations built on strided views such as unfold).
FRESH = WRITES_INTO | {P.where, P.cast, P.copy, P.full, P.concat, P.real, P.imag, P.view_as_real,
                       P.view_as_complex}

UNSUPPORTED = {P.nonzero: "nonzero has a data-dependent output shape",
               PRIMITIVES["fused"]: "fused nodes become Kernel records of the schedule, never code",
               PRIMITIVES["composite"]: "composite nodes are expanded by the decompose pass before codegen",
               PRIMITIVES["custom_vjp"]: "custom_vjp nodes are erased before lowering (only autodiff reads "
                                         "them)"}
# Calls of outlined bodies are steps of the schedule of their own (CallStep), rendered below.
CALLS = frozenset({call})
for _p in (*UNSUPPORTED, *CALLS):
    LOWERINGS.pop(_p, None)
# Views become index maps (Access) in the schedule; HostWriter.view renders them.
VIEWS = frozenset(p for p in PRIMITIVES.values() if p.is_view)
for _p in VIEWS:
    LOWERINGS.pop(_p, None)

# Generated inside kernels: elementwise ops, reductions, constants and random draws; views are
# index maps. Everything else is an extern call of a library routine: BLAS matmul (so no matmul
# epilogue groups: numpy can't fuse one anyway), LAPACK, sort, gather/scatter, im2col windows...
KERNEL_OPS = frozenset(p for p in LOWERINGS if p.elementwise) | VIEWS | {
    P.sum, P.prod, P.amax, P.amin, P.argmax, P.argmin, P.full, P.rand_uniform}
EXTERN = {p: "numpy" for p in LOWERINGS if p not in KERNEL_OPS}


class NumpyTarget:
    """What the scheduler needs to know about the numpy backend."""
    name = "numpy"
    kernel_ops = KERNEL_OPS
    extern_ops = EXTERN
    unsupported = UNSUPPORTED
    calls = CALLS
    materializes_intermediates = True
    keeps_layout = True  # library results are used as numpy returns them
    donates = True

    @staticmethod
    def writes_into(prim: Primitive | None) -> bool:
        return prim in WRITES_INTO

    @staticmethod
    def extern_fresh(prim: Primitive) -> bool:
        return prim in FRESH

    @staticmethod
    def scratch_buffers(s: Schedule) -> set[str]:
        return scratch_buffers(s)

    @staticmethod
    def statement_reads(s: Schedule) -> dict[int, tuple]:
        return statement_reads(s)


TARGET = NumpyTarget()


def _numpy_dtype_differs(n: Node, casts: list) -> bool:
    """Whether numpy's own result dtype for a ufunc lowering differs from the graph's type."""
    if n.prim in P.REDUCE_UFUNCS:  # reductions keep their operand's dtype (after the cast)
        return (casts[0] or n.inputs[0].dtype) is not n.output.dtype
    uf = _UFUNCS.get(n.prim)
    if uf is None:
        return False
    if n.prim in _FLOAT_ONLY and not n.output.dtype.is_floating_point:
        return True  # the impl's copy, not the ufunc: no out=
    types = []
    for x, c in zip(n.inputs, casts):
        if isinstance(x, Value):
            types.append(np.dtype((c or x.dtype).np))
        elif isinstance(x, bool):
            types.append(np.dtype(np.bool_))
        else:
            types.append(type(x))  # Python int/float: weak scalars (NEP 50)
    try:
        res = uf.resolve_dtypes(tuple(types) + (None,) * uf.nout)
    except Exception:  # no numpy loop for these dtypes: let the cast decide
        return True
    return res[-1] != np.dtype(n.output.dtype.np)


# (elementwise primitive, operand dtypes and ranks or scalar types, result dtype, default dtype)
# -> its _dtype_facts: a graph unrolled over many steps repeats a few signatures many times, and
# the dtype rules and numpy's loop resolution cost more than the rest of a statement
_SIGNATURE_FACTS: dict[tuple, tuple[list, bool]] = {}


def _dtype_facts(n: Node) -> tuple[list, bool]:
    """``n``'s operand casts and whether numpy's own result dtype differs from the graph's."""
    key = None
    if n.prim.elementwise:  # their rules read only operand dtypes, ranks and scalar types
        key = (n.prim, n.output.dtype, get_default_dtype(),
               *((x.dtype, len(x.shape) > 0) if isinstance(x, Value) else type(x) for x in n.inputs))
        facts = _SIGNATURE_FACTS.get(key)
        if facts is not None:
            return facts
    casts = n.prim.operand_casts(tuple(n.inputs), n.attrs)
    facts = (casts, _numpy_dtype_differs(n, casts))
    if key is not None:
        _SIGNATURE_FACTS[key] = facts
    return facts


def divisor_check(n: Node, operands: list[str]) -> str | None:
    """The statement that checks an integer ``//`` or ``%`` for a zero divisor before it runs, as
    eager mode does (numpy would give 0); None where none is needed (float division, a nonzero
    literal divisor)."""
    return f"_check_divisor({operands[1]})" if P.divisor_checked(n) else None



def _unbroadcast(expr: str, args: list[str], shape: tuple) -> str:
    """A ufunc call ``expr`` on ``args`` written with out= into a buffer of ``shape``, without
    the ``np.broadcast_to`` of an operand expanded to that shape: the ufunc broadcasts its
    operands to out's shape itself, and the view costs a Python call (~3 us a 0-d operand)."""
    head = f"{_BROADCAST}("
    tail = f", {tuple(shape)!r})"
    for a in args:
        if a.startswith(head) and a.endswith(tail):
            expr = expr.replace(a, a[len(head):-len(tail)], 1)
    return expr


_BROADCAST = "np.broadcast_to"  # HostWriter.view's rendering of an expand, with xp = np


def _sigmoid_in_passes(n: Node) -> bool:
    """Whether ``n`` is a float32 sigmoid that ``sigmoid_values`` computes in numpy passes."""
    return n.prim is P.sigmoid and n.output.dtype.np == np.float32 and not P.sigmoid_is_expit(
        n.output.dtype.np, math.prod(n.output.shape))


def _statement(w: HostWriter, n: Node, operands: list[str], target: str, buf: str | None,
               wrap: str = "", output: bool = False, precast: frozenset | set = frozenset(),
               expr: str | None = None) -> None:
    """``target = <n>(operands)``, written into the planned buffer ``buf`` when there is one
    (``output``: the result is returned, in an array of its own; ``precast``: indices of
    operands already cast to the type the op reads them in; ``expr``: the call that computes it,
    when not the primitive's lowering).
    ``wrap``: a function applied to a result that is not written into a buffer (the Triton
    backend moves host results of library calls onto its device)."""
    casts, differs = _dtype_facts(n)
    args = [((isinstance(w, _Writer) and isinstance(x, Value) and not x.shape and w.cast(a, np_type(c)))
             or f"{a}.astype({np_type(c)})") if c is not None and i not in precast else a
            for i, (x, a, c) in enumerate(zip(n.inputs, operands, casts))]
    expr = expr or LOWERINGS[n.prim](n, args)
    check = divisor_check(n, args)
    if check:
        w.line(check)
    if differs:  # e.g. bool // bool is int8 in numpy: cast, no out=
        expr, buf = f"_fix({expr}, {n.output.dtype.np.name!r})", None
    if buf is not None and n.prim is P.full:
        # into its planned buffer: np.full allocates on every call (0-d: 2.7 against 0.4 us)
        w.line(f"{buf}.fill({_literal(fill_value(n.attrs['value'], n.output.dtype))})")
        if target != buf:
            w.line(f"{target} = {buf}")
    elif buf is not None and n.prim is P.pad:
        w.line(f"{buf}.fill({_literal(fill_value(n.attrs.get('value', 0.0), n.output.dtype))})")
        held = ", ".join(f"{lo}:{lo + d}" for (lo, _), d in zip(n.attrs["pads"], n.inputs[0].shape))
        w.line(f"{buf}[{held}] = {args[0]}")
        if target != buf:
            w.line(f"{target} = {buf}")
    elif buf is not None and isinstance(w, _Writer) and _sigmoid_in_passes(n):
        # sigmoid_values' numpy passes written out: its call would add its checks and an errstate
        # (generated code runs with floating-point errors ignored already), ~2 us on a small array
        one = w.constant(1, n.output.dtype)
        w.line(_unbroadcast(f"np.negative({args[0]}, out={buf})", args, n.output.shape))
        w.line(f"np.exp({buf}, out={buf})")
        w.line(f"np.add({buf}, {one}, out={buf})")
        w.line(f"np.divide({one}, {buf}, out={buf})")
        if target != buf:
            w.line(f"{target} = {buf}")
    elif buf is not None and n.prim in WRITES_INTO:
        uf = _UFUNCS.get(n.prim)
        if uf is not None and n.prim.elementwise:
            expr = _unbroadcast(expr, args, n.output.shape)
        # a ufunc's own call takes out as its last positional operand: ~50 ns a call less than
        # the keyword, which numpy parses on every call (dozens of calls in a small kernel)
        plain = uf is not None and expr.startswith("np.") and getattr(np, expr[3:expr.find("(")], None) is uf
        w.line(f"{expr[:-1]}, {buf})" if plain else f"{expr[:-1]}, out={buf})")
        if target != buf:
            w.line(f"{target} = {buf}")
    elif buf is not None and expr in operands:
        # an identity (stop_gradient) into a planned buffer: copy, since the operand's buffer may
        # be reused once the plan thinks it dead
        w.line(f"np.copyto({buf}, {expr})")
        if target != buf:
            w.line(f"{target} = {buf}")
    elif expr in operands and output:
        # an identity whose result is a graph output: its own array, not an alias of a workspace
        # buffer that is reused later in the call
        w.line(f"{target} = np.array({expr})")
    else:
        w.line(f"{target} = {wrap}({expr})" if wrap else f"{target} = {expr}")


# A pointwise kernel of at least PIECE_OPS ops over at least CHUNKED_FROM elements runs in pieces
# of about PIECE elements (along its first dimension): each piece goes through every op of the
# kernel while its values are in cache, and pieces run on a small thread pool (numpy's ufuncs
# release the GIL). A kernel of one or two ops has nothing to keep in cache: it runs whole. The
# kernel's intermediates (its body values no later step reads) are piece scratch: every piece a
# worker runs writes them into the same rows of their buffers (``_r``: that worker's rows), so
# they stay in the core's cache instead of streaming the whole array through memory (AdamW's
# update of a 512x784 weight, its statements timed in plain numpy: 2.3 against 3.1 ms); the
# memory plan keeps those slots from being shared with arrays whose every row is live
# (``scratch_buffers``). Pieces of 128K elements, not smaller: every op of a piece hands the GIL
# over twice, and on a 2-core AMD EPYC the 1M chain of compile_vs_eager took 2.1-2.5 ms with 32K
# pieces on two threads against 1.2-1.5 ms with 128K (one thread: 2.1-2.3 against 1.9-2.0 ms;
# AdamW's 512x784 update in plain numpy: 766 against 728 us, the whole array at once 2367 us).
PIECE = 1 << 17
CHUNKED_FROM = 1 << 17
PIECE_OPS = 3


class _Writer(HostWriter):
    """The host writer with the module's constants: a number an elementwise op reads, as a 0-d
    array of the op's dtype made once when the code loads. numpy takes a Python number as a weak
    scalar and works out its type on every call (about a microsecond, as much as the whole op on
    a small array); a 0-d array of the very dtype of the array operands picks the same loop and
    gives the same result."""

    def __init__(self, s: Schedule) -> None:
        super().__init__(s, "np", fresh=lambda prim: prim in FRESH)
        self.constants: dict[tuple, str] = {}
        self.constant_lines: list[str] = []
        self.casts: dict[tuple[str, str], str] = {}  # see cast
        self.written_inputs = set(s.plan.donated.values()) if s.plan is not None else set(s.inputs)

    def cast(self, operand: str, np_type: str) -> str | None:
        """A 0-d ``operand`` cast to ``np_type``, made once per call at its first use and read by
        every later op that casts it (an optimizer's float64 factors, read in float32 by the update
        of each parameter: ~1.2 us a cast). The operand is a name (through views) the code binds
        once: a value's buffer holds it while it is read, except an input written in place (a
        donated one): None, its casts are made where it is read."""
        key = (operand, np_type)
        name = self.casts.get(key)
        if name is None:
            if _IDENT.match(operand).group() in self.written_inputs:
                return None
            name = self.casts[key] = f"{parts.SHARED_PREFIX}{len(self.casts)}"  # (passed between parts)
            self.line(f"{name} = {operand}.astype({np_type})")
        return name

    def constant(self, value, dtype) -> str:
        key = (type(value), repr(value), dtype.name)
        name = self.constants.get(key)
        if name is None:
            name = self.constants[key] = f"_k{len(self.constants)}"
            self.constant_lines.append(f"{name} = np.full((), {_literal(value)}, {np_type(dtype)})")
        return name


def _scalar(w: HostWriter, n: Node, x) -> str:
    """A number operand of ``n``: a module constant (see ``_Writer``) where ``n`` is elementwise
    on floating arrays of its own dtype only (no casts), else the literal."""
    if isinstance(w, _Writer) and type(x) in (int, float) and n.prim.elementwise and n.output.dtype.is_floating_point \
            and any(isinstance(v, Value) for v in n.inputs) \
            and all(v.dtype is n.output.dtype for v in n.inputs if isinstance(v, Value)) \
            and not any(_dtype_facts(n)[0]):
        return w.constant(x, n.output.dtype)
    return _literal(x)


def piece_rows(k: Kernel) -> int | None:
    """Rows of the first dimension per piece, or None when the kernel runs whole."""
    if k.kind != "pointwise" or not k.ranges or k.ranges[0] < 2 or len(k.body.nodes) < PIECE_OPS:
        return None
    n = math.prod(k.ranges)
    if n < CHUNKED_FROM:
        return None
    return max(1, PIECE * k.ranges[0] // n)


def _piece_nodes(k: Kernel) -> tuple[set[int], list[Node]]:
    """(ids of the values read or computed piece by piece, the body nodes that compute them): the
    body inputs that span the kernel's first dimension (the others, broadcast along it, are read
    whole) and every value computed from one."""
    sliced = {id(bv) for bv in k.body.inputs
              if len(bv.type.shape) == len(k.ranges) and bv.type.shape[0] == k.ranges[0]}
    nodes = []
    for bn in k.body.nodes:
        if any(isinstance(x, Value) and id(x) in sliced for x in bn.inputs):
            sliced.add(id(bn.output))
            nodes.append(bn)
    return sliced, nodes


def _scratch(k: Kernel, s: Schedule) -> set[str]:
    """The piece-scratch buffers of kernel ``k`` (see ``PIECE``): workspace buffers of values
    computed piece by piece that are not the kernel's outputs."""
    if piece_rows(k) is None:
        return set()
    outs = {o.buffer for o in k.outs}
    _, nodes = _piece_nodes(k)
    return {b for bn in nodes if (b := k.temps.get(id(bn.output))) is not None
            and b not in outs and s.buffers[b].role == "temp"}


def scratch_buffers(s: Schedule) -> set[str]:
    """Every piece-scratch buffer of the schedule, for the memory plan."""
    return set().union(*(_scratch(k, s) for k in s.kernels()))


def statement_reads(s: Schedule) -> dict[int, tuple]:
    """Body nodes whose statement reads other values than the node's operands, for the memory plan
    (their operands' buffers must live until the statement that does read them): id(node) -> the
    values its statement reads, () where it writes none. A softmax's exp read by ``exp_shifted``
    reads its input; a product summed by ``_summed_products``'s helper is read by the sum, which
    reads the product's operands."""
    moved: dict[int, tuple] = {}
    for k in s.kernels():
        shifted, unshifted, dots, products = _helper_statements(k)
        moved.update((i, (x,)) for i, (x, _) in shifted.items())
        moved.update((i, (a, b)) for i, (_, a, b) in dots.items())
        moved.update((i, ()) for i in unshifted | products)
    return moved


def _helper_statements(k: Kernel) -> tuple[dict, set[int], dict, set[int]]:
    """The statements of a kernel run whole that runtime helpers write in place of the primitives'
    lowerings, as ``_kernel`` writes them and ``statement_reads`` tells the memory plan: softmax
    exps (``_shifted_exps``: the exps, the max and difference nodes they leave out) and summed
    products (``_summed_products``: the sums, the products they leave out)."""
    if piece_rows(k) is not None:
        return {}, set(), {}, set()
    return (*_shifted_exps(k.body), *_summed_products(k.body))


def _kernel(w: HostWriter, k: Kernel, s: Schedule) -> None:
    w.comment_block(f"{k.name}: {k.kind} over {list(k.ranges)}"
                    + (f", reducing {list(k.reduction_ranges)}" if k.reduction_ranges else ""), k.comment)
    rows = piece_rows(k)
    names: dict[int, str] = {}
    sliced = _piece_nodes(k)[0] if rows is not None else set()
    for bv, a in zip(k.body.inputs, k.args):
        names[id(bv)] = w.view(a.access)
    pieces: list = []
    floats: dict[int, str] = {}  # id(0-d float64 value) -> its Python float (see numpy_scalars)
    unread = _unread_conditions(k.body)
    shifted, unshifted, dots, products = _helper_statements(k)
    homes = s.plan.in_output if s.plan is not None else {}
    made: set[str] = set()  # outputs allocated for the temps computed in them
    for i, bn in enumerate(k.body.nodes):
        if id(bn) in unread or id(bn) in unshifted or id(bn) in products:
            # the running maximum's operand that its np.maximum skips; softmax's max and difference
            # that exp_shifted computes itself; a product that sum_products sums without writing it
            names[id(bn.output)] = "None"
            continue
        if id(bn.output) in sliced:
            pieces.append((i, bn))
            continue
        buf = k.temps.get(id(bn.output))
        into = s.plan.donated.get(buf) if buf is not None and s.plan is not None else None
        planned = buf is not None and s.buffers[buf].role == "temp"
        if buf in homes or buf in made:  # computed in an output's array (plan.in_output)
            buf = into = _output_home(w, s, homes.get(buf, buf), made)
        target = buf if buf is not None else f"{k.name}_{i}"
        if isinstance(w, _Writer) and not k.ranges and numpy_scalars.is_python_float(bn):
            _python_float(w, bn, f"{k.name}_f{i}", names, floats, into or (buf if planned else None), target,
                          output=buf is not None and not planned and into is None)
            continue
        operands = [(names[id(x)] if id(x) not in floats or id(x) in names else f"np.float64({floats[id(x)]})")
                    if isinstance(x, Value) else _scalar(w, bn, x) for x in bn.inputs]
        prev = k.body.nodes[i - 1] if i else None
        expr = None  # a runtime helper's call in place of the primitive's lowering
        if _other_half(prev, bn) and id(prev.output) in names:
            expr = f"_where_rest({operands[1 if _zero_branch(bn) else 2]}, {names[id(prev.output)]})"
        elif id(bn) in shifted:
            expr = f"_exp_shifted({names[id(shifted[id(bn)][0])]}, {shifted[id(bn)][1]!r})"
        elif id(bn) in dots:
            helper, a, b = dots[id(bn)]
            expr = f"{helper}({names[id(a)]}, {names[id(b)]}, {bn.attrs['keepdim']})"
        _statement(w, bn, operands, target, into or (buf if planned else None),
                   output=buf is not None and not planned and into is None, expr=expr)
        names[id(bn.output)] = target
    if not pieces:
        return
    _pieces(w, k, s, rows, pieces, names, sliced, homes, made)


def _output_home(w: HostWriter, s: Schedule, home: str, made: set[str]) -> str:
    """The output array ``home`` that temps are computed in, bound at their first write: the input
    it is donated into, or a new array."""
    if home not in made:
        made.add(home)
        b, into = s.buffers[home], s.plan.donated.get(home)
        w.line(f"{home} = {into}" if into else f"{home} = np.empty({tuple(b.shape)!r}, {np_type(b.dtype)})")
    return home


def _scales_of(e: Value, kept: set[int], dims) -> bool:
    """Whether every reader of ``e`` is its sum over ``dims`` (keepdim) or ``e`` multiplied by that
    sum's reciprocal or divided by that sum, none of them kept as kernel outputs: then only ``e``
    up to a positive factor per slice is observable (a softmax's normalization)."""
    sums = [u for u in e.users if u.prim is P.sum]
    if len(sums) != 1 or tuple(sums[0].attrs["dims"]) != tuple(dims) or not sums[0].attrs["keepdim"] \
            or id(sums[0].output) in kept:
        return False
    s = sums[0].output
    recips = [v for v in s.users if v.prim is P.div and not isinstance(v.inputs[0], Value) and v.inputs[1] is s]
    if any(id(r.output) in kept or any(u.prim is not P.mul or e not in u.inputs for u in r.output.users)
           for r in recips):
        return False
    normal = {id(r.output) for r in recips}
    quotient = lambda u: u.prim is P.div and u.inputs[0] is e and u.inputs[1] is s  # noqa: E731
    if any(not (v in recips or quotient(v)) for v in s.users):
        return False
    return all(u is sums[0] or quotient(u) or (u.prim is P.mul and len(u.inputs) == 2 and any(
        isinstance(o, Value) and id(o) in normal for o in u.inputs) and u.inputs[0] is not u.inputs[1])
        for u in e.users)


def _shifted_exps(body: Graph) -> tuple[dict[int, tuple[Value, tuple]], set[int]]:
    """A softmax's ``exp(x - amax(x))`` in a kernel body, its max and difference read nowhere
    else and its result only normalized (``_scales_of``): {id(exp node): (x, dims)}, and the ids
    of the max and difference nodes, which ``exp_shifted`` computes itself only where it must."""
    kept = {id(v) for v in body.outputs}
    found: dict[int, tuple[Value, tuple]] = {}
    skip: set[int] = set()
    for n in body.nodes:
        d = n.inputs[0] if n.prim is P.exp else None
        sub = d.producer if isinstance(d, Value) and d.producer is not None and d.producer.prim is P.sub else None
        if sub is None or d.users != [n] or id(d) in kept or not isinstance(sub.inputs[1], Value):
            continue
        x, m = sub.inputs
        mx = m.producer
        if (mx is None or mx.prim is not P.amax or mx.inputs[0] is not x or not mx.attrs["keepdim"]
                or m.users != [sub] or id(m) in kept or x.dtype.np not in (np.float32, np.float64)
                or id(n.output) in kept or not _scales_of(n.output, kept, mx.attrs["dims"])):
            continue
        found[id(n)] = (x, tuple(mx.attrs["dims"]))
        skip |= {id(mx), id(sub)}
    return found, skip


# Runs from this long sum their products in one np.vecdot (numpy_runtime.sum_products); shorter,
# its per-run calls cost more than the product's pass (4096x16 float32: 52 against 18 us; 4096x32:
# 29 against 108, 64x256: 2.3 against 4.7). Runs up to SUM_ROWS_MAX, the rows _sum_rows sums as
# BLAS products too: the same accuracy argument (and far below the length from which OpenBLAS
# would run one dot on its threads).
DOTS_FROM = 32


def _summed_products(body: Graph) -> tuple[dict[int, tuple[str, Value, Value]], set[int]]:
    """A float sum of a product read nowhere else, over the last axis, ``(a * b).sum(-1)`` (a
    layer norm's variance, the backward's sums of a gradient times the output), or over all but
    the channels of (N, C, spatial...) operands of its shape (a batch norm's variance and
    backward): {id(sum node): (runtime helper, a, b)}, which sums without writing the product,
    and the ids of the products."""
    kept = {id(v) for v in body.outputs}
    found: dict[int, tuple[str, Value, Value]] = {}
    products: set[int] = set()
    for n in body.nodes:
        x = n.inputs[0] if n.prim is P.sum else None
        mul = x.producer if isinstance(x, Value) and x.producer is not None else None
        if mul is None or mul.prim is not P.mul or x.users != [n] or id(x) in kept \
                or x.dtype.np not in (np.float32, np.float64) or n.output.dtype is not x.dtype:
            continue
        a, b = mul.inputs
        if not all(isinstance(v, Value) and v.dtype is x.dtype for v in (a, b)):
            continue
        dims = tuple(n.attrs["dims"])
        if dims == (x.ndim - 1,) and DOTS_FROM <= x.shape[-1] <= SUM_ROWS_MAX \
                and all(v.ndim and v.shape[-1] == x.shape[-1] for v in (a, b)):
            found[id(n)] = ("_sum_products", a, b)
        elif x.ndim >= 3 and dims == (0,) + tuple(range(2, x.ndim)) \
                and DOTS_FROM <= math.prod(x.shape[2:]) <= SUM_ROWS_MAX and a.shape == b.shape == x.shape:
            found[id(n)] = ("_sum_products_channels", a, b)
        else:
            continue
        products.add(id(mul))
    return found, products


def _unread_conditions(body: Graph) -> set[int]:
    """Ids of the body nodes whose results only running-max ``where``s read, as their condition
    (``_running_max``: written as np.maximum, which reads no condition), not kept as outputs: a
    max pooling's masks where no gradient needs them (inference: three of four passes)."""
    kept = {id(v) for v in body.outputs}
    unread: set[int] = set()
    for n in reversed(body.nodes):
        v = n.output
        if id(v) in kept or not v.users:
            continue
        if all(id(u) in unread or (u.prim is P.where and u.inputs[0] is v and u.inputs[1] is not v
                                   and u.inputs[2] is not v and _running_max(*u.inputs)) for u in v.users):
            unread.add(id(n))
    return unread


def _python_float(w: HostWriter, n: Node, name: str, names: dict, floats: dict, buf: str | None,
                  target: str, output: bool) -> None:
    """``name = <n>`` in Python float arithmetic (``numpy_scalars``), stored into ``buf`` (a 0-d
    array) when the value has one, or made an array of its own when it is an output the plan did
    not place. Values only later Python float ops read stay floats; numpy ops read them as
    ``np.float64`` (a Python float would be a weak scalar to them, NEP 50)."""
    for j, x in enumerate(n.inputs):  # an array operand read as a float once
        if isinstance(x, Value) and id(x) not in floats:
            floats[id(x)] = f"{name}_{j}"
            w.line(f"{name}_{j} = float({names[id(x)]})")
    operands = [floats[id(x)] if isinstance(x, Value) else _literal(x) for x in n.inputs]
    w.line(f"{name} = {numpy_scalars.expression(n, operands)}")
    floats[id(n.output)] = name
    if buf is not None:
        w.line(f"{buf}[()] = {name}")
        names[id(n.output)] = buf
        if target != buf:
            w.line(f"{target} = {buf}")
    elif output:
        w.line(f"{target} = np.array({name})")
        names[id(n.output)] = target


def _pieces(w: HostWriter, k: Kernel, s: Schedule, rows: int, pieces: list, names: dict, sliced: set,
            homes: dict[str, str], made: set[str]) -> None:
    """The piece function of kernel ``k`` and its ``_in_pieces`` call: each piece binds its rows
    of the arrays it reads and writes once, reads whole-kernel operands cast before the function
    (a 0-d bias correction is not cast again in every piece) and writes its intermediates into
    its worker's scratch rows ``_r:_e``, or into its own rows of the new output they are computed
    in (``homes``: plan.in_output; ``made``: such outputs allocated already)."""
    scratch = _scratch(k, s)
    arrays: dict[int, str] = {}  # id(value computed or read piece by piece) -> its whole array
    for j, (bv, a) in enumerate(zip(k.body.inputs, k.args)):
        if id(bv) in sliced:
            w.line(f"{k.name}_a{j} = {names[id(bv)]}")
            arrays[id(bv)] = f"{k.name}_a{j}"
    for _, bn in pieces:  # outputs the plan did not place: whole arrays the pieces write into
        buf = k.temps.get(id(bn.output))
        if buf is not None and s.buffers[buf].role != "temp" and buf not in made:
            into = s.plan.donated.get(buf) if s.plan is not None else None
            w.line(f"{buf} = {into}" if into else
                   f"{buf} = np.empty({tuple(bn.output.type.shape)!r}, {np_type(bn.output.dtype)})")
            made.add(buf)
    casts: dict[tuple, str] = {}  # (operand, numpy type) -> its cast, made once per call
    bound: dict[str, str] = {}    # array -> the name of the piece's rows of it
    inner = _Lines()

    def rows_of(array: str) -> str:
        local = bound.get(array)
        if local is None:
            local = bound[array] = f"{array}_p"
            inner.line(f"{local} = {array}[{'_r:_e' if array in scratch else '_lo:_hi'}]")
        return local

    for i, bn in pieces:
        operands, precast = [], set()
        casts_of = _dtype_facts(bn)[0]
        for j, x in enumerate(bn.inputs):
            if not isinstance(x, Value):
                operands.append(_scalar(w, bn, x))
            elif id(x) in arrays:
                operands.append(rows_of(arrays[id(x)]))
            elif id(x) in sliced or casts_of[j] is None:  # an alias made in the piece; a whole operand
                operands.append(names[id(x)])
            else:
                key = (names[id(x)], np_type(casts_of[j]))
                if key not in casts:
                    shared = w.cast(*key) if isinstance(w, _Writer) and not x.shape else None
                    casts[key] = shared or f"{k.name}_c{len(casts)}"
                    if shared is None:
                        w.line(f"{casts[key]} = {key[0]}.astype({key[1]})")
                operands.append(casts[key])
                precast.add(j)
        buf = k.temps.get(id(bn.output))
        buf = homes.get(buf, buf)
        if buf is None:  # an alias of an operand (stop_gradient) or a result numpy allocates
            target = names[id(bn.output)] = f"{k.name}_{i}"
            _statement(inner, bn, operands, target, None, precast=precast)
            continue
        local = rows_of(buf)
        # a result not written with out= is assigned into the rows: they are what later reads see
        into = local if bn.prim in WRITES_INTO and not _dtype_facts(bn)[1] else f"{local}[...]"
        _statement(inner, bn, operands, into, into, precast=precast)
        arrays[id(bn.output)] = buf
    w.line(f"def {k.name}_piece(_lo, _hi, _r):")
    w.depth += 1
    if scratch:
        w.line("_e = _r + _hi - _lo")
    for ln in inner.lines:
        w.line(ln)
    w.depth -= 1
    w.line(f"_in_pieces({k.name}_piece, {k.ranges[0]}, {rows})")


class _Lines:
    """A piece function's statements (``_statement`` writes through ``line``), collected first:
    the rows each binds are named before the statement that reads them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def extern_call(w: HostWriter, e: ExternCall, s: Schedule, wrap: str = "") -> None:
    """An extern call as numpy code. Other backends call it too: numpy's functions dispatch on
    their operands' array type (NEP 13/18), so the same line runs CuPy's routine on cuda arrays."""
    w.comment_block(e.name, e.comment)
    planned = s.buffers[e.out].role == "temp"
    casts, differs = _dtype_facts(e.node)
    flat = _one_matrix(e) if e.node.prim is P.matmul and not differs and all(c is None for c in casts) else None
    if flat is not None:
        a, b = (w.view(x) for x in flat)
        if planned:  # a planned buffer is C order: its rows are one matrix (a view)
            w.line(f"np.matmul({a}, {b}, out={e.out}.reshape({flat[0].shape[:1] + flat[1].shape[1:]!r}))")
        else:
            w.line(f"{e.out} = {wrap}(np.matmul({a}, {b}).reshape({tuple(e.node.output.shape)!r}))")
        return
    operands = [w.view(a) if isinstance(a, Access) else _literal(a) for a in e.args]
    _statement(w, e.node, operands, e.out, e.out if planned else None, wrap)


def _one_matrix(e: ExternCall) -> tuple[Access, Access] | None:
    """A stack of matrices times one matrix or vector, (..., m, k) @ ((1...,) k, n) or (k,), as one
    (rows, k) @ (k, n) or (k,) product, when the stack's rows can be seen as one matrix (a reshape
    view); else None. numpy runs a stack as one BLAS call per matrix (conv's im2col product, 64
    products of 64x144 by 144x32: 1.4x slower than one product of 4096x144 by 144x32)."""
    a, b = e.args
    if len(a.shape) < 3 or any(d != 1 for d in b.shape[:-2]):
        return None
    flat = []
    for x, shape in ((a, (math.prod(a.shape[:-1]), a.shape[-1])), (b, tuple(b.shape[-2:]))):
        st = reshape_strides(x.shape, x.strides, shape)
        if st is None:
            return None
        flat.append(x if x.shape == shape else
                    Access(x.buffer, x.views + (("reshape", (("shape", shape),)),), shape, st, x.offset))
    return flat[0], flat[1]


def call_step(w: HostWriter, c: CallStep, s: Schedule) -> None:
    """A call of a compiled body (``_call_<name>``, put in the code's namespace by the backend):
    one result per line, so that a part of a long function sees each name it binds."""
    w.comment_block(c.name, c.comment)
    w.line(f"{c.name} = _call_{c.callee}(({''.join(w.view(a) + ', ' for a in c.args)}))")
    for i, out in enumerate(c.outs):
        w.line(f"{out} = {c.name}[{i}]")


def generate(s: Schedule, fn_name: str = "kernel") -> str:
    """Python source of ``def fn_name(inputs..., _ws): ... return (outputs...)``: temp buffers are
    the workspace's arrays ``_ws`` (one tuple per call, in ``workspace_buffers(s)`` order). A
    large function is written as a chain of part functions (``parts.split``)."""
    w = _Writer(s)
    w.begin(fn_name)
    spans = []
    for step in s.steps:
        start = len(w.lines)
        (_kernel if isinstance(step, Kernel) else call_step if isinstance(step, CallStep) else extern_call)(w, step, s)
        spans.append((start, len(w.lines)))
    w.end()
    w.lines = w.constant_lines + parts.split(w.lines, spans, fn_name, s)
    return w.source()
