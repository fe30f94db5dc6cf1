"""LU and LDL factorizations, solving with them, and least squares (graphc/factorizations.py).

Without PyTorch: reconstruction (P L U == A, A X == B, the normal equations), PyTorch's result
types and errors, gradients against central finite differences in float64, compiled == eager,
vmap. With PyTorch installed: every result (values, shapes, dtypes, which lstsq fields are empty
per driver) and error message equal to torch.linalg's.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc
import graphc as torch_like
from graphc.autograd import gradcheck

RNG = np.random.default_rng(1234)
L = graphc.linalg


def t(a, grad: bool = False):
    return graphc.tensor(np.array(a), requires_grad=grad)


def _np(x):
    return x.detach().numpy()


# ---- reconstruction and result types (no PyTorch needed) -------------------------------------

@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 5), (2, 4, 4), (2, 3, 2, 4), (0, 3, 3), (2, 0, 3)])
def test_lu_reconstructs_A(shape):
    A = RNG.standard_normal(shape)
    P, Lo, U = L.lu(t(A))
    m, n = shape[-2:]
    k = min(m, n)
    assert tuple(P.shape) == shape[:-2] + (m, m) and tuple(Lo.shape) == shape[:-2] + (m, k)
    assert tuple(U.shape) == shape[:-2] + (k, n)
    np.testing.assert_allclose(_np(P @ Lo @ U), A, atol=1e-12)
    lo, up = _np(Lo), _np(U)
    assert np.allclose(np.triu(lo, 1), 0) and np.allclose(np.diagonal(lo, 0, -2, -1), 1)
    assert np.allclose(np.tril(up, -1), 0)
    assert np.all(np.abs(lo) <= 1 + 1e-12)  # partial pivoting: |L| <= 1
    p = _np(P)  # a permutation matrix
    assert set(np.unique(p)) <= {0.0, 1.0} and np.allclose(p.sum(-1), 1) and np.allclose(p.sum(-2), 1)


def test_lu_factor_pivots_are_lapacks_and_unpack_round_trips():
    A = t(RNG.standard_normal((2, 4, 4)))
    LU, piv = L.lu_factor(A)
    assert piv.dtype is graphc.int32 and tuple(piv.shape) == (2, 4)
    assert 1 <= int(piv.min()) and int(piv.max()) <= 4  # 1-based
    P, Lo, U = graphc.lu_unpack(LU, piv)
    np.testing.assert_allclose(_np(P @ Lo @ U), _np(A), atol=1e-12)
    only_p = graphc.lu_unpack(LU, piv, unpack_data=False)
    assert only_p.L.numel() == 0 and only_p.U.numel() == 0 and np.array_equal(_np(only_p.P), _np(P))
    assert graphc.lu_unpack(LU, piv, unpack_pivots=False).P.numel() == 0
    res = L.lu(A)
    assert type(res).__name__ == "linalg_lu" and res._fields == ("P", "L", "U")
    assert type(L.lu_factor(A)).__name__ == "linalg_lu_factor" and L.lu_factor(A)._fields == ("LU", "pivots")
    assert "return_types.linalg_lu_factor_ex(" in repr(L.lu_factor_ex(A))


def test_lu_solve_left_right_adjoint_and_broadcasting():
    A = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    B = RNG.standard_normal((4, 1, 3, 2))
    LU, piv = L.lu_factor(t(A))
    X = L.lu_solve(LU, piv, t(B))
    assert tuple(X.shape) == (4, 2, 3, 2)
    np.testing.assert_allclose(A @ _np(X), np.broadcast_to(B, (4, 2, 3, 2)), atol=1e-12)
    XT = L.lu_solve(LU, piv, t(B), adjoint=True)
    np.testing.assert_allclose(np.swapaxes(A, -1, -2) @ _np(XT), np.broadcast_to(B, (4, 2, 3, 2)), atol=1e-12)
    Bt = np.swapaxes(B, -1, -2)
    XR = L.lu_solve(LU, piv, t(Bt), left=False)
    np.testing.assert_allclose(_np(XR) @ A, np.broadcast_to(Bt, (4, 2, 2, 3)), atol=1e-12)
    XRA = L.lu_solve(LU, piv, t(Bt), left=False, adjoint=True)
    np.testing.assert_allclose(_np(XRA) @ np.swapaxes(A, -1, -2), np.broadcast_to(Bt, (4, 2, 2, 3)), atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LU2, piv2 = graphc.lu(t(A))
        np.testing.assert_allclose(_np(graphc.lu_solve(t(B), LU2, piv2)), _np(X), atol=1e-14)
        np.testing.assert_allclose(_np(t(B).lu_solve(*t(A).lu())), _np(X), atol=1e-14)
        LU3, piv3, info = t(A).lu(get_infos=True)
        assert info.dtype is graphc.int32 and not info.any()


def test_singular_input_raises_or_reports_info():
    S = t([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(RuntimeError, match=r"torch.linalg.lu_factor: U\[2,2\] is zero"):
        L.lu_factor(S)
    with pytest.raises(RuntimeError, match=r"\(Batch element 1\): U\[2,2\] is zero"):
        L.lu_factor(graphc.stack([graphc.eye(2, dtype=graphc.float64), S]))
    res = L.lu_factor_ex(graphc.stack([graphc.eye(2, dtype=graphc.float64), S]))
    assert res.info.tolist() == [0, 2] and res.info.dtype is graphc.int32
    P, Lo, U = L.lu(S)  # the factorization itself succeeds
    np.testing.assert_allclose(_np(P @ Lo @ U), _np(S))
    with pytest.raises(RuntimeError, match="D\\[1,1\\] is exactly zero"):
        L.ldl_factor(t(np.zeros((2, 2))))
    assert L.ldl_factor_ex(t(np.zeros((2, 2)))).info.item() == 1


@pytest.mark.parametrize("call, match", [
    (lambda: L.lu_factor(t([1.0, 2.0])), "Expected tensor with 2 or more dimensions"),
    (lambda: L.lu_factor(graphc.ones(2, 2, dtype=graphc.int64)), "\"lu_cpu\" not implemented for 'Long'"),
    (lambda: L.lu(t(np.eye(2)), pivot=False), "LU without pivoting is not implemented on the CPU"),
    (lambda: L.lu_solve(*L.lu_factor(t(np.eye(3))), t(np.ones((2, 2)))), r"Incompatible shapes .* \(3x3 and 2x2\)"),
    (lambda: L.lu_solve(*L.lu_factor(t(np.eye(3))), t(np.ones(3))), "B must have at least 2 dimensions"),
    (lambda: L.lu_solve(L.lu_factor(t(np.eye(3)))[0], L.lu_factor(t(np.eye(3)))[1].long(), t(np.ones((3, 1)))),
     "pivots should be a Tensor of scalar type torch.int32"),
    (lambda: L.lu_solve(*L.lu_factor(t(np.eye(3))), graphc.ones(3, 1)), "Expected LU and B to have the same dtype"),
    (lambda: L.ldl_factor(t(np.ones((2, 3)))), "A must be batches of square matrices"),
    (lambda: L.lstsq(t(np.ones((4, 3))), t(np.ones((5, 2)))), r"input.size\(-2\) should match other.size\(-2\)"),
    (lambda: L.lstsq(t(np.ones((4, 3))), t(np.ones((4, 2))), driver="qr"), "`driver` should be one of"),
    (lambda: L.lstsq(t(np.ones((4, 3))), t(np.ones((2, 2, 4, 2)))), r"input.dim\(\) must be greater or equal"),
    (lambda: L.lstsq(graphc.ones(3, 3, dtype=graphc.int64), graphc.ones(3, 3, dtype=graphc.int64)),
     "doesn't handle types other than float and double"),
])
def test_bad_input_gets_pytorchs_error(call, match):
    with pytest.raises((RuntimeError, NotImplementedError), match=match):
        call()


def test_ldl_solves_symmetric_indefinite_systems():
    M = RNG.standard_normal((3, 4, 4))
    A = M + np.swapaxes(M, -1, -2)  # symmetric, indefinite
    B = RNG.standard_normal((4, 2))
    LD, piv = L.ldl_factor(t(A))
    assert piv.dtype is graphc.int32 and np.allclose(np.triu(_np(LD), 1), 0)
    np.testing.assert_allclose(A @ _np(L.ldl_solve(LD, piv, t(B))), np.broadcast_to(B, (3, 4, 2)), atol=1e-10)
    assert not L.ldl_factor_ex(t(A)).info.any()
    # no derivative, as in PyTorch
    assert not L.ldl_factor(t(A, grad=True)).LD.requires_grad


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
def test_lstsq_solves_and_fills_the_fields_of_its_driver(driver, shape):
    A, B = RNG.standard_normal(shape), RNG.standard_normal(shape[:-1] + (2,))
    res = L.lstsq(t(A), t(B), driver=driver)
    assert res._fields == ("solution", "residuals", "rank", "singular_values")
    np.testing.assert_allclose(_np(res.solution), np.linalg.pinv(A) @ B, atol=1e-10)
    m, n = shape[-2:]
    d = driver or "gelsy"  # PyTorch's CPU default
    assert res.rank.numel() == 0 if d == "gels" else res.rank.tolist() == np.full(shape[:-2], min(m, n)).tolist()
    if d in ("gelsd", "gelss"):
        np.testing.assert_allclose(_np(res.singular_values), np.linalg.svd(A, compute_uv=False), atol=1e-12)
    else:
        assert res.singular_values.numel() == 0
    if m > n and d != "gelsy":
        r = A @ np.linalg.pinv(A) @ B - B
        np.testing.assert_allclose(_np(res.residuals), (r * r).sum(-2), atol=1e-10)
    else:
        assert res.residuals.numel() == 0


def test_lstsq_vector_rhs_and_rank_deficient_input():
    A = RNG.standard_normal((6, 3))
    b = RNG.standard_normal(6)
    x = L.lstsq(t(A), t(b)).solution
    assert tuple(x.shape) == (3,)
    np.testing.assert_allclose(A.T @ (A @ _np(x) - b), 0, atol=1e-10)  # the normal equations
    S = np.array([[1.0, 2.0], [2.0, 4.0], [1.0, 2.0]])
    res = L.lstsq(t(S), t(np.ones((3, 1))), driver="gelsd")
    assert res.rank.item() == 1 and res.residuals.numel() == 0  # rank-deficient: no residuals
    np.testing.assert_allclose(_np(res.solution), np.linalg.pinv(S) @ np.ones((3, 1)), atol=1e-12)


# ---- gradients against finite differences (float64) -------------------------------------------

def _well(*shape):
    return RNG.standard_normal(shape) + 2.5 * np.eye(shape[-2], shape[-1])


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 4), (2, 3, 3)])
def test_lu_gradients(shape):
    W = [RNG.standard_normal(s) for s in ((shape[-2],) * 2, (shape[-2], min(shape[-2:])), (min(shape[-2:]), shape[-1]))]

    def f(a):  # every factor carries a gradient (P's is zero)
        P, Lo, U = L.lu(a)
        return (P * t(W[0])).sum() + (Lo * t(W[1])).sum() + (U * t(W[2])).sum()
    assert gradcheck(f, (t(_well(*shape), grad=True),))
    assert gradcheck(lambda a: L.lu_factor(a).LU, (t(_well(*shape), grad=True),))


def test_lu_solve_gradients_to_LU_and_B():
    LU, piv = L.lu_factor(t(_well(3, 3)))
    # the plain solve is an op_cases gradcheck; these two reach the primitive's other adjoint flag and left=False
    for kw in ({"adjoint": True}, {"left": False, "adjoint": True}):
        b_shape = (3, 2) if kw.get("left", True) else (2, 3)
        assert gradcheck(lambda lu, b: L.lu_solve(lu, piv, b, **kw),
                         (t(_np(LU), grad=True), t(RNG.standard_normal(b_shape), grad=True))), kw
    # through the factorization too: d/dA of solve(A, B) equals linalg.solve's
    A, B = t(_well(3, 3), grad=True), t(RNG.standard_normal((3, 2)))
    L.lu_solve(*L.lu_factor(A), B).sum().backward()
    A2 = t(_np(A), grad=True)
    L.solve(A2, B).sum().backward()
    np.testing.assert_allclose(_np(A.grad), _np(A2.grad), atol=1e-12)


@pytest.mark.parametrize("shape, driver", [((5, 3), "gelsy"), ((3, 5), "gelsd"), ((4, 2), "gels")])
def test_lstsq_gradients(shape, driver):
    A, B = t(RNG.standard_normal(shape), grad=True), t(RNG.standard_normal(shape[:-1] + (2,)), grad=True)
    assert gradcheck(lambda a, b: L.lstsq(a, b, driver=driver).solution, (A, B))
    if shape[-2] > shape[-1] and driver != "gelsy":
        assert gradcheck(lambda a, b: L.lstsq(a, b, driver=driver).residuals, (A, B))
    b = t(RNG.standard_normal(shape[-2]), grad=True)  # a vector right-hand side
    assert gradcheck(lambda a, b: L.lstsq(a, b, driver=driver).solution, (t(_np(A), grad=True), b))


# ---- compiled == eager, vmap ------------------------------------------------------------------

def test_compiled_lu_lstsq_program_matches_eager_with_gradients():
    def f(a, b):
        P, Lo, U = L.lu(a)
        LU, piv, info = L.lu_factor_ex(a)
        x = L.lu_solve(LU, piv, b)
        y = L.lstsq(a, b).solution
        LD, lp = L.ldl_factor(a.detach() + a.detach().mT)
        z = L.ldl_solve(LD, lp, b)
        return (P @ Lo * U).sum() + (x * x).sum() + y.sum() + z.sum() + info.sum()

    a0, b0 = _well(2, 3, 3), RNG.standard_normal((2, 3, 2))
    results = []
    for fn in (f, graphc.compile(f, fullgraph=True)):
        a, b = t(a0, grad=True), t(b0, grad=True)
        out = fn(a, b)
        out.backward()
        results.append((out.item(), _np(a.grad), _np(b.grad)))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_compiled_lstsq_residuals_break_the_graph_only_where_the_rank_is_read():
    def f(a, b):
        return L.lstsq(a, b, driver="gelsd").residuals.sum()
    a, b = t(RNG.standard_normal((5, 3))), t(RNG.standard_normal((5, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = graphc.compile(f)(a, b)
    np.testing.assert_allclose(got.item(), f(a, b).item(), rtol=1e-12)
    g = graphc.compile(lambda a, b: L.lstsq(a, b, driver="gels").residuals.sum(), fullgraph=True)
    np.testing.assert_allclose(g(a, b).item(), f(a, b).item(), rtol=1e-10)


def test_vmap_per_sample_gradients_through_lu_solve():
    As, B = t(_well(4, 3, 3)), t(RNG.standard_normal((3, 1)))
    grads = graphc.func.vmap(graphc.func.grad(lambda a: L.lu_solve(*L.lu_factor(a), B).sum()))(As)
    for i in range(4):
        a = t(_np(As)[i], grad=True)
        L.solve(a, B).sum().backward()
        np.testing.assert_allclose(_np(grads[i]), _np(a.grad), atol=1e-12)


def test_triton_backend_refuses_lapack_factorizations_clearly():
    pytest.importorskip("triton")
    f = graphc.compile(lambda a: L.lu_factor(a).LU, backend="triton", fullgraph=True)
    with pytest.raises(Exception, match="SciPy's LAPACK"):
        f(t(_well(3, 3)))


def test_autocast_runs_lstsq_in_float32_and_leaves_lu_alone():
    A = graphc.tensor(_well(4, 3), dtype=graphc.bfloat16)
    B = graphc.tensor(RNG.standard_normal((4, 2)), dtype=graphc.bfloat16)
    with graphc.autocast("cpu"):
        assert L.lstsq(A, B).solution.dtype is graphc.float32  # linalg_lstsq is on the CPU float32 list
        with pytest.raises((RuntimeError, NotImplementedError), match="BFloat16"):
            L.lu_factor(A)  # linalg_lu_factor is on no list: bfloat16 reaches it, as in PyTorch


# ---- against PyTorch (optional) ---------------------------------------------------------------

def _both(fn, *arrays):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = fn(torch, *[torch.tensor(a) for a in arrays])
        got = fn(torch_like, *[graphc.tensor(a) for a in arrays])
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want) and type(got).__name__ == type(want).__name__
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape) and g.dtype.name == str(w.dtype).replace("torch.", "")
        np.testing.assert_allclose(_np(g), w.detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 5), (2, 3, 4), (0, 3, 3)])
def test_lu_matches_pytorch(shape):
    A = RNG.standard_normal(shape)
    _both(lambda m, a: m.linalg.lu(a), A)
    _both(lambda m, a: m.linalg.lu_factor_ex(a), A)
    if 0 not in shape:
        _both(lambda m, a: m.lu_unpack(*m.linalg.lu_factor(a)), A)
        _both(lambda m, a: a.lu(get_infos=True), A)
    _both(lambda m, a: m.linalg.lu_factor_ex(a), np.array([[1.0, 2.0], [2.0, 4.0]]))


def test_lu_solve_and_gradients_match_pytorch():
    A, B = RNG.standard_normal((2, 3, 3)), RNG.standard_normal((4, 2, 3, 2))
    for kw in ({}, {"adjoint": True}):
        _both(lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, **kw), A, B)
        _both(lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b.mT, left=False, **kw), A, B)
    _both(lambda m, a, b: m.lu_solve(b, *m.lu(a)), A, B)

    def grads(m, a, b):
        a.requires_grad_(True), b.requires_grad_(True)
        P, Lo, U = m.linalg.lu(a)
        x = m.linalg.lu_solve(*m.linalg.lu_factor(a), b, adjoint=True)
        ((P @ Lo).sin().sum() + (U * U).sum() + (x * x).sum()).backward()
        return a.grad, b.grad
    _both(grads, A, B[0])


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
def test_lstsq_matches_pytorch(driver):
    for sa, sb in (((5, 3), (5, 2)), ((3, 5), (3, 2)), ((2, 1, 4, 3), (1, 3, 4, 2)), ((4, 3), (4,))):
        _both(lambda m, a, b: m.linalg.lstsq(a, b, driver=driver), RNG.standard_normal(sa), RNG.standard_normal(sb))
    if driver != "gels":  # gels assumes full rank
        _both(lambda m, a, b: m.linalg.lstsq(a, b, driver=driver), np.array([[1.0, 2.0], [2.0, 4.0], [1.0, 2.0]]),
              RNG.standard_normal((3, 2)))

    def grads(m, a, b):
        a.requires_grad_(True), b.requires_grad_(True)
        res = m.linalg.lstsq(a, b, driver=driver)
        (res.solution.sin().sum() + res.residuals.sum()).backward()
        return a.grad, b.grad
    _both(grads, RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2)))


def test_ldl_matches_pytorch():
    M = RNG.standard_normal((3, 4, 4))
    A = M + np.swapaxes(M, -1, -2)
    _both(lambda m, a: m.linalg.ldl_factor(a), A)
    _both(lambda m, a: m.linalg.ldl_factor_ex(a), A)
    _both(lambda m, a, b: m.linalg.ldl_solve(*m.linalg.ldl_factor(a), b), A, RNG.standard_normal((4, 2)))


@pytest.mark.parametrize("call", [
    lambda m, a: m.linalg.lu_factor(a[0] * 0),
    lambda m, a: m.linalg.lu_factor(a[0, 0]),
    lambda m, a: m.linalg.lu_solve(*m.linalg.lu_factor(a), a[0, :2, :2]),
    lambda m, a: m.linalg.lu_solve(m.linalg.lu_factor(a)[0], m.linalg.lu_factor(a)[1][:, :2], a),
    lambda m, a: m.linalg.ldl_solve(*m.linalg.ldl_factor(a), a[0, :2]),
    lambda m, a: m.linalg.lstsq(a, a[..., :2, :]),
    lambda m, a: m.linalg.lstsq(a, a.float()),
    lambda m, a: m.lu_unpack(a, m.linalg.lu_factor(a)[1].long()),
])
def test_errors_match_pytorch(call):
    torch = pytest.importorskip("torch")
    A = RNG.standard_normal((2, 3, 3))
    with pytest.raises(Exception) as want:
        call(torch, torch.tensor(A))
    with pytest.raises(type(want.value)) as got:
        call(torch_like, graphc.tensor(A))
    assert str(got.value) == str(want.value)


def test_readme_snippet_runs(capsys):
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("## LU, LDL and least squares", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.split()
    assert float(out[0]) < 1e-12 and float(out[1]) < 1e-12 and out[2] == "graphc.int32"
