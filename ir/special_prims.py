"""The special functions of ``torch.special`` that scipy.special computes, declared once.

Bessel functions (of the first and second kind, modified, exponentially scaled), Airy's Ai, the
scaled complementary error function ``erfcx``, ``log_ndtr``, the regularized incomplete gamma
functions (PyTorch's ``igamma``/``igammac``) and Hurwitz's zeta. Each primitive is elementwise with
PyTorch's dtype rule: operands promoted, an integer or bool result type becomes the default float
(igamma/igammac refuse integers, as PyTorch's kernels do), float16/bfloat16 only where PyTorch has
kernels for them (computed in float32, rounded once). A record's ``differentiable`` says whether
PyTorch has a derivative (the Bessel functions of ``torch.special`` other than i0/i0e/i1/i1e and
Airy's have none: their results do not require grad); the rules are in passes/autodiff/rules.py.

scipy.special is imported on first use (as for erf in ``ir/prims.py``); on a device the device's
library (``cupyx.scipy.special``) computes, through ``special_module``.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .array_module import special_module
from .dtypes import result_type
from .primitive import Primitive, TensorType, register
from .shapes import broadcast_shapes


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "dtype") and not isinstance(x, np.generic) else ()


def _not_implemented(name: str, d: dt.DType) -> NotImplementedError:
    return NotImplementedError(f'"{name}_cpu" not implemented for \'{d.scalar_name}\'')


def _result_dtype(name: str, args, integers: bool, low_precision: bool) -> dt.DType:
    """PyTorch's result dtype of special function ``name`` (the kernel's name in its errors)."""
    d = result_type(*args)
    if not d.is_inexact:
        if not integers:
            raise _not_implemented(name, d)
        return dt.get_default_dtype()
    if d.is_low_precision and not low_precision:
        raise _not_implemented(name, d)
    return d


def _scipy(fn_name: str, fix=None):
    """The scipy.special function ``fn_name`` on the operands' library; float16/bfloat16 operands
    are computed in float32 (scipy has no bfloat16 loops), ``Primitive.run`` rounds the result
    once. ``fix(result, *operands)`` applies PyTorch's values where scipy's differ."""
    def impl(*args):
        args = tuple(a.astype(np.float32) if getattr(a, "dtype", None) is not None and a.dtype.itemsize == 2
                     and dt.is_floating_array_dtype(a.dtype) else a for a in args)
        sc = special_module(*args)
        with np.errstate(all="ignore"):
            out = getattr(sc, fn_name)(*args)
            return out if fix is None else fix(out, *args)
    impl.__name__ = fn_name
    return impl


def _declare(name: str, impl, arity: int = 1, *, differentiable: bool = True, integers: bool = True,
            low_precision: bool = False) -> Primitive:
    """An elementwise special function of ``arity`` operands (see the module's docstring)."""
    def infer(*args):
        if len(args) != arity:
            raise TypeError(f"{name} takes {arity} operand(s), got {len(args)}")
        return TensorType(broadcast_shapes(*(_shape(a) for a in args)),
                          _result_dtype(name, args, integers, low_precision))

    return register(Primitive(
        name, infer, impl, operand_dtype=lambda *a, **_: _result_dtype(name, a, integers, low_precision),
        kind="elementwise", differentiable=differentiable))


def _airy_ai(x):
    sc = special_module(x)
    if not hasattr(sc, "airy"):  # cupyx.scipy.special has none
        raise NotImplementedError(f"airy_ai: {sc.__name__} has no Airy function; compute it on the CPU "
                                  "(special.airy_ai(x.cpu()))")
    with np.errstate(all="ignore"):
        return sc.airy(x)[0]


def _igamma_fix(upper: bool):
    """PyTorch's values where its kernel decides before computing (``calc_igamma``/``calc_igammac``),
    which scipy leaves nan: P(a, 0) = 0 and P(inf, x) = 0 for finite x, P(a, inf) = 1 (for any a,
    nan too); Q = 1 - P there. Applied last-checked first, so the earlier checks win."""
    def fix(out, a, x):
        lo, hi = (1.0, 0.0) if upper else (0.0, 1.0)
        out = np.where(np.isinf(x), hi, out)
        out = np.where(np.isinf(a), np.where(np.isinf(x), np.nan, lo), out)
        out = np.where(x == 0, lo, out)
        out = np.where(a == 0, np.where(x > 0, hi, np.nan), out)
        return np.where((x < 0) | (a < 0), np.nan, out)
    return fix


def _zeta_fix(out, x, q):
    # PyTorch: zeta(x, inf) is nan (scipy: 0), but its pole zeta(1, q) = inf comes first
    return np.where((q == np.inf) & (x != 1), np.nan, out)


# differentiable (PyTorch has their derivatives); i0, i0e, i1, i1e have float16/bfloat16 kernels
i0 = _declare("i0", _scipy("i0"), low_precision=True)
i0e = _declare("i0e", _scipy("i0e"), low_precision=True)
i1 = _declare("i1", _scipy("i1"), low_precision=True)
i1e = _declare("i1e", _scipy("i1e"), low_precision=True)
erfcx = _declare("erfcx", _scipy("erfcx"))
log_ndtr = _declare("log_ndtr", _scipy("log_ndtr"))
# the regularized lower and upper incomplete gamma functions P(a, x), Q(a, x): differentiable in x only
igamma = _declare("igamma", _scipy("gammainc", _igamma_fix(False)), 2, integers=False, low_precision=True)
igammac = _declare("igammac", _scipy("gammaincc", _igamma_fix(True)), 2, integers=False, low_precision=True)
# Hurwitz's zeta(x, q) = sum_k (k + q)^-x: differentiable in q only
zeta = _declare("zeta", _scipy("zeta", _zeta_fix), 2)

# no derivative in PyTorch
airy_ai = _declare("airy_ai", _airy_ai, differentiable=False)
bessel_j0 = _declare("bessel_j0", _scipy("j0"), differentiable=False)
bessel_j1 = _declare("bessel_j1", _scipy("j1"), differentiable=False)
bessel_y0 = _declare("bessel_y0", _scipy("y0"), differentiable=False)
bessel_y1 = _declare("bessel_y1", _scipy("y1"), differentiable=False)
modified_bessel_i0 = _declare("modified_bessel_i0", _scipy("i0"), differentiable=False)
modified_bessel_i1 = _declare("modified_bessel_i1", _scipy("i1"), differentiable=False)
modified_bessel_k0 = _declare("modified_bessel_k0", _scipy("k0"), differentiable=False)
modified_bessel_k1 = _declare("modified_bessel_k1", _scipy("k1"), differentiable=False)
scaled_modified_bessel_k0 = _declare("scaled_modified_bessel_k0", _scipy("k0e"), differentiable=False)
scaled_modified_bessel_k1 = _declare("scaled_modified_bessel_k1", _scipy("k1e"), differentiable=False)

# every primitive of this module (the tables of other concerns give them one entry each)
ALL = (i0, i0e, i1, i1e, erfcx, log_ndtr, igamma, igammac, zeta, airy_ai, bessel_j0, bessel_j1, bessel_y0,
       bessel_y1, modified_bessel_i0, modified_bessel_i1, modified_bessel_k0, modified_bessel_k1,
       scaled_modified_bessel_k0, scaled_modified_bessel_k1)
