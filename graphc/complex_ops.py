"""PyTorch's functions of complex tensors: the parts (``real``, ``imag``, views as in PyTorch),
conjugation, ``angle``, ``sgn``, building complex tensors (``complex``, ``polar``) and
reinterpreting them (``view_as_real``, ``view_as_complex``, views too). On real tensors they keep
PyTorch's meaning (``real`` is the tensor, ``conj`` the identity, ``imag`` an error).

Conjugation is done at once (``conj`` gives a new tensor): graphc has no lazy conjugate bit, so
``is_conj`` is always False and ``resolve_conj`` returns its input; values and gradients are the
same as PyTorch's, but writing into ``z.conj()`` does not change ``z`` as it would there.
"""
from __future__ import annotations

import math

from graphc.ir import dtypes as dt
from graphc.ir import prims as P

from . import creation, math_ops
from .tensors import Tensor

__all__ = ["real", "imag", "conj", "conj_physical", "resolve_conj", "resolve_neg", "angle", "sgn", "isreal",
           "is_conj", "is_neg", "complex", "polar", "view_as_real", "view_as_complex", "is_complex"]


def is_complex(input) -> bool:
    return input.dtype.is_complex


def real(input: Tensor) -> Tensor:
    """The real part: a view of a complex tensor (it shares its memory), the tensor itself if real."""
    return P.real(input) if input.dtype.is_complex else input


def imag(input: Tensor) -> Tensor:
    """The imaginary part of a complex tensor, a view of it."""
    if not input.dtype.is_complex:
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return P.imag(input)


def conj(input: Tensor) -> Tensor:
    return P.conj(input) if input.dtype.is_complex else input


def conj_physical(input: Tensor, *, out=None) -> Tensor:
    return math_ops.write_out(out, P.conj(input) if input.dtype.is_complex else P.copy(input))


def resolve_conj(input: Tensor) -> Tensor:
    return input  # conjugation is never lazy in graphc (see the module's docstring)


resolve_neg = resolve_conj


def is_conj(input: Tensor) -> bool:
    return False


is_neg = is_conj


def isreal(input: Tensor) -> Tensor:
    if input.dtype.is_complex:
        return P.eq(P.imag(input), 0)
    return creation.ones_like(input, dtype=dt.bool_)


def angle(input: Tensor, *, out=None) -> Tensor:
    """The argument of each element: atan2(imag, real) for complex tensors; for real ones 0 for
    x >= 0, pi for x < 0, NaN kept."""
    if input.dtype.is_complex:
        return math_ops.write_out(out, P.atan2(P.imag(input), P.real(input)))
    x = math_ops._to_float(input)
    return math_ops.write_out(out, P.where(P.isnan(x), x, P.mul(P.cast(P.lt(x, 0), dtype=x.dtype), math.pi)))


def sgn(input: Tensor, *, out=None) -> Tensor:
    """z / |z| (0 where z is 0) for complex tensors; the sign for real ones."""
    if input.dtype.is_complex:
        return math_ops.write_out(out, P.sign(input))
    return math_ops.sign(input, out=out)


def complex(real: Tensor, imag: Tensor, *, out=None) -> Tensor:  # noqa: A001 (PyTorch's name)
    """real + i imag, from two float or double tensors of one dtype (broadcast)."""
    for name, x in (("real", real), ("imag", imag)):
        if not isinstance(x, Tensor):
            raise TypeError(f"complex(): argument '{name}' (position {1 if name == 'real' else 2}) must be "
                            f"Tensor, not {type(x).__name__}")
    return math_ops.write_out(out, P.make_complex(real, imag))


def polar(abs: Tensor, angle: Tensor, *, out=None) -> Tensor:  # noqa: A002
    """abs * (cos(angle) + i sin(angle))."""
    if not isinstance(abs, Tensor) or not isinstance(angle, Tensor):
        raise TypeError("polar(): arguments 'abs' and 'angle' must be Tensors")
    if abs.dtype is not angle.dtype:
        raise RuntimeError(f"Expected object of scalar type {abs.dtype.scalar_name} but got scalar type "
                           f"{angle.dtype.scalar_name} for second argument")
    return math_ops.write_out(out, P.make_complex(P.mul(abs, P.cos(angle)), P.mul(abs, P.sin(angle))))


def view_as_real(input: Tensor) -> Tensor:
    """A complex tensor seen as real pairs in a new last dimension of size 2 (a view of it)."""
    return P.view_as_real(input)


def view_as_complex(input: Tensor) -> Tensor:
    """A real tensor whose last dimension holds (real, imag) pairs seen as complex (a view of it)."""
    shape = tuple(input.shape)
    if input.dtype in (dt.float32, dt.float64) and shape and shape[-1] == 2 and not input._symbolic \
            and input.stride()[-1] != 1:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    return P.view_as_complex(input)
