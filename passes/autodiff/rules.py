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
from graphc.ir.primitive import Primitive


@dataclass(frozen=True)
class VJPRule:
    fn: Callable
    uses: frozenset[int]  # operand indices whose values the rule reads
    uses_out: bool
    # operand index -> the operands whose values *its* gradient reads; None: every gradient may
    # read everything in ``uses``. Lets eager autograd save only what the wanted gradients need
    # (``y[:, 1] * 2`` must not keep ``y`` alive and version-checked, as in PyTorch).
    needs: dict | None = None


VJP: dict[Primitive, VJPRule] = {}


def _unsupported() -> dict:
    from graphc.ir.call import call
    from graphc.ir.composite import composite
    from graphc.ir.fused import fused
    return {call: "a call has no rule of its own: the sweep differentiates its body once and calls the body's "
                  "backward graph (passes/autodiff/backprop.py)",
            fused: "fused nodes are made after autodiff (fusion runs on the forward and backward "
                   "graphs separately), so autodiff never meets one",
            composite: "composite nodes have no rule of their own: autodiff differentiates their "
                       "decomposition (passes/autodiff/backprop.py)"}


# Primitives with deliberately no VJP rule, and the error autodiff gives when it meets one.
UNSUPPORTED: dict[Primitive, str] = _unsupported()


class NoDerivative:
    """A rule's cotangent for an operand PyTorch has no derivative for (igamma's ``a``, zeta's
    ``x``). Autograd raises PyTorch's error only where that gradient is wanted: eagerly when it
    reaches a leaf being accumulated or asked for (through any path), in the autodiff pass when
    the operand is live; elsewhere it is dropped, as PyTorch never computes it."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def error(self) -> NotImplementedError:
        return NotImplementedError(f"the derivative for '{self.what}' is not implemented.")


def defvjp(prim: Primitive, uses: tuple[int, ...] = (), uses_out: bool = False, needs: dict | None = None):
    def register(fn):
        if prim in VJP:
            raise ValueError(f"VJP rule for {prim.name} defined twice")
        VJP[prim] = VJPRule(fn, frozenset(uses), uses_out, needs)
        return fn
    return register


# ---- helpers (compositions of primitives) ----------------------------------------------------

def shape_of(x) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") and hasattr(x, "dtype") else ()


def is_float_tensor(x) -> bool:
    """A tensor that can carry a gradient: floating point or complex."""
    return hasattr(x, "dtype") and hasattr(x, "shape") and x.dtype.is_inexact


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


for _p in (P.floor, P.ceil, P.round, P.trunc):
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
    # negated after the sum of a broadcast operand's cotangent (a mean subtracted: a batch norm's),
    # so the negation runs on the small result, not over the whole cotangent
    return _unbroadcast(g, x), P.neg(_unbroadcast(g, y)) if is_float_tensor(y) else None


@defvjp(P.mul, uses=(0, 1), needs={0: (1,), 1: (0,)})
def _(g, out, x, y):
    if x is y and is_float_tensor(x):  # a square: one cotangent (2g) x, not g x + g x (one pass fewer)
        return _unbroadcast(P.mul(P.mul(g, 2), x), x), None
    gx = _unbroadcast(P.mul(g, y), x) if is_float_tensor(x) else None
    gy = _unbroadcast(P.mul(g, x), y) if is_float_tensor(y) else None
    return gx, gy


@defvjp(P.div, uses=(0, 1), needs={0: (1,), 1: (0, 1)})
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


@defvjp(P.select)
def _(g, out, x, *, dim, index):
    # the row put back in place and padded with zeros around it: one pad, no zeros + scatter
    shape = shape_of(x)
    row = P.reshape(g, shape=shape[:dim] + (1,) + shape[dim + 1:])
    return (P.pad(row, pads=tuple((index, n - index - 1) if d == dim else (0, 0) for d, n in enumerate(shape))),)


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
    xs, ids = shape_of(x), shape_of(idx)
    if ids[axis] == 1 and all(a == b for d, (a, b) in enumerate(builtins.zip(xs, ids)) if d != axis):
        # one index per row (max pooling's argmax, a picked class): the scatter-add is a one-hot
        # select, a pointwise kernel instead of an unbuffered ufunc.at
        positions = P.reshape(P.arange(start=0, end=xs[axis], step=1, dtype=idx.dtype),
                              shape=tuple(n if d == axis else 1 for d, n in enumerate(xs)))
        return P.where(P.eq(positions, idx), g, zeros((), g.dtype)), None
    return P.scatter_add(zeros(xs, g.dtype), idx, g, axis=axis), None


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

@defvjp(P.matmul, uses=(0, 1), needs={0: (1,), 1: (0,)})
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



# ---- special functions ----------------------------------------------------------------------

@defvjp(P.lgamma, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.polygamma(x, n=0)),)


@defvjp(P.polygamma, uses=(0,))
def _(g, out, x, *, n):
    return (P.mul(g, P.polygamma(x, n=n + 1)),)


@defvjp(P.erfinv, uses_out=True)
def _(g, out, x):
    # d/dx erfinv(x) = sqrt(pi)/2 * exp(erfinv(x)^2)
    return (P.mul(g, P.mul(P.exp(P.mul(out, out)), 0.886226925452758)),)


@defvjp(P.xlogy, uses=(0, 1))
def _(g, out, x, y):
    # PyTorch's convention: no gradient for x where x == 0 and y <= 0
    gx = gy = None
    if is_float_tensor(x):
        gx = _unbroadcast(P.where(P.logical_and(P.eq(x, 0), P.le(y, 0)), 0.0, P.xlogy(g, y)), x)
    if is_float_tensor(y):
        gy = _unbroadcast(P.div(P.mul(g, x), y), y)
    return gx, gy


# ---- dense linear algebra (batches of matrices) ---------------------------------------------

def _mT(x):
    return _swap_last(x)


def _mm(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = P.matmul(out, x)
    return out


def _as_matrix_scalar(x):
    """A batch of scalars (...) as (..., 1, 1), to scale batches of matrices."""
    return P.reshape(x, shape=shape_of(x) + (1, 1))


def _eye_mask(n: int, k: int = 0, op=None):
    """(n, n) bool: rows - cols compared with k by ``op`` (eq: a diagonal, ge: lower triangle)."""
    from graphc.ir import dtypes as dt
    r = P.reshape(P.arange(start=0, end=n, step=1, dtype=dt.int64), shape=(n, 1))
    c = P.reshape(P.arange(start=0, end=n, step=1, dtype=dt.int64), shape=(1, n))
    return (op or P.eq)(P.sub(r, c), k)


def _tril(x, k: int = 0):
    # keep column c of row r where c - r <= k
    n = shape_of(x)[-1]
    return P.where(_eye_mask(n, -k, P.ge), x, 0.0)


@defvjp(P.inv, uses_out=True)
def _(g, out, a):
    # d(A^-1) = -A^-1 dA A^-1
    return (P.neg(_mm(_mT(out), g, _mT(out))),)


@defvjp(P.det, uses=(0,), uses_out=True)
def _(g, out, a):
    # d det(A) = det(A) tr(A^-1 dA): gA = g det(A) A^-T (A must be invertible)
    return (P.mul(_as_matrix_scalar(P.mul(g, out)), _mT(P.inv(a))),)


@defvjp(P.logabsdet, uses=(0,))
def _(g, out, a):
    return (P.mul(_as_matrix_scalar(g), _mT(P.inv(a))),)


@defvjp(P.solve, uses=(0,), uses_out=True)
def _(g, out, a, b):
    # X = A^-1 B: gB = A^-T g, gA = -gB X^T (summed over broadcast batch dims)
    gb = P.solve(_mT(a), g)
    ga = sum_to(P.neg(P.matmul(gb, _mT(out))), shape_of(a)) if is_float_tensor(a) else None
    return ga, (sum_to(gb, shape_of(b)) if is_float_tensor(b) else None)


@defvjp(P.cholesky, uses_out=True)
def _(g, out, a):
    # PyTorch's rule: gA = L^-T Phi(L^T gL) L^-1 with Phi symmetrizing the lower triangle
    phi = _tril(P.matmul(_mT(out), g))
    phi = P.mul(P.add(phi, _mT(_tril(phi, -1))), 0.5)
    l_inv = P.inv(out)
    return (_mm(_mT(l_inv), phi, l_inv),)


def _skew(x):
    return P.sub(x, _mT(x))


def _set_diag(x, value):
    return P.where(_eye_mask(shape_of(x)[-1]), value, x)


@defvjp(P.eigvalsh, uses=(0,))
def _(g, out, a, *, uplo):
    v = P.eigh_vectors(a, uplo=uplo)
    return (P.matmul(P.mul(v, P.reshape(g, shape=shape_of(g)[:-1] + (1, shape_of(g)[-1]))), _mT(v)),)


@defvjp(P.eigh_vectors, uses=(0,), uses_out=True)
def _(g, out, a, *, uplo):
    # gA = V (skew(V^T gV) / 2 / E) V^T, E_ij = w_j - w_i (eigenvalues w); the diagonal of the skew part is 0
    w = P.eigvalsh(a, uplo=uplo)
    n = shape_of(w)[-1]
    e = P.sub(P.reshape(w, shape=shape_of(w)[:-1] + (1, n)), P.reshape(w, shape=shape_of(w)[:-1] + (n, 1)))
    inner = P.div(P.mul(_skew(P.matmul(_mT(out), g)), 0.5), _set_diag(e, 1.0))
    return (_mm(out, inner, _mT(out)),)


def _narrow_last(x, k: int, axis: int):
    shape = shape_of(x)
    if shape[axis] == k:
        return x
    return P.slice(x, index=tuple((0, k if d == len(shape) + axis else s, 1) for d, s in enumerate(shape)))


def _svd_factors(a):
    return (P.svd_u(a, full_matrices=False), P.svdvals(a), P.svd_vh(a, full_matrices=False))


def _svd_e(s):
    """E_ij = s_j^2 - s_i^2 with ones on the diagonal."""
    k = shape_of(s)[-1]
    s2 = P.mul(s, s)
    e = P.sub(P.reshape(s2, shape=shape_of(s)[:-1] + (1, k)), P.reshape(s2, shape=shape_of(s)[:-1] + (k, 1)))
    return _set_diag(e, 1.0)


def _row(s):
    return P.reshape(s, shape=shape_of(s)[:-1] + (1, shape_of(s)[-1]))


def _col(s):
    return P.reshape(s, shape=shape_of(s) + (1,))


@defvjp(P.svdvals, uses=(0,))
def _(g, out, a):
    u, _s, vh = _svd_factors(a)
    return (P.matmul(P.mul(u, _row(g)), vh),)


# PyTorch's svd_backward split by cotangent (it is linear in gU, gS, gVh): the U part and the Vh
# part; with full_matrices, only the first min(m, n) singular vectors carry gradient, as in PyTorch
@defvjp(P.svd_u, uses=(0,))
def _(g, out, a, *, full_matrices=False):
    m, n = shape_of(a)[-2:]
    k = builtins.min(m, n)
    u, s, vh = _svd_factors(a)
    gu = _narrow_last(g, k, -1)
    ret = P.div(P.mul(_skew(P.matmul(_mT(u), gu)), _row(s)), _svd_e(s))
    if m > n:
        gu_sinv = P.div(gu, _row(s))
        inner = P.sub(P.add(P.matmul(u, ret), gu_sinv), _mm(u, _mT(u), gu_sinv))
        return (P.matmul(inner, vh),)
    return (_mm(u, ret, vh),)


@defvjp(P.svd_vh, uses=(0,))
def _(g, out, a, *, full_matrices=False):
    m, n = shape_of(a)[-2:]
    k = builtins.min(m, n)
    u, s, vh = _svd_factors(a)
    gvh = _narrow_last(g, k, -2)
    ret = P.div(P.mul(_col(s), _skew(P.matmul(vh, _mT(gvh)))), _svd_e(s))
    if m < n:
        sinv_gvh = P.div(gvh, _col(s))
        inner = P.sub(P.add(P.matmul(ret, vh), sinv_gvh), _mm(sinv_gvh, _mT(vh), vh))
        return (P.matmul(u, inner),)
    return (_mm(u, ret, vh),)


def _copyltu(m):
    return P.add(_tril(m), _mT(_tril(m, -1)))


def _qr_square_vjp(q, r, gq, gr):
    """A = QR with R square (m >= n): gA = (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q."""
    mm = None
    if gr is not None:
        mm = P.matmul(r, _mT(gr))
    if gq is not None:
        t = P.matmul(_mT(gq), q)
        mm = P.neg(t) if mm is None else P.sub(mm, t)
    ga = P.matmul(q, _copyltu(mm))
    if gq is not None:
        ga = P.add(ga, gq)
    return P.matmul(ga, _mT(P.inv(r)))


def _qr_vjp(a, mode, gq, gr):
    if mode == "r":
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please "
                           "use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")
    m, n = shape_of(a)[-2:]
    if mode == "complete" and m > n:
        raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
    q, r = P.qr_q(a, mode=mode), P.qr_r(a, mode=mode)
    if m >= n:
        return _qr_square_vjp(q, r, gq, gr)
    # wide A = [X | Y], R = [U | V]: X = QU is a square QR and Y = QV (so V = Q^T Y)
    idx = lambda lo, hi: tuple((0, s, 1) for s in shape_of(r)[:-1]) + ((lo, hi, 1),)  # noqa: E731
    u = P.slice(r, index=idx(0, m))
    if gr is None:
        gx = _qr_square_vjp(q, u, gq, None)
        return P.concat(gx, zeros(shape_of(a)[:-1] + (n - m,), gx.dtype), axis=len(shape_of(a)) - 1)
    gu, gv = P.slice(gr, index=idx(0, m)), P.slice(gr, index=idx(m, n))
    y = P.slice(a, index=tuple((0, s, 1) for s in shape_of(a)[:-1]) + ((m, n, 1),))
    gx = _qr_square_vjp(q, u, P.matmul(y, _mT(gv)), gu)
    return P.concat(gx, P.matmul(q, gv), axis=len(shape_of(a)) - 1)


@defvjp(P.qr_q, uses=(0,))
def _(g, out, a, *, mode):
    return (_qr_vjp(a, mode, g, None),)


@defvjp(P.qr_r, uses=(0,))
def _(g, out, a, *, mode):
    return (_qr_vjp(a, mode, None, g),)


@defvjp(P.pinv, uses=(0,), uses_out=True)
def _(g, out, a, *, atol, rtol, hermitian):
    return (pinv_vjp(g, out, a),)


def pinv_vjp(g, x, a):
    """The cotangent of A for X = pinv(A) and X's cotangent g, for A of constant rank (Golub &
    Pereyra): gA = -X^T g X^T + (I - A X) g^T X X^T + X^T X g^T (I - X A)."""
    xt, gt = _mT(x), _mT(g)
    m = shape_of(a)[-2]
    n = shape_of(a)[-1]
    eye_m = P.cast(_eye_mask(m), dtype=g.dtype)
    eye_n = P.cast(_eye_mask(n), dtype=g.dtype)
    ga = P.neg(_mm(xt, g, xt))
    ga = P.add(ga, _mm(P.sub(eye_m, P.matmul(a, x)), gt, x, xt))
    return P.add(ga, _mm(xt, x, gt, P.sub(eye_n, P.matmul(x, a))))


# ---- custom autograd.Function: the user's backward, traced into a graph ----------------------

def inline(body, args: list) -> list:
    """Apply the nodes of graph ``body`` to ``args`` (one per body input) by binding their
    primitives: on IR values this appends them to the graph being built, on eager tensors it
    computes now. Returns the body's outputs."""
    from graphc.ir.graph import Value, located
    env = {id(v): a for v, a in zip(body.inputs, args)}
    graph = next((a.graph for a in args if isinstance(a, Value)), None)
    for n in body.nodes:
        ops = [env[id(x)] if isinstance(x, Value) else x for x in n.inputs]
        if graph is not None and n.loc:  # inlined nodes keep the user's lines (of their backward)
            with located(graph, n.loc):
                env[id(n.output)] = n.prim(*ops, **n.attrs)
        else:
            env[id(n.output)] = n.prim(*ops, **n.attrs)
    return [env[id(o)] for o in body.outputs]


# every operand after the forward value may be a captured value the backward graph reads
@defvjp(P.custom_vjp, uses=tuple(range(1, 1024)))
def _(g, out, x, *operands, bwd, index, n_inputs, has_grad, fn):
    captured = list(operands[n_inputs:])
    n_ct = len(bwd.inputs) - len(captured)
    cts = [g if k == index else zeros(bwd.inputs[k].shape, bwd.inputs[k].dtype) for k in range(n_ct)]
    grads = iter(inline(bwd, cts + captured))
    result = [None]
    for a, has in zip(operands[:n_inputs], has_grad):
        result.append(_unbroadcast(next(grads), a) if has else None)
    return tuple(result) + (None,) * len(captured)


# complex numbers and Fourier transforms; PyTorch's conjugate convention for complex operands
from . import complex_rules  # noqa: E402,F401
from . import special_rules  # noqa: E402,F401  (Bessel functions, incomplete gamma, zeta)
# LU, LDL and least squares
from . import factorization_rules  # noqa: E402,F401
