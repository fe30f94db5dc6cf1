"""graphc.special: PyTorch's torch.special (special functions; scipy.special computes the
non-elementary ones, imported on first use)."""
from __future__ import annotations

import math

from graphc.ir import prims as P

from . import creation, math_ops
from .math_ops import (digamma, erf, erfc, erfinv, exp2, expm1, log1p, log_softmax, logit, logsumexp,  # noqa: F401
                       mvlgamma as multigammaln, polygamma, round, sinc, softmax, xlog1py, xlogy)
from .math_ops import call_composite, lgamma as gammaln, sigmoid as expit  # noqa: F401
from .tensors import Tensor

psi = digamma


def entr(input: Tensor, *, out=None) -> Tensor:
    """-x log(x) for x > 0, 0 at 0 and -inf below."""
    return math_ops.write_out(out, call_composite("entr", math_ops._to_float(input)))


def ndtr(input: Tensor, *, out=None) -> Tensor:
    """The standard normal CDF."""
    x = math_ops._to_float(input)
    return math_ops.write_out(out, P.mul(P.add(P.erf(P.mul(x, 1 / math.sqrt(2))), 1), 0.5))


def ndtri(input: Tensor, *, out=None) -> Tensor:
    """The inverse of ndtr."""
    p = math_ops._to_float(input)
    return math_ops.write_out(out, P.mul(P.erfinv(P.sub(P.mul(p, 2), 1)), math.sqrt(2)))


# Bessel functions, Airy's Ai, erfcx, log_ndtr, the incomplete gamma functions and Hurwitz's zeta:
# primitives computed by scipy.special (ir/special_prims.py)
from .math_ops import i0, igamma as gammainc, igammac as gammaincc  # noqa: E402,F401

airy_ai = math_ops._unary(P.airy_ai, "airy_ai")
bessel_j0 = math_ops._unary(P.bessel_j0, "bessel_j0")
bessel_j1 = math_ops._unary(P.bessel_j1, "bessel_j1")
bessel_y0 = math_ops._unary(P.bessel_y0, "bessel_y0")
bessel_y1 = math_ops._unary(P.bessel_y1, "bessel_y1")
erfcx = math_ops._unary(P.erfcx, "erfcx")
i0e = math_ops._unary(P.i0e, "i0e")
i1 = math_ops._unary(P.i1, "i1")
i1e = math_ops._unary(P.i1e, "i1e")
log_ndtr = math_ops._unary(P.log_ndtr, "log_ndtr")
modified_bessel_i0 = math_ops._unary(P.modified_bessel_i0, "modified_bessel_i0")
modified_bessel_i1 = math_ops._unary(P.modified_bessel_i1, "modified_bessel_i1")
modified_bessel_k0 = math_ops._unary(P.modified_bessel_k0, "modified_bessel_k0")
modified_bessel_k1 = math_ops._unary(P.modified_bessel_k1, "modified_bessel_k1")
scaled_modified_bessel_k0 = math_ops._unary(P.scaled_modified_bessel_k0, "scaled_modified_bessel_k0")
scaled_modified_bessel_k1 = math_ops._unary(P.scaled_modified_bessel_k1, "scaled_modified_bessel_k1")


def zeta(input, other, *, out=None) -> Tensor:
    """Hurwitz's zeta function: sum over k >= 0 of (k + other)^-input."""
    return math_ops.write_out(out, P.zeta(math_ops.as_operand(input), math_ops.as_operand(other)))


__all__ = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "erfcx", "gammainc", "gammaincc", "i0",
           "i0e", "i1", "i1e", "log_ndtr", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
           "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "zeta",
           "digamma", "entr", "erf", "erfc", "erfinv", "exp2", "expit", "expm1", "gammaln", "log1p", "log_softmax",
           "logit", "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round", "sinc", "softmax",
           "xlog1py", "xlogy"]


# ---- orthogonal polynomials (three-term recurrences: differentiable in x) ---------------------

def _three_term(x, n, p1, step):
    """P_n(x) from P_0 = 1, P_1 = ``p1(x)`` and P_{k+1} = ``step(k, x, P_{k-1}, P_k)``; ``n`` a
    Python int or an integer tensor (elementwise degrees); degree < 0 gives 0."""
    x = math_ops._to_float(x)
    if isinstance(n, Tensor):
        degrees = n.to(x.device)
        top = int(degrees.max().item()) if degrees.numel() else 0
    else:
        degrees, top = None, int(n)
    zero = creation.zeros_like(x)
    if degrees is None and top < 0:
        return zero
    prev, cur = zero + 1, p1(x)
    values = [prev, cur]
    for k in range(1, top):
        prev, cur = cur, step(k, x, prev, cur)
        values.append(cur)
    if degrees is None:
        return values[top]
    out = zero
    for k, v in enumerate(values[:top + 1]):
        out = math_ops.where(degrees == k, v, out)
    return out


def chebyshev_polynomial_t(input, n, *, out=None):
    return math_ops.write_out(out, _three_term(input, n, lambda x: x, lambda k, x, a, b: 2 * x * b - a))


def chebyshev_polynomial_u(input, n, *, out=None):
    return math_ops.write_out(out, _three_term(input, n, lambda x: 2 * x, lambda k, x, a, b: 2 * x * b - a))


def chebyshev_polynomial_v(input, n, *, out=None):
    return math_ops.write_out(out, _three_term(input, n, lambda x: 2 * x - 1, lambda k, x, a, b: 2 * x * b - a))


def chebyshev_polynomial_w(input, n, *, out=None):
    return math_ops.write_out(out, _three_term(input, n, lambda x: 2 * x + 1, lambda k, x, a, b: 2 * x * b - a))


def _shifted(fn):
    def shifted(input, n, *, out=None):
        return fn(2 * math_ops._to_float(input) - 1, n, out=out)
    shifted.__name__ = "shifted_" + fn.__name__
    shifted.__doc__ = f"{fn.__name__} at 2x - 1 (orthogonal on [0, 1])."
    return shifted


shifted_chebyshev_polynomial_t = _shifted(chebyshev_polynomial_t)
shifted_chebyshev_polynomial_u = _shifted(chebyshev_polynomial_u)
shifted_chebyshev_polynomial_v = _shifted(chebyshev_polynomial_v)
shifted_chebyshev_polynomial_w = _shifted(chebyshev_polynomial_w)


def hermite_polynomial_h(input, n, *, out=None):
    """Physicists' Hermite polynomials."""
    return math_ops.write_out(out, _three_term(input, n, lambda x: 2 * x, lambda k, x, a, b: 2 * x * b - 2 * k * a))


def hermite_polynomial_he(input, n, *, out=None):
    """Probabilists' Hermite polynomials."""
    return math_ops.write_out(out, _three_term(input, n, lambda x: x, lambda k, x, a, b: x * b - k * a))


def laguerre_polynomial_l(input, n, *, out=None):
    return math_ops.write_out(out, _three_term(input, n, lambda x: 1 - x,
                                               lambda k, x, a, b: ((2 * k + 1 - x) * b - k * a) / (k + 1)))


def legendre_polynomial_p(input, n, *, out=None):
    return math_ops.write_out(out, _three_term(input, n, lambda x: x,
                                               lambda k, x, a, b: ((2 * k + 1) * x * b - k * a) / (k + 1)))


def spherical_bessel_j0(input, *, out=None):
    """sin(x) / x, 1 at 0."""
    x = math_ops._to_float(input)
    small = P.lt(P.abs(x), 1e-4)
    safe = math_ops.where(small, 1.0, x)
    series = 1 - x * x / 6  # the Taylor start, exact to float64 for |x| < 1e-4
    return math_ops.write_out(out, math_ops.where(small, series, P.div(P.sin(safe), safe)))


__all__ += ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
            "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
            "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
            "laguerre_polynomial_l", "legendre_polynomial_p", "spherical_bessel_j0"]
