"""graphc.special: PyTorch's torch.special (special functions; scipy.special computes the
non-elementary ones, imported on first use)."""
from __future__ import annotations

import math

from graphc.ir import prims as P

from . import math_ops
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


__all__ = ["digamma", "entr", "erf", "erfc", "erfinv", "exp2", "expit", "expm1", "gammaln", "log1p", "log_softmax",
           "logit", "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round", "sinc", "softmax",
           "xlog1py", "xlogy"]
