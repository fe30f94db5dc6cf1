"""torch.linalg's LU and LDL factorizations, solving with them, and least squares (with the older
``torch.lu``, ``torch.lu_solve``, ``torch.lu_unpack`` spellings).

The primitives (``ir/factorization_prims.py``) compute the packed factors, pivots and solutions;
this module handles the arguments as PyTorch does (vector right-hand sides, ``left=False``,
``check_errors``, which lstsq results are empty for which driver) and returns PyTorch's named
tuples. P, L and U are unpacked from the packed factors with primitives, so gradients flow from
them to A: LU (square or not, full rank), lu_solve (to LU and B) and lstsq (full rank) are
differentiable; the LDL functions are not, as in PyTorch.
"""
from __future__ import annotations

import builtins
import warnings

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.passes.autodiff.factorization_rules import permutation_matrix, unpack_lu

from .math_ops import _return_type, grad_named
from .math_ops import write_out as _write_out
from .tensors import Tensor, device_full, device_tensor, host_array

_lu_result = _return_type("linalg_lu", ["P", "L", "U"])
_lu_factor_result = _return_type("linalg_lu_factor", ["LU", "pivots"])
_lu_factor_ex_result = _return_type("linalg_lu_factor_ex", ["LU", "pivots", "info"])
_lu_unpack_result = _return_type("lu_unpack", ["P", "L", "U"])
_lu_with_info_result = _return_type("_lu_with_info", ["LU", "pivots", "info"])
_ldl_factor_result = _return_type("linalg_ldl_factor", ["LD", "pivots"])
_ldl_factor_ex_result = _return_type("linalg_ldl_factor_ex", ["LD", "pivots", "info"])
_lstsq_result = _return_type("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def _write_outs(out, results: tuple) -> tuple:
    if out is None:
        return results
    if len(out) != len(results):
        raise TypeError(f"out= must be a tuple of {len(results)} tensors, got {len(out)}")
    return type(results)(*(_write_out(o, r) for o, r in zip(out, results)))


def _mT(x):
    n = x.ndim
    return P.permute(x, dims=tuple(range(n - 2)) + (n - 1, n - 2))


def _need_pivoting(op: str, pivot: bool) -> None:
    if not pivot:
        raise RuntimeError(f"{op}: LU without pivoting is not implemented on the CPU")


# ---- LU --------------------------------------------------------------------------------------

def _lu_info(LU: Tensor) -> Tensor:
    """getrf's info from the factors: the 1-based index of U's first exactly zero diagonal element
    (0: none), computed with primitives so that it compiles without a graph break."""
    k = builtins.min(LU.shape[-2:])
    if k == 0:
        return device_full(LU, shape=tuple(LU.shape[:-2]), value=0, dtype=dt.int32)
    zero = LU.diagonal(0, -2, -1) == 0
    first = zero.to(dt.int32).argmax(-1) + 1
    return P.cast(P.where(zero.any(-1), first, 0), dtype=dt.int32)


def _lu_factor(A: Tensor, check_errors: bool):
    return grad_named(P.lu_factor(A, check_errors=check_errors), "LinalgLuFactorExBackward0"), P.lu_pivots(A)


def lu_factor(A: Tensor, *, pivot: bool = True, out=None):
    """(LU, pivots) of A = P L U; an exactly singular U raises (use lu_factor_ex or lu for those)."""
    _need_pivoting("linalg.lu_factor", pivot)
    return _write_outs(out, _lu_factor_result(*_lu_factor(A, True)))


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False, out=None):
    """(LU, pivots, info): info is LAPACK's (0: success, i > 0: U[i-1, i-1] is exactly zero)."""
    _need_pivoting("linalg.lu_factor_ex", pivot)
    LU, pivots = _lu_factor(A, bool(check_errors))
    return _write_outs(out, _lu_factor_ex_result(LU, pivots, _lu_info(LU)))


def _empty(like: Tensor, dtype=None) -> Tensor:
    return device_tensor(np.zeros((0,), (dtype or like.dtype).np), like)


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots: bool = True, *,
              out=None):
    """(P, L, U) from lu_factor's results; the parts not asked for are empty tensors."""
    if LU_data.ndim < 2:
        raise RuntimeError(f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: "
                           f"{list(LU_data.shape)} instead")
    if unpack_data:
        L, U = unpack_lu(LU_data)
    else:
        L = U = _empty(LU_data)
    Pm = permutation_matrix(LU_pivots, LU_data.shape[-2], LU_data.dtype) if unpack_pivots else _empty(LU_data)
    return _write_outs(out, _lu_unpack_result(Pm, L, U))


def lu(A: Tensor, *, pivot: bool = True, out=None):
    """(P, L, U) with A = P L U (A of shape (*, m, n); L (*, m, k), U (*, k, n), k = min(m, n))."""
    _need_pivoting("linalg.lu_factor", pivot)
    LU, pivots = _lu_factor(A, False)
    return _write_outs(out, _lu_result(*lu_unpack(LU, pivots)))


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False,
             out=None) -> Tensor:
    """X with A X = B (left) or X A = B, A = P L U given by lu_factor; adjoint solves with A^T."""
    if left:
        X = P.lu_solve(LU, pivots, B, adjoint=bool(adjoint))
    else:
        if B.ndim < 2:
            raise RuntimeError("linalg.lu_solve: The input tensor B must have at least 2 dimensions.")
        # X A = B is A^T X^T = B^T
        X = _mT(P.lu_solve(LU, pivots, _mT(B), adjoint=not adjoint))
    return _write_out(out, grad_named(X, "LinalgLuSolveBackward0"))


def torch_lu(A: Tensor, pivot: bool = True, get_infos: bool = False, out=None):
    """The deprecated torch.lu: (LU, pivots), with get_infos (LU, pivots, info) instead of raising."""
    warnings.warn("torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex and will "
                  "be removed in a future PyTorch release.", UserWarning, stacklevel=2)
    if get_infos:
        return _write_outs(out, _lu_with_info_result(*lu_factor_ex(A, pivot=pivot)))
    return _write_outs(out, tuple(lu_factor(A, pivot=pivot)))


def torch_lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor, *, out=None) -> Tensor:
    """The deprecated torch.lu_solve(b, LU_data, LU_pivots): linalg.lu_solve(LU_data, LU_pivots, b)."""
    warnings.warn("torch.lu_solve is deprecated in favor of torch.linalg.lu_solve and will be removed in a future "
                  "PyTorch release. Note that torch.linalg.lu_solve has its arguments reversed.", UserWarning,
                  stacklevel=2)
    return lu_solve(LU_data, LU_pivots, b, out=out)


def tensor_lu(self: Tensor, pivot: bool = True, get_infos: bool = False):
    """Tensor.lu: torch.lu's results as a plain tuple."""
    return tuple(torch_lu(self, pivot, get_infos))


def tensor_lu_solve(self: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    return torch_lu_solve(self, LU_data, LU_pivots)


# ---- LDL^T (not differentiable, as in PyTorch) --------------------------------------------------

def ldl_factor_ex(A: Tensor, *, hermitian: bool = False, check_errors: bool = False, out=None):
    """(LD, pivots, info) of the symmetric A = L D L^T (LAPACK's sytrf, Bunch-Kaufman pivoting,
    reading A's lower triangle); info > 0: D[info-1, info-1] is exactly zero."""
    h = bool(hermitian)
    return _write_outs(out, _ldl_factor_ex_result(P.ldl_factor(A, hermitian=h, check_errors=bool(check_errors)),
                                                  P.ldl_pivots(A, hermitian=h), P.ldl_info(A, hermitian=h)))


def ldl_factor(A: Tensor, *, hermitian: bool = False, out=None):
    """(LD, pivots) of the symmetric A; a singular A raises (ldl_factor_ex returns info instead)."""
    h = bool(hermitian)
    return _write_outs(out, _ldl_factor_result(P.ldl_factor(A, hermitian=h, check_errors=True),
                                               P.ldl_pivots(A, hermitian=h)))


def ldl_solve(LD: Tensor, pivots: Tensor, B: Tensor, *, hermitian: bool = False, out=None) -> Tensor:
    """X with A X = B for A = L D L^T given by ldl_factor."""
    return _write_out(out, P.ldl_solve(LD, pivots, B, hermitian=bool(hermitian)))


# ---- least squares ----------------------------------------------------------------------------

def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None):
    """(solution, residuals, rank, singular_values) of min ||A X - B||, as PyTorch computes them on
    the CPU: driver gelsy by default; rank for gelsy/gelsd/gelss, singular values for gelsd/gelss,
    residuals (squared, per column of B) when m > n, for drivers other than gelsy, and every matrix
    of A has full rank. B may be a (batch of) vector(s), of one dimension less than A."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    if not (A.ndim >= B.ndim and A.ndim - B.ndim <= 1):
        raise RuntimeError("torch.linalg.lstsq: input.dim() must be greater or equal to other.dim() and "
                           "(input.dim() - other.dim()) <= 1")
    driver = "gelsy" if driver is None else driver
    m, n = A.shape[-2:]
    # (autocast computes low-precision operands in float32)
    eps = dt.float_info(A.dtype if A.dtype.is_floating_point and not A.dtype.is_low_precision else dt.float32).eps
    rcond = float(eps) * builtins.max(m, n) if rcond is None else float(rcond)
    vector = B.ndim == A.ndim - 1
    Bm = P.reshape(B, shape=tuple(B.shape) + (1,)) if vector else B
    X = grad_named(P.lstsq(A, Bm, rcond=rcond, driver=driver), "LinalgLstsqBackward0")
    rank = P.lstsq_rank(A, rcond=rcond, driver=driver) if driver != "gels" else _empty(A, dt.int64)
    sv = P.svdvals(P.stop_gradient(A)) if driver in ("gelsd", "gelss") else _empty(A)
    residuals = _empty(A)
    if m > n and driver != "gelsy" and (driver == "gels" or bool(host_array((rank == n).all()._data))):
        r = P.sub(P.matmul(A, X), Bm)
        residuals = P.sum(P.mul(r, r), dims=(r.ndim - 2,), keepdim=False)
    if vector:
        X = P.reshape(X, shape=tuple(X.shape[:-1]))
    return _lstsq_result(X, residuals, rank, sv)
