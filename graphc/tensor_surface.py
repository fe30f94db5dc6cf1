"""PyTorch functions and ``Tensor`` methods that are compositions of graphc's ops, and the tables
that attach them: one table of methods (name -> function taking ``self`` first), one list of
in-place variants generated from their out-of-place method, one table of ``is_*`` flags.

Everything here is built from existing primitives, so autograd and tracing work through it.
What graphc does not support (complex, sparse, quantized tensors...) is listed, with the reason,
in tests/data/api_excluded.txt, not here.
"""
from __future__ import annotations

import builtins
import math
import warnings
from typing import Callable

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.array_module import array_module

from . import compat_extras, creation, inplace, linalg, math_ops, shape_ops
from .nn import functional as F
from .tensors import Tensor, device_tensor, host_array

__all__ = ["acosh", "arccosh", "asinh", "arcsinh", "atanh", "arctanh", "arctan2", "deg2rad", "rad2deg", "copysign",
           "fmax", "fmin", "heaviside", "positive", "sgn", "isneginf", "isposinf", "isreal", "inner", "vdot",
           "addmv", "addr", "addbmm", "adjoint", "diagflat", "conj", "conj_physical", "resolve_conj",
           "resolve_neg", "real", "imag", "angle", "memory_format", "contiguous_format", "preserve_format",
           "channels_last", "channels_last_3d", "is_conj", "is_neg", "is_signed", "is_same_size",
           "index_copy", "select_scatter", "slice_scatter", "diagonal_scatter", "narrow_copy", "renorm",
           "cholesky_inverse", "cholesky_solve", "triangular_solve", "matrix_exp", "histogram",
           "split_with_sizes", "unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes", "layout", "strided",
           "chain_matmul", "combinations", "scalar_tensor", "fill", "pi", "e", "inf", "nan", "newaxis"]

pi, e, inf, nan, newaxis = math.pi, math.e, math.inf, math.nan, None
matrix_exp = linalg.matrix_exp


class layout:
    """A tensor layout; graphc tensors are all ``strided`` (dense)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


strided = layout("graphc.strided")


class memory_format(layout):
    """A memory format, accepted by ``to``/``contiguous``/``empty_like``...; graphc keeps every
    tensor row-major, so all formats mean the same layout."""


contiguous_format, preserve_format = memory_format("graphc.contiguous_format"), memory_format("graphc.preserve_format")
channels_last, channels_last_3d = memory_format("graphc.channels_last"), memory_format("graphc.channels_last_3d")


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


sgn = math_ops.sign  # sign for real tensors


def isneginf(input, *, out=None):
    return math_ops.write_out(out, P.logical_and(P.isinf(input), P.lt(input, 0)))


def isposinf(input, *, out=None):
    return math_ops.write_out(out, P.logical_and(P.isinf(input), P.gt(input, 0)))


def isreal(input):
    return creation.ones_like(input, dtype=dt.bool_)


# real tensors: conjugation is the identity, the imaginary part does not exist
def conj(input):
    return input


def conj_physical(input, *, out=None):
    return math_ops.write_out(out, P.copy(input))


resolve_conj = resolve_neg = conj


def real(input):
    return input


def imag(input):
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def angle(input, *, out=None):
    """0 for x >= 0, pi for x < 0, NaN kept (real input)."""
    x = _float(input)
    return math_ops.write_out(out, P.where(P.isnan(x), x, P.mul(P.cast(P.lt(x, 0), dtype=x.dtype), math.pi)))


def is_conj(input) -> bool:
    return False


is_neg = is_conj


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
    return math_ops.write_out(out, math_ops.dot(input, other))  # conjugation is the identity on reals


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


def frexp(input, *, out=None):
    """Mantissa in [0.5, 1) and integer exponent, with input = mantissa * 2**exponent."""
    from .math_ops import _return_type
    if not input.dtype.is_floating_point:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    m, e = np.frexp(host_array(input._data))
    return _return_type("frexp", ["mantissa", "exponent"])(device_tensor(m, input),
                                                           device_tensor(e.astype(np.int32), input))


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


legacy_contiguous_format = memory_format("graphc.legacy_contiguous_format")


def _resize(self, *sizes):
    warnings.warn("non-inplace resize is deprecated")
    return self.reshape(*sizes)


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


def typename(obj) -> str:
    if isinstance(obj, Tensor):
        return obj.type()
    module = type(obj).__module__
    return (module + "." if module not in (None, "builtins") else "") + type(obj).__qualname__


def is_complex(input) -> bool:
    return False


def is_inference(input) -> bool:
    return input.is_inference()


def is_storage(obj) -> bool:
    return False  # graphc tensors own arrays, not Storage objects


def is_vulkan_available() -> bool:
    return False


def get_device(input) -> int:
    return input.get_device()


_settings = {"matmul_precision": "highest", "debug_mode": 0, "warn_always": False}


def set_float32_matmul_precision(precision: str) -> None:
    """Recorded only: graphc's float32 matmuls are always full precision ("highest")."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision: {precision}, expected one of highest, high, medium")
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def set_deterministic_debug_mode(debug_mode) -> None:
    modes = {"default": 0, "warn": 1, "error": 2}
    _settings["debug_mode"] = modes[debug_mode] if isinstance(debug_mode, str) else int(debug_mode)
    compat_extras.use_deterministic_algorithms(_settings["debug_mode"] > 0, warn_only=_settings["debug_mode"] == 1)


def get_deterministic_debug_mode() -> int:
    return _settings["debug_mode"]


def set_warn_always(b: bool) -> None:
    _settings["warn_always"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _settings["warn_always"]


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    compat_extras._anomaly.update(enabled=bool(enabled), check_nan=check_nan)


is_anomaly_enabled, is_anomaly_check_nan_enabled = compat_extras.is_anomaly_enabled, compat_extras.is_anomaly_check_nan_enabled


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


# torch.<op>_: the in-place method as a function (``torch.relu_(x)`` is ``x.relu_()``)
_TORCH_INPLACE = """abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_
    atanh_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ conj_physical_ cos_ cosh_ deg2rad_ detach_ erf_ erfc_ exp2_ exp_
    expm1_ fill_ fix_ floor_ frac_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ negative_ rad2deg_ reciprocal_
    relu_ resize_as_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ square_ tan_ tanh_ trunc_ xlogy_ zero_ gcd_ lcm_
    ldexp_""".split()

# torch.<view>_copy: the view op's result as a new tensor (``torch.t_copy(x)`` is ``x.t().clone()``)
_COPY_OF_VIEW = """alias detach diagonal expand permute select split split_with_sizes squeeze t transpose unbind
    unfold unsqueeze view""".split()


def _torch_inplace(name: str):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    return fn


def _copy_of(name: str):
    def fn(input, *args, **kwargs):
        out = input.view_as(input) if name == "alias" else getattr(input, name)(*args, **kwargs)
        return tuple(o.clone() for o in out) if isinstance(out, (tuple, list)) else out.clone()
    fn.__name__ = name + "_copy"
    return fn


# torch.<op> that is the nn.functional op with the same positional arguments
_FROM_FUNCTIONAL = """conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d bilinear pixel_shuffle
    pixel_unshuffle channel_shuffle pairwise_distance cosine_similarity celu selu prelu rrelu
    threshold hardshrink avg_pool1d max_pool1d max_pool2d max_pool3d max_pool1d_with_indices adaptive_avg_pool1d
    rms_norm group_norm layer_norm celu_ selu_ rrelu_ threshold_ pdist""".split()

for _name in _FROM_FUNCTIONAL:
    globals()[_name] = getattr(F, _name)
for _name in _TORCH_INPLACE:
    globals()[_name] = _torch_inplace(_name)
for _name in _COPY_OF_VIEW:
    globals()[_name + "_copy"] = _copy_of(_name)
__all__ += _TORCH_INPLACE + _FROM_FUNCTIONAL + [n + "_copy" for n in _COPY_OF_VIEW] + """hann_window hamming_window blackman_window
    bartlett_window kaiser_window bitwise_left_shift bitwise_right_shift ldexp gcd lcm nextafter frexp binomial
    poisson gradient slice_copy unique_consecutive is_distributed legacy_contiguous_format vander unravel_index typename is_complex is_inference is_storage
    is_vulkan_available get_device set_float32_matmul_precision get_float32_matmul_precision
    set_deterministic_debug_mode get_deterministic_debug_mode set_warn_always is_warn_always_enabled
    set_anomaly_enabled is_anomaly_enabled is_anomaly_check_nan_enabled empty_strided empty_permuted
    frombuffer""".split()


# ---- methods only -----------------------------------------------------------------------------

def _new(self, *args, **kwargs):
    """Legacy ``x.new(...)`` with ``self``'s dtype and device: ``new(2, 3)`` or ``new(Size)`` an
    uninitialized tensor of that size, ``new(data)`` a tensor of that data, ``new()`` an empty one."""
    from .tensors import Size
    if len(args) == 1 and isinstance(args[0], Tensor):
        return args[0].to(self.device, self.dtype)
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)) and not isinstance(args[0], Size):
        return creation.tensor(args[0], dtype=self.dtype, device=self.device)
    return creation.empty(*(args or (0,)), dtype=self.dtype, device=self.device)


def _python_elementwise(self, name: str, others: tuple, callable: Callable):
    """``callable`` on each element of ``self`` (and of ``others``, broadcast), written back in
    place: CPU only, not differentiable (PyTorch's apply_/map_/map2_)."""
    if self.device.type != "cpu":
        raise TypeError(f"{name} is only implemented on CPU tensors")
    arr = self._data
    args = [np.broadcast_to(host_array(t._data), arr.shape) for t in others]
    if arr.size:
        arr[...] = np.vectorize(callable, otypes=[arr.dtype])(arr, *args)
    self._version.value += 1
    return self


def _apply_(self, callable: Callable):
    return _python_elementwise(self, "apply_", (), callable)


def _map_(self, other, callable: Callable):
    return _python_elementwise(self, "map_", (other,), callable)


def _map2_(self, x, y, callable: Callable):
    return _python_elementwise(self, "map2_", (x, y), callable)


def _cauchy_(self, median: float = 0.0, sigma: float = 1.0, *, generator=None):
    from .methods import _gen, _random_fill
    return _random_fill(self, median + sigma * np.tan(math.pi * (_gen(self, generator).random(self._data.shape) - 0.5)))


def _dim_order(self, *, ambiguity_check=False):
    """Dimensions from outermost to innermost in memory (by stride, then by position)."""
    st = self.stride()
    return tuple(sorted(range(self.dim()), key=lambda d: (-st[d], d)))


def _resize_(self, *size, memory_format=None):
    """Reshape in place to ``size``, keeping the leading elements (new ones uninitialized)."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    inplace.check_writable(self)
    if self.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    n = int(np.prod(size))
    flat = self._data.reshape(-1)
    new = array_module(flat).empty(n, dtype=flat.dtype)
    m = builtins.min(n, flat.size)
    new[:m] = flat[:m]
    self._data = new.reshape(size)
    self._version.value += 1
    return self


# Tensor methods that are the functions above (or graphc's existing ones), ``self`` first.
_METHODS: dict[str, Callable] = {
    **{n: globals()[n] for n in """acosh arccosh asinh arcsinh atanh arctanh arctan2 deg2rad rad2deg copysign
        fmax fmin heaviside positive sgn isneginf isposinf isreal inner vdot addmv addr addbmm adjoint diagflat
        conj conj_physical resolve_conj resolve_neg angle is_conj is_neg is_signed is_same_size index_copy
        select_scatter slice_scatter diagonal_scatter narrow_copy renorm cholesky_inverse cholesky_solve
        triangular_solve matrix_exp histogram split_with_sizes unsafe_chunk unsafe_split
        unsafe_split_with_sizes sum_to_size bitwise_left_shift bitwise_right_shift ldexp gcd lcm nextafter frexp
        unique_consecutive""".split()},
    "resize": _resize, "resize_as": lambda self, other: _resize(self, tuple(other.shape)), "map2_": _map2_,
    "corrcoef": compat_extras.corrcoef, "cov": compat_extras.cov,
    "new": _new, "apply_": _apply_, "map_": _map_, "cauchy_": _cauchy_, "dim_order": _dim_order,
    "resize_": _resize_, "resize_as_": lambda self, other, memory_format=None: _resize_(self, tuple(other.shape)),
    "new_empty_strided": lambda self, size, stride, **kw: self.new_empty(tuple(size), **kw),
    "const_data_ptr": Tensor.data_ptr, "is_nonzero": lambda self: __import__("graphc").is_nonzero(self),
    "pin_memory": lambda self, device=None: self, "share_memory_": lambda self: self,
    "is_pinned": lambda self, device=None: False, "is_shared": lambda self: False,
    "is_distributed": is_distributed, "is_set_to": lambda self, other: (
        self.data_ptr() == other.data_ptr() and tuple(self.shape) == tuple(other.shape)
        and self.stride() == other.stride()),
    "module_load": lambda self, other, assign=False: other,
    "record_stream": lambda self, stream: None,
    "to_dense": lambda self, dtype=None, *, masked_grad=None: self if dtype is None else self.to(dtype),
    "prelu": F.prelu, "hardshrink": F.hardshrink,
}

# Read-only properties: real tensors on graphc's devices, dense, strided, never quantized or nested.
_FLAGS = {name: False for name in """is_xpu is_ipu is_maia is_meta is_mkldnn is_mtia is_nested is_quantized
    is_sparse is_sparse_csr is_vulkan is_xla""".split()}

# In-place variants, each its out-of-place method computed and written back (inplace.inplace_method).
_INPLACE = """absolute arccos arcsin arctan arctan2 greater greater_equal less less_equal not_equal negative fix
    tril triu addmm baddbmm hypot acosh arccosh asinh arcsinh atanh arctanh deg2rad rad2deg copysign heaviside
    sgn addmv addr addbmm index_copy renorm conj_physical bitwise_left_shift bitwise_right_shift ldexp gcd lcm
    nextafter""".split()


def _attach() -> None:
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    for name, value in _FLAGS.items():
        setattr(Tensor, name, property(lambda self, v=value: v))
    for name in _INPLACE:
        setattr(Tensor, name + "_", inplace.inplace_method(getattr(Tensor, name), name + "_"))
    Tensor.layout = property(lambda self: strided)
    Tensor.output_nr = property(lambda self: self._output_nr)
    Tensor.name = property(lambda self: None)
    Tensor.real = property(real)
    Tensor.imag = property(imag)


_attach()
