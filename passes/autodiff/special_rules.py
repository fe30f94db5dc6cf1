"""VJP rules of the special functions of ``ir/special_prims.py``: PyTorch's formulas
(``derivatives.yaml``), with ``NoDerivative`` where PyTorch has none for an operand.

Part of the VJP table of ``rules.py`` (imported at its end).
"""
from __future__ import annotations

import math

from graphc.ir import prims as P

from .rules import NoDerivative, _unbroadcast, defvjp, is_float_tensor


@defvjp(P.i0, uses=(0,))
def _(g, out, x):
    return (P.mul(g, P.i1(x)),)


@defvjp(P.i0e, uses=(0,), uses_out=True)
def _(g, out, x):
    # i0e(x) = exp(-|x|) i0(x), so i0e'(x) = i1e(x) - sign(x) i0e(x)
    return (P.mul(g, P.sub(P.i1e(x), P.mul(P.sign(x), out))),)


def _at_zero_half(x, grad_elsewhere):
    """i1'(0) = i1e'(0) = 1/2, where the formulas below divide 0 by 0 (PyTorch does the same)."""
    return P.where(P.eq(x, 0), 0.5, grad_elsewhere(P.where(P.eq(x, 0), 1.0, x)))


@defvjp(P.i1, uses=(0,), uses_out=True)
def _(g, out, x):
    # i1'(x) = i0(x) - i1(x) / x
    return (P.mul(g, _at_zero_half(x, lambda s: P.sub(P.i0(s), P.div(out, s)))),)


@defvjp(P.i1e, uses=(0,), uses_out=True)
def _(g, out, x):
    # i1e'(x) = i0e(x) - i1e(x) (sign(x) + 1 / x)
    return (P.mul(g, _at_zero_half(x, lambda s: P.sub(P.i0e(s), P.mul(out, P.add(P.sign(s), P.reciprocal(s)))))),)


@defvjp(P.erfcx, uses=(0,), uses_out=True)
def _(g, out, x):
    # erfcx(x) = exp(x^2) erfc(x): erfcx'(x) = 2 x erfcx(x) - 2 / sqrt(pi)
    return (P.mul(g, P.sub(P.mul(P.mul(x, out), 2.0), 2 / math.sqrt(math.pi))),)


@defvjp(P.log_ndtr, uses=(0,), uses_out=True)
def _(g, out, x):
    # d/dx log(ndtr(x)) = pdf(x) / ndtr(x) = exp(-x^2 / 2 - log_ndtr(x)) / sqrt(2 pi)
    e = P.exp(P.neg(P.add(out, P.mul(P.mul(x, x), 0.5))))
    return (P.mul(P.mul(g, e), 1 / math.sqrt(2 * math.pi)),)


def _igamma_rule(sign: float, name: str):
    def rule(g, out, a, x):
        # dP(a, x)/dx = x^(a-1) e^-x / Gamma(a) = -dQ(a, x)/dx; none in a (PyTorch has none)
        ga = NoDerivative(f"{name}: input") if is_float_tensor(a) else None
        gx = None
        if is_float_tensor(x):
            d = P.exp(P.sub(P.sub(P.mul(P.sub(a, 1), P.log(x)), x), P.lgamma(a)))
            gx = _unbroadcast(P.mul(g, d) if sign > 0 else P.neg(P.mul(g, d)), x)
        return ga, gx
    return rule


defvjp(P.igamma, uses=(0, 1), needs={1: (0, 1)})(_igamma_rule(1.0, "igamma"))
defvjp(P.igammac, uses=(0, 1), needs={1: (0, 1)})(_igamma_rule(-1.0, "igammac"))


@defvjp(P.zeta, uses=(0, 1), needs={1: (0, 1)})
def _(g, out, x, q):
    # d/dq zeta(x, q) = -x zeta(x + 1, q); none in x (PyTorch has none)
    gx = NoDerivative("zeta") if is_float_tensor(x) else None
    gq = _unbroadcast(P.mul(g, P.neg(P.mul(x, P.zeta(P.add(x, 1), q)))), q) if is_float_tensor(q) else None
    return gx, gq
