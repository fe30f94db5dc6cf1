"""VJP rules for complex numbers and Fourier transforms, in PyTorch's convention: for a real loss L
and a complex z = x + iy, the cotangent of z is dL/dx + i dL/dy (the conjugate Wirtinger
derivative, doubled). Rules of holomorphic functions written for real operands as ``g * f'(x)``
then become ``g * conj(f'(x))``: ``holomorphic`` wraps them (conj of the rule applied to conj(g)),
so the real rules stay as they are and cost nothing on real tensors.

Part of the VJP table of ``rules.py`` (imported at its end).
"""
from __future__ import annotations

import dataclasses

from graphc.ir import prims as P

from .rules import VJP, _unbroadcast, defvjp, shape_of, zeros


def conj(x):
    """The conjugate of a complex tensor; anything else as it is."""
    return P.conj(x) if hasattr(x, "dtype") and x.dtype.is_complex else x


def holomorphic(rule):
    def fn(g, out, *args, **attrs):
        if not g.dtype.is_complex:
            return rule(g, out, *args, **attrs)
        return tuple(conj(r) for r in rule(P.conj(g), out, *args, **attrs))
    fn.__name__ = getattr(rule, "__name__", "rule")
    return fn


for _p in (P.mul, P.div, P.pow, P.exp, P.expm1, P.log, P.log1p, P.sin, P.cos, P.tan, P.sinh, P.cosh,
           P.tanh, P.sqrt, P.rsqrt, P.reciprocal, P.matmul, P.prod):
    VJP[_p] = dataclasses.replace(VJP[_p], fn=holomorphic(VJP[_p].fn))


@defvjp(P.sign, uses=(0,), uses_out=True)
def _(g, out, x):
    if not x.dtype.is_complex:  # piecewise constant
        return (P.mul(g, 0),)
    # sgn(z) = z / |z|: (g - Re(conj(g) sgn) sgn) / |z|, and 0 at z = 0 (PyTorch's sgn_backward)
    r = P.abs(x)
    t = P.sub(g, P.mul(P.real(P.mul(P.conj(g), out)), out))
    return (P.where(P.eq(r, 0), 0.0, P.div(t, r)),)


@defvjp(P.real)
def _(g, out, x):
    return (P.make_complex(g, zeros(shape_of(g), g.dtype)),)


@defvjp(P.imag)
def _(g, out, x):
    return (P.make_complex(zeros(shape_of(g), g.dtype), g),)


@defvjp(P.conj)
def _(g, out, x):
    return (P.conj(g),)


@defvjp(P.make_complex)
def _(g, out, re, im):
    return _unbroadcast(P.real(g), re), _unbroadcast(P.imag(g), im)


@defvjp(P.view_as_real)
def _(g, out, x):
    return (P.view_as_complex(g),)


@defvjp(P.view_as_complex)
def _(g, out, x):
    return (P.view_as_real(g),)


# ---- Fourier transforms: the adjoint transforms (PyTorch's fft_*_backward) -------------------

@defvjp(P.fft_c2c)
def _(g, out, x, *, dims, norm, forward):
    return (P.fft_c2c(g, dims=dims, norm=norm, forward=not forward),)


@defvjp(P.fft_r2c)
def _(g, out, x, *, dims, norm, onesided):
    # the onesided rfft is a c2c of x taken as complex, half of whose outputs are dropped: the
    # adjoint fills the dropped half with zeros, runs the inverse c2c and keeps the real part
    last, n = dims[-1], shape_of(x)[dims[-1]]
    missing = n - shape_of(g)[last]
    if onesided and missing > 0:
        g = P.pad(g, pads=tuple((0, missing if d == last else 0) for d in range(len(shape_of(g)))), value=0.0)
    return (P.real(P.fft_c2c(g, dims=dims, norm=norm, forward=False)),)


@defvjp(P.fft_c2r)
def _(g, out, x, *, dims, norm, last_dim_size):
    # irfft fills the other half by Hermitian symmetry, so an output bin of the onesided half that
    # also stands for its mirror image (1 .. n - (n // 2 + 1)) gets the gradient of both
    gx = P.fft_r2c(g, dims=dims, norm=norm, onesided=True)
    last = dims[-1]
    doubled = last_dim_size - shape_of(gx)[last]
    if doubled > 0:
        index = tuple((1, 1 + doubled, 1) if d == last else (0, s, 1) for d, s in enumerate(shape_of(gx)))
        gx = P.slice_scatter(gx, P.mul(P.slice(gx, index=index), 2), index=index)
    return (gx,)
