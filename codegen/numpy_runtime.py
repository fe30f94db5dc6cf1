"""What generated numpy code calls at run time: its namespace (``namespace``) and the helper
functions the lowerings of ``numpy_codegen`` write calls of.

Kept apart from the code generator so that loading cached code needs only this module: a warm
start that finds its compiled entry in the cache imports no code generator (``numpy_codegen``
and the modules it needs took ~3 ms of a warm start of the MLP training step).
"""
from __future__ import annotations

import math

import numpy as np

from graphc.ir import prims as P
from graphc.ir.primitive import PRIMITIVES, as_dtype

_BITS = {2: np.uint16, 4: np.uint32, 8: np.uint64}  # the integer type of a float's bits, by itemsize
WHERE_ZERO_FROM = 2048  # elements


def where_zero(cond: np.ndarray, x: np.ndarray, keep: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``where(cond, x, 0)`` (``keep``) or ``where(cond, 0, x)`` for a real float array ``x``, as
    ``x``'s bits times the condition: +0.0 where the element is dropped (inf and NaN too). Below
    ``WHERE_ZERO_FROM`` elements np.where's one call is cheaper, unless there is a planned buffer
    ``out`` (of the result's shape and dtype) to write into: no allocation (64x256 float32: 11
    against 20 us)."""
    if out is None and x.size < WHERE_ZERO_FROM and np.size(cond) < WHERE_ZERO_FROM:
        return np.where(cond, x, x.dtype.type(0)) if keep else np.where(cond, x.dtype.type(0), x)
    bits = _BITS[x.dtype.itemsize]
    if out is None:
        out = np.empty(np.broadcast_shapes(np.shape(cond), x.shape), x.dtype)
    np.multiply(x.view(bits), cond if keep else np.logical_not(cond), out=out.view(bits))
    return out


# exp_shifted leaves a softmax's max out where every element lies within this bound of 0: exp
# can then neither overflow (e^64 ~ 6e27, a sum of 1e10 of them is still finite in float32) nor
# come out subnormal (e^-64 ~ 1.6e-28)
UNSHIFTED_EXP_BOUND = 64.0


def exp_shifted(x: np.ndarray, dims: tuple, out: np.ndarray | None = None) -> np.ndarray:
    """A softmax's ``exp(x - amax(x, dims))`` up to a positive factor per slice, which the
    softmax's normalization cancels (``numpy_codegen._shifted_exps`` says where): ``exp(x)``
    itself where the whole array lies within UNSHIFTED_EXP_BOUND of 0 (two reductions over the
    array instead of a max per row and a difference whose operands differ in shape: the LN
    block's softmax on 64x256 float32, 22.7 against 18.2 us; its values are as accurate, the
    difference's rounding gone), else the shifted form (NaN and infinities take it too)."""
    if type(x) is np.ndarray and x.size:
        hi, lo = np.maximum.reduce(x, axis=None), np.minimum.reduce(x, axis=None)
        if hi <= UNSHIFTED_EXP_BOUND and lo >= -UNSHIFTED_EXP_BOUND:
            return np.exp(x, out=out)
    last = tuple(dims) == (x.ndim - 1,)
    m = P.reduce_rows(np.maximum, x, True) if last else np.maximum.reduce(x, axis=tuple(dims), keepdims=True)
    d = np.subtract(x, m, out=out)
    return np.exp(d, out=d)


def where_rest(x: np.ndarray, kept: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The other half of a ``where_zero`` pair: ``x`` zeroed where ``kept`` (``where_zero``'s result
    on ``x``, either form) holds ``x``'s elements, and kept where it holds +0.0 in their place: one
    xor of their bits (exact: +0.0 where dropped, as ``where_zero``), against its multiply by the
    negated condition (65536 float32: 9 against 18 us)."""
    bits = _BITS[x.dtype.itemsize]
    if out is None:
        out = np.empty(np.broadcast_shapes(x.shape, kept.shape), x.dtype)
    np.bitwise_xor(x.view(bits), kept.view(bits), out=out.view(bits))
    return out


def where_into(cond, x, y, dtype, out: np.ndarray | None = None) -> np.ndarray:
    """numpy's ``where(cond, x, y)`` as an array of ``dtype`` (the graph's type), copied into the
    planned buffer ``out`` when there is one (the types ``where_zero`` and ``where_bits`` do not
    take, and small arrays, where np.where's one call is the cheapest)."""
    r = np.where(cond, x, y)
    if out is None:
        return as_dtype(r, dtype)
    np.copyto(out, r, casting="unsafe")
    return out


def where_bits(cond: np.ndarray, x, y, out: np.ndarray | None = None) -> np.ndarray:
    """``where(cond, x, y)`` for real floats of one dtype (arrays, or numbers beside one), on
    their bits: ``y ^ ((x ^ y) * cond)``, three integer passes that give each element's exact bits
    (-0.0 and NaN payloads included), against np.where's loop that branches on every element (128K
    float32 under a random mask: ~0.4 against 3.5 ns an element). A result planned over ``y``'s
    buffer takes the mirrored form; over both operands' (``where(c, x, x)``), numpy's where."""
    arr = x if type(x) is np.ndarray else y
    bits = _BITS[arr.dtype.itemsize]
    if out is None:
        out = np.empty(np.broadcast_shapes(np.shape(cond), np.shape(x), np.shape(y)), arr.dtype)
    over_x, over_y = (type(v) is np.ndarray and np.may_share_memory(out, v) for v in (x, y))
    if over_x and over_y:
        np.copyto(out, np.where(cond, x, y))
        return out
    if over_y:  # x ^ ((x ^ y) * ~cond): y is read before out is written
        x, y, cond = y, x, np.logical_not(cond)
    xb, yb = (v.view(bits) if type(v) is np.ndarray else np.asarray(v, arr.dtype).view(bits) for v in (x, y))
    ob = out.view(bits)
    np.bitwise_xor(xb, yb, out=ob)
    np.multiply(ob, cond, out=ob)
    np.bitwise_xor(ob, yb, out=ob)
    return out


# Sums as BLAS products with ones vectors (see ``numpy_codegen``'s SUM_ROWS_MAX for when the
# lowering writes them); past SUM_ROWS_BLAS_MAX elements einsum's single-threaded loop instead.
SUM_ROWS_BLAS_MAX = 1 << 16
_ONES: dict[tuple, np.ndarray] = {}


def sum_rows(x: np.ndarray, keepdims: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``x.sum(-1, keepdims=keepdims)`` (``out``: the array to write): generated code's float sum
    over the last axis. A strided ``x`` (a view) or a device array takes ``np.add.reduce`` (which
    dispatches to the array's own module)."""
    if type(x) is not np.ndarray or not x.flags.c_contiguous:
        return np.add.reduce(x, axis=-1, keepdims=keepdims, out=out)
    if x.size > SUM_ROWS_BLAS_MAX:
        r = np.einsum("...j->...", x, out=None if out is None else out.reshape(x.shape[:-1]))
        return out if out is not None else r[..., None] if keepdims else r
    ones = _ones((x.shape[-1], 1) if keepdims else (x.shape[-1],), x.dtype)
    return x.dot(ones) if out is None else x.dot(ones, out=out)


_VECDOT = getattr(np, "vecdot", None)  # numpy >= 2.0


def sum_products(a: np.ndarray, b: np.ndarray, keepdims: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``(a * b).sum(-1, keepdims=keepdims)`` for real float arrays whose last axes have the same
    length (``numpy_codegen._summed_products`` says where): one ``np.vecdot`` (BLAS dot per row), no
    product array written and read back (64x256 float32: 2.3 against 4.7 us; a layer norm's
    variance, softmax's and layer norm's backward sums). Device arrays, and numpy before 2.0,
    take the product and ``np.add.reduce``."""
    if _VECDOT is None or type(a) is not np.ndarray or type(b) is not np.ndarray:
        return np.add.reduce(np.multiply(a, b), axis=-1, keepdims=keepdims, out=out)
    r = _VECDOT(a, b, out=None if out is None else out[..., 0] if keepdims else out)
    return out if out is not None else r[..., None] if keepdims else r


def sum_products_channels(a: np.ndarray, b: np.ndarray, keepdims: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``(a * b).sum((0, 2, 3, ...), keepdims=keepdims)`` for real float (N, C, spatial...)
    arrays of one shape: one ``np.vecdot`` per image and channel over its spatial elements, then
    the sum over the images, no product array written (64x32x8x8 float32: 37 against 56 us with
    ``sum_channels``; 16x64x32x32: 106 against 236). Strided or device arrays, and numpy before
    2.0, take the product and ``sum_channels``."""
    if (_VECDOT is None or type(a) is not np.ndarray or type(b) is not np.ndarray or not a.flags.c_contiguous
            or not b.flags.c_contiguous or not a.size):
        return sum_channels(np.multiply(a, b), keepdims, out)
    n, c = a.shape[:2]
    r = np.add.reduce(_VECDOT(a.reshape(n, c, -1), b.reshape(n, c, -1)), axis=0,
                      out=None if out is None else out.reshape(c))
    if out is not None:
        return out
    return r.reshape((1, c) + (1,) * (a.ndim - 2)) if keepdims else r


# copy_c and concat move contiguous rows of at most SHORT_ROW elements as single items
# (``_as_items``), from ITEMS_FROM elements in all: below, numpy's own call is cheaper than the
# helper's checks (~5 us); past SHORT_ROW, numpy's loop over each row costs little more than the
# row's bytes (rows of 256 float32: 15 against 14 us), and a concat of many operands would pay
# the checks per operand (20 LSTM steps' 16x256 gate gradients: 11 against 46 us).
ITEMS_FROM = 8192
SHORT_ROW = 32
_VOIDS: dict[int, np.dtype] = {}


def _run_start(x: np.ndarray) -> int:
    """The first axis from which on ``x``'s axes are one contiguous run of memory (C order)."""
    run, k = x.itemsize, x.ndim
    while k and (x.shape[k - 1] == 1 or x.strides[k - 1] == run):
        run *= x.shape[k - 1]
        k -= 1
    return k


def _as_items(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` with its axes from ``axis`` on (one contiguous run: ``_run_start``) seen as one item
    each, of a void dtype of their bytes. numpy copies a strided array one innermost run at a
    time, ~10 ns a run: copying a pooling window offset's rows of 4 float32 (2048x4 of them) took
    37 us element-wise, 4 us as 16-byte items; rows of 2 elements 156 against 13 us, of 256
    elements no slower."""
    size = math.prod(x.shape[axis:])
    nbytes = size * x.itemsize
    void = _VOIDS.get(nbytes)
    if void is None:
        void = _VOIDS.setdefault(nbytes, np.dtype((np.void, nbytes)))
    return x.reshape(x.shape[:axis] + (size,)).view(void)[..., 0]  # the reshape is a view: one run


def copy_c(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x`` copied into ``out`` (a planned buffer), or into a new C-contiguous array. A large
    view whose innermost axes are short contiguous rows is copied as items of those rows' bytes."""
    if out is None:
        return np.array(x, order="C")
    if (type(x) is np.ndarray and x.size >= ITEMS_FROM and not x.flags.c_contiguous and not x.dtype.hasobject
            and out.dtype == x.dtype and out.flags.c_contiguous):
        axis = _run_start(x)  # > 0: x is strided
        if axis < x.ndim and 1 < math.prod(x.shape[axis:]) <= SHORT_ROW:
            np.copyto(_as_items(out, axis), _as_items(x, axis))
            return out
    np.copyto(out, x)
    return out


def concat(xs: tuple, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """``np.concatenate(xs, axis)`` into ``out``. Along an axis before the last, a large result's
    short rows (the axes after ``axis``) are copied as single items when each operand's are
    contiguous (a pooling gradient's halves of 2048x4x1x4 float32: 75 against 16 us)."""
    after = axis + 1
    if (out is None or out.size < ITEMS_FROM or not 1 < math.prod(out.shape[after:]) <= SHORT_ROW
            or out.dtype.hasobject or not out.flags.c_contiguous):
        return np.concatenate(xs, axis=axis, out=out)
    for x in xs:
        if type(x) is not np.ndarray or x.dtype != out.dtype or _run_start(x) > after:
            return np.concatenate(xs, axis=axis, out=out)
    np.concatenate([_as_items(x, after) for x in xs], axis=axis, out=_as_items(out, after))
    return out


def sum_channels(x: np.ndarray, keepdims: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``x.sum((0, 2, 3, ...), keepdims=keepdims)``: a batch norm's per-channel sum over an
    (N, C, spatial...) array. numpy's reduction over those strided axes is 5x slower than two
    BLAS products with ones vectors, ones(N) @ x as (N, C*S), then as (C, S) @ ones(S) (64x32x8x8
    float32: 27 vs 130 us); past SUM_ROWS_BLAS_MAX elements (where OpenBLAS would use its
    threads) einsum's loop sums them, 2.5x faster still than the reduction. A strided ``x`` (a
    view) or a device array takes ``np.add.reduce``."""
    axes = (0,) + tuple(range(2, x.ndim))
    if type(x) is not np.ndarray or not x.flags.c_contiguous or not x.size:
        return np.add.reduce(x, axis=axes, keepdims=keepdims, out=out)
    n, c = x.shape[:2]
    s = x.size // (n * c)
    flat = None if out is None else out.reshape(c)
    if x.size > SUM_ROWS_BLAS_MAX:
        r = np.einsum("ncs->c", x.reshape(n, c, s), out=flat)
    else:
        r = _ones((n,), x.dtype).dot(x.reshape(n, c * s)).reshape(c, s).dot(_ones((s,), x.dtype), out=flat)
    if out is not None:
        return out
    return r.reshape((1, c) + (1,) * (x.ndim - 2)) if keepdims else r


def matmul_nt(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for a matrix ``a`` of few rows and ``b`` the transpose of a C-contiguous matrix (a
    Linear layer's ``x @ W.T``): computed as ``(W @ x.T).T`` and copied into ``out``. OpenBLAS's
    product of that orientation is faster when ``a`` has few rows (numpy_codegen.matmul_nt_pays says
    which shapes); any other operands take ``np.matmul``."""
    if type(a) is np.ndarray and type(b) is np.ndarray and b.ndim == 2 and b.T.flags.c_contiguous:
        t = np.matmul(b.T, a.T)
        if out is None:
            return np.ascontiguousarray(t.T)
        np.copyto(out, t.T)
        return out
    return np.matmul(a, b, out=out)


def _ones(shape: tuple, dtype) -> np.ndarray:
    """A read-only array of ones, made once per shape and dtype (the sums' BLAS operands)."""
    key = (shape, dtype)
    ones = _ONES.get(key)
    if ones is None:  # a race makes two equal vectors: harmless
        ones = np.ones(shape, dtype)
        ones.flags.writeable = False
        ones = _ONES.setdefault(key, ones)
    return ones


def fdiv(a: float, b: float) -> float:
    """``a / b`` as numpy's float64 division (see numpy_scalars): inf or nan for a zero divisor
    (Python raises)."""
    return a / b if b else float(np.true_divide(a, b))


def namespace() -> dict:
    from graphc.ir import dtypes
    ns = {"np": np, "_impl": {name: p.impl for name, p in PRIMITIVES.items()}, "_fix": as_dtype,
          "_check_divisor": P.check_int_divisor,
          "_dtypes": {d.name: d for d in dtypes.ALL_DTYPES},
          "_sigmoid": P.sigmoid_values, "_erf": P.erf_values, "_rsqrt": P.rsqrt_values,
          "_sum_rows": sum_rows, "_sum_products": sum_products, "_sum_products_channels": sum_products_channels,
          "_clip": P.clip_ufunc, "_copy": copy_c, "_concat": concat,
          "_where_zero": where_zero, "_where_rest": where_rest, "_where_bits": where_bits, "_where_into": where_into,
          "_exp_shifted": exp_shifted,
          "_matmul_nt": matmul_nt, "_reduce_rows": P.reduce_rows, "_sum_channels": sum_channels, "_fdiv": fdiv}

    def _expit(x, out=None):  # scipy is imported on the first call, which puts expit itself here
        from scipy.special import expit
        ns["_expit"] = expit
        return expit(x, out=out)
    ns["_expit"] = _expit
    return ns
