"""Composite ops as decompositions into primitives: the one table of them.

Each entry takes operands (eager tensors or IR values) plus normalized attributes and returns the
result built only from primitives, so eager autograd and the compiler (fusion included) both see
through them. ``grad_name`` is the PyTorch name the composite's grad_fn reports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from graphc.ir import prims as P


@dataclass(frozen=True)
class Composite:
    name: str
    fn: Callable
    grad_name: str


COMPOSITES: dict[str, Composite] = {}


def composite(name: str, grad_name: str | None = None):
    def register(fn):
        if name in COMPOSITES:
            raise ValueError(f"composite {name!r} defined twice")
        gname = grad_name or "".join(p.capitalize() for p in name.split("_")) + "Backward0"
        COMPOSITES[name] = Composite(name, fn, gname)
        return fn
    return register


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


@composite("silu")
def silu(x):
    return P.mul(x, P.sigmoid(x))


@composite("gelu")
def gelu(x, approximate="none"):
    if approximate == "tanh":
        inner = P.mul(P.add(x, P.mul(P.mul(P.mul(x, x), x), 0.044715)), math.sqrt(2 / math.pi))
        return P.mul(P.mul(x, 0.5), P.add(P.tanh(inner), 1))
    return P.mul(P.mul(x, 0.5), P.add(P.erf(P.mul(x, 1 / math.sqrt(2))), 1))


@composite("softplus")
def softplus(x, beta=1.0, threshold=20.0):
    bx = P.mul(x, beta)
    linear = P.gt(bx, threshold)
    # log1p(exp(bx)) on the other side of the threshold only (exp cannot overflow for the usual
    # thresholds, as in PyTorch); unlike max(bx, 0) + log1p(exp(-|bx|)), its derivatives are
    # smooth at 0, so second derivatives are right there too
    soft = P.div(P.log1p(P.exp(P.where(linear, 0.0, bx))), beta)
    return P.where(linear, x, soft)


# ---- reductions -----------------------------------------------------------------------------

@composite("mean")
def mean(x, dims, keepdim=False):
    return P.div(P.sum(x, dims=dims, keepdim=keepdim), _count(x, dims))


@composite("var")
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


@composite("std")
def std(x, dims, correction=1, keepdim=False):
    return _root_zero_grad_at_zero(var(x, dims, correction, keepdim))


@composite("logsumexp")
def logsumexp(x, dims, keepdim=False):
    if not dims:
        return P.add(x, 0)
    m = P.amax(x, dims=dims, keepdim=True)
    # a row of -inf would give inf - inf = nan; shift by 0 there instead
    m = P.where(P.isinf(m), 0.0, m)
    s = P.log(P.sum(P.exp(P.sub(x, m)), dims=dims, keepdim=True))
    out = P.add(s, m)
    return out if keepdim else P.reshape(out, shape=tuple(n for i, n in enumerate(_shape(x)) if i not in dims))


@composite("softmax")
def softmax(x, dim):
    dims = (dim,) if _shape(x) else ()  # a 0-d tensor (dim 0 or -1) is its own group
    m = P.amax(x, dims=dims, keepdim=True)
    e = P.exp(P.sub(x, m))
    return P.div(e, P.sum(e, dims=dims, keepdim=True))


@composite("log_softmax")
def log_softmax(x, dim):
    return P.sub(x, logsumexp(x, (dim,) if _shape(x) else (), keepdim=True))


@composite("norm", grad_name="LinalgVectorNormBackward0")
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
    w_t = P.permute(weight, dims=(1, 0)) if len(_shape(weight)) == 2 else weight
    y = P.matmul(x, w_t)
    return y if bias is None else P.add(y, bias)


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
