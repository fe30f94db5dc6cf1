"""PyTorch functions that are compositions of graphc's ops (pointwise, products, scatters, linear
algebra, bit operations, windows...), so autograd and tracing go through them; a few that only
make sense on the host (integer gcd, histograms, draws) say so. graphc.tensor_surface attaches
them to ``torch`` and, where PyTorch has the method, to ``Tensor``."""
from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P

from . import compat_extras, creation, linalg, math_ops, shape_ops
from .complex_ops import (angle, conj, conj_physical, imag, is_conj, is_neg, isreal, real, resolve_conj,  # noqa: F401
                          resolve_neg, sgn)
from .tensors import Tensor, device_tensor, host_array

__all__ = ["acosh", "asinh", "atanh", "arccosh", "arcsinh", "arctanh", "arctan2", "deg2rad", "rad2deg", "copysign",
           "fmax", "fmin", "heaviside", "positive", "sgn", "isneginf", "isposinf", "isreal", "conj",
           "conj_physical", "resolve_conj", "resolve_neg", "real", "imag", "angle", "is_conj", "is_neg",
           "is_signed", "is_same_size", "inner", "vdot", "addmv", "addr", "addbmm", "chain_matmul", "adjoint",
           "diagflat", "index_copy", "select_scatter", "slice_scatter", "diagonal_scatter", "narrow_copy",
           "split_with_sizes", "unsafe_split", "unsafe_chunk", "unsafe_split_with_sizes", "renorm",
           "cholesky_inverse", "cholesky_solve", "triangular_solve", "histogram", "histogramdd", "index_reduce",
           "combinations", "scalar_tensor", "fill", "bitwise_left_shift", "bitwise_right_shift", "ldexp", "gcd",
           "lcm", "nextafter", "frexp", "binomial", "poisson", "slice_copy", "unique_consecutive",
           "is_distributed", "gradient", "hann_window", "hamming_window", "blackman_window", "bartlett_window",
           "kaiser_window", "vander", "unravel_index", "empty_strided", "empty_permuted", "frombuffer",
           "matrix_exp"]

matrix_exp = linalg.matrix_exp


def _float(x):
    return math_ops._to_float(x)


# ---- pointwise ------------------------------------------------------------------------------

def acosh(input, *, out=None):
    x = _float(input)
    return math_ops.write_out(out, P.log(P.add(x, P.sqrt(P.sub(P.mul(x, x), 1)))))


def asinh(input, *, out=None):
    x = _float(input)  # odd function: the formula on |x| keeps precision for large negative x
    ax = P.abs(x)
    return math_ops.write_out(out, P.mul(P.sign(x), P.log(P.add(ax, P.sqrt(P.add(P.mul(ax, ax), 1))))))


def atanh(input, *, out=None):
    x = _float(input)
    return math_ops.write_out(out, P.mul(P.sub(P.log1p(x), P.log1p(P.neg(x))), 0.5))


arccosh, arcsinh, arctanh, arctan2 = acosh, asinh, atanh, math_ops.atan2


def deg2rad(input, *, out=None):
    return math_ops.write_out(out, P.mul(_float(input), math.pi / 180))


def rad2deg(input, *, out=None):
    return math_ops.write_out(out, P.mul(_float(input), 180 / math.pi))


def copysign(input, other, *, out=None):
    a, b = _float(input), math_ops.as_operand(other)
    sign = P.where(compat_extras.signbit(b if isinstance(b, Tensor) else creation.tensor(float(b))), -1.0, 1.0)
    return math_ops.write_out(out, P.mul(P.abs(a), sign))


def fmax(input, other, *, out=None):
    """maximum, except that a NaN loses to a number."""
    a, b = math_ops.as_operand(input), math_ops.as_operand(other)
    return math_ops.write_out(out, P.where(P.isnan(a), b, P.where(P.isnan(b), a, P.maximum(a, b))))


def fmin(input, other, *, out=None):
    a, b = math_ops.as_operand(input), math_ops.as_operand(other)
    return math_ops.write_out(out, P.where(P.isnan(a), b, P.where(P.isnan(b), a, P.minimum(a, b))))


def heaviside(input, values, *, out=None):
    if input.dtype is not values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes")
    zero = P.eq(input, 0)
    return math_ops.write_out(out, P.where(zero, values, P.cast(P.gt(input, 0), dtype=input.dtype)))


def positive(input):
    if input.dtype is dt.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def isneginf(input, *, out=None):
    return math_ops.write_out(out, P.logical_and(P.isinf(input), P.lt(input, 0)))


def isposinf(input, *, out=None):
    return math_ops.write_out(out, P.logical_and(P.isinf(input), P.gt(input, 0)))


def is_signed(input) -> bool:
    return input.dtype is not dt.uint8 and input.dtype is not dt.bool_


def is_same_size(input, other) -> bool:
    return tuple(input.shape) == tuple(other.shape)


# ---- products -------------------------------------------------------------------------------

def inner(input, other, *, out=None):
    if input.dim() == 0 or other.dim() == 0:
        return math_ops.write_out(out, math_ops.mul(input, other))
    return math_ops.write_out(out, math_ops.tensordot(input, other, dims=([-1], [-1])))


def vdot(input, other, *, out=None):
    return math_ops.write_out(out, math_ops.dot(conj(input), other))


def _beta_alpha(input, product, beta, alpha):
    """beta * input + alpha * product; beta == 0 ignores input (NaN included), as PyTorch."""
    scaled = product if alpha == 1 else math_ops.mul(product, alpha)
    if beta == 0:
        return P.add(scaled, creation.zeros_like(input))  # broadcast to input's shape, its values unread
    return math_ops.add(input if beta == 1 else math_ops.mul(input, beta), scaled)


def addmv(input, mat, vec, *, beta=1, alpha=1, out=None):
    return math_ops.write_out(out, _beta_alpha(input, math_ops.mv(mat, vec), beta, alpha))


def addr(input, vec1, vec2, *, beta=1, alpha=1, out=None):
    return math_ops.write_out(out, _beta_alpha(input, math_ops.outer(vec1, vec2), beta, alpha))


def addbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    return math_ops.write_out(out, _beta_alpha(input, math_ops.bmm(batch1, batch2).sum(0), beta, alpha))


def chain_matmul(*matrices, out=None):
    warnings.warn("torch.chain_matmul is deprecated and will be removed in a future PyTorch release. "
                  "Use torch.linalg.multi_dot instead", UserWarning, stacklevel=2)
    return linalg.multi_dot(matrices, out=out)


def adjoint(input):
    return shape_ops.transpose(input, -2, -1)


def diagflat(input, offset: int = 0):
    return shape_ops.diag(input.reshape(-1), offset)


# ---- scatters and copies --------------------------------------------------------------------

def index_copy(input, dim: int, index, source):
    """``input`` with the slices ``index`` along ``dim`` replaced by ``source``'s."""
    old = shape_ops.index_select(input, dim, index)
    return shape_ops.index_add(input, dim, index, math_ops.sub(source, old))


def _scatter_into(input, src, key):
    out = input.clone()
    out[key] = src
    return out


def select_scatter(input, src, dim: int, index: int):
    d = dim % input.dim()
    return _scatter_into(input, src, (slice(None),) * d + (index,))


def slice_scatter(input, src, dim: int = 0, start=None, end=None, step: int = 1):
    d = dim % input.dim()
    return _scatter_into(input, src, (slice(None),) * d + (slice(start, end, step),))


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """``input`` with its diagonal (as ``input.diagonal(offset, dim1, dim2)``) replaced by ``src``."""
    out = input.clone()
    shape_ops.diagonal(out, offset, dim1, dim2).copy_(src)  # a write through a view: autograd sees it
    return out


def index_reduce(input, dim: int, index, source, reduce: str, *, include_self: bool = True):
    """Reduce (prod, mean, amax, amin) the slices of ``source`` into those of ``input`` that
    ``index`` names along ``dim``: scatter_reduce with the index spread over the slices."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    d = dim % input.dim()
    if index.dim() > 1:
        raise IndexError("index_reduce_(): Index is supposed to be a vector")
    shape = [1] * source.dim()
    shape[d] = index.shape[0]
    full = index.reshape(shape).expand(tuple(source.shape))
    return compat_extras.scatter_reduce(input, d, full, source, reduce, include_self=include_self)


def narrow_copy(input, dim: int, start: int, length: int):
    return shape_ops.narrow(input, dim, start, length).clone()


def split_with_sizes(input, split_sizes, dim: int = 0):
    return shape_ops.split(input, list(split_sizes), dim)


unsafe_split, unsafe_chunk = shape_ops.split, shape_ops.chunk
unsafe_split_with_sizes = split_with_sizes


def renorm(input, p: float, dim: int, maxnorm: float):
    """Each sub-tensor along ``dim`` rescaled to p-norm at most ``maxnorm``."""
    other = tuple(d for d in range(input.dim()) if d != dim % input.dim())
    norm = math_ops.sum(math_ops.abs(input) ** p, dim=other, keepdim=True) ** (1.0 / p)
    scale = P.where(P.gt(norm, maxnorm), P.div(maxnorm, P.add(norm, 1e-7)), 1.0)
    return math_ops.mul(input, scale)


def sum_to_size(self, *size):
    """Sum ``self`` down to ``size`` (which it must broadcast from)."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    lead = self.dim() - len(size)
    if lead < 0 or builtins.any(s != 1 and s != self.shape[lead + i] for i, s in enumerate(size)):
        raise RuntimeError(f"size {{{', '.join(map(str, size))}}} is not expandable to size "
                           f"{{{', '.join(map(str, self.shape))}}}.")
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(size) if s == 1 and self.shape[lead + i] != 1)
    out = math_ops.sum(self, dim=dims, keepdim=True) if dims else self
    return out.reshape(size)


# ---- linear algebra -------------------------------------------------------------------------

def cholesky_inverse(L, upper: bool = False, *, out=None):
    A = L.mT @ L if upper else L @ L.mT
    return math_ops.write_out(out, linalg.inv(A))


def cholesky_solve(B, L, upper: bool = False, *, out=None):
    A = L.mT @ L if upper else L @ L.mT
    return math_ops.write_out(out, linalg.solve(A, B))


def triangular_solve(b, A, upper: bool = True, transpose: bool = False, unitriangular: bool = False):
    from .math_ops import _return_type
    M = A.mT if transpose else A
    if unitriangular:
        n = A.shape[-1]
        eye = creation.eye(n, dtype=A.dtype, device=A.device)
        M = M * (1 - eye) + eye
    x = linalg.solve_triangular(M, b, upper=upper != transpose)
    return _return_type("triangular_solve", ["solution", "cloned_coefficient"])(x, A.clone())


def histogramdd(input, bins=10, *, range=None, weight=None, density: bool = False):
    """Counts of the rows of ``input`` (points in d dims) over a grid of bins (host computation)."""
    from .math_ops import _return_type
    pts = host_array(input._data).reshape(-1, input.shape[-1])
    b = [host_array(e._data) for e in bins] if isinstance(bins, (list, tuple)) and bins and isinstance(
        bins[0], Tensor) else bins
    rng = None if range is None else [tuple(range[2 * i:2 * i + 2]) for i in builtins.range(len(range) // 2)]
    w = host_array(weight._data).reshape(-1) if weight is not None else None
    hist, edges = np.histogramdd(pts, bins=b, range=rng, weights=w, density=density)
    dtype = input._data.dtype
    return _return_type("histogramdd", ["hist", "bin_edges"])(
        device_tensor(hist.astype(dtype), input), tuple(device_tensor(e.astype(dtype), input) for e in edges))


def histogram(input, bins=100, *, range=None, weight=None, density: bool = False, out=None):
    """Counts over equal-width (or given) bins, computed on the host (not differentiable)."""
    from .math_ops import _return_type
    edges = host_array(bins._data) if isinstance(bins, Tensor) else bins
    w = host_array(weight._data) if weight is not None else None
    hist, edges = np.histogram(host_array(input._data), bins=edges, range=range, weights=w, density=density)
    return _return_type("histogram", ["hist", "bin_edges"])(device_tensor(hist.astype(input._data.dtype), input),
                                                            device_tensor(edges.astype(input._data.dtype), input))


def combinations(input, r: int = 2, with_replacement: bool = False):
    import itertools
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(builtins.range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if idx.shape[0] == 0:
        return input.new_empty((0,) if r else (0,))
    return input[device_tensor(idx, input)]


def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False, **_):
    return creation.tensor(s, dtype=dtype or dt.get_default_dtype(), device=device, requires_grad=requires_grad)


def fill(input, value):
    return creation.full_like(input, value)


# ---- integer and floating-point bit operations -------------------------------------------------

def _int_only(name: str, *ts) -> None:
    for x in ts:
        if isinstance(x, Tensor) and (x.dtype.is_floating_point or x.dtype is dt.bool_) or isinstance(x, float):
            d = x.dtype.scalar_name if isinstance(x, Tensor) else "Float"
            raise RuntimeError(f'"{name}_cpu" not implemented for \'{d}\'')


def bitwise_left_shift(input, other, *, out=None):
    """x << y = x * 2**y (integers)."""
    _int_only("lshift", input, other)
    return math_ops.write_out(out, math_ops.mul(input, math_ops.pow(2, math_ops.as_operand(other))))


def bitwise_right_shift(input, other, *, out=None):
    """x >> y = floor(x / 2**y): the arithmetic shift, negative numbers included."""
    _int_only("rshift", input, other)
    return math_ops.write_out(out, math_ops.floor_divide(input, math_ops.pow(2, math_ops.as_operand(other))))


def ldexp(input, other, *, out=None):
    """input * 2**other."""
    return math_ops.write_out(out, math_ops.mul(_float(input), math_ops.pow(2.0, math_ops.as_operand(other))))


def _host_binary(np_fn, name: str, integer: bool):
    """An elementwise op numpy computes on the host (integer or bit-level: not differentiable)."""
    def op(input, other, *, out=None):
        if integer:
            _int_only(name, input, other)
        b = other if isinstance(other, Tensor) else creation.tensor(other, dtype=input.dtype)
        res = np_fn(host_array(input._data), host_array(b._data))
        return math_ops.write_out(out, device_tensor(np.asarray(res), input))
    op.__name__ = name
    return op


gcd = _host_binary(np.gcd, "gcd", True)
lcm = _host_binary(np.lcm, "lcm", True)
nextafter = _host_binary(np.nextafter, "nextafter", False)


_frexp_result = math_ops._return_type("frexp", ["mantissa", "exponent"])


def frexp(input, *, out=None):
    """Mantissa in [0.5, 1) and integer exponent, with input = mantissa * 2**exponent."""
    if not input.dtype.is_floating_point:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    m, e = np.frexp(host_array(input._data))
    return _frexp_result(device_tensor(m, input), device_tensor(e.astype(np.int32), input))


# ---- sampling ---------------------------------------------------------------------------------

def binomial(count, prob, generator=None):
    """A Binomial(count, prob) draw per element (as torch.binomial)."""
    from .random import gen
    rng = gen(generator, count.device if count.device.type != "cpu" else None)
    draws = rng.binomial(host_array(count._data).astype(np.int64), host_array(prob._data))
    return device_tensor(draws.astype(count._data.dtype), count)


def poisson(input, generator=None):
    """A Poisson(rate) draw per element of ``input`` (as torch.poisson)."""
    from .random import gen
    rng = gen(generator, input.device if input.device.type != "cpu" else None)
    return device_tensor(rng.poisson(host_array(input._data)).astype(input._data.dtype), input)


# ---- more shapes and copies -------------------------------------------------------------------

def slice_copy(input, dim: int = 0, start=None, end=None, step: int = 1):
    d = dim % input.dim()
    return input[(slice(None),) * d + (slice(start, end, step),)].clone()


def unique_consecutive(input, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """Collapse runs of equal values (of the flattened input; computed on the host)."""
    if dim is not None:
        raise NotImplementedError("unique_consecutive(dim=...) is not supported by graphc")
    flat = host_array(input._data).reshape(-1)
    starts = np.concatenate([[True], flat[1:] != flat[:-1]]) if flat.size else np.zeros(0, bool)
    out = [device_tensor(flat[starts], input)]
    if return_inverse:
        out.append(device_tensor((np.cumsum(starts) - 1).reshape(input._data.shape).astype(np.int64), input))
    if return_counts:
        out.append(device_tensor(np.diff(np.append(np.flatnonzero(starts), flat.size)).astype(np.int64), input))
    return out[0] if len(out) == 1 else tuple(out)


def is_distributed(input) -> bool:
    return False


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1):
    """Estimates of d input / d x along each of ``dim`` (all by default): central differences
    inside, one-sided ones of order ``edge_order`` at the ends (as numpy.gradient), composed from
    slices so autograd goes through it. ``spacing``: one step for all dims, or one per dim."""
    dims = tuple(range(input.dim())) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    steps = list(spacing) if isinstance(spacing, (list, tuple)) else [spacing] * len(dims)
    if len(steps) != len(dims) or builtins.any(isinstance(h, Tensor) and h.dim() > 0 for h in steps):
        raise NotImplementedError("torch.gradient: graphc supports a scalar spacing per dimension")
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    out = []
    for d, h in zip(dims, steps):
        h = float(h)
        n = input.shape[d]
        if n < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")

        def at(i: int, length: int = 1):  # elements i .. i + length - 1 along d (i < 0 from the end)
            return shape_ops.narrow(input, d, i % n, length)
        inner = (at(2, n - 2) - at(0, n - 2)) / (2 * h)
        if edge_order == 1:
            first, last = (at(1) - at(0)) / h, (at(-1) - at(-2)) / h
        else:
            first = (-3 * at(0) + 4 * at(1) - at(2)) / (2 * h)
            last = (3 * at(-1) - 4 * at(-2) + at(-3)) / (2 * h)
        out.append(shape_ops.cat([first, inner, last], d))
    return tuple(out)


# ---- window functions (as torch.*_window: periodic by default, i.e. the first n of n + 1 points) ----

def _window(fn):
    def window(window_length: int, periodic: bool = True, *args, dtype=None, layout=None, device=None,
               requires_grad: bool = False, pin_memory: bool = False):
        if window_length < 0:
            raise RuntimeError(f"{fn.__name__}_window requires non-negative window_length, got window_length="
                               f"{window_length}")
        if window_length <= 1:
            return creation.ones(window_length, dtype=dtype, device=device, requires_grad=requires_grad)
        n = window_length + 1 if periodic else window_length
        values = fn(n, *args)[:window_length]
        return creation.tensor(values, dtype=dtype or dt.get_default_dtype(), device=device,
                               requires_grad=requires_grad)
    window.__name__ = fn.__name__ + "_window"
    return window


def _hamming(n, alpha: float = 0.54, beta: float = 0.46):
    return alpha - beta * np.cos(2 * np.pi * np.arange(n) / (n - 1))


def _kaiser(n, beta: float = 12.0):
    return np.kaiser(n, beta)


hann_window = _window(np.hanning)
hamming_window = _window(_hamming)
blackman_window = _window(np.blackman)
bartlett_window = _window(np.bartlett)
kaiser_window = _window(_kaiser)


def vander(x, N=None, increasing: bool = False):
    """Columns are powers of ``x``: x^(N-1) ... x^0 (or increasing)."""
    n = x.shape[0] if N is None else N
    powers = [x ** i for i in range(n)] if n else []
    cols = powers if increasing else powers[::-1]
    return shape_ops.stack(cols, 1) if cols else x.new_empty((x.shape[0], 0))


def unravel_index(indices, shape):
    """Flat indices to one index tensor per dimension of ``shape`` (host arithmetic, integers)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    idx = indices if isinstance(indices, Tensor) else creation.tensor(indices)
    if idx.dtype.is_floating_point or idx.dtype is dt.bool_:
        raise TypeError("expected 'indices' to be integer dtype, but got " + idx.dtype.scalar_name)
    flat = host_array(idx._data)
    total = int(np.prod(shape))
    if np.any(flat < -total) or np.any(flat >= total):
        raise RuntimeError("index is out of bounds for tensor with size " + str(total))
    return tuple(device_tensor(a.astype(np.int64), idx) for a in np.unravel_index(flat % max(total, 1), shape))


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False):
    """An uninitialized tensor of ``size`` (graphc chooses the strides: row-major)."""
    return creation.empty(tuple(size), dtype=dtype, device=device, requires_grad=requires_grad)


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                   pin_memory: bool = False):
    return creation.empty(tuple(size), dtype=dtype, device=device, requires_grad=requires_grad)


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False):
    """A 1-d tensor over ``buffer``'s bytes (sharing its memory, as PyTorch's)."""
    arr = np.frombuffer(buffer, dtype=dtype.np, count=count, offset=offset)
    return creation.from_numpy(arr).requires_grad_(requires_grad) if requires_grad else creation.from_numpy(arr)
