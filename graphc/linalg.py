"""graphc.linalg: the norms (differentiable, built from primitives)."""
from __future__ import annotations

from . import math_ops
from .tensors import Tensor, device_full, device_tensor, host_array


def vector_norm(x: Tensor, ord: float = 2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    return math_ops.norm(x, ord, dim, keepdim, dtype)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    if ord != "fro":
        raise NotImplementedError(f"linalg.matrix_norm(ord={ord!r}) needs singular values or column sums; "
                                  "graphc provides ord='fro'")
    return math_ops.norm(A, 2, dim, keepdim, dtype)


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if isinstance(ord, str):
        return matrix_norm(A, ord, dim if dim is not None else (-2, -1), keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


# ---- dense linear algebra -------------------------------------------------------------------
# Batched like PyTorch ((..., m, n)); numpy's LAPACK computes, and each decomposition is a
# primitive with its VJP rule (passes/autodiff/rules.py), so inv, det, slogdet, solve, cholesky,
# qr, svd, svdvals, eigh, eigvalsh and pinv are differentiable, also twice.

import builtins as _builtins  # noqa: E402

import numpy as _np  # noqa: E402

from graphc.ir import dtypes as _dt  # noqa: E402
from graphc.ir import prims as _P  # noqa: E402
from graphc.ir.prims import LinAlgError  # noqa: E402,F401

from .math_ops import _return_type as _namedtuple  # noqa: E402  (prints as torch.return_types.*)
from .math_ops import grad_named as _named, write_out as _write_out  # noqa: E402

_slogdet_result = _namedtuple("linalg_slogdet", ["sign", "logabsdet"])
_qr_result = _namedtuple("linalg_qr", ["Q", "R"])
_svd_result = _namedtuple("linalg_svd", ["U", "S", "Vh"])
_eigh_result = _namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
_solve_ex_result = _namedtuple("linalg_solve_ex", ["result", "info"])
_inv_ex_result = _namedtuple("linalg_inv_ex", ["inverse", "info"])
_cholesky_ex_result = _namedtuple("linalg_cholesky_ex", ["L", "info"])


def _mT(x):
    n = x.ndim
    return _P.permute(x, dims=tuple(range(n - 2)) + (n - 1, n - 2))


def inv(A: Tensor, *, out=None) -> Tensor:
    return _write_out(out, _named(_P.inv(A), "LinalgInvExBackward0"))


def _info_result(fn, A, check_errors: bool, make):
    try:
        res = fn(A)
        info = _np.zeros(tuple(A.shape[:-2]), _np.int32)
        # CuPy's solvers report no failure unless asked to synchronize: a GPU result is not checked
    except LinAlgError as e:
        if check_errors:
            raise
        import re
        res = device_tensor(_np.full(tuple(A.shape), _np.nan, A.dtype.np), A)
        found = re.search(r"(element|order) (\d+)", str(e))
        info = _np.full(tuple(A.shape[:-2]), int(found.group(2)) if found else 1, _np.int32)
    return make(res, device_tensor(info, A))


def inv_ex(A: Tensor, *, check_errors: bool = False):
    return _info_result(inv, A, check_errors, _inv_ex_result)


def det(A: Tensor, *, out=None) -> Tensor:
    return _write_out(out, _named(_P.det(A), "LinalgDetBackward0"))


def slogdet(A: Tensor):
    return _slogdet_result(_P.det_sign(A), _named(_P.logabsdet(A), "LinalgSlogdetBackward0"))


def logdet(A: Tensor) -> Tensor:
    """log(det(A)): NaN where the determinant is negative, -inf where it is 0."""
    sign, logabs = slogdet(A)
    return _P.where(_P.lt(sign, 0), float("nan"), logabs)


def _is_vector_rhs(A, B) -> bool:
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A: Tensor, B: Tensor, *, left: bool = True, out=None) -> Tensor:
    """X with A X = B (left) or X A = B; B is a (batch of) vector(s) when it has shape (n,) or A's
    shape without its last dimension, as in PyTorch."""
    if not left:
        if A.ndim >= 2 and _is_vector_rhs(A, B):
            raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation XA = B "
                               f"({A.shape[-2]}x{A.shape[-1]} and {B.shape[-1]}x1)")
        return _write_out(out, _mT(_P.solve(_mT(A), _mT(B))))
    if A.ndim >= 2 and _is_vector_rhs(A, B):
        X = _P.solve(A, _P.reshape(B, shape=tuple(B.shape) + (1,)))
        return _write_out(out, _named(_P.reshape(X, shape=tuple(X.shape[:-1])), "LinalgSolveExBackward0"))
    return _write_out(out, _named(_P.solve(A, B), "LinalgSolveExBackward0"))


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False,
                     out=None) -> Tensor:
    n = A.shape[-1]
    mask = device_tensor((_np.triu if upper else _np.tril)(_np.ones((n, n), bool)), A)
    T = _P.where(mask, A, 0.0)
    if unitriangular:
        T = _P.where(device_tensor(_np.eye(n, dtype=bool), A), 1.0, T)
    Tinv = _P.inv(T)
    return _write_out(out, _P.matmul(Tinv, B) if left else _P.matmul(B, Tinv))


def cholesky(A: Tensor, *, upper: bool = False, out=None) -> Tensor:
    L = _named(_P.cholesky(A), "LinalgCholeskyExBackward0")
    return _write_out(out, _mT(L) if upper else L)


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False):
    return _info_result(lambda a: cholesky(a, upper=upper), A, check_errors, _cholesky_ex_result)


def qr(A: Tensor, mode: str = "reduced"):
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                           "or 'complete'")
    if mode == "r":
        return _qr_result(device_tensor(_np.zeros((0,), A.dtype.np), A), _P.qr_r(A, mode="r"))
    return _named(_qr_result(_P.qr_q(A, mode=mode), _P.qr_r(A, mode=mode)), "LinalgQrBackward0")


def svd(A: Tensor, full_matrices: bool = True, *, driver=None):
    full = bool(full_matrices)
    return _named(_svd_result(_P.svd_u(A, full_matrices=full), _P.svdvals(A), _P.svd_vh(A, full_matrices=full)),
                  "LinalgSvdBackward0")


def svdvals(A: Tensor, *, driver=None, out=None) -> Tensor:
    return _write_out(out, _named(_P.svdvals(A), "LinalgSvdBackward0"))


def _uplo(UPLO: str) -> str:
    if UPLO not in ("L", "U", "l", "u"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO.upper()


def eigh(A: Tensor, UPLO: str = "L"):
    u = _uplo(UPLO)
    return _named(_eigh_result(_P.eigvalsh(A, uplo=u), _P.eigh_vectors(A, uplo=u)), "LinalgEighBackward0")


def eigvalsh(A: Tensor, UPLO: str = "L", *, out=None) -> Tensor:
    return _write_out(out, _named(_P.eigvalsh(A, uplo=_uplo(UPLO)), "LinalgEighBackward0"))


def _as_float(x):
    return None if x is None else float(x.item() if isinstance(x, Tensor) else x)


def _tolerances(A, atol, rtol):
    """PyTorch's defaults: rtol = eps * max(m, n) unless atol > 0 is given alone."""
    atol, rtol = _as_float(atol), _as_float(rtol)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else float(_dt.float_info(A.dtype).eps) * _builtins.max(
            A.shape[-2], A.shape[-1])
    return (0.0 if atol is None else atol), rtol


def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False, tol=None, out=None) -> Tensor:
    if tol is not None:
        atol, rtol = tol, 0.0
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_rank: The input tensor A must have at least 2 dimensions.")
    atol, rtol = _tolerances(A, atol, rtol)
    s = _P.abs(_P.eigvalsh(A, uplo="L")) if hermitian else _P.svdvals(A)
    if s.shape[-1] == 0:
        return _write_out(out, device_full(A, shape=tuple(s.shape[:-1]), value=0, dtype=_dt.int64))
    big = _P.amax(s, dims=(s.ndim - 1,), keepdim=True)
    cut = _P.maximum(_P.mul(big, rtol), atol)
    return _write_out(out, _P.sum(_P.gt(s, cut), dims=(s.ndim - 1,), keepdim=False))


def pinv(A: Tensor, rcond=None, hermitian: bool = False, *, atol=None, rtol=None, out=None) -> Tensor:
    if rcond is not None:  # the legacy positional form: pinv(A, rcond, hermitian)
        rtol = rcond
    atol, rtol = _tolerances(A, atol, rtol)
    return _write_out(out, _named(_P.pinv(A, atol=atol, rtol=rtol, hermitian=bool(hermitian)), "LinalgPinvBackward0"))


def matrix_power(A: Tensor, n: int, *, out=None) -> Tensor:
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_power: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    n = int(n)
    if n == 0:
        eye = device_tensor(_np.broadcast_to(_np.eye(A.shape[-1], dtype=A.dtype.np), tuple(A.shape)).copy(), A)
        return _write_out(out, eye)
    base = inv(A) if n < 0 else A
    n = abs(n)
    result = None
    while n:
        if n & 1:
            result = base if result is None else _P.matmul(result, base)
        n >>= 1
        if n:
            base = _P.matmul(base, base)
    return _write_out(out, _P.copy(result) if result is A else result)


def cross(input: Tensor, other: Tensor, *, dim: int = -1, out=None) -> Tensor:
    return _write_out(out, math_ops._cross(input, other, dim, "linalg.cross"))


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1, out=None) -> Tensor:
    return _write_out(out, math_ops.sum(math_ops.mul(x, y), dim))


def multi_dot(tensors, *, out=None) -> Tensor:
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    result = tensors[0]
    for t in tensors[1:]:
        result = _P.matmul(result, t)
    return _write_out(out, result)


def matmul(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    return math_ops.matmul(input, other, out=out)


# ---- the older torch.* spellings -------------------------------------------------------------

_torch_svd_result = _namedtuple("svd", ["U", "S", "V"])
_torch_qr_result = _namedtuple("qr", ["Q", "R"])


def inverse(input: Tensor, *, out=None) -> Tensor:
    return inv(input, out=out)


def torch_cholesky(input: Tensor, upper: bool = False, *, out=None) -> Tensor:
    return cholesky(input, upper=upper, out=out)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    return pinv(input, rtol=rcond)


def torch_svd(input: Tensor, some: bool = True, compute_uv: bool = True):
    """torch.svd: (U, S, V) with V (not Vh); without compute_uv, U and V are zero-filled."""
    if not compute_uv:
        m, n = input.shape[-2:]
        zeros = lambda r, c: device_tensor(_np.zeros(tuple(input.shape[:-2]) + (r, c), input.dtype.np), input)  # noqa: E731
        return _torch_svd_result(zeros(m, m), _P.svdvals(input), zeros(n, n))
    U, S, Vh = svd(input, full_matrices=not some)
    return _torch_svd_result(U, S, _mT(Vh))


def torch_qr(input: Tensor, some: bool = True):
    Q, R = qr(input, "reduced" if some else "complete")
    return _torch_qr_result(Q, R)


# ---- compositions of the above ----------------------------------------------------------------

def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    return A.diagonal(offset, dim1, dim2)


def vander(x: Tensor, *, N: int | None = None) -> Tensor:
    """Powers x^0, x^1, ..., x^(N-1) along a new last dimension (batched over x's leading dims)."""
    import graphc
    n = x.shape[-1] if N is None else N
    return graphc.stack([x ** i for i in range(n)], -1)


def matrix_exp(A: Tensor) -> Tensor:
    """exp(A) by scaling and squaring a degree-18 Taylor polynomial: matmuls only, so autograd
    goes through it. The number of squarings comes from A's 1-norm, read on the host (under
    compile, a graph break)."""
    from . import creation
    norm = float(host_array(math_ops.amax(math_ops.sum(math_ops.abs(A.detach()), dim=-2))._data)) if A.numel() else 0.0
    s = _builtins.max(0, int(_np.ceil(_np.log2(norm))) + 1) if norm > 0.5 else 0
    X = A / (2 ** s)
    eye = creation.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(tuple(A.shape))
    term, total = eye, eye
    for k in range(1, 19):
        term = term @ X / k
        total = total + term
    for _ in range(s):
        total = total @ total
    return total


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False, out=None):
    """solve, and ``info`` (0: solved); a singular A raises, as with ``check_errors=True``."""
    x = solve(A, B, left=left, out=out)
    info = device_tensor(_np.zeros(tuple(A.shape[:-2]), dtype=_np.int32), A)
    return _solve_ex_result(x, info)


def tensorinv(A: Tensor, ind: int = 2, *, out=None) -> Tensor:
    """The inverse of A seen as a matrix of its first ``ind`` dims by the rest."""
    out_shape = tuple(A.shape[ind:]) + tuple(A.shape[:ind])
    rows = int(_np.prod(A.shape[:ind]))
    return inv(A.reshape(rows, -1), out=out).reshape(out_shape)


def tensorsolve(A: Tensor, B: Tensor, dims=None, *, out=None) -> Tensor:
    """X with tensordot(A, X, X.ndim) == B."""
    if dims is not None:
        order = [d for d in range(A.dim()) if d not in [d % A.dim() for d in dims]] + [d % A.dim() for d in dims]
        A = A.permute(*order)
    x_shape = tuple(A.shape[B.dim():])
    n = int(_np.prod(x_shape))
    return solve(A.reshape(-1, n), B.reshape(-1), out=out).reshape(x_shape)


def cond(A: Tensor, p=None, *, out=None) -> Tensor:
    """The condition number: ratio of extreme singular values (p None or 2, -2), else
    norm(A, p) * norm(inv(A), p)."""
    if p in (None, 2, -2):
        s = svdvals(A)
        r = s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
        return _write_out(out, r)
    return _write_out(out, matrix_norm(A, p) * matrix_norm(inv(A), p))



# ---- LU, LDL and least squares (graphc/factorizations.py) --------------------------------------

from .factorizations import (ldl_factor, ldl_factor_ex, ldl_solve, lstsq, lu, lu_factor,  # noqa: E402,F401
                             lu_factor_ex, lu_solve)
