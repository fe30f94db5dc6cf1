"""VJP rules of the LU factorization, of solving with it, and of least squares (PyTorch's formulas:
``linalg_lu_backward``, ``linalg_lu_solve_LU``, ``linalg_lstsq_backward``). The LDL primitives are
declared non-differentiable, as PyTorch has no derivative for them.

Part of the VJP table of ``rules.py`` (imported at its end).
"""
from __future__ import annotations

import builtins

from graphc.ir import dtypes as dt
from graphc.ir import prims as P

from .rules import _mT, defvjp, pinv_vjp, shape_of, sum_to


def _tri(x, k: int, lower: bool):
    """The lower (column - row <= k) or upper (column - row >= k) part of x's matrices, any shape."""
    m, n = shape_of(x)[-2:]
    r = P.reshape(P.arange(start=0, end=m, step=1, dtype=dt.int64), shape=(m, 1))
    c = P.reshape(P.arange(start=0, end=n, step=1, dtype=dt.int64), shape=(1, n))
    keep = (P.le if lower else P.ge)(P.sub(c, r), k)
    return P.where(keep, x, 0.0)


def _part(x, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None):
    """x[..., r0:r1, c0:c1] (None: all of that dimension)."""
    shape = shape_of(x)
    r0, r1 = rows or (0, shape[-2])
    c0, c1 = cols or (0, shape[-1])
    if (r0, r1, c0, c1) == (0, shape[-2], 0, shape[-1]):
        return x
    return P.slice(x, index=tuple((0, s, 1) for s in shape[:-2]) + ((r0, r1, 1), (c0, c1, 1)))


def _last_axis(x, back: int) -> int:
    return len(shape_of(x)) - back


def unpack_lu(lu):
    """(L, U) of packed LU factors (..., m, n): L (..., m, k) unit lower, U (..., k, n) upper."""
    m, n = shape_of(lu)[-2:]
    k = builtins.min(m, n)
    strict = _tri(_part(lu, cols=(0, k)), -1, lower=True)
    eye = P.cast(P.eq(P.sub(P.reshape(P.arange(start=0, end=k, step=1, dtype=dt.int64), shape=(1, k)),
                            P.reshape(P.arange(start=0, end=m, step=1, dtype=dt.int64), shape=(m, 1))), 0),
                 dtype=lu.dtype)
    return P.add(strict, eye), _tri(_part(lu, rows=(0, k)), 0, lower=False)


def permutation_matrix(pivots, m: int, dtype):
    """P of A = P L U from LAPACK's pivots: P[r, c] = (r == perm[c])."""
    perm = P.lu_permutation(pivots, m=m)
    rows = P.reshape(P.arange(start=0, end=m, step=1, dtype=dt.int64), shape=(m, 1))
    return P.cast(P.eq(rows, P.reshape(perm, shape=shape_of(perm)[:-1] + (1, m))), dtype=dtype)


@defvjp(P.lu_factor, uses=(0,), uses_out=True)
def _(g, out, a, *, check_errors=False):
    # PyTorch's linalg_lu_backward on the packed factors, for A of full rank: gL is the strict
    # lower part of g's first k columns, gU the upper part of its first k rows
    m, n = shape_of(a)[-2:]
    k = builtins.min(m, n)
    L, U = unpack_lu(out)
    gL = _tri(_part(g, cols=(0, k)), -1, lower=True)
    gU = _tri(_part(g, rows=(0, k)), 0, lower=False)
    if m >= n:
        # tall: A1_grad = P [gL1 + L1^-T triu(gU U^T - L^T gL)] U^-T, A2_grad = P gL2 U^-T
        inner = _tri(P.sub(P.matmul(gU, _mT(U)), P.matmul(_mT(L), gL)), 0, lower=False)
        x = P.add(P.solve(_mT(_part(L, rows=(0, k))), inner), _part(gL, rows=(0, k)))
        if m > k:
            x = P.concat(x, _part(gL, rows=(k, m)), axis=_last_axis(x, 2))
        ga = _mT(P.solve(U, _mT(x)))
    else:
        # wide: A1_grad = P L^-T [gU1 + tril(L^T gL - gU U^T, -1) U1^-T], A2_grad = P L^-T gU2
        inner = _tri(P.sub(P.matmul(_mT(L), gL), P.matmul(gU, _mT(U))), -1, lower=True)
        x = _mT(P.solve(_part(U, cols=(0, k)), _mT(inner)))
        x = P.concat(P.add(x, _part(gU, cols=(0, k))), _part(gU, cols=(k, n)), axis=_last_axis(x, 1))
        ga = P.solve(_mT(L), x)
    return (P.matmul(permutation_matrix(P.lu_pivots(a), m, g.dtype), ga),)


@defvjp(P.lu_solve, uses=(0, 1), uses_out=True)
def _(g, out, lu, pivots, b, *, adjoint):
    # gB solves the transposed system; the cotangent of A = P L U is gA = -gB X^T (A X = B) or
    # -X gB^T (A^T X = B), carried to the packed factors: gLU = tril(P^T gA U^T, -1) + triu(L^T P^T gA)
    gb = P.lu_solve(lu, pivots, g, adjoint=not adjoint)
    ga = P.neg(P.matmul(out, _mT(gb)) if adjoint else P.matmul(gb, _mT(out)))
    L, U = unpack_lu(lu)
    pt_ga = P.matmul(_mT(permutation_matrix(pivots, shape_of(lu)[-1], g.dtype)), ga)
    glu = P.add(_tri(P.matmul(pt_ga, _mT(U)), -1, lower=True), _tri(P.matmul(_mT(L), pt_ga), 0, lower=False))
    return sum_to(glu, shape_of(lu)), None, sum_to(gb, shape_of(b))


@defvjp(P.lstsq, uses=(0, 1))
def _(g, out, a, b, *, rcond, driver):
    # PyTorch's linalg_lstsq_backward (A of full rank): X = pinv(A) B, with pinv's own tolerance
    m, n = shape_of(a)[-2:]
    x = P.pinv(a, atol=0.0, rtol=float(dt.float_info(a.dtype).eps) * builtins.max(m, n), hermitian=False)
    ga = sum_to(pinv_vjp(P.matmul(g, _mT(b)), x, a), shape_of(a))
    return ga, sum_to(P.matmul(_mT(x), g), shape_of(b))
