"""Batching rules: one entry per primitive, written with the primitives themselves.

``vmap`` runs a traced per-sample graph on batched operands. A node none of whose operands is
batched runs as it is; otherwise its primitive's rule runs instead. A rule gets the batch context
(``ctx.size``: the batch size; ``ctx.randomness``), the operands, one flag per operand saying
whether it carries the batch (always as its dimension 0), and the node's attributes; it returns the
result with the batch as dimension 0. Rules only bind primitives, so the same table batches eager
tensors, tensors being traced by ``graphc.compile`` and IR values (``batching.batch_graph``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from graphc.ir import prims as P
from graphc.ir.primitive import PRIMITIVES, Primitive
from graphc.ir.shapes import numel


@dataclass(frozen=True)
class BatchContext:
    size: int
    randomness: str = "error"  # vmap's randomness=: error | same | different


BATCH: dict[Primitive, Callable] = {}


def _unsupported() -> dict:
    from graphc.ir.call import call
    from graphc.ir.composite import composite
    from graphc.ir.fused import fused
    return {
        call: "outlined calls are made by graphc.compile's outline pass, which graphc.func traces do not run",
        fused: "fused nodes are made by the fusion pass, after every transformation; vmap never meets one",
        composite: "composite nodes have no rule of their own: graphc.func traces run their decomposition "
                   "into primitives, so vmap never meets one",
        P.nonzero: "vmap: We do not support batching operators that can output dynamic shape. Attempted to vmap "
                   "over nonzero (its output shape depends on the values of each sample)",
        P.full: "a creation op has no operands, so it is never batched (its result broadcasts)",
        P.arange: "a creation op has no operands, so it is never batched (its result broadcasts)",
        P.collective: "a collective exchanges whole tensors between processes; vmap over it is not supported",
    }


# Primitives with deliberately no batching rule, and why (vmap's error names the primitive).
UNSUPPORTED: dict[Primitive, str] = _unsupported()


def defbatch(*prims: Primitive):
    def register(fn):
        for p in prims:
            if p in BATCH:
                raise ValueError(f"batching rule for {p.name} defined twice")
            BATCH[p] = fn
        return fn
    return register


# ---- helpers ---------------------------------------------------------------------------------

def is_tensor(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def sample_rank(x, batched: bool) -> int:
    return len(x.shape) - 1 if batched else len(x.shape)


def align(x, rank: int):
    """A batched operand whose samples have fewer than ``rank`` dimensions, with 1s inserted after
    the batch dimension, so that it broadcasts against samples of ``rank`` dimensions."""
    shape = tuple(x.shape)
    missing = rank - (len(shape) - 1)
    if missing <= 0:
        return x
    return P.reshape(x, shape=shape[:1] + (1,) * missing + shape[1:])


def materialize(ctx: BatchContext, x):
    """An unbatched operand repeated along a new batch dimension 0 (a broadcast view)."""
    shape = tuple(x.shape)
    return P.expand(P.reshape(x, shape=(1,) + shape), shape=(ctx.size,) + shape)


def all_batched(ctx: BatchContext, args, batched) -> list:
    return [a if b or not is_tensor(a) else materialize(ctx, a) for a, b in zip(args, batched)]


def move_to_front(x, dim: int):
    """``x`` with its dimension ``dim`` moved to 0 (the others in order)."""
    n = len(x.shape)
    if dim == 0:
        return x
    return P.permute(x, dims=(dim,) + tuple(d for d in range(n) if d != dim))


def move_from_front(x, dim: int):
    """``x`` with its dimension 0 moved to ``dim``."""
    n = len(x.shape)
    if dim == 0:
        return x
    order = list(range(1, n))
    order.insert(dim, 0)
    return P.permute(x, dims=tuple(order))


# ---- elementwise: align sample ranks, then broadcasting does the rest ------------------------

def _elementwise(prim: Primitive) -> Callable:
    def rule(ctx, args, batched, **attrs):
        rank = max(sample_rank(a, b) for a, b in zip(args, batched) if is_tensor(a))
        return prim(*[align(a, rank) if b else a for a, b in zip(args, batched)], **attrs)
    return rule


for _p in PRIMITIVES.values():
    if _p.elementwise:
        defbatch(_p)(_elementwise(_p))


# ---- reductions and scans: shift the axes by one ---------------------------------------------

def _reduce(prim: Primitive) -> Callable:
    def rule(ctx, args, batched, *, dims, keepdim):
        return prim(args[0], dims=tuple(d + 1 for d in dims), keepdim=keepdim)
    return rule


for _p in (P.sum, P.prod, P.amax, P.amin):
    defbatch(_p)(_reduce(_p))


def _arg_reduce(prim: Primitive) -> Callable:
    def rule(ctx, args, batched, *, dim, keepdim):
        (x,) = args
        if dim is not None:
            return prim(x, dim=dim + 1, keepdim=keepdim)
        shape = tuple(x.shape)
        out = prim(P.reshape(x, shape=(shape[0], numel(shape[1:]))), dim=1,
                   keepdim=False)
        return P.reshape(out, shape=(shape[0],) + (1,) * (len(shape) - 1)) if keepdim else out
    return rule


for _p in (P.argmax, P.argmin):
    defbatch(_p)(_arg_reduce(_p))


def _scan(prim: Primitive) -> Callable:
    def rule(ctx, args, batched, *, dim, **attrs):
        x = args[0]
        if len(x.shape) == 1:  # 0-d samples: scanned as 1-element rows
            return P.reshape(prim(P.reshape(x, shape=tuple(x.shape) + (1,)), dim=1, **attrs), shape=tuple(x.shape))
        return prim(x, dim=dim % (len(x.shape) - 1) + 1, **attrs)
    return rule


for _p in (P.cumsum, P.cumargmax, P.cumargmin, P.argsort):
    defbatch(_p)(_scan(_p))


# ---- movement -------------------------------------------------------------------------------

@defbatch(P.reshape)
def _(ctx, args, batched, *, shape):
    return P.reshape(args[0], shape=(ctx.size,) + tuple(shape))


@defbatch(P.permute)
def _(ctx, args, batched, *, dims):
    return P.permute(args[0], dims=(0,) + tuple(d + 1 for d in dims))


@defbatch(P.expand)
def _(ctx, args, batched, *, shape):
    return P.expand(align(args[0], len(shape)), shape=(ctx.size,) + tuple(shape))


@defbatch(P.slice)
def _(ctx, args, batched, *, index):
    return P.slice(args[0], index=((0, ctx.size, 1),) + tuple(index))


@defbatch(P.select)
def _(ctx, args, batched, *, dim, index):
    return P.select(args[0], dim=dim + 1, index=index)


@defbatch(P.slice_scatter)
def _(ctx, args, batched, *, index):
    x, src = all_batched(ctx, args, batched)
    return P.slice_scatter(x, src, index=((0, ctx.size, 1),) + tuple(index))


@defbatch(P.pad)
def _(ctx, args, batched, *, pads, **attrs):
    return P.pad(args[0], pads=((0, 0),) + tuple(pads), **attrs)


# ---- indexing -------------------------------------------------------------------------------

@defbatch(P.index_check)
def _(ctx, args, batched, **attrs):
    return P.index_check(args[0], **attrs)  # elementwise on the index


@defbatch(P.take)
def _(ctx, args, batched, *, axis):
    x, idx = args
    bx, bi = batched
    if not bi:
        return P.take(x, idx, axis=axis + 1)
    if not bx:  # the index's batch lands where the taken axis was
        return move_to_front(P.take(x, idx, axis=axis), axis)
    # both batched: take from the samples laid end to end, the index offset by each sample's start
    shape = tuple(x.shape)
    size = shape[axis + 1]
    others = tuple(d for d in range(1, len(shape)) if d != axis + 1)
    xs = P.permute(x, dims=(0, axis + 1) + others)       # (B, A, the sample's other dims...)
    flat = P.reshape(xs, shape=(ctx.size * size,) + tuple(shape[d] for d in others))
    idx = P.where(P.lt(idx, 0), P.add(idx, size), idx)
    offsets = P.reshape(P.mul(P.arange(start=0, end=ctx.size, step=1, dtype=idx.dtype), size),
                        shape=(ctx.size,) + (1,) * (len(idx.shape) - 1))
    out = P.take(flat, P.add(idx, offsets), axis=0)      # (B, idx..., rest...)
    # the sample's layout is x[:axis] + idx + x[axis+1:]: move the index dims after the leading ones
    ni = len(idx.shape) - 1
    rest = len(shape) - 2
    lead = tuple(range(1 + ni, 1 + ni + axis))
    return P.permute(out, dims=(0,) + lead + tuple(range(1, 1 + ni)) + tuple(range(1 + ni + axis, 1 + ni + rest)))


def _batched_axis(prim: Primitive) -> Callable:
    """Every operand given the batch dimension; the op's ``axis`` moves one to the right."""
    def rule(ctx, args, batched, *, axis):
        return prim(*all_batched(ctx, args, batched), axis=axis + 1)
    return rule


for _p in (P.concat, P.gather, P.scatter, P.scatter_add):
    defbatch(_p)(_batched_axis(_p))


@defbatch(P.index_add)
def _(ctx, args, batched, *, axis):
    x, idx, src = args
    x, src = all_batched(ctx, (x, src), (batched[0], batched[2]))
    if not batched[1]:
        return P.index_add(x, idx, src, axis=axis + 1)
    # a batched index: per sample, index_add is a scatter_add with the index spread over src's shape
    sshape = tuple(src.shape)
    spread = (ctx.size,) + tuple(sshape[i] if i == axis + 1 else 1 for i in range(1, len(sshape)))
    idx = P.expand(P.reshape(idx, shape=spread), shape=sshape)
    return P.scatter_add(x, idx, src, axis=axis + 1)


@defbatch(P.searchsorted)
def _(ctx, args, batched, **attrs):
    seq, values = args
    bs, bv = batched
    if not bs and len(seq.shape) == 1:
        return P.searchsorted(seq, values, **attrs)  # one sorted sequence for every value
    seq = seq if bs else materialize(ctx, seq)
    values = values if bv else materialize(ctx, values)
    vshape = tuple(values.shape)
    scalar = len(vshape) == 1
    if scalar:
        values = P.reshape(values, shape=vshape + (1,))
        vshape = vshape + (1,)
    sshape = tuple(seq.shape)
    if len(sshape) == 2:  # one 1-d sequence per sample: spread over the values' leading dims
        seq = P.expand(P.reshape(seq, shape=(sshape[0],) + (1,) * (len(vshape) - 2) + sshape[1:]),
                       shape=vshape[:-1] + sshape[1:])
    out = P.searchsorted(seq, values, **attrs)
    return P.reshape(out, shape=vshape[:1]) if scalar else out


# ---- matmul and batched linear algebra -------------------------------------------------------

def _matrix_operands(ctx, a, b, ba, bb):
    """Operands of a batched matrix product: vectors made matrices (so numpy's 1-d rules cannot
    mistake the batch for a matrix dimension), sample ranks aligned. Returns them and which
    result dims to squeeze away."""
    squeeze = []
    if sample_rank(a, ba) == 1:
        a = P.reshape(a, shape=tuple(a.shape[:-1]) + (1,) + tuple(a.shape[-1:]))
        squeeze.append(-2)
    if sample_rank(b, bb) == 1:
        b = P.reshape(b, shape=tuple(b.shape) + (1,))
        squeeze.append(-1)
    rank = max(sample_rank(a, ba), sample_rank(b, bb))
    return (align(a, rank) if ba else a), (align(b, rank) if bb else b), squeeze


@defbatch(P.matmul)
def _(ctx, args, batched):
    a, b, squeeze = _matrix_operands(ctx, *args, *batched)
    out = P.matmul(a, b)
    if not squeeze:
        return out
    shape = tuple(out.shape)
    keep = shape[:-2] + (() if -2 in squeeze else shape[-2:-1]) + (() if -1 in squeeze else shape[-1:])
    return P.reshape(out, shape=keep)


@defbatch(P.solve)
def _(ctx, args, batched):
    a, b, _ = _matrix_operands(ctx, *args, *batched)
    return P.solve(a, b)


def _aligned_matrices(prim: Primitive, vectors: tuple[int, ...] = ()) -> Callable:
    """Linear algebra of several stacks of matrices whose batch dims broadcast (solving with a
    factorization, least squares): every operand carries the batch, sample ranks aligned; the
    operands at ``vectors`` (pivots) are stacks of vectors, aligned as their matrices are."""
    def rule(ctx, args, batched, **attrs):
        args = all_batched(ctx, args, batched)
        rank = max(sample_rank(a, True) + (i in vectors) for i, a in enumerate(args))
        return prim(*(align(a, rank - (i in vectors)) for i, a in enumerate(args)), **attrs)
    return rule


for _p, _vectors in ((P.lu_solve, (1,)), (P.ldl_solve, (1,)), (P.lstsq, ())):
    defbatch(_p)(_aligned_matrices(_p, _vectors))


def _leading_batch(prim: Primitive) -> Callable:
    """Linear algebra that already works on stacks of matrices: the batch is one more leading dim."""
    def rule(ctx, args, batched, **attrs):
        return prim(args[0], **attrs)
    return rule


for _p in PRIMITIVES.values():
    if _p.kind == "linalg" and _p not in BATCH:
        defbatch(_p)(_leading_batch(_p))


# ---- complex views and Fourier transforms: the batch is one more leading dimension -----------

defbatch(P.view_as_real)(_leading_batch(P.view_as_real))
defbatch(P.view_as_complex)(_leading_batch(P.view_as_complex))


def _fft(prim: Primitive) -> Callable:
    def rule(ctx, args, batched, *, dims, **attrs):
        return prim(args[0], dims=tuple(d + 1 for d in dims), **attrs)
    return rule


for _p in (P.fft_c2c, P.fft_r2c, P.fft_c2r):
    defbatch(_p)(_fft(_p))


# ---- windows (conv's unfold/fold): the batch joins the leading N dimension --------------------

def _window(prim: Primitive) -> Callable:
    def rule(ctx, args, batched, **attrs):
        x = args[0]
        shape = tuple(x.shape)
        out = prim(P.reshape(x, shape=(shape[0] * shape[1],) + shape[2:]), **attrs)
        return P.reshape(out, shape=shape[:2] + tuple(out.shape[1:]))
    return rule


defbatch(P.unfold)(_window(P.unfold))
defbatch(P.fold)(_window(P.fold))


# ---- random numbers -------------------------------------------------------------------------

@defbatch(P.rand_uniform)
def _(ctx, args, batched, *, shape, **attrs):
    if ctx.randomness == "error":
        raise RuntimeError(
            "vmap: called random operation while in randomness error mode. Please either use the 'same' or "
            "'different' randomness flags on vmap or perform the randomness operation out of vmap")
    if batched[0]:
        raise RuntimeError("vmap: a random op's key is batched; draw random numbers outside the vmapped "
                           "function or with randomness='same'")
    return P.rand_uniform(args[0], shape=(ctx.size,) + tuple(shape), **attrs)


# ---- a custom autograd.Function's output ------------------------------------------------------

@defbatch(P.custom_vjp)
def _(ctx, args, batched, *, bwd, index, n_inputs, has_grad, fn):
    # the forward value as it comes (batched), and the backward graph batched too: its cotangents
    # carry the batch, its captured values as they come. The VJP rule sums the gradient of an
    # unbatched input over the batch (sum_to), as the gradient of a vmapped function must.
    from .batching import batch_graph
    captured = list(batched[1 + n_inputs:])
    body = batch_graph(bwd, [True] * (len(bwd.inputs) - len(captured)) + captured, ctx.size, ctx.randomness)
    x = args[0] if batched[0] else materialize(ctx, args[0])
    return P.custom_vjp(x, *args[1:], bwd=body, index=index, n_inputs=n_inputs, has_grad=has_grad, fn=fn)
