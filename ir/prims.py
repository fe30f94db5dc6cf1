"""Every primitive op, declared once: name, operands, attributes, type rule, numpy semantics.

Attributes are keyword arguments with plain Python values (ints, tuples, DTypes, floats) so they
print and parse in the IR text. Frontend argument parsing (negative dims, ``-1`` in shapes,
PyTorch's many call signatures) happens before binding: primitives see normalized attributes.
"""
from __future__ import annotations

import builtins
import functools
import math

import numpy as np

from . import dtypes as dt
from .array_module import array_module, ignoring_fp_errors, special_module
from .dtypes import DType, result_type
from .primitive import Primitive, TensorType, register
from .shapes import ShapeError, broadcast_shapes, numel


def _shape(x) -> tuple[int, ...]:
    if type(x) in dt.TENSOR_TYPES:  # the common case while tracing: skip the probes
        return tuple(x.shape)
    return tuple(x.shape) if hasattr(x, "dtype") and not isinstance(x, np.generic) else ()


def _is_tensor(x) -> bool:
    if type(x) in dt.TENSOR_TYPES:
        return True
    return hasattr(x, "dtype") and hasattr(x, "shape") and not isinstance(x, np.generic)


def _tensor_dtypes(args) -> list[DType]:
    return [a.dtype for a in args if _is_tensor(a)]


# ---------------------------------------------------------------------------------------------
# Elementwise. ``mode`` says how the result dtype follows from the promoted operand dtype:
#   promote: the promoted dtype;  float: promoted, integers/bool become the default float;
#   compare: computed in the promoted dtype, result bool;  logical: result bool, no casts;
#   integral: promoted, only integer/bool operands allowed.
# ``complex_operands``: the op takes complex operands too (numpy's loop does, and PyTorch's kernel
# accepts them); else a complex operand raises PyTorch's error, ``complex_error`` where PyTorch
# words it differently (see ``Primitive``).
# ---------------------------------------------------------------------------------------------

def _compute_dtype(mode: str, args) -> DType | None:
    if mode == "logical":
        return None
    d = _one_dtype(args)
    if d is None:
        d = result_type(*args)
    return _mode_dtype(mode, d)


def _mode_dtype(mode: str, d: DType) -> DType:
    """The dtype an op of ``mode`` computes in, given its operands' promoted dtype ``d``."""
    if mode == "float" and not d.is_inexact:
        return dt.get_default_dtype()
    return d


# the promotion category of a Python number operand by its exact type
_NUMBER_CATEGORY = {bool: dt.BOOL, int: dt.INT, float: dt.FLOAT}


def _one_dtype(args) -> DType | None:
    """The dtype all tensor operands (or IR values) share, when every other operand is a Python
    bool, int or float of no higher category (``x * 0.9`` on float32): then it is
    ``result_type``'s answer whatever the operands' dimensions, as a number of a category no
    higher than the tensors' never changes their dtype. None: ask ``result_type``."""
    d = None
    top = -1  # the highest category of the numbers
    tensor_types = dt.TENSOR_TYPES
    for a in args:
        t = type(a)
        if t not in tensor_types:
            c = _NUMBER_CATEGORY.get(t)
            if c is None:
                return None
            if c > top:
                top = c
        elif d is None:
            d = a.dtype
        elif a.dtype is not d:
            return None
    if top < 0:
        return d
    return d if isinstance(d, DType) and d.category >= top else None


def _plain_pair(a, b) -> tuple | None:
    """(shape, promoted dtype) of ``a`` and ``b`` when they need neither broadcasting nor
    promotion: two tensors (or IR values) of one shape and dtype, or one and a Python number of
    no higher category. None: ask ``broadcast_shapes`` and ``_compute_dtype``. Most two-operand
    ops of a traced training step are such (``x * 0.9``, ``m + g``): one look at each operand."""
    tensor_types = dt.TENSOR_TYPES
    if type(a) not in tensor_types:
        if type(b) not in tensor_types:
            return None
        a, b = b, a
    d = a.dtype
    if type(b) in tensor_types:
        e = b.dtype
        if e is d:
            return (tuple(a.shape), d) if b.shape == a.shape else None
        # a 0-d tensor and one with dimensions (a step size times a moment): the latter's dtype
        # when the 0-d one's category is no higher, as a lower tier only counts above
        if not b.shape and a.shape:
            low, high = b, a
        elif not a.shape and b.shape:
            low, high = a, b
        else:
            return None
        if not (isinstance(d, DType) and isinstance(e, DType)) or low.dtype.category > high.dtype.category:
            return None
        return tuple(high.shape), high.dtype
    c = _NUMBER_CATEGORY.get(type(b))
    if c is None or not isinstance(d, DType) or c > d.category:
        return None
    return tuple(a.shape), d


def _elementwise(name: str, fn, mode: str, check=None, differentiable: bool | None = None,
                 scalar_in_float32: bool = False, complex_operands: bool = False,
                 complex_error: tuple[type, str] | None = None) -> Primitive:
    def infer(*args):
        if check is not None:
            check(*args)
        plain = _plain_pair(*args) if len(args) == 2 else None
        shape = broadcast_shapes(*[_shape(a) for a in args]) if plain is None else plain[0]
        if mode in ("compare", "logical"):
            return TensorType(shape, dt.bool_)
        d = _compute_dtype(mode, args) if plain is None else _mode_dtype(mode, plain[1])
        if mode == "real":  # |z| of a complex z is real
            d = d.to_real()
        if mode == "integral" and d.is_floating_point:
            raise RuntimeError(f'"{name}" is not implemented for floating-point tensors (got {d})')
        return TensorType(shape, d)

    if differentiable is None:  # bool or integer results carry no gradient
        differentiable = mode not in ("compare", "logical", "integral")
    return register(Primitive(
        name, infer, fn, operand_dtype=lambda *a, **_: _compute_dtype(mode, a), kind="elementwise",
        differentiable=differentiable, scalar_in_float32=scalar_in_float32, complex_operands=complex_operands,
        complex_error=complex_error,
    ))


def _no_bool(op: str, hint: str):
    def check(*args):
        for a in args:  # a tensor operand that is not bool: nothing to refuse (the common case)
            if type(a) in dt.TENSOR_TYPES and a.dtype is not dt.bool_:
                return
        if all(a.dtype is dt.bool_ for a in args if _is_tensor(a)) and not any(
            dt.is_python_scalar(a) and not isinstance(a, bool) for a in args
        ):
            raise RuntimeError(f"{op} on a bool tensor is not supported. {hint}")
    return check


# Host float32 arrays of at least this many elements take the numpy-pass form of erf below (and
# of sigmoid from SIGMOID_NUMPY_PASSES_MIN_SIZE): numpy's float32 exp and arithmetic are SIMD
# loops, scipy's expit and erf scalar loops (on 1M elements expit is 1.3-5x slower than the exp
# form, erf 2-3x slower than the rational one: benchmarks/lowerings.py). Below it, scipy's single
# call wins on per-call overhead; for float64, float16 and device arrays scipy (or the device's)
# is as fast or the only choice.
NUMPY_PASSES_MIN_SIZE = 4096


def in_numpy_passes(dtype: np.dtype, size: int, min_size: int = NUMPY_PASSES_MIN_SIZE) -> bool:
    """Whether ``erf_values`` (with SIGMOID_NUMPY_PASSES_MIN_SIZE: ``sigmoid_values``) computes a
    host array of ``dtype`` and ``size`` elements in numpy passes, not by scipy's one call (where
    lowered_rewrites' gelu form pays)."""
    return dtype == np.float32 and size >= min_size


def _numpy_passes(x, min_size: int = NUMPY_PASSES_MIN_SIZE) -> bool:
    return type(x) is np.ndarray and in_numpy_passes(x.dtype, x.size, min_size)


# sigmoid's own threshold: its numpy form is four cheap SIMD passes, while scipy's expit costs
# about 3.5 ns an element here (a 16x64 LSTM gate: expit 4-6 us, the passes 3 us); they cross
# near 512 float32 elements (1 thread, AVX-512 EPYC; erf's longer rational form keeps
# NUMPY_PASSES_MIN_SIZE).
SIGMOID_NUMPY_PASSES_MIN_SIZE = 512


def sigmoid_is_expit(dtype: np.dtype, size: int) -> bool:
    """Whether ``sigmoid_values`` computes a host array of ``dtype`` and ``size`` elements (or
    any piece of it) with scipy's ``expit`` alone: generated code then calls ``expit`` itself;
    else (float32) generated code writes the numpy passes of ``sigmoid_values`` out itself."""
    return dtype == np.float64 or (dtype == np.float32 and size < SIGMOID_NUMPY_PASSES_MIN_SIZE)


def _low_precision_in_float32(fn):
    """``fn(x, out=None)`` on float16/bfloat16 arrays computed in float32 and rounded once, as
    PyTorch's kernels do (scipy has no bfloat16 loops and answers float64 for float16)."""
    def run(x, out=None):
        if x.dtype.itemsize != 2 or not dt.is_floating_array_dtype(x.dtype):
            return fn(x) if out is None else fn(x, out=out)
        r = fn(x.astype(np.float32))
        if out is None:
            return r.astype(x.dtype)
        out[...] = r
        return out
    run.__name__, run.__doc__ = fn.__name__, fn.__doc__
    return run


@_low_precision_in_float32
def sigmoid_values(x, out=None):
    """sigmoid(x), eager mode's and generated code's (``out``: the array to write). Large float32
    host arrays: ``1 / (1 + exp(-x))`` in four numpy passes, PyTorch's CPU formula; it is exact in
    the limits (exp(-x) overflowing to inf for x < -88.7 gives 0, as for x = -inf; nan stays nan),
    within 4 ulp elsewhere, except that results below float32's smallest normal number (x < -87.3)
    flush to 0 from x < -88.7 on. Else scipy's expit: one pass, overflow-free."""
    if not _numpy_passes(x, SIGMOID_NUMPY_PASSES_MIN_SIZE):
        from scipy.special import expit  # imported on first use
        return expit(x) if out is None else expit(x, out=out)
    one = np.float32(1)  # (a Python 1 is a weak scalar numpy types on every call)
    with np.errstate(over="ignore"):
        t = np.negative(x, out=out)
        np.exp(t, out=t)
        np.add(t, one, out=t)
        return np.divide(one, t, out=t)  # (np.reciprocal is no SIMD loop here; the same values)


# erf(x) ~ tanh(x * S(x^2)), S of degree 6: tanh saturates as erf does, so a polynomial (fitted
# by a weighted minimax linear program on [0, 4], tools/fit_erf.py) does what a rational function
# needed ten more passes for. In float32 passes it is within 5 ulp of erf and within 3e-7 relatively,
# near 0 too (PyTorch's CPU kernel approximates erf to 1.5e-7 absolute, with a poorer relative error
# near 0). S > 0 and x * S(x^2) increase for all x > 0, so no clip is needed: from |x| = 4.09 on tanh
# gives +-1 (1 ulp short of it on [3.92, 4.09)), overflow to inf (|x| > ~6e3) too; nan stays nan.
_ERF_S = tuple(np.float32(c) for c in (
    1.4369762962921493e-07, -5.709227934101012e-06, 8.793046455901591e-05, -6.206565481133155e-04,
    -1.907493809243873e-04, 1.0276864317110555e-01, 1.128379258877657))
# the clip ufunc itself: np.clip's Python wrapper costs as much again on 16K elements
clip_ufunc = getattr(getattr(np, "_core", None), "umath", np).__dict__.get("clip", np.clip)


def _horner(x2, coefs, out):
    """coefs[0] * x2^(k-1) + ... + coefs[-1], into ``out``."""
    p = np.multiply(x2, coefs[0], out=out)
    for c in coefs[1:-1]:
        np.add(p, c, out=p)
        np.multiply(p, x2, out=p)
    return np.add(p, coefs[-1], out=p)


@ignoring_fp_errors  # S(x^2) overflows to inf for large |x|: tanh(+-inf) is the +-1 wanted
def _erf_passes(x, out):
    x2 = np.multiply(x, x)
    z = np.multiply(_horner(x2, _ERF_S, None), x, out=x2)  # x * S(x^2), over x^2 (not read again)
    return np.tanh(z, out=z if out is None else out)  # out may be x itself: x is not read from here on


@_low_precision_in_float32
def erf_values(x, out=None):
    """erf(x), eager mode's and generated code's (``out``: the array to write). Large float32 host
    arrays: the tanh form above in numpy passes (nan stays nan, +-inf gives +-1, -0.0 stays -0.0);
    else scipy's erf."""
    if not _numpy_passes(x):
        from scipy.special import erf  # imported on first use
        return erf(x) if out is None else erf(x, out=out)
    return _erf_passes(x, out)


@_low_precision_in_float32
def rsqrt_values(x, out=None):
    """1 / sqrt(x), eager mode's and generated code's (``out``: the array to write): two passes,
    the second in place. On large real float arrays np.divide, whose loops are SIMD (np.reciprocal's
    are not here: 64x256 float32, 2.5 against 3.8 us), the same correctly rounded quotient; on
    small ones np.reciprocal's call is cheaper (64 elements: 0.5 against 0.75 us)."""
    t = np.sqrt(x, out=out)
    if type(t) is np.ndarray and t.dtype.kind == "f" and t.size >= NUMPY_PASSES_MIN_SIZE:
        return np.divide(1, t, out=t)
    return np.reciprocal(t, out=t) if type(t) is np.ndarray else np.reciprocal(t)


def _same_int(fn):
    """floor/ceil/round/trunc keep integer tensors as they are (numpy would return floats)."""
    return lambda x: x.copy() if x.dtype.kind in "iub" else fn(x)


_quiet = ignoring_fp_errors  # inf/nan follow IEEE rules silently, as in PyTorch


neg = _elementwise("neg", np.negative, "promote", _no_bool(
    "Negation, the `-` operator,", "If you are trying to invert a mask, use the `~` or "
    "`logical_not()` operator instead."), complex_operands=True)
abs = _elementwise("abs", np.abs, "real", complex_operands=True)
sign = _elementwise("sign", np.sign, "promote", complex_operands=True)
floor = _elementwise("floor", _same_int(np.floor), "promote",
                     complex_error=(NotImplementedError, "floor is not supported for complex inputs"))
ceil = _elementwise("ceil", _same_int(np.ceil), "promote",
                    complex_error=(NotImplementedError, "ceil is not supported for complex inputs"))
round = _elementwise("round", _same_int(np.round), "promote")
trunc = _elementwise("trunc", _same_int(np.trunc), "promote",
                     complex_error=(NotImplementedError, "trunc is not supported for complex inputs"))
exp = _elementwise("exp", _quiet(np.exp), "float", complex_operands=True)
exp2 = _elementwise("exp2", _quiet(np.exp2), "float")
expm1 = _elementwise("expm1", _quiet(np.expm1), "float", complex_operands=True)
log = _elementwise("log", _quiet(np.log), "float", complex_operands=True)
log2 = _elementwise("log2", _quiet(np.log2), "float")
log10 = _elementwise("log10", _quiet(np.log10), "float")
log1p = _elementwise("log1p", _quiet(np.log1p), "float", complex_operands=True)
sin = _elementwise("sin", np.sin, "float", complex_operands=True)
cos = _elementwise("cos", np.cos, "float", complex_operands=True)
tan = _elementwise("tan", np.tan, "float", complex_operands=True)
asin = _elementwise("asin", _quiet(np.arcsin), "float")
acos = _elementwise("acos", _quiet(np.arccos), "float")
atan = _elementwise("atan", np.arctan, "float")
sinh = _elementwise("sinh", _quiet(np.sinh), "float", complex_operands=True)
cosh = _elementwise("cosh", _quiet(np.cosh), "float", complex_operands=True)
tanh = _elementwise("tanh", np.tanh, "float", complex_operands=True)
sigmoid = _elementwise("sigmoid", sigmoid_values, "float")
sqrt = _elementwise("sqrt", _quiet(np.sqrt), "float", complex_operands=True)
rsqrt = _elementwise("rsqrt", _quiet(rsqrt_values), "float", complex_operands=True)
reciprocal = _elementwise("reciprocal", _quiet(np.reciprocal), "float", complex_operands=True)
erf = _elementwise("erf", erf_values, "float")
_ZEROS: dict = {}  # dtype -> a 0-d zero of it


def _readonly_scalar(value, dtype) -> np.ndarray:
    a = np.full((), value, dtype)
    a.flags.writeable = False
    return a


# relu of a float array clips it to [0, inf]: the clip ufunc is 2-3.5x faster than np.maximum
# against a zero (whose loop with a broadcast scalar is not vectorized), and keeps -0.0 as PyTorch's
# relu does (np.maximum(-0.0, 0) is +0.0); nan stays nan. The bounds are 0-d arrays of the operand's
# dtype, made once: Python floats cost numpy a conversion per call, more than clipping 16 elements.
RELU_CLIPS = frozenset(np.dtype(d) for d in (np.float16, np.float32, np.float64))
_RELU_BOUNDS = {d: (_readonly_scalar(0, d), _readonly_scalar(np.inf, d)) for d in RELU_CLIPS}


def _relu(x):
    if type(x) is np.ndarray:
        bounds = _RELU_BOUNDS.get(x.dtype)
        if bounds is not None:
            return clip_ufunc(x, bounds[0], bounds[1])
        # against a 0-d zero of x's dtype: a Python 0 costs numpy a conversion on every call
        zero = _ZEROS.get(x.dtype)
        if zero is None:
            zero = _ZEROS[x.dtype] = _readonly_scalar(0, x.dtype)
        return np.maximum(x, zero)
    return np.maximum(x, 0, dtype=x.dtype)


relu = _elementwise("relu", _relu, "promote", _no_bool(
    "relu", "Use logical ops on bool tensors instead."),
    complex_error=(NotImplementedError, "clamp is not supported for complex types"))
isnan = _elementwise("isnan", np.isnan, "compare", complex_operands=True)
isinf = _elementwise("isinf", np.isinf, "compare", complex_operands=True)
isfinite = _elementwise("isfinite", np.isfinite, "compare", complex_operands=True)
logical_not = _elementwise("logical_not", np.logical_not, "logical")
bitwise_not = _elementwise("bitwise_not", np.invert, "integral")

add = _elementwise("add", _quiet(np.add), "promote", complex_operands=True)  # inf - inf, 0 * inf: nan, silently
sub = _elementwise("sub", _quiet(np.subtract), "promote", _no_bool(
    "Subtraction, the `-` operator, with two bool tensors", "Use the `^` or `logical_xor()` "
    "operator instead."), complex_operands=True)
mul = _elementwise("mul", _quiet(np.multiply), "promote", scalar_in_float32=True, complex_operands=True)
div = _elementwise("div", _quiet(np.true_divide), "float", scalar_in_float32=True, complex_operands=True)


def check_int_divisor(b) -> None:
    """Integer division (``//``, ``%``) by zero is an error in PyTorch (numpy would return 0):
    eager mode and generated code both check the divisor with this."""
    if np.any(b == 0):
        raise RuntimeError("ZeroDivisionError")


def divisor_checked(n) -> bool:
    """Whether graph node ``n`` is an integer ``//`` or ``%`` whose divisor may be zero (not a
    nonzero literal): generated code checks it with ``check_int_divisor`` before it runs, so such
    a step may raise."""
    if n.prim not in (floor_divide, remainder) or n.output.dtype.is_floating_point:
        return False
    d = n.inputs[1]
    return not (isinstance(d, (bool, int, float)) and d != 0)


def _int_zero_check(fn):
    def run(a, b):
        out = fn(a, b)
        if out.dtype.kind in "iu":
            check_int_divisor(b)
        return out
    return run


def _int_pow(a, b):
    try:
        return np.power(a, b)
    except ValueError as e:  # numpy: "Integers to negative integer powers are not allowed."
        raise RuntimeError(str(e)) from None


floor_divide = _elementwise("floor_divide", _int_zero_check(_quiet(np.floor_divide)), "promote",
                            differentiable=False, scalar_in_float32=True)  # piecewise constant
remainder = _elementwise("remainder", _int_zero_check(_quiet(np.remainder)), "promote")
pow = _elementwise("pow", _quiet(_int_pow), "promote", complex_operands=True)
maximum = _elementwise("maximum", np.maximum, "promote",
                       complex_error=(RuntimeError, "maximum not implemented for complex tensors."))
minimum = _elementwise("minimum", np.minimum, "promote",
                       complex_error=(RuntimeError, "minimum not implemented for complex tensors."))
atan2 = _elementwise("atan2", np.arctan2, "float")
eq = _elementwise("eq", np.equal, "compare", complex_operands=True)
ne = _elementwise("ne", np.not_equal, "compare", complex_operands=True)
lt = _elementwise("lt", np.less, "compare")
le = _elementwise("le", np.less_equal, "compare")
gt = _elementwise("gt", np.greater, "compare")
ge = _elementwise("ge", np.greater_equal, "compare")
logical_and = _elementwise("logical_and", np.logical_and, "logical")
logical_or = _elementwise("logical_or", np.logical_or, "logical")
logical_xor = _elementwise("logical_xor", np.logical_xor, "logical")
bitwise_and = _elementwise("bitwise_and", np.bitwise_and, "integral")
bitwise_or = _elementwise("bitwise_or", np.bitwise_or, "integral")
bitwise_xor = _elementwise("bitwise_xor", np.bitwise_xor, "integral")


def _where_infer(cond, x, y):
    if _is_tensor(cond) and cond.dtype is not dt.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {cond.dtype}")
    shape = broadcast_shapes(_shape(cond), _shape(x), _shape(y))
    return TensorType(shape, result_type(x, y))


where = register(Primitive("where", _where_infer, np.where, nondiff_operands=(0,), kind="elementwise",
                           complex_operands=True))


def _cast_infer(x, *, dtype: DType):
    return TensorType(_shape(x), dtype)


def _cast(x, *, dtype: DType):
    if x.dtype.kind == "c" and not dtype.is_complex:
        x = x.real  # the real part, as PyTorch (numpy's astype would warn)
    if dtype.is_low_precision and x.dtype.itemsize == 8:
        x = x.astype(np.float32)  # PyTorch rounds doubles and int64 to float16/bfloat16 through float32
    if dtype.is_floating_point and x.dtype.itemsize > dtype.itemsize:
        with np.errstate(over="ignore"):  # beyond a narrower float's range: inf, silently (PyTorch)
            return x.astype(dtype.np)
    return x.astype(dtype.np)


cast = register(Primitive("cast", _cast_infer, _cast, kind="elementwise", complex_operands=True))
# A fresh copy of the operand; a no-op in functional IR, needed for eager ``clone()``.
copy = register(Primitive("copy", lambda x: TensorType(_shape(x), x.dtype), np.copy, kind="elementwise",
                          cheap=False, complex_operands=True))  # an explicit copy is kept where the program asked for it


# ---------------------------------------------------------------------------------------------
# Reductions over ``dims`` (a sorted tuple of non-negative ints).
# ---------------------------------------------------------------------------------------------

def _reduced_shape(shape, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _array_result_out():
    """``out=...`` makes a numpy ufunc return a 0-d array instead of a numpy scalar (numpy 2.x),
    which saves eager mode converting a full reduction's result; None (numpy's default) where
    numpy does not know it yet."""
    try:
        np.add.reduce(np.zeros(1), out=...)
    except TypeError:
        return None
    return ...


_ARRAY_RESULT = _array_result_out()


_ROW_STARTS: dict[tuple, np.ndarray] = {}


def reduce_rows(ufunc: np.ufunc, x: np.ndarray, keepdims: bool, out: np.ndarray | None = None) -> np.ndarray:
    """``ufunc.reduce(x, axis=-1, keepdims=keepdims)`` (``out``: the array to write), for maximum
    and minimum: on a C-contiguous ``x``, ``ufunc.reduceat`` over the flat array at each row's
    start, which runs the same inner loop (so the same result, nan included) without the reduce's
    row-by-row iterator: 1.5-2x faster (64x256 float32: 3.9 against 6.3 us, 1024x16: 34 against
    58 us). A strided ``x`` (a view), an empty one or a device array takes ``ufunc.reduce``."""
    if type(x) is not np.ndarray or not x.flags.c_contiguous or not x.size:
        return ufunc.reduce(x, axis=-1, keepdims=keepdims, out=out)
    starts = _ROW_STARTS.get(x.shape)
    if starts is None:  # a race makes two equal index arrays: harmless
        starts = np.arange(0, x.size, x.shape[-1])
        starts.flags.writeable = False
        starts = _ROW_STARTS.setdefault(x.shape, starts)
    if out is None:
        return ufunc.reduceat(x.ravel(), starts).reshape(x.shape[:-1] + ((1,) if keepdims else ()))
    if not out.flags.c_contiguous:  # its ravel would be a copy
        return ufunc.reduce(x, axis=-1, keepdims=keepdims, out=out)
    ufunc.reduceat(x.ravel(), starts, out=out.ravel())  # ravels of contiguous arrays: views
    return out


def _reduction(name: str, ufunc: np.ufunc, fn, widen_ints: bool, needs_elements: bool = False,
               complex_operands: bool = False) -> Primitive:
    rows = ufunc in (np.maximum, np.minimum)

    def out_dtype(x, **_):
        return dt.int64 if widen_ints and not x.dtype.is_inexact else x.dtype

    def infer(x, *, dims: tuple[int, ...], keepdim: bool):
        if needs_elements:
            shape = _shape(x)
            for d in dims:
                if shape[d] == 0:
                    raise IndexError(
                        f"{name}(): Expected reduction dim {d} to have non-zero size.")
        return TensorType(_reduced_shape(_shape(x), dims, keepdim), out_dtype(x))

    def impl(x, *, dims, keepdim):
        # the ufunc's reduce on host arrays (np.sum and friends are a Python wrapper around it);
        # the numpy function for device arrays, which dispatch through it
        if type(x) is np.ndarray:
            if rows and x.ndim >= 2 and tuple(dims) == (x.ndim - 1,):
                return reduce_rows(ufunc, x, keepdim)
            return ufunc.reduce(x, axis=dims, keepdims=keepdim, out=_ARRAY_RESULT)
        return fn(x, axis=dims, keepdims=keepdim)

    # sums accumulate in float32 for float16/bfloat16; products, like PyTorch's, in the format
    prim = register(Primitive(name, infer, impl, operand_dtype=out_dtype, kind="reduction",
                              accumulates=ufunc is np.add, complex_operands=complex_operands))
    REDUCE_UFUNCS[prim] = ufunc
    return prim


# reduction primitive -> the numpy ufunc whose ``reduce`` computes it (numpy codegen calls it too)
REDUCE_UFUNCS: dict[Primitive, np.ufunc] = {}
sum = _reduction("sum", np.add, np.sum, True, complex_operands=True)
prod = _reduction("prod", np.multiply, np.prod, True, complex_operands=True)
amax = _reduction("amax", np.maximum, np.max, False, needs_elements=True)
amin = _reduction("amin", np.minimum, np.min, False, needs_elements=True)


def _arg_reduction(name: str, fn) -> Primitive:
    """PyTorch's argmax/argmin, which refuse complex input with their own message."""
    def infer(x, *, dim: int | None, keepdim: bool):
        shape = _shape(x)
        if dim is None:
            if numel(shape) == 0:
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
            out = tuple(1 for _ in shape) if keepdim else ()
        else:
            if shape and shape[dim] == 0:
                raise IndexError(f"{name}(): Expected reduction dim {dim} to have non-zero size.")
            out = _reduced_shape(shape, (dim,), keepdim)
        return TensorType(out, dt.int64)

    def impl(x, *, dim, keepdim):
        if dim is None:
            return fn(x.reshape(-1), axis=0, keepdims=True).reshape((1,) * x.ndim if keepdim else ())
        return fn(x, axis=dim, keepdims=keepdim)

    return register(Primitive(name, infer, impl, kind="reduction", differentiable=False,
                              complex_error=(RuntimeError, f"{name}(): does not support complex input")))


argmax = _arg_reduction("argmax", np.argmax)
argmin = _arg_reduction("argmin", np.argmin)


def _cumsum_infer(x, *, dim: int):
    d = x.dtype if x.dtype.is_inexact else dt.int64
    return TensorType(_shape(x), d)


cumsum = register(Primitive(
    "cumsum", _cumsum_infer, lambda x, *, dim: np.cumsum(x, axis=dim) if x.ndim else x.copy(),
    operand_dtype=lambda x, **_: _cumsum_infer(x, dim=0).dtype, kind="scan", accumulates=True,
    complex_operands=True))


# ---------------------------------------------------------------------------------------------
# Movement: reshape, permute, expand, slice, pad, concat. These are views in eager mode.
# ---------------------------------------------------------------------------------------------

def _reshape_infer(x, *, shape: tuple[int, ...]):
    if numel(shape) != numel(_shape(x)):
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel(_shape(x))}")
    return TensorType(tuple(shape), x.dtype)


reshape = register(Primitive(  # the method: np.reshape is a Python wrapper around it
    "reshape", _reshape_infer, lambda x, *, shape: x.reshape(shape), view=True, kind="movement"))


def _permute_infer(x, *, dims: tuple[int, ...]):
    shape = _shape(x)
    if sorted(dims) != list(range(len(shape))):
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {len(shape)} is not "
            f"equal to len(dims) = {len(dims)}" if len(dims) != len(shape) else
            f"permute(): duplicate dims are not allowed (got {list(dims)})")
    return TensorType(tuple(shape[d] for d in dims), x.dtype)


permute = register(Primitive(
    "permute", _permute_infer, lambda x, *, dims: np.transpose(x, dims), view=True, kind="movement"))


def _expand_infer(x, *, shape: tuple[int, ...]):
    src = _shape(x)
    if len(shape) < len(src):
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(src)}}}, size=[{len(shape)}]): the number of sizes "
            f"provided ({len(shape)}) must be greater or equal to the number of dimensions in the "
            f"tensor ({len(src)})")
    off = len(shape) - len(src)
    for i, s in enumerate(src):
        if s != 1 and s != shape[off + i]:
            raise RuntimeError(
                f"The expanded size of the tensor ({shape[off + i]}) must match the existing size "
                f"({s}) at non-singleton dimension {off + i}.  Target sizes: {list(shape)}.  "
                f"Tensor sizes: {list(src)}")
    return TensorType(tuple(shape), x.dtype)


expand = register(Primitive(
    "expand", _expand_infer, lambda x, *, shape: np.broadcast_to(x, shape), view=True, kind="movement"))


_NP_SLICES: dict = {}  # slice attribute -> its numpy key, remembered: eager indexing asks for it


def _np_slices(index):
    # a negative-step range whose stop is before element 0 is written stop=-1 in the attribute,
    # which numpy would read as "the last element": use None there
    try:
        return _NP_SLICES[index]
    except (KeyError, TypeError):  # not seen yet (or a list: not remembered)
        key = tuple(builtins.slice(s, None if e < 0 else e, st) for s, e, st in index)
    if type(index) is tuple:
        if len(_NP_SLICES) >= 4096:
            _NP_SLICES.clear()
        _NP_SLICES[index] = key
    return key


def _slice_len(start: int, stop: int, step: int) -> int:
    return len(range(start, stop, step))


def _slice_infer(x, *, index: tuple[tuple[int, int, int], ...]):
    shape = _shape(x)
    if len(index) != len(shape):
        raise ShapeError(f"slice: {len(index)} ranges for a {len(shape)}-d tensor")
    return TensorType(tuple(_slice_len(*r) for r in index), x.dtype)


slice = register(Primitive(
    "slice", _slice_infer, lambda x, *, index: x[_np_slices(index)], view=True, kind="movement"))


def _select_infer(x, *, dim: int, index: int):
    shape = _shape(x)
    if not 0 <= dim < len(shape):
        raise ShapeError(f"select: dim {dim} of a {len(shape)}-d tensor")
    if not 0 <= index < shape[dim]:  # the frontend wraps a negative index and checks the range
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(shape)} at dimension {dim}")
    return TensorType(shape[:dim] + shape[dim + 1:], x.dtype)


_NP_SELECTS: dict = {}  # (dim, index) -> its numpy key, remembered: eager indexing asks for it


def _select(x, *, dim: int, index: int):
    if dim == 0 and x.ndim > 1:  # x[i], the common case: numpy's quickest key
        return x[index]
    try:
        key = _NP_SELECTS[dim, index]
    except KeyError:
        if len(_NP_SELECTS) >= 4096:
            _NP_SELECTS.clear()
        # the trailing ``...`` keeps a 0-d result an array viewing x (numpy gives a scalar copy)
        key = _NP_SELECTS[dim, index] = (builtins.slice(None),) * dim + (index, Ellipsis)
    return x[key]


# x[i] along one dimension (PyTorch's select): one view, the dimension dropped. ``index`` is
# normalized (0 <= index < size); the frontend wraps negative ones and raises PyTorch's IndexError.
select = register(Primitive("select", _select_infer, _select, view=True, kind="movement"))


def _slice_scatter_infer(x, src, *, index):
    want = _slice_infer(x, index=index).shape
    if _shape(src) != want:
        raise ShapeError(f"slice_scatter: src has shape {_shape(src)}, the slice has shape {want}")
    return TensorType(_shape(x), x.dtype)


def _slice_scatter(x, src, *, index):
    out = x.copy()
    out[_np_slices(index)] = src
    return out


slice_scatter = register(Primitive(
    "slice_scatter", _slice_scatter_infer, _slice_scatter,
    operand_dtype=lambda x, src, **_: x.dtype, kind="movement"))


def _pad_infer(x, *, pads: tuple[tuple[int, int], ...], value: float = 0.0):
    shape = _shape(x)
    return TensorType(tuple(s + lo + hi for s, (lo, hi) in zip(shape, pads)), x.dtype)


def _pad(x, *, pads, value=0.0):
    # one fill and one copy: np.pad's Python layers cost ~7x that on the small rows an LSTM's
    # backward pads (the gradient of a row slice)
    lib = array_module(x)
    out = lib.full(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pads)), value, dtype=x.dtype)
    out[tuple(builtins.slice(lo, lo + n) for n, (lo, _) in zip(x.shape, pads))] = x
    return out


pad = register(Primitive("pad", _pad_infer, _pad, kind="movement"))


def _concat_infer(*xs, axis: int):
    if not xs:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    ref = _shape(xs[0])
    total = 0
    for k, x in enumerate(xs):
        s = _shape(x)
        if len(s) != len(ref):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(ref)} and {len(s)}")
        bad = [i for i, (a, b) in enumerate(zip(s, ref)) if i != axis and a != b]
        if bad:
            raise RuntimeError(
                f"Sizes of tensors must match except in dimension {axis}. Expected size "
                f"{ref[bad[0]]} but got size {s[bad[0]]} for tensor number {k} in the list.")
        total += s[axis]
    out = list(ref)
    out[axis] = total
    return TensorType(tuple(out), result_type(*xs))


concat = register(Primitive(
    "concat", _concat_infer, lambda *xs, axis: np.concatenate(xs, axis=axis),
    operand_dtype=lambda *xs, **_: result_type(*xs), kind="movement"))


# ---------------------------------------------------------------------------------------------
# Indexing with integer tensors. Index operands are never differentiated.
# ---------------------------------------------------------------------------------------------

def _check_index(idx, what: str):
    if idx.dtype not in (dt.int64, dt.int32, dt.int16, dt.int8, dt.uint8):
        raise RuntimeError(f"{what}(): Expected dtype int64 for index, got {idx.dtype}")


def _bounds(idx: np.ndarray, size: int, axis: int, strict: bool = False):
    """Index range check. ``strict`` (gather/scatter): no negative indices, and PyTorch's
    RuntimeError instead of the IndexError of indexing."""
    low = 0 if strict else -size
    if not idx.size:
        return
    if strict and type(idx) is np.ndarray and idx.dtype == np.int64:
        # one reduction: a negative index read as unsigned is past any size
        if np.maximum.reduce(idx.view(np.uint64), axis=None) < size:
            return
    if type(idx) is np.ndarray:  # the ufuncs' reductions: the methods' wrappers cost ~2 us each
        hi, lo = np.maximum.reduce(idx, axis=None), np.minimum.reduce(idx, axis=None)
    else:
        hi, lo = idx.max(), idx.min()
    if hi >= size or lo < low:
        bad = hi if hi >= size else lo
        raise (RuntimeError if strict else IndexError)(
            f"index {bad} is out of bounds for dimension {axis} with size {size}")


def _take_infer(x, idx, *, axis: int):
    _check_index(idx, "index_select")
    s = _shape(x)
    return TensorType(s[:axis] + _shape(idx) + s[axis + 1:], x.dtype)


def _take(x, idx, *, axis):
    _bounds(idx, x.shape[axis], axis)
    return np.take(x, idx, axis=axis)


take = register(Primitive("take", _take_infer, _take, nondiff_operands=(1,), kind="index", complex_operands=True))


# index_check modes: whether negative entries count from the end, and PyTorch's error
_INDEX_CHECKS = {
    "index": (True, "index {i} is out of bounds for dimension {dim} with size {size}"),   # x[idx], index_fill
    "put": (True, "out of range: tried to access index {i} on a tensor of {size} elements."),
    "embedding": (False, "index out of range in self"),
}


def _index_check_infer(idx, *, size: int, dim: int, mode: str):
    _check_index(idx, "index")
    if mode not in _INDEX_CHECKS:
        raise ValueError(f"index_check: unknown mode {mode!r}")
    return TensorType(_shape(idx), dt.int64)


def _index_check(idx, *, size, dim, mode):
    """An index tensor checked against a dimension of ``size`` (``dim``: the one the error names),
    as int64 with negative entries counted from the end where the mode allows them; an entry out
    of range raises PyTorch's IndexError for the mode (the first such entry). Frontend ops check
    their index tensors with it, so compiled code raises where eager mode does."""
    negative, message = _INDEX_CHECKS[mode]
    idx = idx.astype(np.int64, copy=False)
    low = -size if negative else 0
    if idx.size and (idx.min() < low or idx.max() >= size):
        bad = idx[(idx < low) | (idx >= size)].reshape(-1)[0]
        raise IndexError(message.format(i=int(bad), dim=dim, size=size))
    return np.where(idx < 0, idx + size, idx) if negative else idx


index_check = register(Primitive("index_check", _index_check_infer, _index_check, kind="index",
                                 differentiable=False))


def _gather_infer(x, idx, *, axis: int):
    _check_index(idx, "gather")
    xs, isz = _shape(x), _shape(idx)
    if len(xs) != len(isz):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for d, (a, b) in enumerate(zip(xs, isz)):
        if d != axis and b > a:
            raise RuntimeError(
                f"Size does not match at dimension {d} expected index {list(isz)} to be smaller "
                f"than self {list(xs)} apart from dimension {axis}")
    return TensorType(isz, x.dtype)


def _leading(x: np.ndarray, shape, axis: int) -> np.ndarray:
    """x cut down to ``shape`` in every dim but ``axis`` (gather/scatter may use a smaller index)."""
    return x[tuple(builtins.slice(None) if d == axis else builtins.slice(0, n) for d, n in enumerate(shape))]


def _gather(x, idx, *, axis):
    _bounds(idx, x.shape[axis], axis, strict=True)
    if idx.shape[:axis] + idx.shape[axis + 1:] != x.shape[:axis] + x.shape[axis + 1:]:
        x = _leading(x, idx.shape, axis)
    if type(x) is np.ndarray and type(idx) is np.ndarray and idx.ndim:
        # take_along_axis's own index, made directly: an arange per other dimension, broadcast
        # against idx (its wrapper costs ~10 us more, once per step in cross_entropy)
        grid = _gather_grid(idx.shape, axis)
        return x[grid[:axis] + (idx,) + grid[axis + 1:]]
    return np.take_along_axis(x, idx, axis=axis)


@functools.lru_cache(maxsize=256)
def _gather_grid(shape: tuple, axis: int) -> tuple:
    """The aranges that index every dimension of a gather's index of ``shape`` but ``axis``
    (read-only: shared by every call, from any thread), made once per shape (~1 us a dimension)."""
    n = len(shape)
    grid = []
    for d, m in enumerate(shape):
        g = None
        if d != axis:
            g = np.arange(m).reshape((m,) + (1,) * (n - d - 1))
            g.setflags(write=False)
        grid.append(g)
    return tuple(grid)


gather = register(Primitive("gather", _gather_infer, _gather, nondiff_operands=(1,), kind="index",
                            complex_operands=True))


def _scatter_infer(x, idx, src, *, axis: int):
    _check_index(idx, "scatter")
    if len(_shape(idx)) != len(_shape(x)):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    return TensorType(_shape(x), x.dtype)


def _index_grid(idx: np.ndarray, axis: int):
    xp = array_module(idx)
    grid = [xp.asarray(g) for g in np.indices(idx.shape, sparse=True)]  # on idx's device
    grid[axis] = idx
    return tuple(grid)


def _src_block(src: np.ndarray, shape) -> np.ndarray:
    """scatter reads src[i, j, ...] for every position of the index, in every dim (axis too)."""
    return src[tuple(builtins.slice(0, n) for n in shape)]


def _scatter(x, idx, src, *, axis):
    _bounds(idx, x.shape[axis], axis, strict=True)
    out = x.copy()
    src = _src_block(src, idx.shape) if getattr(src, "ndim", 0) else src
    out[_index_grid(idx, axis)] = src
    return out


def _scatter_add(x, idx, src, *, axis):
    _bounds(idx, x.shape[axis], axis, strict=True)
    out = x.copy()
    # ufunc.at with a tuple of indices is outside CuPy's __array_ufunc__: call the library's own
    array_module(out).add.at(out, _index_grid(idx, axis), _src_block(src, idx.shape))
    return out


scatter = register(Primitive(
    "scatter", _scatter_infer, _scatter, operand_dtype=lambda x, *a, **k: x.dtype,
    nondiff_operands=(1,), kind="index", complex_operands=True))
scatter_add = register(Primitive(
    "scatter_add", _scatter_infer, _scatter_add, operand_dtype=lambda x, *a, **k: x.dtype,
    nondiff_operands=(1,), kind="index", complex_operands=True))


def _index_add_infer(x, idx, src, *, axis: int):
    _check_index(idx, "index_add")
    if len(_shape(idx)) != 1:
        raise RuntimeError("index_add_(): Index is supposed to be a vector")
    want = _shape(x)[:axis] + _shape(idx) + _shape(x)[axis + 1:]
    if _shape(src) != want:
        raise RuntimeError(f"index_add_(): Source shape {_shape(src)} does not match {want}")
    return TensorType(_shape(x), x.dtype)


def _index_add(x, idx, src, *, axis):
    _bounds(idx, x.shape[axis], axis)
    out = x.copy()
    array_module(out).add.at(out, (builtins.slice(None),) * axis + (idx,), src)
    return out


index_add = register(Primitive(
    "index_add", _index_add_infer, _index_add, operand_dtype=lambda x, *a, **k: x.dtype,
    nondiff_operands=(1,), kind="index", complex_operands=True))


def _nonzero_infer(x):
    raise RuntimeError("nonzero has a data-dependent shape; it cannot be typed statically")


nonzero = register(Primitive(
    "nonzero", _nonzero_infer, lambda x: np.argwhere(x), data_dependent=True, kind="index",
    differentiable=False))


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------

def _matmul_infer(a, b):
    sa, sb = _shape(a), _shape(b)
    if not sa or not sb:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {len(sa)}D and {len(sb)}D")
    if a.dtype is not b.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {a.dtype.name} != {b.dtype.name}")
    if a.dtype is dt.bool_:
        raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Bool\'')
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        if len(sa) == 1 and len(sb) == 1:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{ka}] and src [{kb}] to have the same "
                f"number of elements, but got {ka} and {kb} elements respectively")
        if len(sb) == 1:
            rows = numel(sa[:-1])
            raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{ka}), vec ({kb})")
        la = "x".join(map(str, sa if len(sa) > 1 else (1,) + sa))
        lb = "x".join(map(str, sb if len(sb) > 1 else sb + (1,)))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({la} and {lb})")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    out = batch + ((sa[-2],) if len(sa) > 1 else ()) + ((sb[-1],) if len(sb) > 1 else ())
    return TensorType(out, a.dtype)


def _matmul(a, b):
    # For two matrices on the host, ndarray.dot makes the same BLAS call as np.matmul at half the
    # cost of the call (the gufunc machinery), most of a small eager matmul's time.
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2:
        return a.dot(b)
    return np.matmul(a, b)


matmul = register(Primitive("matmul", _matmul_infer, _matmul, kind="matmul", accumulates=True,
                            complex_operands=True))


# ---------------------------------------------------------------------------------------------
# Creation (no tensor operands)
# ---------------------------------------------------------------------------------------------

def _full_infer(*, shape: tuple[int, ...], value, dtype: DType):
    return TensorType(tuple(shape), dtype)


full = register(Primitive(
    "full", _full_infer, lambda *, shape, value, dtype: np.full(shape, dt.fill_value(value, dtype), dtype=dtype.np),
    kind="creation", differentiable=False, complex_operands=True))


def _arange_infer(*, start, end, step, dtype: DType):
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(
            "upper bound and lower bound inconsistent with step sign")
    return TensorType((max(0, math.ceil((end - start) / step)),), dtype)


def _arange(*, start, end, step, dtype):
    n = _arange_infer(start=start, end=end, step=step, dtype=dtype).shape[0]
    return (start + np.arange(n, dtype=np.float64 if dtype.is_floating_point else np.int64) * step).astype(dtype.np)


arange = register(Primitive("arange", _arange_infer, _arange, kind="creation", differentiable=False))


# ---------------------------------------------------------------------------------------------
# Sliding windows (convolution and pooling are built from these and matmul/reductions)
# ---------------------------------------------------------------------------------------------

def _window_out(size: int, k: int, stride: int, lo: int, hi: int, dil: int) -> int:
    return (size + lo + hi - dil * (k - 1) - 1) // stride + 1


def _unfold_infer(x, *, kernel, stride, padding, dilation, value=0.0):
    shape = _shape(x)
    nsp = len(kernel)
    if len(shape) != 2 + nsp:
        raise RuntimeError(f"unfold: expected a {2 + nsp}-d input (N, C, spatial...), got shape {list(shape)}")
    out = []
    for i in range(nsp):
        o = _window_out(shape[2 + i], kernel[i], stride[i], *padding[i], dilation[i])
        if o <= 0:
            raise RuntimeError(
                f"Calculated output size is too small: input spatial size {list(shape[2:])}, kernel "
                f"{list(kernel)}, stride {list(stride)}, padding {[list(p) for p in padding]}, "
                f"dilation {list(dilation)}")
        out.append(o)
    return TensorType(shape[:2] + tuple(out) + tuple(kernel), x.dtype)


def _window_slices(kernel, stride, dilation, out_sp):
    """Per kernel offset, the strided slices of the (padded) input that the offset's windows read."""
    for offs in np.ndindex(*kernel):
        yield offs, tuple(builtins.slice(o * dilation[i], o * dilation[i] + stride[i] * (out_sp[i] - 1) + 1,
                                         stride[i]) for i, o in enumerate(offs))


# Batch chunks of unfold's and fold's per-offset passes are sized to stay in a core's L2 cache:
# every kernel offset makes one strided pass over the window buffer, and once that buffer is
# larger than the cache each pass streams it from memory again (im2col 2.3-2.6x and col2im
# 1.6x slower on a conv of 32 or 64 channels of 8x8 at batch 64). Below the size one chunk takes
# the whole batch.
_WINDOW_CHUNK_BYTES = 512 * 1024


def _batch_chunks(lib, batch: int, image_bytes: int) -> list:
    """Slices of the batch, each holding about ``_WINDOW_CHUNK_BYTES`` of window buffer; the whole
    batch at once on a device library (its kernels are launched, not cache-bound loops)."""
    step = batch if lib is not np or image_bytes == 0 else max(1, _WINDOW_CHUNK_BYTES // image_bytes)
    return [builtins.slice(i, min(i + step, batch)) for i in range(0, batch, max(step, 1))]


# Below this many channels unfold copies one kernel offset at a time; from it on, all offsets in
# one copy of a sliding-window view (64 images of 8x8, 3x3 kernel, one thread: 1 channel 58 us
# against 94, 2 channels 108 against 226, 16 channels 175 against 352).
_UNFOLD_ONE_COPY_CHANNELS = 2


def _unfold(x, *, kernel, stride, padding, dilation, value=0.0):
    nsp = len(kernel)
    out_sp = tuple(_window_out(x.shape[2 + i], kernel[i], stride[i], *padding[i], dilation[i]) for i in range(nsp))
    # A private buffer laid out (N, out..., kernel..., C): channels innermost, so each window's
    # copy writes whole runs of channels, and the layout conv's matmul wants, so its permute +
    # reshape are views. The result is that buffer seen as (N, C, out..., kernel...). The copies
    # read the (padded) input made channels-last and contiguous first, once per batch chunk: read
    # through a strided view of the channels-first input, each of them would step across whole
    # images per channel (2.2x slower on a conv layer of 16 channels of 8x8).
    lib = array_module(x)
    c = x.shape[1]
    buf = lib.empty((x.shape[0],) + out_sp + tuple(kernel) + (c,), dtype=x.dtype)
    one_copy = lib is np and c >= _UNFOLD_ONE_COPY_CHANNELS
    # one copy writes the buffer once: no chunks to keep it in cache (chunks: 2x slower there)
    chunks = [builtins.slice(0, x.shape[0])] if one_copy else _batch_chunks(lib, x.shape[0], buf[:1].nbytes)
    padded = tuple(x.shape[2 + i] + padding[i][0] + padding[i][1] for i in range(nsp))
    channels_last = lib.empty((chunks[0].stop if chunks else 0,) + padded + (c,), dtype=x.dtype)
    for i, (lo, hi) in enumerate(padding):  # the borders, once: each chunk rewrites only the interior
        for border in (builtins.slice(0, lo), builtins.slice(lo + x.shape[2 + i], padded[i])):
            channels_last[(builtins.slice(None),) * (1 + i) + (border,)] = value
    inner = tuple(builtins.slice(lo, lo + n) for (lo, _), n in zip(padding, x.shape[2:]))
    windows = [] if one_copy else list(_window_slices(kernel, stride, dilation, out_sp))
    spatial = tuple(range(1, 1 + nsp))
    for chunk in chunks:
        rows = builtins.slice(0, chunk.stop - chunk.start)
        channels_last[(rows,) + inner] = lib.moveaxis(x[chunk], 1, -1)
        if one_copy:  # (rows, out..., C, kernel...) views, strided by stride and dilation
            view = np.lib.stride_tricks.sliding_window_view(
                channels_last[rows], tuple(dilation[i] * (kernel[i] - 1) + 1 for i in range(nsp)), axis=spatial)
            view = view[(builtins.slice(None),) + tuple(builtins.slice(0, stride[i] * (out_sp[i] - 1) + 1, stride[i])
                                                      for i in range(nsp))
                        + (builtins.slice(None),) + tuple(builtins.slice(None, None, d) for d in dilation)]
            np.copyto(buf[chunk], np.moveaxis(view, 1 + nsp, -1))
        for offs, sl in windows:
            buf[(chunk, Ellipsis) + offs + (builtins.slice(None),)] = channels_last[(rows,) + sl]
    return lib.moveaxis(buf, -1, 1)


def _unfold_layout(ndim: int) -> tuple[int, ...]:
    """(N, out..., kernel..., C): the memory order of ``_unfold``'s buffer."""
    return (0, *range(2, ndim), 1)


unfold = register(Primitive("unfold", _unfold_infer, _unfold, kind="window", layout=_unfold_layout))


def _fold_infer(cols, *, size, kernel, stride, padding, dilation):
    shape = _shape(cols)
    nsp = len(kernel)
    want = tuple(_window_out(size[i], kernel[i], stride[i], *padding[i], dilation[i]) for i in range(nsp))
    if len(shape) != 2 + 2 * nsp or shape[2:2 + nsp] != want or shape[2 + nsp:] != tuple(kernel):
        raise RuntimeError(f"fold: expected windows of shape (N, C, {list(want)}, {list(kernel)}), got {list(shape)}")
    return TensorType(shape[:2] + tuple(size), cols.dtype)


def _fold(cols, *, size, kernel, stride, padding, dilation):
    """The adjoint of unfold: add every window back at its place (col2im). The sums run in the
    layout ``cols`` has: channels last when its channel stride is the smaller (unfold's layout,
    and conv's backward matmul's), channels first otherwise. Each kernel offset adds only the
    windows that land inside the input, straight into the unpadded result, and an offset whose
    windows cover all of it (a stride-1 kernel's centre) is written first instead of zeros: no
    padded buffer to clear, crop and copy again (1.4x faster on a 3x3 conv's input gradient)."""
    nsp = len(kernel)
    out_sp = cols.shape[2:2 + nsp]
    lib = array_module(cols)
    channels_last = cols.shape[1] > 1 and cols.strides[1] < cols.strides[2]
    src = lib.moveaxis(cols, 1, 1 + nsp) if channels_last else cols
    lead = (builtins.slice(None),) if channels_last else (builtins.slice(None), builtins.slice(None))
    adds = []  # (where in the result, which windows of src)
    for offs in np.ndindex(*kernel):
        reads, writes = [], []
        for i, o in enumerate(offs):
            # window w reads input position w * stride - lo + o * dilation; keep those inside
            shift = o * dilation[i] - padding[i][0]
            first = max(0, -(shift // stride[i]))
            last = min(out_sp[i] - 1, (size[i] - 1 - shift) // stride[i])
            if last < first:
                break
            reads.append(builtins.slice(first, last + 1))
            writes.append(builtins.slice(first * stride[i] + shift, last * stride[i] + shift + 1, stride[i]))
        else:
            window = (builtins.slice(None),) + tuple(reads) + (builtins.slice(None),) + offs if channels_last \
                else lead + tuple(reads) + offs
            adds.append((lead + tuple(writes), window))
    shape = (cols.shape[0],) + tuple(size) + (cols.shape[1],) if channels_last else cols.shape[:2] + tuple(size)
    whole = next((a for a in adds if all(w.indices(n) == (0, n, 1) for w, n in zip(a[0][len(lead):], size))), None)
    out = lib.empty(shape, dtype=cols.dtype) if whole is not None else lib.zeros(shape, dtype=cols.dtype)
    for chunk in _batch_chunks(lib, cols.shape[0], cols[:1].nbytes):
        # each chunk's windows are summed while its part of ``cols`` and ``out`` is in cache
        part, windows = out[chunk], src[chunk]
        if whole is not None:
            part[...] = windows[whole[1]]
        for add in adds:
            if add is not whole:
                part[add[0]] += windows[add[1]]
    return lib.ascontiguousarray(lib.moveaxis(out, -1, 1)) if channels_last else out


fold = register(Primitive("fold", _fold_infer, _fold, kind="window", accumulates=True))


# A collective over the processes of a group (graphc.distributed): ``kind`` "all_reduce" (``op``
# sum/avg/max/min/product) or "broadcast" (from group rank ``root``); ``group`` is the group's key.
# graphc.distributed installs the function that runs it (COLLECTIVE_RUNNER); IR knows no MPI.
COLLECTIVE_RUNNER: list = [None]


def _collective(x, *, kind: str, op: str, root: int, group: int):
    run = COLLECTIVE_RUNNER[0]
    if run is None:
        raise RuntimeError("collective: no process group: call graphc.distributed.init_process_group() first")
    return run(x, kind, op, root, group)


collective = register(Primitive(
    "collective", lambda x, **attrs: TensorType(_shape(x), x.dtype), _collective, differentiable=False,
    effectful=True))


# Identity whose output takes no part in differentiation (``detach`` inside traced graphs).
stop_gradient = register(Primitive(
    "stop_gradient", lambda x: TensorType(_shape(x), x.dtype), lambda x: x.copy(), kind="elementwise",
    differentiable=False, complex_operands=True))


# A custom ``autograd.Function``'s output in a traced graph: the identity on operand 0 (the value
# its forward computed, detached), whose VJP is the user's ``backward``, traced into the ``bwd``
# graph (inputs: one cotangent per tensor output, then the captured values; outputs: the
# gradients of the ``n_inputs`` operands after operand 0 that have one, per ``has_grad``). The
# operands after those are the captured values ``bwd`` reads. ``index``: which cotangent this
# output's is. Only autodiff reads it: it is replaced by operand 0 before lowering.
def _custom_vjp_infer(x, *operands, bwd, index: int, n_inputs: int, has_grad: tuple, fn: str):
    if len(operands) < n_inputs or len(bwd.inputs) < len(operands) - n_inputs:
        raise ValueError(f"custom_vjp {fn}: {len(operands)} operands do not fit {n_inputs} inputs and a backward "
                         f"graph with {len(bwd.inputs)} inputs")
    if builtins.sum(map(bool, has_grad)) != len(bwd.outputs) or len(has_grad) != n_inputs:
        raise ValueError(f"custom_vjp {fn}: has_grad {has_grad} does not match the backward graph's outputs")
    return TensorType(_shape(x), x.dtype)


custom_vjp = register(Primitive("custom_vjp", _custom_vjp_infer, lambda x, *operands, **attrs: x.copy(),
                                nondiff_operands=(0,), complex_operands=True))


# Random numbers from an explicit key (an i64[2] operand a compiled function draws afresh on each
# call); ``stream`` tells apart the draws that share one key.
def _rand_uniform_infer(key, *, shape: tuple[int, ...], dtype: DType, stream: int):
    if _shape(key) != (2,) or key.dtype is not dt.int64:
        raise RuntimeError(f"rand_uniform: the key must be an int64 tensor of shape [2], got {key.dtype}{list(_shape(key))}")
    if not dtype.is_floating_point:
        raise RuntimeError(f"rand_uniform: dtype must be floating point, got {dtype}")
    return TensorType(tuple(shape), dtype)


def _rand_uniform(key, *, shape, dtype, stream):
    seed = [int(k) & 0xFFFF_FFFF_FFFF_FFFF for k in np.asarray(key).reshape(-1)] + [int(stream)]
    gen = np.random.Generator(np.random.PCG64(seed))
    if dtype.np == np.float64:
        return gen.random(shape)
    # narrower types draw float32 (one 32-bit draw each: 2x faster than float64 draws and a cast),
    # the same stream for float32, float16 and bfloat16 (autocast keeps a model's dropout masks)
    return unit_uniform(gen.random(shape, dtype=np.float32), dtype).astype(dtype.np, copy=False)


def unit_uniform(u: np.ndarray, dtype: DType) -> np.ndarray:
    """Draws from [0, 1) (float64 or float32) as PyTorch draws them for ``dtype``: for float16 and bfloat16,
    multiples of 2**-digits (the format's significand bits), which the format holds exactly (a
    finer value could round up to 1.0); others unchanged."""
    if not dtype.is_low_precision:
        return u
    digits = int(dt.float_info(dtype).nmant) + 1
    return np.floor(np.ldexp(u, digits)) * 2.0 ** -digits


rand_uniform = register(Primitive("rand_uniform", _rand_uniform_infer, _rand_uniform, kind="random",
                                  differentiable=False))


# ---------------------------------------------------------------------------------------------
# Special functions (scipy.special, imported on first use, as for erf)
# ---------------------------------------------------------------------------------------------

def _scipy_special(name: str):
    def run(*a):
        import scipy.special as sc
        with np.errstate(all="ignore"):
            return getattr(sc, name)(*a)
    return run


def _digamma(x):
    import scipy.special as sc
    with np.errstate(all="ignore"):
        out = sc.psi(x)
    return np.where(x == 0, -np.inf, out)  # PyTorch: digamma(0) = -inf (scipy gives +inf at -0.0)


def _polygamma(x, *, n: int):
    sc = special_module(x)  # scipy's polygamma is no ufunc: no dispatch to a device library
    if n == 0:
        return _digamma(x)
    with np.errstate(all="ignore"):
        return sc.polygamma(array_module(x).asarray(n), x)


def _xlogy(x, y):
    with np.errstate(all="ignore"):
        out = np.multiply(x, np.log(y))
    return np.where((x == 0) & ~np.isnan(y), 0, out)  # xlogy(0, y) = 0 unless y is nan


lgamma = _elementwise("lgamma", _scipy_special("gammaln"), "float")
erfinv = _elementwise("erfinv", _scipy_special("erfinv"), "float")
xlogy = _elementwise("xlogy", _xlogy, "float")


def _polygamma_infer(x, *, n: int):
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return TensorType(_shape(x), _compute_dtype("float", (x,)))


# polygamma(x, n=0) is digamma; its derivative is polygamma(x, n=n+1)
polygamma = register(Primitive(
    "polygamma", _polygamma_infer, _polygamma, operand_dtype=lambda x, **_: _compute_dtype("float", (x,)),
    kind="elementwise"))


# ---------------------------------------------------------------------------------------------
# Scans that return indices, sorting and bucketing (integer results, never differentiated)
# ---------------------------------------------------------------------------------------------

def _cumarg(take_if):
    """Index of the running max/min along ``dim``: a later element equal to the running extreme
    takes over, and a NaN takes over and stays (PyTorch's cummax/cummin)."""
    def impl(x, *, dim):
        xp = array_module(x)
        if x.ndim == 0:
            return xp.zeros((), np.int64)
        xm = np.moveaxis(x, dim, 0)
        out = xp.zeros(xm.shape, np.int64)
        if xm.shape[0] == 0:
            return np.moveaxis(out, 0, dim)
        floating = dt.is_floating_array_dtype(xm.dtype)
        best, cur = xm[0].copy(), xp.zeros(xm.shape[1:], np.int64)
        for t in range(1, xm.shape[0]):
            v = xm[t]
            with np.errstate(invalid="ignore"):
                take = take_if(v, best)
            if floating:
                take = np.isnan(v) | (~np.isnan(best) & take)
            best = np.where(take, v, best)
            cur = np.where(take, t, cur)
            out[t] = cur
        return np.moveaxis(out, 0, dim)
    return impl


def _cumarg_infer(x, *, dim: int):
    return TensorType(_shape(x), dt.int64)


cumargmax = register(Primitive("cumargmax", _cumarg_infer, _cumarg(np.greater_equal), kind="scan",
                               differentiable=False))
cumargmin = register(Primitive("cumargmin", _cumarg_infer, _cumarg(np.less_equal), kind="scan",
                               differentiable=False))


def _argsort(x, *, dim: int, descending: bool):
    """Stable argsort; NaN sorts as the largest value (last ascending, first descending)."""
    if x.ndim == 0:
        return array_module(x).zeros((), np.int64)
    if not descending:
        return np.argsort(x, axis=dim, kind="stable").astype(np.int64)
    if x.dtype == np.bool_:
        key = ~x
    elif dt.is_floating_array_dtype(x.dtype):
        # by -x, NaN first: two stable sorts (lexsort has no axis in CuPy), the primary key last
        by_value = np.argsort(np.where(np.isnan(x), -np.inf, -x), axis=dim, kind="stable")
        nan_first = np.argsort(np.take_along_axis(~np.isnan(x), by_value, axis=dim), axis=dim, kind="stable")
        return np.take_along_axis(by_value, nan_first, axis=dim).astype(np.int64)
    else:
        key = -x.astype(np.float64) if x.dtype.kind == "u" else -x.astype(np.int64)
        if x.dtype == np.int64:  # -int64.min overflows: order by the bitwise complement instead
            key = ~x
    return np.argsort(key, axis=dim, kind="stable").astype(np.int64)


argsort = register(Primitive(
    "argsort", lambda x, *, dim, descending: TensorType(_shape(x), dt.int64), _argsort, kind="scan",
    differentiable=False))


def _searchsorted_infer(seq, values, *, right: bool, out_int32: bool):
    ss, vs = _shape(seq), _shape(values)
    if len(ss) != 1 and ss[:-1] != vs[:-1]:
        raise RuntimeError(
            "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of "
            f"boundaries tensor and input value tensor must match, but we got boundaries tensor {list(ss)} "
            f"and input value tensor {list(vs)}")
    return TensorType(vs, dt.int32 if out_int32 else dt.int64)


def _searchsorted(seq, values, *, right, out_int32):
    side = "right" if right else "left"
    if seq.ndim == 1:
        out = np.searchsorted(seq, values, side=side)
    else:
        rows_s = seq.reshape(-1, seq.shape[-1])
        rows_v = values.reshape(-1, values.shape[-1])
        out = np.stack([np.searchsorted(s, v, side=side) for s, v in zip(rows_s, rows_v)]).reshape(values.shape) \
            if rows_s.shape[0] else array_module(values).zeros(values.shape, np.int64)
    return out.astype(np.int32 if out_int32 else np.int64)


searchsorted = register(Primitive("searchsorted", _searchsorted_infer, _searchsorted, kind="index",
                                  differentiable=False))


# ---------------------------------------------------------------------------------------------
# Dense linear algebra on batches of matrices (..., m, n), computed with numpy's LAPACK
# ---------------------------------------------------------------------------------------------

class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input (singular, not positive-definite): PyTorch's
    ``torch.linalg.LinAlgError``, also a RuntimeError."""


def _linalg_dtype(op: str, d: DType) -> None:
    if not d.is_floating_point:
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got {d.scalar_name}")
    if d.is_low_precision:
        raise RuntimeError(f"{op}: Low precision dtypes not supported. Got {d.scalar_name}")




def _matrices(op: str, a, square: bool = True) -> tuple[int, ...]:
    s = _shape(a)
    if len(s) < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if square and s[-1] != s[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are {s[-2]} by {s[-1]} matrices")
    _linalg_dtype(op, a.dtype)
    return s


def _lapack_info(routine: str, a: np.ndarray):
    """(batch element, info) of the first matrix on which the LAPACK ``routine`` fails, or None."""
    from scipy.linalg import lapack
    mats = a.reshape((-1,) + a.shape[-2:])
    fn = lapack.get_lapack_funcs(routine, (mats,))
    for b, m in enumerate(mats):
        info = fn(m, lower=1)[-1] if routine == "potrf" else fn(m)[-1]
        if info > 0:
            return b, info
    return None


def _batch_prefix(a: np.ndarray, b: int) -> str:
    return f"(Batch element {b}): " if a.ndim > 2 else ""


def _inv(a):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        b, info = _lapack_info("getrf", a) or (0, 1)
        raise LinAlgError(f"linalg.inv: {_batch_prefix(a, b)}The diagonal element {info} is zero, the inversion "
                          "could not be completed because the input matrix is singular.") from None


inv = register(Primitive(
    "inv", lambda a: TensorType(_matrices("linalg.inv", a), a.dtype), _inv, kind="linalg"))
det = register(Primitive(
    "det", lambda a: TensorType(_matrices("linalg.det", a)[:-2], a.dtype), np.linalg.det, kind="linalg"))
logabsdet = register(Primitive(
    "logabsdet", lambda a: TensorType(_matrices("linalg.slogdet", a)[:-2], a.dtype),
    lambda a: np.linalg.slogdet(a)[1], kind="linalg"))
det_sign = register(Primitive(
    "det_sign", lambda a: TensorType(_matrices("linalg.slogdet", a)[:-2], a.dtype),
    lambda a: np.linalg.slogdet(a)[0], kind="linalg", differentiable=False))


def _solve_infer(a, b):
    sa = _matrices("linalg.solve", a)
    sb = _shape(b)
    _linalg_dtype("linalg.solve", b.dtype)
    if a.dtype is not b.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{a.dtype.scalar_name} and B of type {b.dtype.scalar_name} instead")
    if len(sb) < 2 or sb[-2] != sa[-1]:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({sa[-2]}x{sa[-1]} and {'x'.join(map(str, sb[-2:] if len(sb) > 1 else sb + (1,)))})")
    return TensorType(broadcast_shapes(sa[:-2], sb[:-2]) + sb[-2:], a.dtype)


def _solve(a, b):
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        found = _lapack_info("getrf", a)
        prefix = _batch_prefix(a, found[0]) if found else ""
        raise LinAlgError(f"torch.linalg.solve: {prefix}The solver failed because the input matrix is singular.") \
            from None


# X = A^-1 B for matrices B (..., n, k); the frontend handles vector right-hand sides
solve = register(Primitive("solve", _solve_infer, _solve, kind="linalg"))


def _cholesky(a):
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        b, info = _lapack_info("potrf", a) or (0, 1)
        raise LinAlgError(f"linalg.cholesky: {_batch_prefix(a, b)}The factorization could not be completed because "
                          f"the input is not positive-definite (the leading minor of order {info} is not "
                          "positive-definite).") from None


# lower-triangular L with A = L L^T, reading only the lower triangle of A
cholesky = register(Primitive(
    "cholesky", lambda a: TensorType(_matrices("linalg.cholesky", a), a.dtype), _cholesky, kind="linalg"))


def _qr_infer(which: str):
    def infer(a, *, mode: str):
        s = _matrices("linalg.qr", a, square=False)
        m, n = s[-2:]
        k = m if mode == "complete" else builtins.min(m, n)
        return TensorType(s[:-2] + ((m, k) if which == "q" else (k, n)), a.dtype)
    return infer


# A = Q R, Q with orthonormal columns, R upper triangular; mode "reduced", "complete" or "r" (R
# alone, which is not differentiable)
qr_q = register(Primitive("qr_q", _qr_infer("q"), lambda a, *, mode: np.linalg.qr(a, mode=mode)[0], kind="linalg"))
qr_r = register(Primitive(
    "qr_r", _qr_infer("r"), lambda a, *, mode: np.linalg.qr(a, mode=mode) if mode == "r" else
    np.linalg.qr(a, mode=mode)[1], kind="linalg"))


def _svd_infer(which: str):
    def infer(a, *, full_matrices: bool = False):
        s = _matrices("linalg.svd", a, square=False)
        m, n = s[-2:]
        k = builtins.min(m, n)
        if which == "s":
            return TensorType(s[:-2] + (k,), a.dtype)
        if which == "u":
            return TensorType(s[:-2] + (m, m if full_matrices else k), a.dtype)
        return TensorType(s[:-2] + (n if full_matrices else k, n), a.dtype)
    return infer


def _svd_part(i: int):
    def impl(a, *, full_matrices: bool = False):
        if a.size == 0:  # LAPACK needs at least one element
            shape = _svd_infer("usv"[i])(TensorType(a.shape, _dtype_of(a)), full_matrices=full_matrices).shape
            out = array_module(a).zeros(shape, a.dtype)
            if i != 1:
                k = builtins.min(shape[-2:])
                out[..., range(k), range(k)] = 1
            return out
        return np.linalg.svd(a, full_matrices=full_matrices)[i]
    return impl


def _dtype_of(a: np.ndarray) -> DType:
    return dt.float64 if a.dtype == np.float64 else dt.float32


# A = U diag(S) Vh; the three factors are three primitives (numpy's SVD is deterministic, so they agree)
svd_u = register(Primitive("svd_u", _svd_infer("u"), _svd_part(0), kind="linalg"))
svdvals = register(Primitive(
    "svdvals", _svd_infer("s"), lambda a: np.linalg.svd(a, compute_uv=False) if a.size else
    array_module(a).zeros(a.shape[:-2] + (builtins.min(a.shape[-2:]),), a.dtype), kind="linalg"))
svd_vh = register(Primitive("svd_vh", _svd_infer("v"), _svd_part(2), kind="linalg"))


def _eigh_infer(vectors: bool):
    def infer(a, *, uplo: str):
        s = _matrices("linalg.eigh", a)
        return TensorType(s if vectors else s[:-1], a.dtype)
    return infer


# symmetric eigendecomposition A = V diag(w) V^T, eigenvalues ascending, reading the ``uplo`` triangle
eigvalsh = register(Primitive(
    "eigvalsh", _eigh_infer(False), lambda a, *, uplo: np.linalg.eigvalsh(a, UPLO=uplo), kind="linalg"))
eigh_vectors = register(Primitive(
    "eigh_vectors", _eigh_infer(True), lambda a, *, uplo: np.linalg.eigh(a, UPLO=uplo)[1], kind="linalg"))


def _pinv_infer(a, *, atol: float, rtol: float, hermitian: bool):
    s = _matrices("linalg.pinv", a, square=hermitian)
    return TensorType(s[:-2] + (s[-1], s[-2]), a.dtype)


def _pinv(a, *, atol, rtol, hermitian):
    """Singular values (|eigenvalues| when hermitian) at or below max(atol, rtol * largest) count as 0."""
    if a.size == 0:
        return np.zeros(a.shape[:-2] + (a.shape[-1], a.shape[-2]), a.dtype)
    if hermitian:
        w, v = np.linalg.eigh(a)
        big = np.abs(w).max(-1, keepdims=True)
        keep = np.abs(w) > np.maximum(atol, rtol * big)
        with np.errstate(divide="ignore"):
            winv = np.where(keep, 1.0 / np.where(keep, w, 1), 0)
        return (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    keep = s > np.maximum(atol, rtol * s[..., :1])
    sinv = np.where(keep, 1.0 / np.where(keep, s, 1), 0)
    return (np.swapaxes(vh, -1, -2) * sinv[..., None, :]) @ np.swapaxes(u, -1, -2)


pinv = register(Primitive("pinv", _pinv_infer, _pinv, kind="linalg"))



# ---- complex numbers and Fourier transforms (declared in complex_prims), special functions --------
# ---- computed by scipy.special (declared in special_prims) -------------------------------------

from .complex_prims import (conj, fft_c2c, fft_c2r, fft_r2c, imag, make_complex, real,  # noqa: E402
                            view_as_complex, view_as_real)
from .special_prims import (airy_ai, bessel_j0, bessel_j1, bessel_y0, bessel_y1, erfcx, i0, i0e, i1, i1e,  # noqa: E402
                            igamma, igammac, log_ndtr, modified_bessel_i0, modified_bessel_i1, modified_bessel_k0,
                            modified_bessel_k1, scaled_modified_bessel_k0, scaled_modified_bessel_k1, zeta)

# ---- LU, LDL and least squares (declared in factorization_prims) -------------------------------

from .factorization_prims import (ldl_factor, ldl_info, ldl_pivots, ldl_solve, lstsq, lstsq_rank,  # noqa: E402,F401
                                  lu_factor, lu_permutation, lu_pivots, lu_solve)
