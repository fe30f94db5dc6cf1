"""Triton code generation: one readable ``@triton.jit`` kernel per schedule ``Kernel``.

``render(kernel, dtypes)`` returns a ``RenderedKernel``: the module source (imports, the helper
functions it uses, the kernel) and everything a launcher needs (parameters in call order, the
ahead-of-time signature, default constexprs, the grid).

Calling convention (the host code generator relies on it)::

    kernel[grid](in0, in1, ..., out0, out1, ..., *scalars, **constexprs)

- ``inK``: base pointer of the contiguous buffer of ``kernel.args[K]``; the arg's offset and index
  strides are baked into the source (shapes are static).
- ``outK``: base pointer of the buffer of ``kernel.outs[K]``, written through its index strides.
- scalars (``RenderedKernel.scalars``, in order): pointwise ``xnumel``; reduction ``xnumel,
  rnumel``; matmul none (M, N, K are baked in).
- constexprs: pointwise ``XBLOCK``; reduction ``XBLOCK, RBLOCK``; matmul ``BLOCK_M, BLOCK_N,
  BLOCK_K``. ``RenderedKernel.grid(constexprs)`` gives the launch grid.

Value conventions inside a kernel: float16 and bfloat16 values are computed in float32 and rounded
once at the store (``tl.exp``/``tl.log`` need fp32, and Inductor does the same); bool is int1 (stored as
bytes); integer results narrower than int32 are cast back after every op, because Triton widens
them to int32 when they meet a literal, and a comparison of a widened overflowed value would
differ from PyTorch's wrapped one.

Generated code calls only ``tl`` builtins and helper functions of its own module, never
``@triton.jit`` library functions (``tl.sum``, ``tl.sigmoid``, ``tl.rand``, ``tl.zeros``, ...):
those were decorated when triton was imported, for one mode only (interpreted or compiled), and a
process here runs kernels in both (the interpreter on CPU arrays, AOT builds for sm_90).

The lowering table ``TRITON_OPS`` is keyed by primitive; ``EXTERN`` lists what this backend runs
as library calls on the device array module (CuPy on a GPU, numpy under the interpreter) and
``UNSUPPORTED`` the rest, with the reason.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Union

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.call import call
from graphc.ir import special_prims
from graphc.ir.dtypes import DType
from graphc.ir.graph import Graph, Node, Value
from graphc.ir.primitive import PRIMITIVES, Primitive

from .schedule import Kernel
from .scheduler import node_text
from .views import contiguous_strides

# Reductions whose extent fits one block keep the whole row in registers (one pass, and pointwise
# work after the reduction may combine reduced and unreduced values); longer ones loop.
PERSISTENT_MAX = 4096

_TL = {"float16": "tl.float16", "bfloat16": "tl.bfloat16", "float32": "tl.float32", "float64": "tl.float64",
       "int8": "tl.int8", "int16": "tl.int16", "int32": "tl.int32", "int64": "tl.int64", "uint8": "tl.uint8",
       "bool": "tl.int1"}
# Triton's type strings, for pointer parameters of the ahead-of-time signature
SIGNATURE_TYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64", "int8": "i8",
                   "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8", "bool": "i1"}
_NARROW_INTS = frozenset({"int8", "int16", "uint8"})


def compute_dtype(d: DType) -> DType:
    """The dtype a value of IR dtype ``d`` has inside a kernel (float16 and bfloat16 are computed
    in float32)."""
    return dt.float32 if d.is_low_precision else d


def _tl(d: DType) -> str:
    return _TL[compute_dtype(d).name]


def float_literal(x: float) -> str:
    if math.isnan(x):
        return 'float("nan")'
    if math.isinf(x):
        return 'float("inf")' if x > 0 else 'float("-inf")'
    return repr(float(x))


def literal(x, d: DType) -> str:
    """A Python scalar operand (weakly typed, PyTorch's wrapped number) as a literal of ``d``."""
    if d.is_floating_point:
        return float_literal(float(x))
    if d is dt.bool_:
        return "True" if x else "False"
    s = str(int(x))
    return f"({s})" if s.startswith("-") else s


def convert(expr: str, src: DType, dst: DType) -> str:
    """``expr`` (a value of ``src``) as a value of ``dst``, with numpy's ``astype`` semantics."""
    if src is dst:
        return expr
    if expr in ("True", "False"):  # a Python bool operand: a literal of dst
        return literal(expr == "True", dst)
    if dst is dt.bool_:
        return f"({expr} != 0)"
    if dst.is_low_precision:  # round to half precision, keep computing in fp32
        return f"{expr}.to({_TL[dst.name]}).to(tl.float32)"
    if compute_dtype(src) is compute_dtype(dst):
        return expr
    return f"{expr}.to({_tl(dst)})"


# ---------------------------------------------------------------------------------------------
# Helper device functions; a kernel module includes those its lowerings name
# ---------------------------------------------------------------------------------------------

HELPERS: dict[str, str] = {
    "_maximum": '''
@triton.jit
def _maximum(a, b):
    # NaN wins, as in PyTorch (tl.maximum would return the other operand on a GPU)
    return tl.where((a > b) | (a != a), a, b)
''',
    "_minimum": '''
@triton.jit
def _minimum(a, b):
    # NaN wins, as in PyTorch
    return tl.where((a < b) | (a != a), a, b)
''',
    "_floordiv_int": '''
@triton.jit
def _floordiv_int(a, b):
    # Triton's // truncates toward zero; PyTorch's floor_divide rounds down
    q = a // b
    return tl.where(((a % b) != 0) & ((a < 0) != (b < 0)), q - 1, q)
''',
    "_remainder": '''
@triton.jit
def _remainder(a, b):
    # Triton's % takes the sign of the dividend (C fmod); PyTorch's takes the divisor's
    r = a % b
    return tl.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)
''',
    "_ipow": '''
@triton.jit
def _ipow(a, b):
    # integer power by squaring over the exponent's bits (b >= 0: eager mode rejects b < 0);
    # the operands are broadcast first so that the loop-carried values keep one shape
    result = a * 0 + b * 0 + 1
    base = a + b * 0
    e = b + a * 0
    for _ in range(63):
        result = tl.where((e & 1) != 0, result * base, result)
        base = base * base
        e = e >> 1
    return result
''',
    "_argmax_combine": '''
@triton.jit
def _argmax_combine(a, ia, b, ib):
    # the larger value wins, NaN counts as largest, ties go to the lower index (numpy.argmax)
    a_nan = a != a
    b_nan = b != b
    take_a = (a > b) | (a_nan & (b == b)) | (((a == b) | (a_nan & b_nan)) & (ia < ib))
    return tl.where(take_a, a, b), tl.where(take_a, ia, ib)
''',
    "_argmin_combine": '''
@triton.jit
def _argmin_combine(a, ia, b, ib):
    # the smaller value wins, NaN counts as smallest, ties go to the lower index (numpy.argmin)
    a_nan = a != a
    b_nan = b != b
    take_a = (a < b) | (a_nan & (b == b)) | (((a == b) | (a_nan & b_nan)) & (ia < ib))
    return tl.where(take_a, a, b), tl.where(take_a, ia, ib)
''',
    "_add": '''
@triton.jit
def _add(a, b):
    return a + b
''',
    "_multiply": '''
@triton.jit
def _multiply(a, b):
    return a * b
''',
    "_fmix32": '''
@triton.jit
def _fmix32(x):
    # murmur3's 32-bit finalizer: a bijection mixing every input bit into every output bit
    x = x ^ (x >> 16)
    x = x * 0x85EBCA6B
    x = x ^ (x >> 13)
    x = x * 0xC2B2AE35
    return x ^ (x >> 16)
''',
    "_uniform": '''
@triton.jit
def _uniform(k0, k1, stream, offset):
    # a counter-based hash of (key, stream, element index) -> uniform floats in [0, 1), 24 bits
    x = _fmix32(offset.to(tl.uint32) ^ k0.to(tl.uint32))
    x = _fmix32(x ^ (k0 >> 32).to(tl.uint32))
    x = _fmix32(x ^ k1.to(tl.uint32))
    x = _fmix32(x ^ (k1 >> 32).to(tl.uint32) ^ stream)
    return (x >> 8).to(tl.float32) * 5.9604644775390625e-08
''',
}


# ---------------------------------------------------------------------------------------------
# The lowering table
# ---------------------------------------------------------------------------------------------

@dataclass
class Op:
    """What a lowering sees: the node, its operand expressions (tensor operands cast as
    ``operand_casts`` says, scalars as literals of the computation dtype), the computation dtype
    and the result dtype. ``need`` records helper functions and modules the expression uses."""
    node: Node
    args: list[str]
    dtype: DType
    out: DType
    shape: str                       # the block shape of the current domain, e.g. "[XBLOCK]"
    needs: set[str]
    arg_dtypes: list[DType]

    def helper(self, name: str) -> str:
        self.needs.add(name)
        return name

    def libdevice(self, fn: str) -> str:
        """A libdevice call on the operands. Scalar operands become typed constants: extern
        functions pick their overload from the operand types, and a Python float literal would
        be fp32 next to an fp64 tensor."""
        self.needs.add("libdevice")
        typed = [a if isinstance(x, Value) else f"tl.full([], {a}, {_tl(d)})"
                 for a, x, d in zip(self.args, self.node.inputs, self.arg_dtypes)]
        return f"libdevice.{fn}({', '.join(typed)})"


Lowering = Callable[[Op], str]


@dataclass(frozen=True)
class Reduce:
    """A reduction: ``combine`` merges two partial results elementwise (the looped accumulator);
    ``block`` reduces a block along axis 1 keeping it (``{v}`` is the value); ``identity`` fills
    masked lanes; arg reductions carry (value, index) pairs through a combine helper."""
    combine: str                     # format with {a}, {b} ("" for arg reductions: helper pairs)
    block: str                       # format with {v}
    identity: Callable[[DType], str]
    helper: str = ""
    indexed: bool = False            # argmax/argmin: the result is the index


@dataclass(frozen=True)
class Dot:
    """matmul: ``tl.dot`` with fp32 accumulation (fp64 for fp64, exact int64 sums for integers);
    the matmul kernel's remaining body nodes are its pointwise epilogue. A matmul without
    epilogue is a kernel too (this backend lists no matmul extern)."""


TritonLowering = Union[Lowering, Reduce, Dot]


def _float_or(float_fn: Lowering, other: Lowering) -> Lowering:
    return lambda op: float_fn(op) if op.dtype.is_floating_point else other(op)


def _same(op: Op) -> str:
    return op.args[0]


def _tl_fn(name: str) -> Lowering:
    return lambda op: f"tl.{name}({', '.join(op.args)})"


def _libdevice(name: str) -> Lowering:
    return lambda op: op.libdevice(name)


def _helper(name: str) -> Lowering:
    return lambda op: f"{op.helper(name)}({', '.join(op.args)})"


def _binary(symbol: str) -> Lowering:
    return lambda op: f"{op.args[0]} {symbol} {op.args[1]}"


def _truth(op: Op, i: int) -> str:
    return op.args[i] if op.arg_dtypes[i] is dt.bool_ else f"({op.args[i]} != 0)"


def _logical(symbol: str) -> Lowering:
    return lambda op: f"{_truth(op, 0)} {symbol} {_truth(op, 1)}"


def _sign(op: Op) -> str:
    a, t = op.args[0], _tl(op.dtype)
    s = f"(({a} > 0).to({t}) - ({a} < 0).to({t}))"
    return f"tl.where({a} != {a}, {a}, {s})" if op.dtype.is_floating_point else s


def _divide(op: Op) -> str:
    """Correctly rounded division, as PyTorch's: Triton's ``/`` is approximate on a GPU, where
    x / x came out just below 1 (and floor_divide gave 0) on an H200 with Triton 3.6, in float64
    too; ``tl.div_rn`` is fp32-only, libdevice's ``div_rn`` has the fp64 form."""
    a, b = op.args
    return f"tl.div_rn({a}, {b})" if op.dtype is dt.float32 else op.libdevice("div_rn")


def _cast(op: Op) -> str:
    return convert(op.args[0], op.arg_dtypes[0], op.out)


def _where(op: Op) -> str:
    c, x, y = op.args
    return f"tl.where({_truth(op, 0)}, {convert(x, op.arg_dtypes[1], op.out)}, {convert(y, op.arg_dtypes[2], op.out)})"


def _full(op: Op) -> str:
    value, d = op.node.attrs["value"], op.out
    if d.is_low_precision:  # the constant a float16/bfloat16 tensor holds
        value = float(np.asarray(value, np.float32).astype(d.np))
    return f"tl.full({op.shape}, {literal(value, d)}, {_tl(d)})"


def _int_identity(d: DType, low: bool) -> str:
    info = np.iinfo(d.np)
    return str(info.min if low else info.max)


def _lowest(d: DType) -> str:
    return 'float("-inf")' if d.is_floating_point else _int_identity(d, True)


def _highest(d: DType) -> str:
    return 'float("inf")' if d.is_floating_point else _int_identity(d, False)


TRITON_OPS: dict[Primitive, TritonLowering] = {
    P.neg: lambda op: f"-{op.args[0]}",
    P.abs: lambda op: op.args[0] if op.dtype is dt.bool_ else f"tl.abs({op.args[0]})",
    P.sign: lambda op: op.args[0] if op.dtype is dt.bool_ else _sign(op),
    P.floor: _float_or(_tl_fn("floor"), _same),       # integers are already whole
    P.ceil: _float_or(_tl_fn("ceil"), _same),
    P.round: _float_or(_libdevice("rint"), _same),     # half to even, as numpy and PyTorch
    P.trunc: _float_or(_libdevice("trunc"), _same),
    P.exp: _tl_fn("exp"), P.exp2: _tl_fn("exp2"), P.expm1: _libdevice("expm1"),
    P.log: _tl_fn("log"), P.log2: _tl_fn("log2"), P.log10: _libdevice("log10"),
    P.log1p: _libdevice("log1p"),
    P.sin: _tl_fn("sin"), P.cos: _tl_fn("cos"), P.tan: _libdevice("tan"),
    P.asin: _libdevice("asin"), P.acos: _libdevice("acos"), P.atan: _libdevice("atan"),
    P.sinh: _libdevice("sinh"), P.cosh: _libdevice("cosh"), P.tanh: _libdevice("tanh"),
    P.sigmoid: lambda op: f"1.0 / (1.0 + tl.exp(-{op.args[0]}))", P.sqrt: _tl_fn("sqrt"), P.rsqrt: _tl_fn("rsqrt"),
    P.reciprocal: lambda op: f"1.0 / {op.args[0]}",
    P.erf: _tl_fn("erf"), P.lgamma: _libdevice("lgamma"), P.erfinv: _libdevice("erfinv"),
    # not tl.maximum(x, 0): relu(NaN) is NaN
    P.relu: lambda op: f"tl.where({op.args[0]} < 0, 0, {op.args[0]})",
    P.isnan: lambda op: f"{op.args[0]} != {op.args[0]}",
    P.isinf: _float_or(lambda op: f'tl.abs({op.args[0]}) == float("inf")',
                       lambda op: f"{op.args[0]} != {op.args[0]}"),
    P.isfinite: _float_or(lambda op: f'tl.abs({op.args[0]}) < float("inf")',
                          lambda op: f"{op.args[0]} == {op.args[0]}"),
    P.logical_not: lambda op: f"{op.args[0]} == 0",
    P.bitwise_not: lambda op: f"{op.args[0]} == 0" if op.dtype is dt.bool_ else f"~{op.args[0]}",
    P.add: _binary("+"), P.sub: _binary("-"), P.mul: _binary("*"), P.div: lambda op: _divide(op),
    P.floor_divide: _float_or(lambda op: f"tl.floor({_divide(op)})", _helper("_floordiv_int")),
    P.remainder: _helper("_remainder"),
    P.pow: _float_or(_libdevice("pow"), _helper("_ipow")),
    P.maximum: _helper("_maximum"), P.minimum: _helper("_minimum"),
    P.atan2: _libdevice("atan2"),
    P.xlogy: lambda op: (f"tl.where(({op.args[0]} == 0) & ({op.args[1]} == {op.args[1]}), 0.0, "
                         f"{op.args[0]} * tl.log({op.args[1]}))"),
    P.eq: _binary("=="), P.ne: _binary("!="), P.lt: _binary("<"), P.le: _binary("<="),
    P.gt: _binary(">"), P.ge: _binary(">="),
    P.logical_and: _logical("&"), P.logical_or: _logical("|"), P.logical_xor: _logical("^"),
    P.bitwise_and: _binary("&"), P.bitwise_or: _binary("|"), P.bitwise_xor: _binary("^"),
    P.where: _where, P.cast: _cast, P.copy: _same, P.stop_gradient: _same,
    P.full: _full,
    P.rand_uniform: lambda op: "",   # rendered by the kernel (it reads its key pointer)
    P.sum: Reduce("{a} + {b}", "tl.reduce({v}, 1, _add, keep_dims=True)", lambda d: "0", "_add"),
    P.prod: Reduce("{a} * {b}", "tl.reduce({v}, 1, _multiply, keep_dims=True)", lambda d: "1", "_multiply"),
    P.amax: Reduce("_maximum({a}, {b})", "tl.reduce({v}, 1, _maximum, keep_dims=True)", _lowest, "_maximum"),
    P.amin: Reduce("_minimum({a}, {b})", "tl.reduce({v}, 1, _minimum, keep_dims=True)", _highest, "_minimum"),
    P.argmax: Reduce("", "",
                     _lowest, "_argmax_combine", indexed=True),
    P.argmin: Reduce("", "",
                     _highest, "_argmin_combine", indexed=True),
    P.matmul: Dot(),
}

# bool operands of these are computed as int8 and the result turned back into bool: Triton's
# int1 arithmetic wraps (True + True == False), PyTorch's saturates (it is logical or)
_BOOL_VIA_INT8 = frozenset({P.add, P.mul, P.maximum, P.minimum, P.pow, P.floor_divide, P.remainder})

# Library routines on the device array module (``xp``: CuPy on a GPU, numpy under the
# interpreter): primitive -> the routine. Views (reshape/permute/expand/slice/select) are index maps
# inside kernels; where a view is itself a result (a graph output), it is the array module's view.
EXTERN: dict[Primitive, str] = {
    P.reshape: "xp.reshape (a view)", P.permute: "xp.transpose (a view)",
    P.expand: "xp.broadcast_to (a view)", P.slice: "basic slicing (a view)",
    P.select: "basic indexing (a view)",
    P.slice_scatter: "copy + sliced assignment", P.pad: "xp.pad", P.concat: "xp.concatenate",
    P.take: "xp.take", P.index_check: "range check (an IndexError before any kernel reads it) and xp.where",
    P.gather: "xp.take_along_axis", P.scatter: "fancy-index assignment",
    P.scatter_add: "xp.add.at (cupyx.scatter_add on CuPy)", P.index_add: "xp.add.at (cupyx.scatter_add on CuPy)",
    P.searchsorted: "xp.searchsorted", P.arange: "xp.arange",
    P.cumsum: "xp.cumsum", P.cumargmax: "a running-argmax scan (reference implementation)",
    P.cumargmin: "a running-argmin scan (reference implementation)", P.argsort: "xp.argsort (stable)",
    P.unfold: "strided window view + copy (im2col)", P.fold: "window scatter-add (col2im)",
    P.polygamma: "scipy.special / cupyx.scipy.special polygamma (no libdevice digamma)",
    # the special functions of ir/special_prims.py: libdevice has some (j0, y0, cyl_bessel_i0,
    # erfcx) but not the scaled, modified-k, Airy, log_ndtr, incomplete gamma or zeta ones
    **{p: f"scipy.special / cupyx.scipy.special ({p.name})" for p in special_prims.ALL},
    P.inv: "xp.linalg.inv", P.det: "xp.linalg.det", P.logabsdet: "xp.linalg.slogdet",
    P.det_sign: "xp.linalg.slogdet", P.solve: "xp.linalg.solve", P.cholesky: "xp.linalg.cholesky",
    P.qr_q: "xp.linalg.qr", P.qr_r: "xp.linalg.qr", P.svd_u: "xp.linalg.svd", P.svdvals: "xp.linalg.svd",
    P.svd_vh: "xp.linalg.svd", P.eigvalsh: "xp.linalg.eigvalsh", P.eigh_vectors: "xp.linalg.eigh",
    P.pinv: "xp.linalg.pinv",
    P.collective: "graphc.distributed's MPI collective (through host memory)",
}

UNSUPPORTED: dict[Primitive, str] = {
    P.nonzero: "nonzero has a data-dependent output shape; the frontend breaks the graph there",
    PRIMITIVES["fused"]: "fused nodes are lowered by the scheduler into Kernel records before codegen",
    call: "outlined calls are made only for backends that compile bodies of their own (numpy); a Triton "
          "compile keeps repeated module calls inline",
    PRIMITIVES["composite"]: "composite nodes are expanded by the decompose pass before codegen",
    PRIMITIVES["custom_vjp"]: "custom_vjp nodes are erased before lowering (only autodiff reads them)",
    **{p: f"{p.name} runs SciPy's LAPACK (getrf/getrs, sytrf/sytrs, gels*), which has no CuPy counterpart wired "
          "into graphc: compile it with backend='numpy' on the CPU"
       for p in (P.lu_factor, P.lu_pivots, P.lu_permutation, P.lu_solve, P.ldl_factor, P.ldl_pivots, P.ldl_info,
                 P.ldl_solve, P.lstsq, P.lstsq_rank)},
    **{p: "Triton has no complex type (the backend refuses graphs with complex values: use backend='numpy')"
       for p in PRIMITIVES.values() if p.complex_only},
}


# ---------------------------------------------------------------------------------------------
# The rendered kernel
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderedKernel:
    name: str
    kind: str                               # pointwise | reduction | matmul
    source: str                             # the module: imports, helpers, the @triton.jit kernel
    params: tuple[str, ...]                 # every parameter, in call order
    signature: dict[str, str]               # param -> "*fp32", "i32", ..., "constexpr"
    scalars: dict[str, int]                 # the integer parameters and their values, in order
    constexprs: dict[str, int]              # default block sizes
    # grid axis -> product of (extent, block constexpr or "" for the extent itself) factors:
    # each factor is cdiv(extent, constexprs[block])
    grid_factors: tuple[tuple[tuple[int, str], ...], ...]
    persistent: bool = False                # reduction: the whole row in one block (RBLOCK fixed)
    source_hash: str = field(default="", compare=False)

    def grid(self, constexprs: Mapping[str, int] | None = None) -> tuple[int, ...]:
        c = {**self.constexprs, **(constexprs or {})}
        out = []
        for axis in self.grid_factors:
            n = 1
            for extent, block in axis:
                n *= -(-extent // c[block]) if block else extent
            out.append(n)
        return tuple(out)




def next_pow2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (max(n, 1) - 1).bit_length())


def _reach(offset: int, extents: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """The largest element offset an index map addresses."""
    return offset + sum((e - 1) * abs(s) for e, s in zip(extents, strides))


class _Index:
    """Affine index expressions over one linear index ``lin`` of a row-major space: a multiple of
    ``lin`` when the strides are a multiple of the contiguous ones, else a sum over coordinates
    ``{prefix}{d}``, which the kernel defines once (``coordinate_lines``)."""

    def __init__(self, lin: str, extents: tuple[int, ...], prefix: str) -> None:
        self.lin, self.extents, self.prefix = lin, extents, prefix
        self.used: set[int] = set()

    def expr(self, strides: tuple[int, ...]) -> str:
        live = [d for d, e in enumerate(self.extents) if e != 1 and strides[d] != 0]
        if not live:
            return "0"
        contig = contiguous_strides(self.extents)
        big = [d for d, e in enumerate(self.extents) if e != 1]
        scale = strides[live[0]] // contig[live[0]]
        if live == big and all(strides[d] == scale * contig[d] for d in live):
            return self.lin if scale == 1 else f"{self.lin} * {scale}"
        self.used.update(live)
        return " + ".join(f"{self.prefix}{d}" if strides[d] == 1 else f"{self.prefix}{d} * {strides[d]}"
                          for d in live)

    def coordinate_lines(self) -> list[str]:
        contig = contiguous_strides(self.extents)
        lines = []
        for d in sorted(self.used):
            e = self.lin if contig[d] == 1 else f"{self.lin} // {contig[d]}"
            if d > 0:
                e = f"{e} % {self.extents[d]}" if contig[d] == 1 else f"({e}) % {self.extents[d]}"
            lines.append(f"{self.prefix}{d} = {e}")
        return lines


def _term(var: str, stride: int) -> str:
    return "0" if stride == 0 else var if stride == 1 else f"{var} * {stride}"


def _address(offset: int, *parts: str) -> str:
    terms = [p for p in parts if p != "0"] + ([str(offset)] if offset else [])
    return " + ".join(terms) if terms else "0"


def _constant(address: str) -> bool:
    """Whether an address expression is a number (every index stride is 0)."""
    return address.lstrip("-").isdigit()


def _tile_address(address: str, zeros: str) -> str:
    """``address``, or ``zeros`` (a block of zero offsets of the tile's shape) when it is the
    constant 0: a load with a block mask needs a block of pointers."""
    return zeros if address == "0" else address


class _Renderer:
    """Shared state of one kernel's rendering: output lines, the helpers it needs, the
    pointer parameters, node lowering and stores."""

    def __init__(self, kernel: Kernel, dtypes: Mapping[str, DType], input_precision: str) -> None:
        self.k = kernel
        self.dtypes = dtypes
        self.precision = input_precision
        self.body: Graph = kernel.body
        self.needs: set[str] = set()
        self.lines: list[str] = []
        self.indent = 1
        self.arg_of = {id(v): i for i, v in enumerate(self.body.inputs)}
        if len(self.body.inputs) != len(kernel.args) or len(self.body.outputs) != len(kernel.outs):
            raise ValueError(f"{kernel.name}: the body has {len(self.body.inputs)} inputs and "
                             f"{len(self.body.outputs)} outputs for {len(kernel.args)} args and "
                             f"{len(kernel.outs)} outs")
        for n in self.body.nodes:
            if n.prim not in TRITON_OPS:
                why = UNSUPPORTED.get(n.prim) or (f"it is an extern call ({EXTERN[n.prim]})"
                                                  if n.prim in EXTERN else "no lowering")
                raise NotImplementedError(f"{kernel.name}: {n.prim.name} cannot run inside a Triton kernel: {why}")
        space = kernel.ranges + kernel.reduction_ranges
        out_space = {True: space, False: kernel.ranges}
        reach = [math.prod(space)] + [_reach(a.offset, space, a.index) for a in kernel.args] + \
                [_reach(0, out_space[o.full], o.index) for o in kernel.outs]
        # offsets past int32 need 64-bit index arithmetic
        self.wide = max(reach) >= 2 ** 31

    # ---- lines --------------------------------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def pointer_type(self, buffer: str) -> str:
        if buffer not in self.dtypes:
            raise KeyError(f"{self.k.name}: no dtype given for buffer {buffer!r}")
        return "*" + SIGNATURE_TYPES[self.dtypes[buffer].name]

    def load(self, v: Value, address: str, mask: str | None) -> str:
        """Load body input ``v`` (float16/bfloat16 widened to float32) into variable ``a{i}``."""
        i = self.arg_of[id(v)]
        # a constant address is one element for the whole block: a scalar load, always in bounds
        m = f", {mask}" if mask and not _constant(address) else ""
        expr = f"tl.load(in{i} + ({address}){m})" if address != "0" else f"tl.load(in{i})"
        if self.dtypes[self.k.args[i].access.buffer].is_low_precision:
            expr += ".to(tl.float32)"
        self.emit(f"a{i} = {expr}")
        return f"a{i}"

    def node(self, n: Node, env: dict[int, str], shape: str, lin: str) -> None:
        """Emit the elementwise/creation node ``n`` (operands in env) as ``t{name} = ...``."""
        self.emit(f"# {node_text(n)}")
        name = f"t{n.output.name}"
        expr = self.rand(n, lin) if n.prim is P.rand_uniform else self.lower(n, env, shape)
        self.emit(f"{name} = {expr}")
        env[id(n.output)] = name

    def lower(self, n: Node, env: dict[int, str], shape: str) -> str:
        casts = n.prim.operand_casts(tuple(n.inputs), n.attrs)
        promoted = n.prim.operand_dtype(*n.inputs, **n.attrs) if n.prim.operand_dtype else None
        args, arg_dtypes = [], []
        for x, c in zip(n.inputs, casts):
            if isinstance(x, Value):
                args.append(convert(env[id(x)], x.dtype, c) if c is not None else env[id(x)])
                arg_dtypes.append(c or x.dtype)
            else:
                d = promoted or n.output.dtype
                args.append(literal(x, d))
                arg_dtypes.append(d)
        tensor_dtypes = [d for x, d in zip(n.inputs, arg_dtypes) if isinstance(x, Value)]
        dtype = tensor_dtypes[0] if tensor_dtypes else n.output.dtype
        out = n.output.dtype
        via_int8 = dtype is dt.bool_ and n.prim in _BOOL_VIA_INT8
        if via_int8:
            args = [convert(a, d, dt.int8) for a, d in zip(args, arg_dtypes)]
            arg_dtypes = [dt.int8] * len(args)
            dtype = out = dt.int8
        expr = TRITON_OPS[n.prim](Op(n, args, dtype, out, shape, self.needs, arg_dtypes))
        if via_int8:
            return f"({expr}) != 0"
        if out.name in _NARROW_INTS:
            return f"({expr}).to({_tl(out)})"
        return expr

    def rand(self, n: Node, lin: str) -> str:
        """Uniform [0, 1) floats from the int64[2] key, the stream and the element's linear index
        (a hash of our own: tl.rand is a @triton.jit library function, which the interpreter can
        only call when triton itself was imported with TRITON_INTERPRET=1)."""
        key = self.arg_of[id(n.inputs[0])]
        self.needs.update(("_uniform", "_fmix32"))
        u = f"_uniform(tl.load(in{key}), tl.load(in{key} + 1), {int(n.attrs['stream']) % 2 ** 32}, {lin})"
        if n.output.dtype.is_low_precision:  # the largest value below 1: rounding must not reach 1.0
            u = f"tl.minimum({u}, {1 - float(dt.float_info(n.output.dtype).epsneg)!r})"
        return u

    def store(self, o: int, value: str, vdtype: DType, address: str, mask: str | None) -> None:
        want = self.dtypes[self.k.outs[o].buffer]
        # float16/bfloat16 is rounded once, here; everything else converts with astype semantics
        v = f"{value}.to({_TL[want.name]})" if want.is_low_precision else convert(value, vdtype, want)
        if _constant(address) and mask:  # one element (a 0-d result): a block of that offset
            address = f"({mask}).to(tl.int32) * 0 + {address}"
        self.emit(f"tl.store(out{o} + ({address}), {v}{', ' + mask if mask else ''})")

    # ---- the module ---------------------------------------------------------------------------

    def render(self, scalars: dict[str, int], constexprs: dict[str, int], grid, persistent: bool) -> RenderedKernel:
        k = self.k
        params, sig = [], {}
        for i, a in enumerate(k.args):
            params.append(f"in{i}")
            sig[f"in{i}"] = self.pointer_type(a.access.buffer)
        for i, o in enumerate(k.outs):
            params.append(f"out{i}")
            sig[f"out{i}"] = self.pointer_type(o.buffer)
        for name, value in scalars.items():
            params.append(name)
            sig[name] = "i32" if value < 2 ** 31 else "i64"
        for name in constexprs:
            params.append(name)
            sig[name] = "constexpr"
        reducing = f" reducing {list(k.reduction_ranges)}" if k.reduction_ranges else ""
        head = [f"# graphc Triton kernel {k.name}: {k.kind} over {list(k.ranges)}{reducing}"]
        head += [f"#   {line}" for line in (k.comment or "").splitlines()]
        for i, a in enumerate(k.args):
            view = "".join(f" -> {name}" for name, _ in a.access.views)
            head.append(f"#   in{i}: {a.access.buffer}{view}, index strides {list(a.index)} + {a.offset}")
        for i, o in enumerate(k.outs):
            head.append(f"#   out{i}: {o.buffer}, index strides {list(o.index)}"
                        f"{' over the whole space' if o.full else ''}")
        head += ["import triton", "import triton.language as tl"]
        if "libdevice" in self.needs:
            head.append("from triton.language.extra import libdevice")
        for h in sorted(self.needs - {"libdevice"}):
            head += ["", HELPERS[h].strip("\n")]
        decl = ", ".join(p + (": tl.constexpr" if sig[p] == "constexpr" else "") for p in params)
        head += ["", "", "@triton.jit", f"def {k.name}({decl}):"]
        source = "\n".join(head + self.lines) + "\n"
        return RenderedKernel(k.name, k.kind, source, tuple(params), sig, dict(scalars), dict(constexprs),
                              grid, persistent, hashlib.sha256(source.encode()).hexdigest()[:20])

    def program_start(self, block: str) -> str:
        pid = "tl.program_id(0).to(tl.int64)" if self.wide else "tl.program_id(0)"
        return f"{pid} * {block}"


# ---------------------------------------------------------------------------------------------
# Pointwise
# ---------------------------------------------------------------------------------------------

def _pointwise(r: _Renderer) -> RenderedKernel:
    k = r.k
    xi = _Index("xindex", k.ranges, "x")
    r.emit(f"xindex = {r.program_start('XBLOCK')} + tl.arange(0, XBLOCK)")
    r.emit("xmask = xindex < xnumel")
    coords_at = len(r.lines)
    env: dict[int, str] = {}

    def value(v: Value) -> str:
        if id(v) not in env:  # body inputs are loaded at first use
            a = k.args[r.arg_of[id(v)]]
            env[id(v)] = r.load(v, _address(a.offset, xi.expr(a.index)), "xmask")
        return env[id(v)]

    for n in r.body.nodes:
        if n.prim is not P.rand_uniform:
            for x in n.value_inputs():
                value(x)
        r.node(n, env, "[XBLOCK]", "xindex")
    for o, (bo, out) in enumerate(zip(r.body.outputs, k.outs)):
        r.store(o, value(bo), bo.dtype, xi.expr(out.index), "xmask")
    r.lines[coords_at:coords_at] = ["    " + line for line in xi.coordinate_lines()]
    block = min(1024, next_pow2(k.numel))
    return r.render({"xnumel": k.numel}, {"XBLOCK": block}, (((k.numel, "XBLOCK"),),), False)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------

class _Reduction:
    """A reduction kernel: x (kept) by r (reduced) blocks. Values live in one of two spaces:
    "x" (per kept element, shape [XBLOCK, 1]) or "xr" (shape [XBLOCK, RBLOCK]). Persistent: the
    whole row is one block and the body runs once, in order. Looped: one loop over r per
    reduction level (a reduction whose input needs another reduction's result is one level up,
    e.g. the sum of exp(x - max) in softmax), each recomputing what it needs from loads, then a
    last loop for whole-space outputs that need the last level."""

    def __init__(self, r: _Renderer, persistent: bool) -> None:
        self.r, self.k, self.persistent = r, r.k, persistent
        self.xi = _Index("xindex", self.k.ranges, "x")
        self.nx = len(self.k.ranges)
        self.space: dict[int, str] = {}
        self.level: dict[int, int] = {}   # value -> highest reduction level it depends on
        for v in r.body.inputs:
            a = self.k.args[r.arg_of[id(v)]]
            reduced = any(s and e != 1 for s, e in zip(a.index[self.nx:], self.k.reduction_ranges))
            self.space[id(v)] = "xr" if reduced else "x"
            self.level[id(v)] = 0
        for n in r.body.nodes:
            ins = list(n.value_inputs())
            lvl = max((self.level[id(x)] for x in ins), default=0)
            if n.prim.reduction:
                self.space[id(n.output)], self.level[id(n.output)] = "x", lvl + 1
            else:
                xr = n.prim is P.rand_uniform or any(self.space[id(x)] == "xr" for x in ins)
                self.space[id(n.output)], self.level[id(n.output)] = ("xr" if xr else "x"), lvl

    # ---- values in a scope --------------------------------------------------------------------

    def deps(self, roots: list[Value], have: dict[int, str]) -> list[Value]:
        """Values (body inputs and node outputs) needed to compute ``roots``, in body order,
        that ``have`` lacks."""
        seen: set[int] = set()
        todo = [v for v in roots if id(v) not in have]
        while todo:
            v = todo.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if v.producer is not None and v.producer.prim is not P.rand_uniform:
                todo.extend(x for x in v.producer.value_inputs() if id(x) not in have)
        order = list(self.r.body.inputs) + [n.output for n in self.r.body.nodes]
        return [v for v in order if id(v) in seen]

    def emit_value(self, v: Value, env: dict[int, str], ri: _Index) -> None:
        r = self.r
        if v.producer is None:
            a = self.k.args[r.arg_of[id(v)]]
            xr = self.space[id(v)] == "xr"
            addr = _address(a.offset, self.xi.expr(a.index[:self.nx]),
                            ri.expr(a.index[self.nx:]) if xr else "0")
            env[id(v)] = r.load(v, addr, "xmask & rmask" if xr else "xmask")
        elif v.producer.prim.reduction:
            self.reduce_persistent(v.producer, env)
        else:
            xr = self.space[id(v)] == "xr"
            r.node(v.producer, env, "[XBLOCK, RBLOCK]" if xr else "[XBLOCK, 1]", "xindex * rnumel + rindex")

    def reduce_input(self, n: Node, env: dict[int, str]) -> tuple[str, DType, Reduce]:
        """The reduced operand as an expression (cast as operand_casts says; bool as int8)."""
        x = n.inputs[0]
        c = n.prim.operand_casts((x,), n.attrs)[0] or x.dtype
        d = dt.int8 if c is dt.bool_ else c
        rule = TRITON_OPS[n.prim]
        if rule.helper:
            self.r.needs.add(rule.helper)
        return convert(env[id(x)], x.dtype, d), d, rule

    def result(self, n: Node, expr: str, d: DType, env: dict[int, str]) -> None:
        out = n.output
        name = f"t{out.name}"
        self.r.emit(f"{name} = {convert(expr, d, out.dtype) if not TRITON_OPS[n.prim].indexed else expr}")
        env[id(out)] = name

    def reduce_persistent(self, n: Node, env: dict[int, str]) -> None:
        r = self.r
        r.emit(f"# {node_text(n)}")
        v, d, rule = self.reduce_input(n, env)
        masked = f"tl.where(xmask & rmask, {v}, {rule.identity(d)})"
        if rule.indexed:
            r.emit(f"_, t{n.output.name}_index = tl.reduce(({masked}, tl.broadcast_to(rindex, [XBLOCK, RBLOCK])), "
                   f"1, {rule.helper}, keep_dims=True)")
            self.result(n, f"t{n.output.name}_index", dt.int64, env)
        else:
            self.result(n, rule.block.format(v=masked), d, env)

    # ---- kernel -------------------------------------------------------------------------------

    def render(self) -> RenderedKernel:
        r, k = self.r, self.k
        ri = _Index("rindex", k.reduction_ranges, "r")
        r.emit(f"xindex = {r.program_start('XBLOCK')} + tl.arange(0, XBLOCK)[:, None]")
        r.emit("xmask = xindex < xnumel")
        xcoords_at = len(r.lines)
        env: dict[int, str] = {}
        outs = list(zip(r.body.outputs, k.outs))
        if self.persistent:
            r.emit("rindex = tl.arange(0, RBLOCK)[None, :]")
            r.emit("rmask = rindex < rnumel")
            rcoords_at = len(r.lines)
            for v in self.deps([bo for bo, _ in outs], env):
                self.emit_value(v, env, ri)
            self.store_outputs(outs, env, ri, full=None)
            r.lines[rcoords_at:rcoords_at] = ["    " + line for line in ri.coordinate_lines()]
        else:
            self.looped(outs, env, ri)
        r.lines[xcoords_at:xcoords_at] = ["    " + line for line in self.xi.coordinate_lines()]
        xnumel, rnumel = k.numel, k.reduction_numel
        if self.persistent:
            rb = next_pow2(rnumel)
            xb = max(1, min(next_pow2(xnumel), 4096 // rb))
        else:
            rb, xb = 1024, 1
        return r.render({"xnumel": xnumel, "rnumel": rnumel}, {"XBLOCK": xb, "RBLOCK": rb},
                        (((xnumel, "XBLOCK"),),), self.persistent)

    def store_outputs(self, outs, env, ri: _Index, full: bool | None) -> None:
        """Store the outputs (``full``: only whole-space ones, or only reduced ones; None: all)."""
        for o, (bo, out) in enumerate(outs):
            if full is not None and out.full != full:
                continue
            if out.full:
                addr = _address(0, self.xi.expr(out.index[:self.nx]), ri.expr(out.index[self.nx:]))
                self.r.store(o, env[id(bo)], bo.dtype, addr, "xmask & rmask")
            else:
                self.r.store(o, env[id(bo)], bo.dtype, self.xi.expr(out.index), "xmask")

    def looped(self, outs, env: dict[int, str], ri: _Index) -> None:
        r, body = self.r, self.r.body
        reductions = [n for n in body.nodes if n.prim.reduction]
        top = max(self.level[id(n.output)] for n in reductions)
        full_outs = [(bo, o) for bo, o in outs if o.full]
        for lvl in range(1, top + 2):
            reds = [n for n in reductions if self.level[id(n.output)] == lvl]
            stores = [bo for bo, o in full_outs if self.level[id(bo)] == lvl - 1]
            if not reds and not stores:
                continue
            roots = [n.inputs[0] for n in reds] + stores
            needed = self.deps(roots, env)
            for v in needed:  # per-row values are computed once, before the loop
                if self.space[id(v)] == "x":
                    self.emit_value(v, env, ri)
            for n in reds:
                self.accumulator(n)
            r.emit("for roffset in range(0, rnumel, RBLOCK):")
            r.indent += 1
            r.emit("rindex = roffset + tl.arange(0, RBLOCK)[None, :]")
            r.emit("rmask = rindex < rnumel")
            rcoords_at = len(r.lines)
            inner = dict(env)
            for v in needed:
                if self.space[id(v)] == "xr":
                    self.emit_value(v, inner, ri)
            for n in reds:
                self.accumulate(n, inner)
            self.store_outputs([(bo, o) for bo, o in full_outs if bo in stores], inner, ri, full=True)
            r.lines[rcoords_at:rcoords_at] = ["    " * r.indent + line for line in ri.coordinate_lines()]
            ri.used.clear()
            r.indent -= 1
            for n in reds:
                self.finalize(n, env)
        reduced = [bo for bo, o in outs if not o.full]
        for v in self.deps(reduced, env):
            self.emit_value(v, env, ri)
        self.store_outputs(outs, env, ri, full=False)

    def accumulator(self, n: Node) -> None:
        x = n.inputs[0]
        c = n.prim.operand_casts((x,), n.attrs)[0] or x.dtype
        d = dt.int8 if c is dt.bool_ else c
        rule = TRITON_OPS[n.prim]
        acc = f"acc{n.output.name}"
        self.r.emit(f"# {node_text(n)}")
        self.r.emit(f"{acc} = tl.full([XBLOCK, RBLOCK], {rule.identity(d)}, {_tl(d)})")
        if rule.indexed:  # an out-of-range index loses every tie
            self.r.emit(f"{acc}_index = tl.full([XBLOCK, RBLOCK], rnumel, tl.int64)")

    def accumulate(self, n: Node, env: dict[int, str]) -> None:
        v, d, rule = self.reduce_input(n, env)
        acc = f"acc{n.output.name}"
        if rule.indexed:
            self.r.emit(f"new, new_index = {rule.helper}({acc}, {acc}_index, {v}, "
                        "tl.broadcast_to(rindex, [XBLOCK, RBLOCK]).to(tl.int64))")
            self.r.emit(f"{acc} = tl.where(xmask & rmask, new, {acc})")
            self.r.emit(f"{acc}_index = tl.where(xmask & rmask, new_index, {acc}_index)")
        else:
            self.r.emit(f"{acc} = tl.where(xmask & rmask, {rule.combine.format(a=acc, b=v)}, {acc})")

    def finalize(self, n: Node, env: dict[int, str]) -> None:
        _, d, rule = self.reduce_input(n, {id(n.inputs[0]): ""})
        acc = f"acc{n.output.name}"
        if rule.indexed:
            self.r.emit(f"_, {acc}_index = tl.reduce(({acc}, {acc}_index), 1, {rule.helper}, keep_dims=True)")
            self.result(n, f"{acc}_index", dt.int64, env)
        else:
            self.result(n, rule.block.format(v=acc), d, env)


# ---------------------------------------------------------------------------------------------
# Matmul with a pointwise epilogue
# ---------------------------------------------------------------------------------------------

def _matmul(r: _Renderer) -> RenderedKernel:
    k = r.k
    mm = r.body.nodes[0]
    if mm.prim is not P.matmul:
        raise ValueError(f"{k.name}: a matmul kernel's body starts with matmul, not {mm.prim.name}")
    if len(k.ranges) < 2 or len(k.reduction_ranges) != 1:
        raise ValueError(f"{k.name}: matmul needs ranges (*batch, M, N) and reduction_ranges (K,), got "
                         f"{k.ranges} and {k.reduction_ranges}")
    *batch, M, N = k.ranges
    (K,) = k.reduction_ranges
    nb = len(batch)
    bi = _Index("pid_b", tuple(batch), "b")
    ia, ib = (r.arg_of[id(x)] for x in mm.inputs[:2])
    A, B = k.args[ia], k.args[ib]
    d = mm.output.dtype
    wide = ".to(tl.int64)" if r.wide else ""
    r.emit(f"pid_m = tl.program_id(0) // (({N} + BLOCK_N - 1) // BLOCK_N)")
    r.emit(f"pid_n = tl.program_id(0) % (({N} + BLOCK_N - 1) // BLOCK_N)")
    if nb:
        r.emit("pid_b = tl.program_id(1)")
    coords_at = len(r.lines)
    r.emit(f"rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)){wide}[:, None]")
    r.emit(f"rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)){wide}[None, :]")
    a_base = _address(A.offset, bi.expr(A.index[:nb]))
    b_base = _address(B.offset, bi.expr(B.index[:nb]))
    s_am, s_ak = A.index[nb], A.index[nb + 2]
    s_bn, s_bk = B.index[nb + 1], B.index[nb + 2]
    acc_d = dt.float64 if d is dt.float64 else dt.float32 if d.is_floating_point else dt.int64
    r.emit(f"# {node_text(mm)}")
    r.emit(f"acc = tl.full([BLOCK_M, BLOCK_N], 0, {_tl(acc_d)})")
    if d.is_floating_point:
        r.emit(f"for k in range(0, {K}, BLOCK_K):")
        r.indent += 1
        r.emit("rk = k + tl.arange(0, BLOCK_K)")
        a_addr = _tile_address(_address(0, a_base, _term("rm", s_am), _term("rk[None, :]", s_ak)),
                               "rm * 0 + rk[None, :] * 0")
        b_addr = _tile_address(_address(0, b_base, _term("rk[:, None]", s_bk), _term("rn", s_bn)),
                               "rk[:, None] * 0 + rn * 0")
        r.emit(f"a = tl.load(in{ia} + ({a_addr}), (rm < {M}) & (rk[None, :] < {K}), other=0.0)")
        r.emit(f"b = tl.load(in{ib} + ({b_addr}), (rk[:, None] < {K}) & (rn < {N}), other=0.0)")
        if d is dt.float32:
            r.emit(f'acc = tl.dot(a, b, acc, input_precision="{r.precision}")')
        else:  # float16/bfloat16 multiply exactly into the fp32 accumulator; float64 stays float64
            r.emit("acc = tl.dot(a, b, acc)")
    else:  # integers: exact int64 rank-1 updates (tl.dot has no exact wide-integer form)
        r.emit(f"for k in range(0, {K}):")
        r.indent += 1
        a_addr = _tile_address(_address(0, a_base, _term("rm", s_am), _term("k", s_ak)), "rm * 0")
        b_addr = _tile_address(_address(0, b_base, _term("k", s_bk), _term("rn", s_bn)), "rn * 0")
        r.emit(f"a = tl.load(in{ia} + ({a_addr}), rm < {M})")
        r.emit(f"b = tl.load(in{ib} + ({b_addr}), rn < {N})")
        r.emit("acc += a.to(tl.int64) * b.to(tl.int64)")
    r.indent -= 1
    r.emit(f"mask = (rm < {M}) & (rn < {N})")
    env = {id(mm.output): convert("acc", acc_d, d) if not d.is_floating_point else "acc"}

    def value(v: Value) -> str:
        if id(v) not in env:
            a = k.args[r.arg_of[id(v)]]
            idx = a.index
            addr = _address(a.offset, bi.expr(idx[:nb]), _term("rm", idx[nb]), _term("rn", idx[nb + 1]))
            env[id(v)] = r.load(v, addr, "mask")
        return env[id(v)]

    linear = _address(0, f"pid_b * {M * N}" if nb else "0", f"rm * {N}", "rn")
    for n in r.body.nodes[1:]:
        if n.prim is not P.rand_uniform:
            for x in n.value_inputs():
                value(x)
        r.node(n, env, "[BLOCK_M, BLOCK_N]", linear)
    for o, (bo, out) in enumerate(zip(r.body.outputs, k.outs)):
        idx = out.index
        addr = _address(0, bi.expr(idx[:nb]), _term("rm", idx[nb]), _term("rn", idx[nb + 1]))
        r.store(o, value(bo), bo.dtype, addr, "mask")
    r.lines[coords_at:coords_at] = ["    " + line for line in bi.coordinate_lines()]
    blocks = {"BLOCK_M": max(16, min(64, next_pow2(M))), "BLOCK_N": max(16, min(64, next_pow2(N)))}
    if d.is_floating_point:
        blocks["BLOCK_K"] = max(16, min(32, next_pow2(K)))
    grid = [((M, "BLOCK_M"), (N, "BLOCK_N"))] + ([((math.prod(batch), ""),)] if nb else [])
    return r.render({}, blocks, tuple(grid), False)


def render(kernel: Kernel, dtypes: Mapping[str, DType], *, input_precision: str = "tf32",
           persistent: bool | None = None) -> RenderedKernel:
    """One ``@triton.jit`` kernel for ``kernel``. ``dtypes`` maps every buffer the kernel reads or
    writes to its dtype. ``input_precision`` is tl.dot's for float32 matmuls ("ieee" for exact
    results, "tf32" on a GPU by default); ``persistent`` forces (True) or forbids (False) the
    one-block form of a reduction (default: when the reduced extent is at most PERSISTENT_MAX)."""
    if input_precision not in ("tf32", "tf32x3", "ieee"):
        raise ValueError(f"input_precision must be tf32, tf32x3 or ieee, got {input_precision!r}")
    r = _Renderer(kernel, dtypes, input_precision)
    if kernel.kind == "pointwise":
        return _pointwise(r)
    if kernel.kind == "reduction":
        if not any(n.prim.reduction for n in kernel.body.nodes):
            raise ValueError(f"{kernel.name}: a reduction kernel's body has no reduction node")
        if persistent is None:
            persistent = kernel.reduction_numel <= PERSISTENT_MAX
        return _Reduction(r, persistent).render()
    if kernel.kind == "matmul":
        return _matmul(r)
    raise ValueError(f"{kernel.name}: unknown kernel kind {kernel.kind!r}")
