"""The primitives of the LU and LDL factorizations and of least squares, declared once.

Each result of a factorization is its own primitive (as ``qr_q``/``qr_r``): the packed factors are
differentiable, the pivots and ranks are integers; LAPACK is deterministic, so primitives that
recompute the same factorization agree. Computed with SciPy's LAPACK wrappers (``getrf``/``getrs``,
``sytrf``/``sytrs``, ``gels``/``gelsy``/``gelsd``/``gelss``, the routines PyTorch's CPU kernels call,
so results match them bit for bit in the usual case), one matrix of the batch at a time. Pivots are
LAPACK's: 1-based, int32, as PyTorch returns them. SciPy's LAPACK takes host arrays only: a device
array is refused with a clear error (the Triton backend refuses these primitives at compile time).
Frontend argument handling (vector right-hand sides, ``left=False``, which results are empty per
lstsq driver, named tuples) is in ``graphc/factorizations.py``.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import dtypes as dt
from .primitive import Primitive, TensorType, register
from .prims import LinAlgError, _batch_prefix, _matrices, _shape
from .shapes import broadcast_shapes


def _host(op: str, *arrays) -> None:
    for a in arrays:
        if type(a) is not np.ndarray:
            raise NotImplementedError(f"{op}: computed with SciPy's LAPACK on the CPU only; move the tensors to "
                                      "the CPU (tensor.cpu()) first")


def _lapack(name: str, a: np.ndarray):
    from scipy.linalg import lapack
    return lapack.get_lapack_funcs(name, (a,))


def _kernel_dtype(kernel: str, *xs) -> None:
    """PyTorch's error for a dtype its CPU kernel is not compiled for (integers, float16, bfloat16)."""
    for x in xs:
        if not x.dtype.is_floating_point or x.dtype.is_low_precision:
            raise NotImplementedError(f'"{kernel}" not implemented for \'{x.dtype.scalar_name}\'')


def _batched(a: np.ndarray, batch: tuple) -> np.ndarray:
    """``a``'s matrices broadcast to ``batch`` and flattened to one batch axis."""
    return np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])


# ---- LU with partial pivoting: A = P L U --------------------------------------------------------

def _getrf(a: np.ndarray):
    """(packed LU, 1-based int32 pivots, info per matrix) of every matrix of ``a``."""
    m, n = a.shape[-2:]
    k = builtins.min(m, n)
    batch = a.shape[:-2]
    lu = np.empty(a.shape, a.dtype)
    piv = np.empty(batch + (k,), np.int32)
    info = np.zeros(batch, np.int32)
    if a.size == 0:
        piv[...] = np.arange(1, k + 1, dtype=np.int32)
        return lu, piv, info
    getrf = _lapack("getrf", a)
    flat_lu, flat_piv, flat_info = lu.reshape((-1, m, n)), piv.reshape((-1, k)), info.reshape(-1)
    for i, mat in enumerate(a.reshape((-1, m, n))):
        f, p, flat_info[i] = getrf(mat)[:3]
        flat_lu[i], flat_piv[i] = f, p + 1  # SciPy's getrf gives 0-based pivots
    return lu, piv, info


def _lu_infer(which: str):
    def infer(a, *, check_errors: bool = False):
        if len(_shape(a)) < 2:
            raise RuntimeError(f"torch.lu_factor: Expected tensor with 2 or more dimensions. Got size: "
                               f"{list(_shape(a))} instead")
        _kernel_dtype("lu_cpu", a)
        s = _matrices("linalg.lu_factor", a, square=False)
        if which == "lu":
            return TensorType(s, a.dtype)
        return TensorType(s[:-2] + (builtins.min(s[-2:]),), dt.int32)
    return infer


def _first_failure(info: np.ndarray) -> tuple[int, int] | None:
    """(batch element, LAPACK info) of the first matrix whose factorization reported info > 0."""
    flat = info.reshape(-1)
    bad = np.flatnonzero(flat)
    return (int(bad[0]), int(flat[bad[0]])) if bad.size else None


def _lu_factor(a, *, check_errors: bool):
    _host("linalg.lu_factor", a)
    lu, _piv, info = _getrf(a)
    failed = _first_failure(info) if check_errors else None
    if failed:
        b, i = failed
        raise RuntimeError(f"torch.linalg.lu_factor: {_batch_prefix(a, b)}U[{i},{i}] is zero and using it on lu_solve "
                          "would result in a division by zero. If you still want to perform the factorization, "
                          "consider calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return lu


# the packed factors: L's strict lower part (its unit diagonal implied) over U's upper part; with
# check_errors, an exactly singular U raises PyTorch's error (linalg.lu_factor)
lu_factor = register(Primitive("lu_factor", _lu_infer("lu"), _lu_factor, kind="linalg"))


def _lu_pivots(a):
    _host("linalg.lu_factor", a)
    return _getrf(a)[1]


lu_pivots = register(Primitive("lu_pivots", _lu_infer("pivots"), _lu_pivots, kind="linalg", differentiable=False))


def _perm_infer(pivots, *, m: int):
    s = _shape(pivots)
    if pivots.dtype is not dt.int32:
        raise RuntimeError("torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype.\n"
                           "Note: this function is intended to be used with the output produced by "
                           "torch.linalg.lu_factor")
    if len(s) < 1 or s[-1] > m:
        raise RuntimeError(f"torch.lu_unpack: the pivots hold {s[-1] if s else 0} row swaps of a matrix with {m} rows: "
                           "LU_pivots must have shape (*, min(m, n)) for LU_data of shape (*, m, n)")
    return TensorType(s[:-1] + (m,), dt.int64)


def _lu_permutation(pivots, *, m: int):
    """The row permutation ``perm`` that LAPACK's row swaps ``pivots`` make: A[perm] = L U, so the
    permutation matrix of A = P L U is P[r, c] = (r == perm[c])."""
    _host("lu_unpack", pivots)
    k = pivots.shape[-1]
    batch = pivots.shape[:-1]
    swaps = pivots.reshape((int(np.prod(batch)), k)).astype(np.int64) - 1
    if swaps.size and (swaps.min() < 0 or swaps.max() >= m):
        raise RuntimeError(f"torch.lu_unpack: LU_pivots must hold row indices in [1, {m}], the 1-based pivots "
                           "of torch.linalg.lu_factor")
    perm = np.broadcast_to(np.arange(m, dtype=np.int64), (swaps.shape[0], m)).copy()
    rows = np.arange(swaps.shape[0])
    for i in range(k):
        j = swaps[:, i]
        pi, pj = perm[rows, i].copy(), perm[rows, j]
        perm[rows, i] = pj
        perm[rows, j] = pi
    return perm.reshape(batch + (m,))


lu_permutation = register(Primitive("lu_permutation", _perm_infer, _lu_permutation, kind="linalg",
                                    differentiable=False))


def _pivots_in_range(op: str, pivots: np.ndarray, n: int) -> None:
    """LAPACK reads rows at the pivots without checking them: out-of-range ones are refused here."""
    if pivots.size and (pivots.min() < 1 or pivots.max() > n):
        raise RuntimeError(f"{op}: pivots must be in [1, {n}] (1-based row indices, as the factorization returns "
                           "them)")


def _check_pivots(op: str, lu, pivots) -> None:
    if pivots.dtype is not dt.int32:
        raise RuntimeError(f"{op}: pivots should be a Tensor of scalar type torch.int32")
    if _shape(pivots)[-1:] != _shape(lu)[-1:]:
        raise RuntimeError(f"{op}: Number of pivots per batch should be same as the dimension of the matrix")
    if _shape(pivots)[:-1] != _shape(lu)[:-2]:
        raise RuntimeError(f"{op}: Expected LU.shape[:-2] == pivots.shape[:-1], but got {list(_shape(lu)[:-2])} "
                           f"and {list(_shape(pivots)[:-1])}")


def _lu_solve_infer(lu, pivots, b, *, adjoint: bool):
    s = _matrices("torch.linalg.lu_solve", lu)
    _kernel_dtype("linalg.lu_solve_cpu", lu)
    _check_pivots("linalg.lu_solve", lu, pivots)
    sb = _shape(b)
    if len(sb) < 2:
        raise RuntimeError("linalg.lu_solve: The input tensor B must have at least 2 dimensions.")
    if lu.dtype is not b.dtype:
        raise RuntimeError(f"linalg.lu_solve: Expected LU and B to have the same dtype, but found LU of type "
                           f"{lu.dtype.scalar_name} and B of type {b.dtype.scalar_name} instead")
    if sb[-2] != s[-1]:
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({s[-2]}x{s[-1]} and {sb[-2]}x{sb[-1]})")
    return TensorType(broadcast_shapes(s[:-2], sb[:-2]) + sb[-2:], b.dtype)


def _lu_solve(lu, pivots, b, *, adjoint: bool):
    _host("linalg.lu_solve", lu, pivots, b)
    batch = np.broadcast_shapes(lu.shape[:-2], b.shape[:-2])
    out = np.empty(batch + b.shape[-2:], b.dtype)
    if out.size == 0:
        return out
    n = lu.shape[-1]
    _pivots_in_range("linalg.lu_solve", pivots, n)
    lus = _batched(lu, batch)
    pivs = np.broadcast_to(pivots, batch + pivots.shape[-1:]).reshape((-1, n)) - 1
    getrs = _lapack("getrs", lus)
    flat = out.reshape((-1,) + b.shape[-2:])
    for i, (f, p, rhs) in enumerate(zip(lus, pivs, _batched(b, batch))):
        flat[i] = getrs(f, p, rhs, trans=1 if adjoint else 0)[0]
    return out


# X with A X = B (adjoint: A^T X = B) for A = P L U given as lu_factor's packed factors and pivots
lu_solve = register(Primitive("lu_solve", _lu_solve_infer, _lu_solve, kind="linalg", nondiff_operands=(1,)))


# ---- LDL^T of symmetric matrices (Bunch-Kaufman pivoting), not differentiable as in PyTorch -----

def _sytrf(a: np.ndarray):
    """(LD: the lower triangle of sytrf's result, 1-based int32 pivots, info) per matrix."""
    n = a.shape[-1]
    batch = a.shape[:-2]
    ld = np.zeros(a.shape, a.dtype)
    piv = np.broadcast_to(np.arange(1, n + 1, dtype=np.int32), batch + (n,)).copy()
    info = np.zeros(batch, np.int32)
    if a.size == 0:
        return ld, piv, info
    sytrf = _lapack("sytrf", a)
    flat_ld, flat_piv, flat_info = ld.reshape((-1, n, n)), piv.reshape((-1, n)), info.reshape(-1)
    for i, mat in enumerate(a.reshape((-1, n, n))):
        f, p, flat_info[i] = sytrf(mat, lower=1)
        flat_ld[i], flat_piv[i] = np.tril(f), p
    return ld, piv, info


def _ldl_infer(which: str):
    def infer(a, *, hermitian: bool, check_errors: bool = False):
        s = _matrices("torch.linalg.ldl_factor_ex", a)
        _kernel_dtype("ldl_factor_kernel_cpu", a)
        if which == "ld":
            return TensorType(s, a.dtype)
        return TensorType(s[:-1] if which == "pivots" else s[:-2], dt.int32)
    return infer


def _ldl_factor(a, *, hermitian: bool, check_errors: bool):
    _host("linalg.ldl_factor", a)
    ld, _piv, info = _sytrf(a)
    failed = _first_failure(info) if check_errors else None
    if failed:
        b, i = failed
        raise LinAlgError(f"torch.linalg.ldl_factor: {_batch_prefix(a, b)}The factorization could not be completed "
                          f"because D[{i},{i}] is exactly zero (the input matrix is singular). Use "
                          "linalg.ldl_factor_ex to get the factors and info instead of an error.")
    return ld


def _sytrf_part(i: int):
    def impl(a, *, hermitian: bool):
        _host("linalg.ldl_factor", a)
        return _sytrf(a)[i]
    return impl


# LD (D's blocks on the diagonal and first subdiagonal, L's strict lower part below), LAPACK's
# pivots (negative: a 2x2 block of D) and info (> 0: D[info-1, info-1] is exactly zero); for real
# matrices hermitian=True and False factor alike (sytrf)
ldl_factor = register(Primitive("ldl_factor", _ldl_infer("ld"), _ldl_factor, kind="linalg", differentiable=False))
ldl_pivots = register(Primitive("ldl_pivots", _ldl_infer("pivots"), _sytrf_part(1), kind="linalg",
                                differentiable=False))
ldl_info = register(Primitive("ldl_info", _ldl_infer("info"), _sytrf_part(2), kind="linalg", differentiable=False))


def _ldl_solve_infer(ld, pivots, b, *, hermitian: bool):
    s = _matrices("torch.linalg.ldl_solve", ld)
    _kernel_dtype("ldl_solve_kernel_cpu", ld)
    if pivots.dtype.category != dt.INT:
        raise RuntimeError("torch.linalg.ldl_solve: Expected pivots to be integers. Got " + pivots.dtype.scalar_name)
    if _shape(pivots) != s[:-1]:
        raise RuntimeError(f"torch.linalg.ldl_solve: Expected LD.shape[:-1] and pivots.shape to be the same, but got "
                           f"pivots with shape {list(_shape(pivots))} instead")
    sb = _shape(b)
    if len(sb) < 2:
        raise RuntimeError("torch.linalg.ldl_solve: The input tensor B must have at least 2 dimensions.")
    if ld.dtype is not b.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type {b.dtype.scalar_name} and "
                           f"A of type {ld.dtype.scalar_name} instead.")
    if sb[-2] != s[-1]:
        raise RuntimeError(f"Incompatible matrix sizes for torch.linalg.ldl_solve: each A matrix is {s[-2]} by {s[-1]} "
                           f"but each b matrix is {sb[-2]} by {sb[-1]}")
    return TensorType(broadcast_shapes(s[:-2], sb[:-2]) + sb[-2:], b.dtype)


def _ldl_solve(ld, pivots, b, *, hermitian: bool):
    _host("linalg.ldl_solve", ld, pivots, b)
    batch = np.broadcast_shapes(ld.shape[:-2], b.shape[:-2])
    out = np.empty(batch + b.shape[-2:], b.dtype)
    if out.size == 0:
        return out
    n = ld.shape[-1]
    _pivots_in_range("linalg.ldl_solve", np.abs(pivots), n)
    lds = _batched(ld, batch)
    pivs = np.broadcast_to(pivots, batch + (n,)).reshape((-1, n)).astype(np.int32)
    sytrs = _lapack("sytrs", lds)
    flat = out.reshape((-1,) + b.shape[-2:])
    for i, (f, p, rhs) in enumerate(zip(lds, pivs, _batched(b, batch))):
        flat[i] = sytrs(f, p, rhs, lower=1)[0]
    return out


# X with A X = B for A = L D L^T given as ldl_factor's LD and pivots (PyTorch has no derivative)
ldl_solve = register(Primitive("ldl_solve", _ldl_solve_infer, _ldl_solve, kind="linalg", differentiable=False))


# ---- least squares: min ||A X - B||_F ------------------------------------------------------------

LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def _lstsq_infer(a, b=None, *, rcond: float, driver: str):
    """The solution's type; without B, the rank's (one per matrix of A)."""
    if not a.dtype.is_floating_point or a.dtype.is_low_precision:
        raise RuntimeError("This function doesn't handle types other than float and double")
    s = _matrices("torch.linalg.lstsq", a, square=False)
    if driver not in LSTSQ_DRIVERS:
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    if b is None:
        return TensorType(s[:-2], dt.int64)
    sb = _shape(b)
    if a.dtype is not b.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got "
                           f"input's dtype {a.dtype.scalar_name} and other's dtype {b.dtype.scalar_name}")
    if len(sb) < 2 or sb[-2] != s[-2]:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2)")
    return TensorType(broadcast_shapes(s[:-2], sb[:-2]) + (s[-1], sb[-1]), a.dtype)


def _lstsq_lapack(a, b, rcond: float, driver: str):
    """(solution, rank) for every matrix pair of the broadcast batch."""
    _host("torch.linalg.lstsq", a, b)
    m, n = a.shape[-2:]
    k = b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    x = np.zeros(batch + (n, k), a.dtype)
    rank = np.zeros(batch, np.int64)
    if a.size == 0 or b.size == 0:
        return x, rank
    flat_x, flat_rank = x.reshape((-1, n, k)), rank.reshape(-1)
    if driver == "gels":
        gels = _lapack("gels", a)
        for i, (ai, bi) in enumerate(zip(_batched(a, batch), _batched(b, batch))):
            rhs = np.zeros((builtins.max(m, n), k), a.dtype)
            rhs[:m] = bi
            flat_x[i] = gels(ai, rhs)[1][:n]
        return x, rank
    import scipy.linalg
    for i, (ai, bi) in enumerate(zip(_batched(a, batch), _batched(b, batch))):
        sol, _res, r, _s = scipy.linalg.lstsq(ai, bi, cond=rcond, lapack_driver=driver, check_finite=False)
        flat_x[i], flat_rank[i] = sol, r
    return x, rank


# the least-squares (minimum-norm, for rank-deficient A with gelsy/gelsd/gelss) solution, and the
# effective rank of each matrix of A the driver finds (B plays no part in it; 0 for gels, which
# assumes full rank)
lstsq = register(Primitive("lstsq", _lstsq_infer, lambda a, b, *, rcond, driver: _lstsq_lapack(
    a, b, rcond, driver)[0], kind="linalg"))
lstsq_rank = register(Primitive("lstsq_rank", _lstsq_infer, lambda a, *, rcond, driver: _lstsq_lapack(
    a, np.zeros(a.shape[-2:-1] + (1,), a.dtype), rcond, driver)[1], kind="linalg", differentiable=False))
