"""VJP rules: one entry per differentiable primitive, written with the primitives themselves.

A rule gets the output cotangent ``g``, the primitive's output ``out`` (or None when the rule did
not ask for it), the operands and the attributes, and returns one cotangent per operand (None
where no gradient flows). Operands the rule did not list in ``uses`` arrive as ``TensorType``
records (shape and dtype only), so eager autograd saves only what a rule really needs.

Because rules only call primitives, the same table drives eager ``backward()`` (operands are eager
tensors) and the autodiff graph pass (operands are IR values).
"""
from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Callable

from graphc.ir import prims as P
from graphc.ir.dtypes import FLOAT
from graphc.ir.primitive import Primitive


@dataclass(frozen=True)
class VJPRule:
    fn: Callable
    uses: frozenset[int]  # operand indices whose values the rule reads
    uses_out: bool


VJP: dict[Primitive, VJPRule] = {}


def _unsupported() -> dict:
    from graphc.ir.composite import composite
    from graphc.ir.fused import fused
    return {fused: "fused nodes are made after autodiff (fusion runs on the forward and backward "
                   "graphs separately), so autodiff never meets one",
            composite: "composite nodes are expanded into primitives by the decompose pass, which "
                       "runs before autodiff"}


# Primitives with deliberately no VJP rule, and the error autodiff gives when it meets one.
UNSUPPORTED: dict[Primitive, str] = _unsupported()


def defvjp(prim: Primitive, uses: tuple[int, ...] = (), uses_out: bool = False):
    def register(fn):
        if prim in VJP:
            raise ValueError(f"VJP rule for {prim.name} defined twice")
        VJP[prim] = VJPRule(fn, frozenset(uses), uses_out)
        return fn
    return register


# ---- helpers (compositions of primitives) ----------------------------------------------------

def shape_of(x) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") and hasattr(x, "dtype") else ()


def is_float_tensor(x) -> bool:
    return hasattr(x, "dtype") and hasattr(x, "shape") and x.dtype.category == FLOAT


def sum_to(g, shape: tuple[int, ...]):
    """Undo broadcasting: sum ``g`` down to ``shape``."""
    gshape = shape_of(g)
    if gshape == tuple(shape):
        return g
    lead = len(gshape) - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1)
    if dims:
        g = P.sum(g, dims=dims, keepdim=True)
    if shape_of(g) != tuple(shape):
        g = P.reshape(g, shape=tuple(shape))
    return g


def _unbroadcast(g, x):
    """Cotangent for operand ``x`` of a broadcasting op, or None for Python scalars/non-floats."""
    if not is_float_tensor(x):
        return None
    g = sum_to(g, shape_of(x))
    if g.dtype is not x.dtype:
        g = P.cast(g, dtype=x.dtype)
    return g


def zeros(shape, dtype):
    return P.full(shape=tuple(shape), value=0, dtype=dtype)


def zeros_like(x):
    return zeros(shape_of(x), x.dtype)


def _swap_last(x):
    n = len(shape_of(x))
    return P.permute(x, dims=tuple(range(n - 2)) + (n - 1, n - 2))


def _restore_reduced(g, shape, dims, keepdim):
    """Bring a reduction's cotangent back to a shape that broadcasts against the input."""
    if not keepdim and dims:
        kept = tuple(1 if i in dims else s for i, s in enumerate(shape))
        g = P.reshape(g, shape=kept)
    return g


# ---- elementwise unary ----------------------------------------------------------------------

@defvjp(P.neg)
def _(g, out, x):
    return (P.neg(g),)


@defvjp(P.abs, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.sign(x)),)


def _zero_grad(g, out, x):
    return (P.mul(g, 0),)


for _p in (P.sign, P.floor, P.ceil, P.round, P.trunc):
    defvjp(_p)(_zero_grad)


@defvjp(P.exp, uses_out=True)
def _(g, out, x):
    return (P.mul(g, out),)


@defvjp(P.exp2, uses_out=True)
def _(g, out, x):
    return (P.mul(g, P.mul(out, 0.6931471805599453)),)


@defvjp(P.expm1, uses_out=True)
def _(g, out, x):
    return (P.mul(g, P.add(out, 1)),)


@defvjp(P.log, uses=(0,))
def _(g, out, x):
    return (P.div(g, x),)


@defvjp(P.log2, uses=(0,))
def _(g, out, x):
    return (P.div(g, P.mul(x, 0.6931471805599453)),)


@defvjp(P.log10, uses=(0,))
def _(g, out, x):
    return (P.div(g, P.mul(x, 2.302585092994046)),)


@defvjp(P.log1p, uses=(0,))
def _(g, out, x):
    return (P.div(g, P.add(x, 1)),)


@defvjp(P.sin, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.cos(x)),)


@defvjp(P.cos, uses=(0,))
def _(g, out, x):
    return (P.neg(P.mul(g, P.sin(x))),)


@defvjp(P.tan, uses_out=True)
def _(g, out, x):
    return (P.mul(g, P.add(P.mul(out, out), 1)),)


@defvjp(P.asin, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.rsqrt(P.sub(1, P.mul(x, x)))),)


@defvjp(P.acos, uses=(0,))
def _(g, out, x):
    return (P.neg(P.mul(g, P.rsqrt(P.sub(1, P.mul(x, x))))),)


@defvjp(P.atan, uses=(0,))
def _(g, out, x):
    return (P.div(g, P.add(P.mul(x, x), 1)),)


@defvjp(P.sinh, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.cosh(x)),)


@defvjp(P.cosh, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.sinh(x)),)


@defvjp(P.tanh, uses_out=True)
def _(g, out, x):
    return (P.mul(g, P.sub(1, P.mul(out, out))),)


@defvjp(P.relu, uses_out=True)
def _(g, out, x):
    # the gradient at 0 is 0, as in PyTorch
    return (P.where(P.gt(out, 0), g, 0.0),)


@defvjp(P.sigmoid, uses_out=True)
def _(g, out, x):
    return (P.mul(g, P.mul(out, P.sub(1, out))),)


@defvjp(P.sqrt, uses_out=True)
def _(g, out, x):
    return (P.div(g, P.mul(out, 2)),)


@defvjp(P.rsqrt, uses_out=True)
def _(g, out, x):
    # d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 out^3
    return (P.mul(g, P.mul(P.mul(out, P.mul(out, out)), -0.5)),)


@defvjp(P.reciprocal, uses_out=True)
def _(g, out, x):
    return (P.neg(P.mul(g, P.mul(out, out))),)


@defvjp(P.erf, uses=(0,))
def _(g, out, x):
    # 2/sqrt(pi) * exp(-x^2)
    return (P.mul(g, P.mul(P.exp(P.neg(P.mul(x, x))), 1.1283791670955126)),)


@defvjp(P.cast, uses=(0,))
def _(g, out, x, *, dtype):
    return (P.cast(g, dtype=x.dtype) if is_float_tensor(x) else None,)


@defvjp(P.copy)
def _(g, out, x):
    return (g,)


# ---- elementwise binary ---------------------------------------------------------------------

@defvjp(P.add)
def _(g, out, x, y):
    return _unbroadcast(g, x), _unbroadcast(g, y)


@defvjp(P.sub)
def _(g, out, x, y):
    return _unbroadcast(g, x), _unbroadcast(P.neg(g), y) if is_float_tensor(y) else None


@defvjp(P.mul, uses=(0, 1))
def _(g, out, x, y):
    gx = _unbroadcast(P.mul(g, y), x) if is_float_tensor(x) else None
    gy = _unbroadcast(P.mul(g, x), y) if is_float_tensor(y) else None
    return gx, gy


@defvjp(P.div, uses=(0, 1))
def _(g, out, x, y):
    gx = _unbroadcast(P.div(g, y), x) if is_float_tensor(x) else None
    gy = None
    if is_float_tensor(y):
        gy = _unbroadcast(P.neg(P.div(P.mul(g, x), P.mul(y, y))), y)
    return gx, gy


@defvjp(P.remainder, uses=(0, 1))
def _(g, out, x, y):
    gx = _unbroadcast(g, x)
    gy = _unbroadcast(P.neg(P.mul(g, P.floor_divide(x, y))), y) if is_float_tensor(y) else None
    return gx, gy


@defvjp(P.pow, uses=(0, 1), uses_out=True)
def _(g, out, x, y):
    gx = gy = None
    if is_float_tensor(x):
        if is_float_tensor(y) or hasattr(y, "dtype"):
            # where y == 0 the gradient is 0 even at x == 0 (PyTorch's convention)
            dx = P.where(P.eq(y, 0), 0.0, P.mul(y, P.pow(x, P.sub(y, 1))))
        else:
            dx = P.mul(P.pow(x, y - 1), y) if y != 0 else P.mul(x, 0)
        gx = _unbroadcast(P.mul(g, dx), x)
    if is_float_tensor(y):
        if hasattr(x, "dtype"):
            # out * log(x), taken as 0 where x == 0 and y >= 0, where the limit exists
            dy = P.where(P.logical_and(P.eq(x, 0), P.ge(y, 0)), 0.0, P.mul(out, P.log(x)))
        else:
            dy = P.mul(out, math.log(x)) if x != 0 else P.mul(out, 0)
        gy = _unbroadcast(P.mul(g, dy), y)
    return gx, gy


def _minmax_vjp(select):
    def rule(g, out, x, y):
        # ties share the gradient equally, as in PyTorch
        win_x = P.where(select(x, y), 1.0, P.where(P.eq(x, y), 0.5, 0.0))
        gx = _unbroadcast(P.mul(g, win_x), x) if is_float_tensor(x) else None
        gy = _unbroadcast(P.mul(g, P.sub(1.0, win_x)), y) if is_float_tensor(y) else None
        return gx, gy
    return rule


defvjp(P.maximum, uses=(0, 1))(_minmax_vjp(P.gt))
defvjp(P.minimum, uses=(0, 1))(_minmax_vjp(P.lt))


@defvjp(P.atan2, uses=(0, 1))
def _(g, out, y, x):
    denom = P.add(P.mul(x, x), P.mul(y, y))
    gy = _unbroadcast(P.div(P.mul(g, x), denom), y) if is_float_tensor(y) else None
    gx = _unbroadcast(P.neg(P.div(P.mul(g, y), denom)), x) if is_float_tensor(x) else None
    return gy, gx


@defvjp(P.where, uses=(0,))
def _(g, out, cond, x, y):
    gx = _unbroadcast(P.where(cond, g, 0.0), x) if is_float_tensor(x) else None
    gy = _unbroadcast(P.where(cond, 0.0, g), y) if is_float_tensor(y) else None
    return None, gx, gy


# ---- reductions -----------------------------------------------------------------------------

@defvjp(P.sum)
def _(g, out, x, *, dims, keepdim):
    g = _restore_reduced(g, shape_of(x), dims, keepdim)
    return (P.expand(g, shape=shape_of(x)),)


@defvjp(P.prod, uses=(0,), uses_out=True)
def _(g, out, x, *, dims, keepdim):
    shape = shape_of(x)
    g = _restore_reduced(g, shape, dims, keepdim)
    out = _restore_reduced(out, shape, dims, keepdim)
    is_zero = P.eq(x, 0)
    nonzero_x = P.where(is_zero, 1.0, x)
    # product of the other elements: out/x where x != 0; with exactly one zero in the group,
    # the product of the non-zero elements at that zero; with two or more zeros, 0
    prod_nonzero = P.prod(nonzero_x, dims=dims, keepdim=True)
    zero_count = P.sum(P.cast(is_zero, dtype=x.dtype), dims=dims, keepdim=True)
    at_zero = P.where(P.eq(zero_count, 1), prod_nonzero, 0.0)
    others = P.where(is_zero, at_zero, P.div(out, nonzero_x))
    return (P.mul(g, others),)


def _extreme_vjp(g, out, x, *, dims, keepdim):
    shape = shape_of(x)
    g = _restore_reduced(g, shape, dims, keepdim)
    out = _restore_reduced(out, shape, dims, keepdim)
    hit = P.cast(P.eq(x, out), dtype=g.dtype)
    count = P.sum(hit, dims=dims, keepdim=True)
    return (P.mul(P.div(g, count), hit),)


defvjp(P.amax, uses=(0,), uses_out=True)(_extreme_vjp)
defvjp(P.amin, uses=(0,), uses_out=True)(_extreme_vjp)


@defvjp(P.cumsum)
def _(g, out, x, *, dim):
    if not shape_of(x):
        return (g,)
    rev = tuple((s - 1, -1, -1) if d == dim else (0, s, 1) for d, s in enumerate(shape_of(g)))
    flipped = P.slice(P.cumsum(P.slice(g, index=rev), dim=dim), index=rev)
    return (P.cast(flipped, dtype=x.dtype) if flipped.dtype is not x.dtype else flipped,)


# ---- movement -------------------------------------------------------------------------------

@defvjp(P.reshape)
def _(g, out, x, *, shape):
    return (P.reshape(g, shape=shape_of(x)),)


@defvjp(P.permute)
def _(g, out, x, *, dims):
    inverse = [0] * len(dims)
    for i, d in enumerate(dims):
        inverse[d] = i
    return (P.permute(g, dims=tuple(inverse)),)


@defvjp(P.expand)
def _(g, out, x, *, shape):
    return (sum_to(g, shape_of(x)),)


@defvjp(P.slice)
def _(g, out, x, *, index):
    return (P.slice_scatter(zeros(shape_of(x), g.dtype), g, index=index),)


@defvjp(P.slice_scatter)
def _(g, out, x, src, *, index):
    gx = P.slice_scatter(g, zeros(shape_of(src), g.dtype), index=index) if is_float_tensor(x) else None
    gs = P.slice(g, index=index) if is_float_tensor(src) else None
    return gx, gs


@defvjp(P.pad)
def _(g, out, x, *, pads, value=0.0):
    index = tuple((lo, lo + s, 1) for (lo, _), s in builtins.zip(pads, shape_of(x)))
    return (P.slice(g, index=index),)


@defvjp(P.concat)
def _(g, out, *xs, axis):
    grads, start = [], 0
    gshape = shape_of(g)
    for x in xs:
        n = shape_of(x)[axis]
        index = tuple((start, start + n, 1) if d == axis else (0, s, 1) for d, s in enumerate(gshape))
        piece = P.slice(g, index=index)
        grads.append(P.cast(piece, dtype=x.dtype) if is_float_tensor(x) and x.dtype is not g.dtype
                     else piece if is_float_tensor(x) else None)
        start += n
    return tuple(grads)


# ---- indexing -------------------------------------------------------------------------------

@defvjp(P.take, uses=(1,))
def _(g, out, x, idx, *, axis):
    xs, n = shape_of(x), _numel(shape_of(idx))
    if n == 0:
        return zeros(xs, g.dtype), None
    flat_idx = P.reshape(idx, shape=(n,))
    flat_g = P.reshape(g, shape=xs[:axis] + (n,) + xs[axis + 1:])
    return P.index_add(zeros(xs, g.dtype), flat_idx, flat_g, axis=axis), None


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@defvjp(P.gather, uses=(1,))
def _(g, out, x, idx, *, axis):
    return P.scatter_add(zeros(shape_of(x), g.dtype), idx, g, axis=axis), None


@defvjp(P.scatter, uses=(1,))
def _(g, out, x, idx, src, *, axis):
    gx = P.scatter(g, idx, 0.0, axis=axis) if is_float_tensor(x) else None
    gs = P.gather(g, idx, axis=axis) if is_float_tensor(src) else None
    if gs is not None and shape_of(gs) != shape_of(src):
        gs = P.pad(gs, pads=tuple((0, a - b) for a, b in builtins.zip(shape_of(src), shape_of(gs))))
    return gx, None, gs


@defvjp(P.scatter_add, uses=(1,))
def _(g, out, x, idx, src, *, axis):
    gs = P.gather(g, idx, axis=axis) if is_float_tensor(src) else None
    if gs is not None and shape_of(gs) != shape_of(src):
        gs = P.pad(gs, pads=tuple((0, a - b) for a, b in builtins.zip(shape_of(src), shape_of(gs))))
    return g, None, gs


@defvjp(P.index_add, uses=(1,))
def _(g, out, x, idx, src, *, axis):
    return g, None, P.take(g, idx, axis=axis) if is_float_tensor(src) else None


# ---- sliding windows ------------------------------------------------------------------------

@defvjp(P.unfold)
def _(g, out, x, *, kernel, stride, padding, dilation, value=0.0):
    size = shape_of(x)[2:]
    return (P.fold(g, size=size, kernel=kernel, stride=stride, padding=padding, dilation=dilation),)


@defvjp(P.fold)
def _(g, out, cols, *, size, kernel, stride, padding, dilation):
    return (P.unfold(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation),)


# ---- linear algebra -------------------------------------------------------------------------

@defvjp(P.matmul, uses=(0, 1))
def _(g, out, a, b):
    sa, sb = shape_of(a), shape_of(b)
    a2 = P.reshape(a, shape=(1,) + sa) if len(sa) == 1 else a
    b2 = P.reshape(b, shape=sb + (1,)) if len(sb) == 1 else b
    g2 = P.reshape(g, shape=shape_of(g)[:-1] + (1,) + shape_of(g)[-1:] if len(sa) == 1 and len(sb) > 1
                   else shape_of(g) + (1,) if len(sb) == 1 and len(sa) > 1
                   else (1, 1) if len(sa) == 1 and len(sb) == 1 else shape_of(g))
    ga = P.matmul(g2, _swap_last(b2))
    gb = P.matmul(_swap_last(a2), g2)
    ga = P.reshape(sum_to(ga, shape_of(a2)), shape=sa)
    gb = P.reshape(sum_to(gb, shape_of(b2)), shape=sb)
    return ga, gb

