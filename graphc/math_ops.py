"""PyTorch's math API (pointwise, reductions, linear algebra) over primitives and composites.

Functions take PyTorch's argument conventions, normalize them, and bind primitives or call the
composites in ``graphc.passes.decompositions``. The same functions become Tensor methods.
"""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir.array_module import array_module
from graphc.ir import prims as P
# The most frequent ops call ``bind(P.x, ...)``, which ``P.x(...)`` is, without an instance call's cost.
from graphc.ir import primitive as _dispatch_state
from graphc.ir.primitive import bind, no_operand_policy, operand_policy
from graphc.ir.shapes import wrap_dim, wrap_dims
from graphc.passes.decompositions import COMPOSITES

# composites returning several tensors are expanded inline even while tracing
MULTI_OUTPUT = frozenset({"max_dim", "min_dim", "batch_norm", "cummax", "cummin"})


from .device import get_default_device, using_device
from .dispatch import current as _dispatch
from .tensors import EAGER, Tensor, attrs_token, device_full, device_tensor, host_array

def _return_type(name, fields):
    """A named tuple that prints as PyTorch's ``torch.return_types.<name>``: one field a line."""
    base = namedtuple(name, fields)

    def __repr__(self):
        body = ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
        return f"graphc.return_types.{name}(\n{body})"
    return type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__str__": __repr__})


values_indices = {
    name: _return_type(name, ["values", "indices"])
    for name in ("max", "min", "sort", "topk", "kthvalue", "mode", "median", "cummax", "cummin")
}


OPERAND_TYPES = (Tensor, bool, int, float, complex)  # what as_operand passes through unchanged


def as_operand(x):
    """Tensors and Python numbers pass through; array-likes become tensors."""
    if isinstance(x, OPERAND_TYPES):
        return x
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, (np.ndarray, list, tuple)):
        from .creation import tensor
        return tensor(x)
    raise TypeError(f"expected a Tensor or a number, got {type(x).__name__}")


def call_composite(name: str, *args, **kwargs):
    """Run a composite and give its result's grad_fn PyTorch's name for the whole op. While
    tracing, a single-tensor composite becomes one ``composite`` node (the decompose pass expands
    it), so traced graphs read like the user's code."""
    comp = COMPOSITES[name]
    policy = operand_policy()
    if policy is not None:
        # autocast casts the composite's operands; its own parts then run as it says
        args = policy(name, args, _dispatch())
        with no_operand_policy():
            return _call_composite(comp, name, args, kwargs)
    return _call_composite(comp, name, args, kwargs)


def _call_composite(comp, name: str, args: tuple, kwargs: dict):
    if name not in MULTI_OUTPUT:
        node = _dispatch().composite(name, args, kwargs)
        if node is not None:
            return node
    with using_device(_device_of_operands(args)):  # where the composite's constants go
        out = comp.fn(*args, **kwargs)
    inputs = {id(a) for a in args}
    for o in (out if isinstance(out, tuple) else (out,)):
        if isinstance(o, Tensor) and o.grad_fn is not None and id(o) not in inputs \
                and hasattr(o.grad_fn, "_name"):
            o.grad_fn._name = comp.grad_name
    return out


def _device_of_operands(args):
    for a in args:
        if isinstance(a, Tensor) and a.ndim:
            return a.device
    return next((a.device for a in args if isinstance(a, Tensor)), get_default_device())


def write_out(out: Tensor | None, result: Tensor) -> Tensor:
    """Implement ``out=``: resize if needed, then copy the result in."""
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"out= must be a Tensor, got {type(out).__name__}")
    if out.requires_grad and (out.is_leaf or result.requires_grad):
        from .autograd import grad_mode
        if grad_mode.is_grad_enabled():
            raise RuntimeError(
                f"{'add'}(): functions with out=... arguments don't support automatic "
                "differentiation, but one of the arguments requires grad.")
    if result.dtype.category > out.dtype.category:
        raise RuntimeError(
            f"result type {result.dtype.scalar_name} can't be cast to the desired output type "
            f"{out.dtype.scalar_name}")
    if out.device != result.device:
        raise RuntimeError(f"Expected out tensor to have device {result.device}, but got {out.device} instead")
    if tuple(out.shape) != tuple(result.shape):
        out._data = array_module(result._data).empty(result._data.shape, dtype=out._data.dtype)
    np.copyto(out._data, result._data, casting="unsafe")
    out._version.value += 1
    return out




# ---- pointwise ------------------------------------------------------------------------------

def _binary(prim, name: str):
    def op(input, other, *, out=None):
        r = bind(prim, as_operand(input), as_operand(other))
        return r if out is None else write_out(out, r)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} with broadcasting and PyTorch type promotion."
    return op


NO_ATTRS: dict = {}  # the attributes of a primitive that has none (shared: never changed)


def _unary(prim, name: str):
    def op(input, *, out=None):
        if not _dispatch_state._dispatching_threads.count and type(input) in _dispatch_state._SKIP_TYPES:
            # bind's decision (see only_base_handler), without bind's call: the base handler
            r = _dispatch_state._base_handler.apply(prim, (input,), NO_ATTRS)
        else:
            r = bind(prim, input)
        return r if out is None else write_out(out, r)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name}."
    return op


def add(input, other, *, alpha=1, out=None):
    other = as_operand(other)
    if alpha != 1:
        other = P.mul(other, alpha)
    r = bind(P.add, as_operand(input), other)
    return r if out is None else write_out(out, r)


def sub(input, other, *, alpha=1, out=None):
    other = as_operand(other)
    if alpha != 1:
        other = P.mul(other, alpha)
    return write_out(out, P.sub(as_operand(input), other))


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def div(input, other, *, rounding_mode=None, out=None):
    a, b = as_operand(input), as_operand(other)
    if rounding_mode is None:
        r = P.div(a, b)
    elif rounding_mode == "floor":
        r = P.floor_divide(a, b)
    elif rounding_mode == "trunc":
        q = P.div(a, b)
        r = P.trunc(q)
        if not dt.result_type(a, b).is_floating_point:
            r = P.cast(r, dtype=dt.result_type(a, b))
    else:
        raise RuntimeError(
            f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")
    return write_out(out, r)


def pow(input, exponent, *, out=None):
    return write_out(out, P.pow(as_operand(input), as_operand(exponent)))


mul = _binary(P.mul, "mul")
true_divide = _binary(P.div, "true_divide")
floor_divide = _binary(P.floor_divide, "floor_divide")
remainder = _binary(P.remainder, "remainder")
maximum = _binary(P.maximum, "maximum")
minimum = _binary(P.minimum, "minimum")
atan2 = _binary(P.atan2, "atan2")
eq = _binary(P.eq, "eq")
ne = _binary(P.ne, "ne")
lt = _binary(P.lt, "lt")
le = _binary(P.le, "le")
gt = _binary(P.gt, "gt")
ge = _binary(P.ge, "ge")
logical_and = _binary(P.logical_and, "logical_and")
logical_or = _binary(P.logical_or, "logical_or")
logical_xor = _binary(P.logical_xor, "logical_xor")
bitwise_and = _binary(P.bitwise_and, "bitwise_and")
bitwise_or = _binary(P.bitwise_or, "bitwise_or")
bitwise_xor = _binary(P.bitwise_xor, "bitwise_xor")

neg = _unary(P.neg, "neg")
abs = _unary(P.abs, "abs")
def sign(input, *, out=None):
    """Elementwise sign of a real tensor (complex ones: ``sgn``, as in PyTorch)."""
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise NotImplementedError("Unlike NumPy, torch.sign is not intended to support complex numbers. "
                                  "Please use torch.sgn instead.")
    return write_out(out, P.sign(input))
floor = _unary(P.floor, "floor")
ceil = _unary(P.ceil, "ceil")
trunc = _unary(P.trunc, "trunc")
exp = _unary(P.exp, "exp")
exp2 = _unary(P.exp2, "exp2")
expm1 = _unary(P.expm1, "expm1")
log = _unary(P.log, "log")
log2 = _unary(P.log2, "log2")
log10 = _unary(P.log10, "log10")
log1p = _unary(P.log1p, "log1p")
sin = _unary(P.sin, "sin")
cos = _unary(P.cos, "cos")
tan = _unary(P.tan, "tan")
asin = _unary(P.asin, "asin")
acos = _unary(P.acos, "acos")
atan = _unary(P.atan, "atan")
sinh = _unary(P.sinh, "sinh")
cosh = _unary(P.cosh, "cosh")
tanh = _unary(P.tanh, "tanh")
sigmoid = _unary(P.sigmoid, "sigmoid")
sqrt = _unary(P.sqrt, "sqrt")
rsqrt = _unary(P.rsqrt, "rsqrt")
reciprocal = _unary(P.reciprocal, "reciprocal")
erf = _unary(P.erf, "erf")
relu = _unary(P.relu, "relu")
isnan = _unary(P.isnan, "isnan")
isinf = _unary(P.isinf, "isinf")
isfinite = _unary(P.isfinite, "isfinite")
logical_not = _unary(P.logical_not, "logical_not")
bitwise_not = _unary(P.bitwise_not, "bitwise_not")

negative, absolute, fix, arcsin, arccos, arctan = neg, abs, trunc, asin, acos, atan
multiply, divide, subtract, greater, greater_equal, less, less_equal, not_equal = (
    mul, div, sub, gt, ge, lt, le, ne)


def round(input, *, decimals: int = 0, out=None):
    if decimals == 0:
        return write_out(out, P.round(input))
    scale = 10.0 ** decimals
    return write_out(out, P.div(P.round(P.mul(input, scale)), scale))




def square(input):
    return call_composite("square", input)


def erfc(input):
    return call_composite("erfc", input)


def frac(input):
    return call_composite("frac", input)


def fmod(input, other):
    return call_composite("fmod", input, as_operand(other))


def lerp(input, end, weight):
    return call_composite("lerp", input, end, as_operand(weight))


def addcmul(input, tensor1, tensor2, *, value=1):
    return call_composite("addcmul", input, tensor1, tensor2, value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    return call_composite("addcdiv", input, tensor1, tensor2, value)


def clamp(input, min=None, max=None, *, out=None):
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise NotImplementedError("clamp is not supported for complex types")
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return write_out(out, call_composite("clamp", input, as_operand(min) if min is not None else None,
                                         as_operand(max) if max is not None else None))


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def where(condition, input=None, other=None):
    if input is None and other is None:
        from .shape_ops import nonzero
        return nonzero(condition, as_tuple=True)
    return P.where(condition, as_operand(input), as_operand(other))


def nan_to_num(input, nan: float = 0.0, posinf=None, neginf=None):
    info = dt.float_info(input.dtype) if input.dtype.is_floating_point else None
    if info is None:
        return input.clone()
    # Python floats: numpy scalars look like tensors (dtype, shape) to the VJP rules
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    x = P.where(P.isnan(input), nan, input)
    x = P.where(P.logical_and(P.isinf(x), P.gt(x, 0)), posinf, x)
    return P.where(P.logical_and(P.isinf(x), P.lt(x, 0)), neginf, x)


# ---- reductions -----------------------------------------------------------------------------

_ALL_DIMS = [tuple(range(n)) for n in range(65)]  # the dims of an n-d tensor, made once
# [keepdim][ndim] -> x.sum()'s attributes and their attrs_token
_FULL_SUMS = tuple([({"dims": dims, "keepdim": keep}, attrs_token()) for dims in _ALL_DIMS] for keep in (False, True))


def _dims(input, dim) -> tuple[int, ...]:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return _ALL_DIMS[input.ndim]  # PyTorch: an empty dim list reduces over everything
    return wrap_dims(dim, input.ndim)


def sum(input, dim=None, keepdim: bool = False, *, dtype=None, out=None, axis=None, keepdims=None):
    # x.sum() is a hot path: it binds the primitive directly, takes numpy's names itself (axis,
    # keepdims: no _numpy_kwargs wrapper) and names its own grad_fn (no renaming wrapper either)
    if axis is not None:
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    x = input if dtype is None else input.to(dtype)
    if dim is None:  # the node is the primitive's: SumBackward0 (the array's ndim: no property call)
        if type(x) is Tensor and type(keepdim) is bool and not _dispatch_state._dispatching_threads.count \
                and Tensor in _dispatch_state._SKIP_TYPES:  # only_base_handler(x), inline
            # bind(P.sum, x, dims=all, keepdim=keepdim), without bind: its attributes and their
            # memo key made once per rank (making and hashing the attributes' items per call
            # costs a fifth of a small sum)
            r = EAGER.apply(P.sum, (x,), *_FULL_SUMS[keepdim][x._data.ndim])
        else:
            r = bind(P.sum, x, dims=_ALL_DIMS[x._data.ndim if type(x) is Tensor else x.ndim], keepdim=keepdim)
    else:
        r = bind(P.sum, x, dims=_dims(x, dim), keepdim=keepdim)
        g = getattr(r, "_grad_fn", None)
        if g is not None and hasattr(g, "_name"):
            g._name = "SumBackward1"  # PyTorch's name for a sum over given dims
    return r if out is None else write_out(out, r)


def nansum(input, dim=None, keepdim: bool = False, *, dtype=None):
    return sum(P.where(P.isnan(input), 0, input), dim, keepdim, dtype=dtype)


def prod(input, dim=None, keepdim: bool = False, *, dtype=None):
    x = input if dtype is None else input.to(dtype)
    dims = () if dim is None else (wrap_dim(dim, x.ndim),)
    if dim is None:
        dims = tuple(range(x.ndim))
    return P.prod(x, dims=dims, keepdim=keepdim)


def mean(input, dim=None, keepdim: bool = False, *, dtype=None, out=None):
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_inexact:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {x.dtype.scalar_name}")
    return write_out(out, call_composite("mean", x, _dims(x, dim), keepdim))


def _correction(unbiased, correction) -> float:
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def _var_args(dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):  # var(unbiased) legacy positional form
        dim, unbiased = None, dim
    return dim, _correction(unbiased, correction), keepdim


def _float_only_var(input) -> None:
    if not input.dtype.is_floating_point:
        raise RuntimeError("std and var only support floating point and complex dtypes")


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    dim, corr, keepdim = _var_args(dim, unbiased, keepdim, correction)
    _float_only_var(input)
    return call_composite("var", input, _dims(input, dim), corr, keepdim)


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    dim, corr, keepdim = _var_args(dim, unbiased, keepdim, correction)
    _float_only_var(input)
    return call_composite("std", input, _dims(input, dim), corr, keepdim)


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, None if isinstance(dim, bool) else dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, None if isinstance(dim, bool) else dim, keepdim))


def amax(input, dim=(), keepdim: bool = False):
    return P.amax(input, dims=_dims(input, dim), keepdim=keepdim)


def amin(input, dim=(), keepdim: bool = False):
    return P.amin(input, dims=_dims(input, dim), keepdim=keepdim)


def _extreme(input, dim, keepdim, other, kind: str):
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return (maximum if kind == "max" else minimum)(input, other)
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError(
                f"{kind}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument.")
        return (amax if kind == "max" else amin)(input)
    d = wrap_dim(dim, input.ndim)
    vals, idx = call_composite(f"{kind}_dim", input, d, keepdim)
    return values_indices[kind](vals, idx)


def max(input, dim=None, keepdim: bool = False, *, other=None):
    return _extreme(input, dim, keepdim, other, "max")


def min(input, dim=None, keepdim: bool = False, *, other=None):
    return _extreme(input, dim, keepdim, other, "min")


def argmax(input, dim=None, keepdim: bool = False):
    return P.argmax(input, dim=None if dim is None else wrap_dim(dim, input.ndim), keepdim=keepdim)


def argmin(input, dim=None, keepdim: bool = False):
    return P.argmin(input, dim=None if dim is None else wrap_dim(dim, input.ndim), keepdim=keepdim)


def all(input, dim=None, keepdim: bool = False):
    b = input if input.dtype is dt.bool_ else P.ne(input, 0)
    if b.numel() == 0 and dim is None:
        return device_full(input, shape=(), value=True, dtype=dt.bool_)
    return P.amin(b, dims=_dims(b, dim), keepdim=keepdim)


def any(input, dim=None, keepdim: bool = False):
    b = input if input.dtype is dt.bool_ else P.ne(input, 0)
    if b.numel() == 0 and dim is None:
        return device_full(input, shape=(), value=False, dtype=dt.bool_)
    return P.amax(b, dims=_dims(b, dim), keepdim=keepdim)


def count_nonzero(input, dim=None):
    return P.sum(P.ne(input, 0), dims=_dims(input, dim), keepdim=False)


def cumsum(input, dim, *, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return P.cumsum(x, dim=wrap_dim(dim, x.ndim))


def logsumexp(input, dim, keepdim: bool = False):
    x = input if input.dtype.is_floating_point else input.to(dt.get_default_dtype())
    return call_composite("logsumexp", x, _dims(x, dim), keepdim)


def softmax(input, dim, dtype=None):
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f'"softmax_lastdim_kernel_impl" not implemented for \'{x.dtype.scalar_name}\'')
    return call_composite("softmax", x, wrap_dim(dim, x.ndim))


def log_softmax(input, dim, dtype=None):
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f'"log_softmax_lastdim_kernel_impl" not implemented for \'{x.dtype.scalar_name}\'')
    return call_composite("log_softmax", x, wrap_dim(dim, x.ndim))


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None):
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got {x.dtype.scalar_name}")
    if p == "fro" or p is None:
        p = 2
    if p == "nuc":
        raise NotImplementedError("nuclear norm needs an SVD, which graphc does not provide")
    return call_composite("norm", x, float(p), _dims(x, dim), keepdim)


def dist(input, other, p: float = 2):
    return norm(sub(input, other), p)


# ---- linear algebra -------------------------------------------------------------------------

def matmul(input, other, *, out=None):
    r = bind(P.matmul, input, other)
    return r if out is None else write_out(out, r)


def mm(input, mat2, *, out=None):
    if input.ndim != 2:
        raise RuntimeError(f"self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError(f"mat2 must be a matrix")
    return write_out(out, P.matmul(input, mat2))


def bmm(input, mat2, *, out=None):
    if input.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError(f"batch2 must be a 3D tensor")
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{input.shape[0]}, "
            f"{input.shape[2]}] but got: [{mat2.shape[0]}, {mat2.shape[1]}].")
    return write_out(out, P.matmul(input, mat2))


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.dtype is not other.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{input.dtype.scalar_name} and {other.dtype.scalar_name}")
    return P.matmul(input, other)



def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {vec.ndim}")
    return P.matmul(input, vec)


def outer(input, vec2):
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"outer: expected 1D tensors, got {input.ndim}D and {vec2.ndim}D")
    return P.mul(P.reshape(input, shape=(input.shape[0], 1)), P.reshape(vec2, shape=(1, vec2.shape[0])))


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    return _add_product(input, mm(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return _add_product(input, bmm(batch1, batch2), beta, alpha)


def _add_product(input, prod_, beta, alpha):
    """``beta * input + alpha * prod_`` in the product's dtype: PyTorch's addmm/baddbmm take all
    operands in one dtype, and under autocast the product ran in the lower one."""
    if isinstance(input, Tensor) and input.dtype is not prod_.dtype and input.dtype.is_floating_point \
            and prod_.dtype.is_floating_point:
        input = P.cast(input, dtype=prod_.dtype)
    return add(P.mul(input, beta) if beta != 1 else input, P.mul(prod_, alpha) if alpha != 1 else prod_)


def linear(input, weight, bias=None):
    return call_composite("linear", input, weight, bias)


def einsum(equation: str, *operands):
    """einsum via permute/reshape/matmul-free broadcasting: multiply, then sum contracted axes."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum(): {len(terms)} operand subscripts for {len(operands)} operands")
    if "." in eq:
        # '...' stands for the leading (broadcast) dimensions: spell them with fresh letters,
        # right-aligned across operands.
        free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq]
        n_ell = builtins.max((op.ndim - len(t.replace("...", "")) for t, op in zip(terms, operands)
                              if "..." in t), default=0)
        ell = "".join(free[:n_ell])
        terms = [t.replace("...", ell[n_ell - (op.ndim - len(t.replace("...", ""))):]) if "..." in t else t
                 for t, op in zip(terms, operands)]
        if _:
            rhs = rhs.replace("...", ell)
        else:
            joined = "".join(terms)
            rhs = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ell))
    elif not _:
        letters = sorted(c for c in set("".join(terms)) if "".join(terms).count(c) == 1)
        rhs = "".join(letters)
    all_letters = list(dict.fromkeys("".join(terms) + rhs))
    order = [c for c in rhs] + [c for c in all_letters if c not in rhs]
    sizes = {}
    aligned = []
    for term, op in zip(terms, operands):
        if len(term) != op.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(term)}) does "
                               f"not match the number of dimensions ({op.ndim}) for operand")
        x = op
        # a letter repeated in one term takes the diagonal over those dimensions (moved to the end)
        while len(set(term)) != len(term):
            from .shape_ops import diagonal
            c = next(c for c in term if term.count(c) > 1)
            i = term.index(c)
            j = term.index(c, i + 1)
            x = diagonal(x, 0, i, j)
            term = "".join(t for k, t in enumerate(term) if k not in (i, j)) + c
        for c, n in zip(term, x.shape):
            if sizes.setdefault(c, n) != n and n != 1 and sizes[c] != 1:
                raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes for subscript {c}")
            sizes[c] = builtins.max(sizes[c], n)
        perm = sorted(range(len(term)), key=lambda i: order.index(term[i]))
        x = P.permute(x, dims=tuple(perm)) if perm != list(range(len(term))) else x
        present = sorted(term, key=order.index)
        shape = tuple(x.shape[present.index(c)] if c in present else 1 for c in order)
        aligned.append(P.reshape(x, shape=shape))
    prod_ = aligned[0]
    for x in aligned[1:]:
        prod_ = P.mul(prod_, x)
    contracted = tuple(range(len(rhs), len(order)))
    return P.sum(prod_, dims=contracted, keepdim=False) if contracted else prod_


def _numpy_kwargs(fn):
    """PyTorch also accepts numpy's names for reduction arguments: ``axis`` and ``keepdims``."""
    import functools

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if kwargs:
            if "axis" in kwargs:
                kwargs["dim"] = kwargs.pop("axis")
            if "keepdims" in kwargs:
                kwargs["keepdim"] = kwargs.pop("keepdims")
        return fn(*args, **kwargs)
    return op


for _name in ("nansum", "prod", "mean", "var", "std", "var_mean", "std_mean", "amax", "amin", "max",
              "min", "argmax", "argmin", "all", "any", "count_nonzero", "logsumexp", "norm", "cumsum"):
    globals()[_name] = _numpy_kwargs(globals()[_name])
del _name


# ---- scans, special functions, order statistics, bucketing, products --------------------------
# (more of PyTorch's math API; composites are in graphc.passes.decompositions)

def grad_named(out, name: str):
    """Give the eager grad_fn this op just made PyTorch's name for it (``LinalgInvExBackward0``)."""
    for o in (out if isinstance(out, tuple) else (out,)):
        if isinstance(o, Tensor) and o.grad_fn is not None and hasattr(o.grad_fn, "_name"):
            o.grad_fn._name = name
    return out


def _scan_input(input, dim, dtype):
    x = input if dtype is None else input.to(dtype)
    if dtype is None and not x.dtype.is_floating_point and x.dtype is not dt.int64:
        x = P.cast(x, dtype=dt.int64)  # integer and bool scans accumulate in int64, as cumsum does
    return x, wrap_dim(dim, x.ndim)


def cumprod(input, dim, *, dtype=None, out=None):
    x, d = _scan_input(input, dim, dtype)
    return write_out(out, call_composite("cumprod", x, d))


def logcumsumexp(input, dim, *, out=None):
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"logcumsumexp_out_cpu" not implemented for \'{input.dtype.scalar_name}\'')
    return write_out(out, call_composite("logcumsumexp", input, wrap_dim(dim, input.ndim)))


def cummax(input, dim):
    vals, idx = call_composite("cummax", input, wrap_dim(dim, input.ndim))
    return values_indices["cummax"](vals, idx)


def cummin(input, dim):
    vals, idx = call_composite("cummin", input, wrap_dim(dim, input.ndim))
    return values_indices["cummin"](vals, idx)


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None):
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    d = wrap_dim(dim, input.ndim)
    parts = []
    for extra in (prepend, input, append):
        if extra is None:
            continue
        if extra is not input:
            extra = as_operand(extra)
            if not isinstance(extra, Tensor):
                shape = tuple(1 if i == d else s for i, s in enumerate(input.shape))
                extra = device_full(input, shape=shape, value=extra, dtype=dt.result_type(input, extra))
            if extra.ndim != input.ndim:
                raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        parts.append(extra)
    x = P.concat(*parts, axis=d) if len(parts) > 1 else input
    for _ in range(n):
        size = x.shape[d]
        if size == 0:
            break
        hi = tuple((1, size, 1) if i == d else (0, s, 1) for i, s in enumerate(x.shape))
        lo = tuple((0, size - 1, 1) if i == d else (0, s, 1) for i, s in enumerate(x.shape))
        a, b = P.slice(x, index=hi), P.slice(x, index=lo)
        x = P.logical_xor(a, b) if x.dtype is dt.bool_ else P.sub(a, b)
    return x if x is not input else P.copy(input)


def _float_pointwise(name: str, input, *others):
    for t in (input,) + others:
        if isinstance(t, Tensor) and not t.dtype.is_floating_point and not builtins.any(
                isinstance(o, Tensor) and o.dtype.is_floating_point for o in (input,) + others):
            raise NotImplementedError(f'"{name}_cpu" not implemented for \'{t.dtype.scalar_name}\'')


def logaddexp(input, other, *, out=None):
    a, b = as_operand(input), as_operand(other)
    _float_pointwise("logaddexp", a, b)
    return write_out(out, call_composite("logaddexp", a, b))


def logaddexp2(input, other, *, out=None):
    a, b = as_operand(input), as_operand(other)
    _float_pointwise("logaddexp2", a, b)
    return write_out(out, call_composite("logaddexp2", a, b))


def xlogy(input, other, *, out=None):
    return write_out(out, P.xlogy(as_operand(input), as_operand(other)))


def _to_float(x):
    x = as_operand(x)
    return x if not isinstance(x, Tensor) or x.dtype.is_floating_point else P.cast(x, dtype=dt.get_default_dtype())


def xlog1py(input, other, *, out=None):
    return write_out(out, call_composite("xlog1py", _to_float(input), _to_float(other)))


lgamma = _unary(P.lgamma, "lgamma")
erfinv = _unary(P.erfinv, "erfinv")
i0 = _unary(P.i0, "i0")


def igamma(input, other, *, out=None):
    """The regularized lower incomplete gamma function P(input, other) (``special.gammainc``)."""
    return write_out(out, P.igamma(as_operand(input), as_operand(other)))


def igammac(input, other, *, out=None):
    """The regularized upper incomplete gamma function Q(input, other) (``special.gammaincc``)."""
    return write_out(out, P.igammac(as_operand(input), as_operand(other)))


def digamma(input, *, out=None):
    return write_out(out, grad_named(P.polygamma(input, n=0), "DigammaBackward0"))


def polygamma(n: int, input, *, out=None):
    return write_out(out, P.polygamma(input, n=int(n)))


def mvlgamma(input, p: int, *, out=None):
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = _to_float(input)
    terms = [P.lgamma(P.sub(x, i / 2)) for i in range(p)]
    total = terms[0]
    for t in terms[1:]:
        total = P.add(total, t)
    return write_out(out, P.add(total, p * (p - 1) / 4 * float(np.log(np.pi))))


def sinc(input, *, out=None):
    return write_out(out, call_composite("sinc", _to_float(input)))


def logit(input, eps=None, *, out=None):
    return write_out(out, call_composite("logit", _to_float(input), eps))


def float_power(input, exponent, *, out=None):
    a, b = as_operand(input), as_operand(exponent)
    a = P.cast(a, dtype=dt.float64) if isinstance(a, Tensor) and a.dtype is not dt.float64 else a
    b = P.cast(b, dtype=dt.float64) if isinstance(b, Tensor) and b.dtype is not dt.float64 else b
    if not isinstance(a, Tensor):
        a = P.full(shape=(), value=float(a), dtype=dt.float64)
    return write_out(out, P.pow(a, float(b) if isinstance(b, (int, bool)) else b))


# ---- order statistics ------------------------------------------------------------------------

def _pick(x, idx, d, keepdim):
    vals = P.gather(x, idx, axis=d)
    if not keepdim:
        shape = tuple(s for i, s in enumerate(x.shape) if i != d)
        vals, idx = P.reshape(vals, shape=shape), P.reshape(idx, shape=shape)
    return vals, idx


def _median_index(x, d, ignore_nan: bool):
    """Index along ``d`` (kept) of the lower median; with NaNs, the first NaN (median) or the
    lower median of the other values (nanmedian)."""
    n = x.shape[d]
    order = P.argsort(x, dim=d, descending=False)
    nan = P.isnan(x)
    if ignore_nan:
        count = P.sum(P.logical_not(nan), dims=(d,), keepdim=True)
        k = P.maximum(P.floor_divide(P.sub(count, 1), 2), 0)
        return P.gather(order, k, axis=d)
    k = (n - 1) // 2
    idx = P.slice(order, index=tuple((k, k + 1, 1) if i == d else (0, s, 1) for i, s in enumerate(x.shape)))
    if not x.dtype.is_floating_point:
        return idx
    return P.where(P.amax(nan, dims=(d,), keepdim=True), P.argmax(nan, dim=d, keepdim=True), idx)


values_indices.setdefault("nanmedian", _return_type("nanmedian", ["values", "indices"]))


def _median(input, dim, keepdim, ignore_nan: bool, name: str):
    if dim is None:
        x = P.reshape(input, shape=(input.numel(),))
        if x.shape[0] == 0:
            return device_full(input, shape=(), value=float("nan"), dtype=input.dtype)
        idx = _median_index(x, 0, ignore_nan)
        m = P.stop_gradient(P.reshape(P.gather(x, idx, axis=0), shape=()))
        # the gradient is shared evenly by every element equal to the median, as in PyTorch
        if not input.dtype.is_floating_point:
            return m
        # (at an infinite or NaN median, the value is right and no gradient flows)
        hit = P.logical_and(P.eq(x, m), P.isfinite(x))
        share = P.div(P.sum(P.where(hit, P.sub(x, m), 0.0), dims=(0,), keepdim=False),
                      P.maximum(P.sum(P.cast(hit, dtype=input.dtype), dims=(0,), keepdim=False), 1.0))
        return grad_named(P.add(m, share), "MedianBackward0" if name == "median" else "NanmedianBackward0")
    if input.ndim == 0:
        wrap_dim(dim, 0)
        return values_indices[name](P.copy(input), device_tensor(np.zeros((), np.int64), input))
    d = wrap_dim(dim, input.ndim)
    if input.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    vals, idx = _pick(input, _median_index(input, d, ignore_nan), d, keepdim)
    return values_indices[name](grad_named(vals, "MedianBackward1" if name == "median" else "NanmedianBackward1"), idx)


def median(input, dim=None, keepdim: bool = False):
    return _median(input, dim, keepdim, False, "median")


def nanmedian(input, dim=None, keepdim: bool = False):
    return _median(input, dim, keepdim, True, "nanmedian")


def quantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear", out=None,
             _ignore_nan: bool = False):
    """The q-th quantiles along ``dim`` (all elements when None): sorted values, interpolated
    between the two nearest ranks; a 1-d q puts its dimension first, as in PyTorch."""
    name = "nanquantile" if _ignore_nan else "quantile"
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                         f"Got {interpolation}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    q_np = np.asarray(host_array(q._data) if isinstance(q, Tensor) else q, dtype=np.float64)
    if q_np.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if ((q_np < 0) | (q_np > 1)).any():
        raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    qs = q_np.reshape(-1)
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else wrap_dim(dim, x.ndim)
    xs = x.movedim(d, -1) if x.ndim else x.reshape(1)
    n = xs.shape[-1]
    if n == 0:
        raise IndexError(f"{name}() input tensor must be non-empty")
    nan = P.isnan(xs)
    if _ignore_nan:
        count = np.sum(~np.isnan(host_array(xs._data)), axis=-1, keepdims=True).astype(np.float64)  # per row
        pos = qs * np.maximum(count - 1, 0)                     # (..., m)
    else:
        pos = np.broadcast_to(qs * (n - 1), tuple(xs.shape[:-1]) + (len(qs),))
    srt = xs.sort(-1).values
    lo_i = np.floor(pos).astype(np.int64)
    hi_i = np.ceil(pos).astype(np.int64)
    if interpolation == "nearest":
        lo_i = hi_i = np.round(pos).astype(np.int64)
    elif interpolation == "lower":
        hi_i = lo_i
    elif interpolation == "higher":
        lo_i = hi_i
    lo_i = np.ascontiguousarray(np.broadcast_to(lo_i, pos.shape))
    hi_i = np.ascontiguousarray(np.broadcast_to(hi_i, pos.shape))
    lo = srt.gather(-1, device_tensor(lo_i, input))
    hi = srt.gather(-1, device_tensor(hi_i, input))
    if interpolation == "midpoint":
        res = lo + (hi - lo) * 0.5
    elif interpolation == "linear":
        w = device_tensor(np.ascontiguousarray(np.broadcast_to(pos - np.floor(pos), pos.shape)).astype(input.dtype.np),
                          input)
        res = lo.lerp(hi, w)
    else:
        res = lo
    any_nan = P.amax(nan, dims=(nan.ndim - 1,), keepdim=True)
    if _ignore_nan:
        all_nan = P.amin(nan, dims=(nan.ndim - 1,), keepdim=True)
        res = P.where(all_nan, float("nan"), res)
    else:
        res = P.where(any_nan, float("nan"), res)
    res = res.movedim(-1, 0)                                    # (m, ...)
    if keepdim:
        res = res.reshape((len(qs),) + (1,) * input.ndim) if dim is None else res.unsqueeze(d + 1)
    if q_np.ndim == 0:
        res = res.squeeze(0)
    return write_out(out, res) if out is not None else res


def nanquantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear", out=None):
    return quantile(input, q, dim, keepdim, interpolation=interpolation, out=out, _ignore_nan=True)


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest value along ``dim`` (1-based k) and its index."""
    if input.ndim == 0:
        if k != 1:
            raise IndexError(f"kthvalue(): selected number k out of range for dimension 0")
        return values_indices["kthvalue"](P.copy(input), device_tensor(np.zeros((), np.int64), input))
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if not 1 <= k <= n:
        raise IndexError(f"kthvalue(): selected number k out of range for dimension {d}")
    order = P.argsort(input, dim=d, descending=False)
    idx = P.slice(order, index=tuple((k - 1, k, 1) if i == d else (0, s, 1) for i, s in enumerate(input.shape)))
    vals, idx = _pick(input, idx, d, keepdim)
    return values_indices["kthvalue"](grad_named(vals, "KthvalueBackward0"), idx)


def mode(input, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest among equally frequent ones) and the
    index of its last occurrence, as PyTorch returns them. Built from primitives (it traces):
    in stably sorted order, the first position where a run of equal values reaches the longest
    run length ends the smallest most frequent value, and holds its last occurrence."""
    if input.ndim == 0:
        return values_indices["mode"](P.copy(input), device_tensor(np.zeros((), np.int64), input))
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    order = P.argsort(input, dim=d, descending=False)
    s = P.gather(input, order, axis=d)

    def part(x, lo, hi):
        return P.slice(x, index=tuple((lo, hi, 1) if i == d else (0, k, 1) for i, k in enumerate(x.shape)))

    with using_device(input.device):
        first = P.full(shape=tuple(1 if i == d else k for i, k in enumerate(input.shape)), value=True, dtype=dt.bool_)
        arange = P.arange(start=0, end=n, step=1, dtype=dt.int64)
    new_run = P.concat(first, P.ne(part(s, 1, n), part(s, 0, n - 1)), axis=d) if n > 1 else first
    pos = P.reshape(arange, shape=tuple(n if i == d else 1 for i in range(input.ndim)))
    starts = P.where(new_run, pos, 0)
    run_start = P.gather(starts, P.cumargmax(starts, dim=d), axis=d)  # running max of the run starts
    count = P.sub(pos, run_start)
    best = P.argmax(P.eq(count, P.amax(count, dims=(d,), keepdim=True)), dim=d, keepdim=True)
    idx = P.gather(order, best, axis=d)
    vals, idx = _pick(input, idx, d, keepdim)
    return values_indices["mode"](grad_named(vals, "ModeBackward0"), idx)


# ---- counting and bucketing ------------------------------------------------------------------

def bincount(input, weights=None, minlength: int = 0):
    if input.dtype.is_floating_point or input.dtype is dt.bool_:
        raise NotImplementedError(f'"bincount_cpu" not implemented for \'{input.dtype.scalar_name}\'')
    data = host_array(input._data)  # the output's size depends on the values: counted on the host
    if data.ndim != 1 or (data.size and data.min() < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return device_tensor(np.bincount(data, minlength=minlength).astype(np.int64), input)
    w = host_array(weights._data) if isinstance(weights, Tensor) else np.asarray(weights)
    if w.shape != data.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    out = np.bincount(data, weights=w.astype(np.float64), minlength=minlength)
    return device_tensor(out.astype(np.float32 if w.dtype == np.float32 else np.float64), input)


def histc(input, bins: int = 100, min=0, max=0, *, out=None):
    """Histogram of ``bins`` equal-width bins over [min, max] (the data's range when both are 0);
    values outside and NaNs are not counted. Built from primitives, so it traces."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"histogram_cpu" not implemented for \'{input.dtype.scalar_name}\'')
    if bins <= 0:
        raise RuntimeError("torch.histc(): bins must be > 0, but got " + str(bins))
    if min > max:
        raise RuntimeError("torch.histc: max must be larger than min")
    x = P.reshape(input, shape=(input.numel(),))
    d = input.dtype
    if min == max and x.shape[0]:
        finite = P.isfinite(x)
        lo = P.amin(P.where(finite, x, float("inf")), dims=(0,), keepdim=False)
        hi = P.amax(P.where(finite, x, float("-inf")), dims=(0,), keepdim=False)
        lo, hi = P.where(P.isinf(lo), 0.0, lo), P.where(P.isinf(hi), 0.0, hi)
    else:
        lo, hi = device_full(x, shape=(), value=float(min), dtype=d), device_full(x, shape=(), value=float(max), dtype=d)
    same = P.eq(lo, hi)
    lo, hi = P.cast(P.where(same, P.sub(lo, 1), lo), dtype=d), P.cast(P.where(same, P.add(hi, 1), hi), dtype=d)
    inside = P.logical_and(P.ge(x, lo), P.le(x, hi))
    pos = P.floor(P.div(P.mul(P.sub(x, lo), bins), P.sub(hi, lo)))
    pos = P.cast(P.where(inside, P.minimum(pos, bins - 1), 0), dtype=dt.int64)
    counts = P.scatter_add(device_full(x, shape=(bins,), value=0, dtype=d), pos, P.cast(inside, dtype=d), axis=0)
    return write_out(out, counts)


def searchsorted(sorted_sequence, input, *, out_int32: bool = False, right: bool = False, side=None,
                 sorter=None, out=None):
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of "
                               "left while right was True")
        right = side == "right"
    scalar = not isinstance(input, Tensor)
    values = as_operand(input)
    if scalar:
        values = device_full(sorted_sequence, shape=(1,), value=values, dtype=dt.result_type(sorted_sequence, values))
    seq = sorted_sequence
    if sorter is not None:
        seq = P.gather(seq, sorter, axis=seq.ndim - 1)
    if seq.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                           "dimensions of boundaries tensor and input value tensor must match, but we got "
                           f"boundaries tensor {list(seq.shape)} and input value tensor {list(values.shape)}")
    common = dt.result_type(seq, values)
    seq = seq if seq.dtype is common else P.cast(seq, dtype=common)
    values = values if values.dtype is common else P.cast(values, dtype=common)
    res = P.searchsorted(seq, values, right=bool(right), out_int32=bool(out_int32))
    return write_out(out, P.reshape(res, shape=()) if scalar else res)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False, out=None):
    if isinstance(boundaries, Tensor) and boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right, out=out)


# ---- products and distances ------------------------------------------------------------------

def tensordot(a, b, dims=2, out=None):
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError("both dimension lists should have same length")
    da, db = [wrap_dim(d, a.ndim) for d in da], [wrap_dim(d, b.ndim) for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {x} "
                               f"and second has size {b.shape[y]} in dim {y}")
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da])) if da else 1
    sa, sb = [a.shape[d] for d in free_a], [b.shape[d] for d in free_b]
    am = P.reshape(P.permute(a, dims=tuple(free_a + da)), shape=(int(np.prod(sa)) if sa else 1, k))
    bm = P.reshape(P.permute(b, dims=tuple(db + free_b)), shape=(k, int(np.prod(sb)) if sb else 1))
    return write_out(out, P.reshape(P.matmul(am, bm), shape=tuple(sa + sb)))


def kron(input, other, *, out=None):
    n = builtins.max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + tuple(input.shape)
    sb = (1,) * (n - other.ndim) + tuple(other.shape)
    a = P.reshape(input, shape=tuple(x for s in sa for x in (s, 1)))
    b = P.reshape(other, shape=tuple(x for s in sb for x in (1, s)))
    return write_out(out, P.reshape(P.mul(a, b), shape=tuple(x * y for x, y in zip(sa, sb))))


def _cross(input, other, dim: int, op: str):
    from .shape_ops import broadcast_tensors
    if input.ndim != other.ndim:
        raise RuntimeError(f"{op}: inputs must have the same number of dimensions.")
    a, b = broadcast_tensors(input, other)
    d = wrap_dim(dim, a.ndim)
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"{op}: inputs dimension {dim} must have length 3. Got {input.shape[d]} and "
                           f"{other.shape[d]}")

    def comp(x, i):
        return P.slice(x, index=tuple((i, i + 1, 1) if k == d else (0, s, 1) for k, s in enumerate(x.shape)))

    a0, a1, a2 = (comp(a, i) for i in range(3))
    b0, b1, b2 = (comp(b, i) for i in range(3))
    return P.concat(P.sub(P.mul(a1, b2), P.mul(a2, b1)), P.sub(P.mul(a2, b0), P.mul(a0, b2)),
                    P.sub(P.mul(a0, b1), P.mul(a1, b0)), axis=d)


def cross(input, other, dim=None, *, out=None):
    if dim is None:
        import warnings
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                      "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree "
                      "with that of linalg.cross in a future release.", UserWarning, stacklevel=2)
        from graphc.ir.shapes import broadcast_shapes
        shape = broadcast_shapes(tuple(input.shape), tuple(other.shape))
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"no dimension of size 3 in input")
    return write_out(out, _cross(input, other, dim, "linalg.cross"))


def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    for name, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: {x.ndim}D")
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: {x.dtype.scalar_name}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values")
    return call_composite("cdist", x1, x2, float(p))


def trapezoid(y, x=None, *, dx=None, dim: int = -1):
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        x, dx = None, x
    d = wrap_dim(dim, y.ndim)
    n = y.shape[d]
    if n == 0:
        shape = tuple(s for i, s in enumerate(y.shape) if i != d)
        return device_full(y, shape=shape, value=0, dtype=y.dtype if y.dtype.is_floating_point else dt.get_default_dtype())
    hi = tuple((1, n, 1) if i == d else (0, s, 1) for i, s in enumerate(y.shape))
    lo = tuple((0, n - 1, 1) if i == d else (0, s, 1) for i, s in enumerate(y.shape))
    pair = P.add(P.slice(y, index=hi), P.slice(y, index=lo))
    if x is None:
        return P.mul(P.sum(P.div(pair, 2), dims=(d,), keepdim=False), 1 if dx is None else dx)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError("trapezoid: There must be one `x` value for each sample point")
        x = P.reshape(x, shape=tuple(n if i == d else 1 for i in range(y.ndim)))
    spacing = diff(x, dim=d)
    return P.sum(P.div(P.mul(spacing, pair), 2), dims=(d,), keepdim=False)


def trapz(y, x=None, *, dx=None, dim: int = -1):
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1):
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        x, dx = None, x
    d = wrap_dim(dim, y.ndim)
    n = y.shape[d]
    hi = tuple((1, n, 1) if i == d else (0, s, 1) for i, s in enumerate(y.shape))
    lo = tuple((0, builtins.max(n - 1, 0), 1) if i == d else (0, s, 1) for i, s in enumerate(y.shape))
    pair = P.div(P.add(P.slice(y, index=hi), P.slice(y, index=lo)), 2)
    if x is None:
        area = P.mul(pair, 1 if dx is None else dx)
    else:
        if x.ndim == 1:
            x = P.reshape(x, shape=tuple(x.shape[0] if i == d else 1 for i in range(y.ndim)))
        area = P.mul(diff(x, dim=d), pair)
    return P.cumsum(area, dim=d)
