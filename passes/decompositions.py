"""Composite ops as decompositions into primitives: the one table of them.

Each entry takes operands (eager tensors or IR values) plus normalized attributes and returns the
result built only from primitives, so eager autograd and the compiler (fusion included) both see
through them. ``grad_name`` is the PyTorch name the composite's grad_fn reports.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

from graphc.ir import dtypes as dt
from graphc.ir import prims as P


@dataclass(frozen=True)
class Composite:
    name: str
    fn: Callable
    grad_name: str
    # float16/bfloat16 operands are computed in float32 and the results rounded once, as
    # PyTorch's CPU kernels for these ops do (softmax, norms, variances: a chain of primitives in
    # the low-precision format would round after every step)
    float32_inside: bool = False
    # the results take the first operand's type when it is float16/bfloat16, whatever the others
    # (PyTorch's mixed-type normalizations: a bfloat16 input with float32 weights gives bfloat16)
    follows_input: bool = False


COMPOSITES: dict[str, Composite] = {}


def composite(name: str, grad_name: str | None = None, float32_inside: bool = False,
              follows_input: bool = False):
    def register(fn):
        if name in COMPOSITES:
            raise ValueError(f"composite {name!r} defined twice")
        gname = grad_name or "".join(p.capitalize() for p in name.split("_")) + "Backward0"
        if float32_inside:
            fn = _in_float32(fn, follows_input)
        COMPOSITES[name] = Composite(name, fn, gname, float32_inside, follows_input)
        return fn
    return register


def _float_type(a) -> dt.DType | None:
    """The dtype of a floating-point tensor or IR value; None for anything else."""
    d = getattr(a, "dtype", None)
    return d if isinstance(d, dt.DType) and d.is_floating_point else None


def _is_float_tensor(a) -> bool:
    return _float_type(a) is not None


def _in_float32(fn: Callable, follows_input: bool) -> Callable:
    """``fn`` computing in float32 when its floating-point operands promote to float16 or
    bfloat16 (``follows_input``: when the first operand is one): they are cast up, and its float32
    result cast back to that type (once, at the end: the casts are primitives, so autodiff and
    fusion see them). Other operands pass unchanged."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        low = _float_type(args[0]) if follows_input and args else None
        if low is None:
            for a in (*args, *kwargs.values()) if kwargs else args:
                d = _float_type(a)
                if d is not None:
                    low = d if low is None else dt.promote_types(low, d)
        if low is None or not low.is_low_precision:
            return fn(*args, **kwargs)

        def up(a):
            return P.cast(a, dtype=dt.float32) if _is_float_tensor(a) else a

        def down(o):
            return P.cast(o, dtype=low) if _is_float_tensor(o) and o.dtype is dt.float32 else o

        out = fn(*map(up, args), **{k: up(v) for k, v in kwargs.items()})
        # a tuple's further results (batch norm's batch statistics) stay float32, as the
        # statistics PyTorch's kernels save (their float accumulation type)
        return (down(out[0]),) + out[1:] if isinstance(out, tuple) else down(out)
    return run


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape)


def _count(x, dims) -> int:
    n = 1
    for d in dims:
        n *= _shape(x)[d]
    return n


def _keep(x, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(_shape(x)))


# ---- pointwise ------------------------------------------------------------------------------

@composite("clamp")
def clamp(x, min=None, max=None):
    # where-based so the gradient passes at the boundaries, as in PyTorch
    if min is not None:
        x = P.where(P.lt(x, min), P.cast(min, dtype=x.dtype) if hasattr(min, "dtype") else min, x)
    if max is not None:
        x = P.where(P.gt(x, max), P.cast(max, dtype=x.dtype) if hasattr(max, "dtype") else max, x)
    return x


@composite("square", grad_name="PowBackward0")
def square(x):
    return P.mul(x, x)


@composite("erfc")
def erfc(x):
    return P.sub(1, P.erf(x))


@composite("frac")
def frac(x):
    return P.sub(x, P.trunc(x))


@composite("fmod")
def fmod(x, y):
    return P.sub(x, P.mul(P.trunc(P.div(x, y)), y))


@composite("lerp")
def lerp(start, end, weight):
    return P.add(start, P.mul(weight, P.sub(end, start)))


@composite("addcmul")
def addcmul(x, t1, t2, value=1):
    return P.add(x, P.mul(P.mul(t1, t2), value))


@composite("addcdiv")
def addcdiv(x, t1, t2, value=1):
    return P.add(x, P.mul(P.div(t1, t2), value))


@composite("silu", float32_inside=True)
def silu(x):
    return P.mul(x, P.sigmoid(x))


@composite("gelu", float32_inside=True)
def gelu(x, approximate="none"):
    if approximate == "tanh":
        # sqrt(2/pi) * (x + 0.044715 x^3) as x * (c + c * 0.044715 * x^2): four passes, not five
        c = math.sqrt(2 / math.pi)
        inner = P.mul(x, P.add(P.mul(P.mul(x, x), c * 0.044715), c))
        return P.mul(P.mul(x, 0.5), P.add(P.tanh(inner), 1))
    return P.mul(P.mul(x, 0.5), P.add(P.erf(P.mul(x, 1 / math.sqrt(2))), 1))


@composite("softplus", float32_inside=True)
def softplus(x, beta=1.0, threshold=20.0):
    bx = P.mul(x, beta)
    linear = P.gt(bx, threshold)
    # log1p(exp(bx)) on the other side of the threshold only (exp cannot overflow for the usual
    # thresholds, as in PyTorch); unlike max(bx, 0) + log1p(exp(-|bx|)), its derivatives are
    # smooth at 0, so second derivatives are right there too. Past the threshold bx is replaced by
    # the threshold itself (a clamp, one numpy pass once lowered), not by 0: those lanes take x.
    soft = P.div(P.log1p(P.exp(P.where(linear, threshold, bx))), beta)
    return P.where(linear, x, soft)


# ---- reductions -----------------------------------------------------------------------------

@composite("mean", float32_inside=True)
def mean(x, dims, keepdim=False):
    return P.div(P.sum(x, dims=dims, keepdim=keepdim), _count(x, dims))


@composite("var", float32_inside=True)
def var(x, dims, correction=1, keepdim=False):
    m = P.div(P.sum(x, dims=dims, keepdim=True), _count(x, dims))
    d = P.sub(x, m)
    n = _count(x, dims) - correction
    return P.div(P.sum(P.mul(d, d), dims=dims, keepdim=keepdim), n if n > 0 else 0.0)


def _root_zero_grad_at_zero(s, inv_p=0.5):
    """s ** inv_p with gradient 0 where s == 0 (PyTorch's norm/std), not inf * 0 = nan."""
    zero = P.eq(s, 0)
    safe = P.where(zero, 1.0, s)
    return P.where(zero, 0.0, P.sqrt(safe) if inv_p == 0.5 else P.pow(safe, inv_p))


@composite("std", float32_inside=True)
def std(x, dims, correction=1, keepdim=False):
    return _root_zero_grad_at_zero(var(x, dims, correction, keepdim))


def _shift(x, dims):
    """The max that softmax, log_softmax and logsumexp shift by, held constant for autodiff: their
    result does not depend on it, so its derivatives (every order) through it are zero, and
    differentiating amax would cost a tie mask and its count per row for nothing (PyTorch's
    kernels do not differentiate it either)."""
    return P.stop_gradient(P.amax(x, dims=dims, keepdim=True))


@composite("logsumexp", float32_inside=True)
def logsumexp(x, dims, keepdim=False):
    if not dims:
        return P.add(x, 0)
    m = _shift(x, dims)
    # a row of -inf would give inf - inf = nan; shift by 0 there instead
    m = P.where(P.isinf(m), 0.0, m)
    s = P.log(P.sum(P.exp(P.sub(x, m)), dims=dims, keepdim=True))
    out = P.add(s, m)
    return out if keepdim else P.reshape(out, shape=tuple(n for i, n in enumerate(_shape(x)) if i not in dims))


@composite("softmax", float32_inside=True)
def softmax(x, dim):
    dims = (dim,) if _shape(x) else ()  # a 0-d tensor (dim 0 or -1) is its own group
    m = _shift(x, dims)
    e = P.exp(P.sub(x, m))
    # PyTorch's kernel multiplies by the reciprocal of the sum (rounding as it does)
    return P.mul(e, P.div(1.0, P.sum(e, dims=dims, keepdim=True)))


@composite("log_softmax", float32_inside=True)
def log_softmax(x, dim):
    # (x - max) - log(sum(exp(x - max))), in PyTorch's order of rounding
    dims = (dim,) if _shape(x) else ()
    m = _shift(x, dims)
    m = P.where(P.eq(m, float("-inf")), 0.0, m)  # a row of -inf gives nan, as in PyTorch; +inf too
    shifted = P.sub(x, m)
    return P.sub(shifted, P.log(P.sum(P.exp(shifted), dims=dims, keepdim=True)))


@composite("norm", grad_name="LinalgVectorNormBackward0", float32_inside=True)
def norm(x, p, dims, keepdim=False):
    a = P.abs(x)
    if p == float("inf"):
        return P.amax(a, dims=dims, keepdim=keepdim)
    if p == float("-inf"):
        return P.amin(a, dims=dims, keepdim=keepdim)
    if p == 0:
        return P.sum(P.cast(P.ne(x, 0), dtype=x.dtype), dims=dims, keepdim=keepdim)
    if p == 1:
        return P.sum(a, dims=dims, keepdim=keepdim)
    if p == 2:
        return _root_zero_grad_at_zero(P.sum(P.mul(x, x), dims=dims, keepdim=keepdim))
    return _root_zero_grad_at_zero(P.sum(P.pow(a, p), dims=dims, keepdim=keepdim), 1.0 / p)


@composite("max_dim", grad_name="MaxBackward0")
def max_dim(x, dim, keepdim=False):
    """(values, indices); the gradient goes to the selected index only, as in PyTorch."""
    idx = P.argmax(x, dim=dim, keepdim=True)
    return _select(x, idx, dim, keepdim)


@composite("min_dim", grad_name="MinBackward0")
def min_dim(x, dim, keepdim=False):
    idx = P.argmin(x, dim=dim, keepdim=True)
    return _select(x, idx, dim, keepdim)


def _select(x, idx, dim, keepdim):
    if not _shape(x):
        return P.add(x, 0), P.reshape(idx, shape=())
    vals = P.gather(x, idx, axis=dim)
    if not keepdim:
        out_shape = tuple(s for i, s in enumerate(_shape(x)) if i != dim)
        vals, idx = P.reshape(vals, shape=out_shape), P.reshape(idx, shape=out_shape)
    return vals, idx


# ---- linear algebra -------------------------------------------------------------------------

@composite("linear", grad_name="AddmmBackward0")
def linear(x, weight, bias=None):
    # checked here, not before the call, so that autocast has cast the operands first
    if x.dtype is not weight.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {x.dtype.scalar_name} and "
                           f"{weight.dtype.scalar_name}")
    w_t = P.permute(weight, dims=(1, 0)) if len(_shape(weight)) == 2 else weight
    y = P.matmul(x, w_t)
    return y if bias is None else P.add(y, bias)


# ---- scans ----------------------------------------------------------------------------------

def _along(x, dim, lo, hi):
    return P.slice(x, index=tuple((lo, hi, 1) if d == dim else (0, s, 1) for d, s in enumerate(_shape(x))))


def _scan(x, dim, combine):
    """Inclusive scan by doubling (Hillis-Steele): after the step with offset k, element i combines
    elements i-2k+1..i. Exact for products (no exp/log), so gradients are right at zeros too."""
    if not _shape(x) or _shape(x)[dim] <= 1:
        return P.copy(x)
    n, k = _shape(x)[dim], 1
    while k < n:
        tail = combine(_along(x, dim, k, n), _along(x, dim, 0, n - k))
        x = P.concat(_along(x, dim, 0, k), tail, axis=dim)
        k *= 2
    return x


@composite("cumprod", float32_inside=True)
def cumprod(x, dim):
    return _scan(x, dim, P.mul)


def _logaddexp(a, b):
    # shifting by a constant (no gradient) keeps every derivative exact, also where a == b
    m = P.stop_gradient(P.maximum(a, b))
    m = P.where(P.isinf(m), 0.0, m)  # both -inf (or an inf): exp/log give the right limit unshifted
    return P.add(P.log(P.add(P.exp(P.sub(a, m)), P.exp(P.sub(b, m)))), m)


@composite("logcumsumexp", float32_inside=True)
def logcumsumexp(x, dim):
    return _scan(x, dim, _logaddexp)


@composite("cummax", grad_name="CummaxBackward0")
def cummax(x, dim):
    """(values, indices): the gradient goes to the index each running maximum came from."""
    idx = P.cumargmax(x, dim=dim)
    return (P.copy(x) if not _shape(x) else P.gather(x, idx, axis=dim)), idx


@composite("cummin", grad_name="CumminBackward0")
def cummin(x, dim):
    idx = P.cumargmin(x, dim=dim)
    return (P.copy(x) if not _shape(x) else P.gather(x, idx, axis=dim)), idx


# ---- more pointwise -------------------------------------------------------------------------

@composite("logaddexp")
def logaddexp(a, b):
    return _logaddexp(a, b)


@composite("logaddexp2")
def logaddexp2(a, b):
    ln2 = math.log(2.0)
    return P.div(_logaddexp(P.mul(a, ln2), P.mul(b, ln2)), ln2)


@composite("xlog1py", grad_name="SpecialXlog1PyBackward0")
def xlog1py(x, y):
    # 0 where x == 0 (unless y is nan); the derivative in x stays log1p(y) there
    at_zero = P.logical_and(P.eq(x, 0), P.logical_or(P.le(y, -1), P.isinf(y)))
    return P.mul(x, P.where(at_zero, 0.0, P.log1p(y)))


@composite("sinc")
def sinc(x):
    zero = P.eq(x, 0)
    px = P.mul(P.where(zero, 1.0, x), math.pi)
    return P.where(zero, 1.0, P.div(P.sin(px), px))


@composite("logit")
def logit(x, eps=None):
    if eps is not None:
        x = clamp(x, eps, 1.0 - eps)
    return P.log(P.div(x, P.sub(1, x)))


@composite("entr", grad_name="SpecialEntrBackward0")
def entr(x):
    pos = P.gt(x, 0)
    safe = P.where(pos, x, 1.0)
    return P.where(pos, P.neg(P.mul(safe, P.log(safe))), P.where(P.eq(x, 0), 0.0, -math.inf))


# ---- distances ------------------------------------------------------------------------------

@composite("cdist")
def cdist(x1, x2, p=2.0):
    """Pairwise p-norm distances of the rows of x1 (..., P, M) and x2 (..., R, M)."""
    s1, s2 = _shape(x1), _shape(x2)
    d = P.sub(P.reshape(x1, shape=s1[:-1] + (1, s1[-1])), P.reshape(x2, shape=s2[:-2] + (1,) + s2[-2:]))
    return norm(d, p, (len(_shape(d)) - 1,), keepdim=False)


# The neural-network composites register into the same table from their own module.
from . import nn_decompositions  # noqa: E402,F401


def layout_of(args: tuple, kwargs: dict) -> tuple[tuple, list]:
    """Split a composite call's arguments into tensor operands and a printable layout that says
    where each operand goes (("t", k)) and what the other arguments are (("v", value))."""
    operands: list = []

    def entry(a):
        if hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, (int, float)):
            operands.append(a)
            return ("t", len(operands) - 1)
        return ("v", a)

    layout = tuple(entry(a) for a in args) + tuple(("k", k, entry(v)) for k, v in kwargs.items())
    return layout, operands


def expand(name: str, layout: tuple, operands: list):
    """Apply composite ``name`` to ``operands`` laid out as ``layout`` (the inverse of layout_of)."""
    def value(e):
        return operands[e[1]] if e[0] == "t" else e[1]

    args = [value(e) for e in layout if e[0] != "k"]
    kwargs = {e[1]: value(e[2]) for e in layout if e[0] == "k"}
    return COMPOSITES[name].fn(*args, **kwargs)


def _register_expander() -> None:
    from graphc.ir.composite import set_expander
    set_expander(expand)


_register_expander()
