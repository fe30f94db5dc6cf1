"""torch.special's Bessel functions, Airy's Ai, erfcx, log_ndtr, the incomplete gamma functions and
zeta (ir/special_prims.py): values against PyTorch on a grid with edge values (0, -0, negatives,
large, +-inf, nan), PyTorch's dtype rules and errors, which operands are differentiable (and
PyTorch's error for those that are not, eagerly and compiled), gradients against PyTorch's, and
compiled against eager. Gradients against finite differences and hand-derived formulas are in
op_cases.py (test_gradcheck_ops.py)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.special as S

UNARY = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "erfcx", "i0", "i0e", "i1", "i1e",
         "log_ndtr", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
         "scaled_modified_bessel_k0", "scaled_modified_bessel_k1"]
BINARY = ["gammainc", "gammaincc", "zeta"]
DIFFERENTIABLE = {"erfcx", "i0", "i0e", "i1", "i1e", "log_ndtr"}  # as in PyTorch (derivatives.yaml)

GRID = np.array([0.0, -0.0, 1e-30, -1e-5, 0.3, -0.7, 1.0, -1.0, 2.5, -2.5, 7.0, -9.0, 30.0, -30.0, 88.0,
                 700.0, -700.0, np.inf, -np.inf, np.nan])
GRID2 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 50.0, -1.0, -2.0, -0.5, np.inf, -np.inf, np.nan])


def _torch():
    return pytest.importorskip("torch")


def _tol(dtype, name=""):
    # graphc computes through scipy (in float64 for the Bessel functions) and rounds once;
    # PyTorch's float32 kernels are float32 approximations (a few ulp). Where a function
    # oscillates (Airy's Ai for x < 0, J and Y), PyTorch's approximations are good to an absolute
    # error, not a relative one near the zeros: J1(7) = -0.0046828235 (scipy, and the exact value
    # to 10 digits), PyTorch's float64 -0.0046827973; Ai(-30) in float32: -0.0879700 for -0.0879682
    oscillates = name == "airy_ai" or name.startswith(("bessel_j", "bessel_y"))
    if dtype == np.float32:
        return dict(rtol=1e-5, atol=2e-5 if name == "airy_ai" else 1e-6 if oscillates else 1e-37)
    return dict(rtol=5e-6, atol=1e-7 if oscillates else 1e-300)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_values_match_pytorch(name, dtype):
    torch = _torch()
    x = GRID.astype(dtype)
    got = getattr(S, name)(graphc.tensor(x))
    want = getattr(torch.special, name)(torch.from_numpy(x)).numpy()
    assert got.dtype is graphc.ir.dtypes.from_numpy_dtype(np.dtype(dtype))
    np.testing.assert_allclose(got.numpy(), want, equal_nan=True, **_tol(dtype, name))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_values_match_pytorch(name, dtype):
    torch = _torch()
    a, x = (g.astype(dtype) for g in np.meshgrid(GRID2, GRID2, indexing="ij"))
    got = getattr(S, name)(graphc.tensor(a), graphc.tensor(x)).numpy()
    want = getattr(torch.special, name)(torch.from_numpy(a), torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, equal_nan=True, **_tol(dtype))


def test_the_edge_values_pytorch_decides_itself():
    # scipy leaves these nan (or 0); PyTorch's kernels decide them before computing
    a = graphc.tensor([np.nan, np.nan, np.inf, 2.0, 0.0, 0.0, -1.0])
    x = graphc.tensor([0.0, np.inf, 3.0, np.inf, 2.0, 0.0, 1.0])
    p, q = S.gammainc(a, x).tolist(), S.gammaincc(a, x).tolist()
    assert p[:5] == [0.0, 1.0, 0.0, 1.0, 1.0] and q[:5] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert np.isnan(p[5]) and np.isnan(q[5]) and np.isnan(p[6]) and np.isnan(q[6])
    assert np.isnan(S.zeta(graphc.tensor([2.0]), graphc.tensor([np.inf])).item())
    assert S.zeta(graphc.tensor([2.0]), graphc.tensor([1.0])).item() == pytest.approx(np.pi ** 2 / 6)


def test_dtypes_follow_pytorch():
    ints = graphc.arange(1, 4)
    for name in UNARY:
        assert getattr(S, name)(ints).dtype is graphc.float32, name          # integers: the default float
        assert getattr(S, name)(graphc.ones(2, dtype=graphc.bool)).dtype is graphc.float32
        assert getattr(S, name)(graphc.ones(2, dtype=graphc.float64)).dtype is graphc.float64
    assert S.zeta(ints, ints).dtype is graphc.float32
    f32, f64 = graphc.ones(3), graphc.ones(3, dtype=graphc.float64)
    for name in BINARY:
        fn = getattr(S, name)
        assert fn(f32, f64).dtype is graphc.float64 and fn(f32, 2.0).dtype is graphc.float32
        assert fn(f32, graphc.tensor(2.0, dtype=graphc.float64)).dtype is graphc.float32  # a 0-d tensor doesn't widen
        assert tuple(fn(graphc.ones(3, 1), graphc.ones(4)).shape) == (3, 4)
    assert S.zeta(2.0, graphc.tensor([1.0, 2.0])).tolist() == pytest.approx([np.pi ** 2 / 6, np.pi ** 2 / 6 - 1])
    # float16/bfloat16 where PyTorch has kernels (computed in float32, rounded once)
    for name in ("i0", "i0e", "i1", "i1e"):
        for d in (graphc.float16, graphc.bfloat16):
            y = getattr(S, name)(graphc.tensor([0.5, 2.0], dtype=d))
            assert y.dtype is d
            np.testing.assert_allclose(y.float().numpy(), getattr(S, name)(graphc.tensor([0.5, 2.0])).numpy(), rtol=1e-2)
    assert S.gammainc(graphc.ones(2, dtype=graphc.float16), graphc.ones(2, dtype=graphc.float16)).dtype is graphc.float16


def test_errors_are_pytorchs():
    with pytest.raises(NotImplementedError, match="\"erfcx_cpu\" not implemented for 'Half'"):
        S.erfcx(graphc.ones(2, dtype=graphc.float16))
    with pytest.raises(NotImplementedError, match="\"bessel_j0_cpu\" not implemented for 'BFloat16'"):
        S.bessel_j0(graphc.ones(2, dtype=graphc.bfloat16))
    with pytest.raises(NotImplementedError, match="\"igamma_cpu\" not implemented for 'Long'"):
        graphc.igamma(graphc.arange(3), graphc.arange(3))
    with pytest.raises(NotImplementedError, match="\"igammac_cpu\" not implemented for 'Bool'"):
        S.gammaincc(graphc.ones(2, dtype=graphc.bool), graphc.ones(2, dtype=graphc.bool))
    with pytest.raises(NotImplementedError, match="\"i1e_cpu\" not implemented for 'ComplexFloat'"):
        S.i1e(graphc.ones(2, dtype=graphc.complex64))
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        graphc.arange(3).i0_()


def test_torch_and_tensor_names():
    x = graphc.tensor([0.5, 1.5, 3.0])
    np.testing.assert_array_equal(graphc.i0(x).numpy(), S.i0(x).numpy())
    np.testing.assert_array_equal(x.i0().numpy(), S.modified_bessel_i0(x).numpy())
    a = graphc.tensor([1.0, 2.0, 0.5])
    np.testing.assert_array_equal(a.igamma(x).numpy(), S.gammainc(a, x).numpy())
    np.testing.assert_array_equal(graphc.igammac(a, x).numpy(), S.gammaincc(a, x).numpy())
    np.testing.assert_allclose((a.igamma(x) + a.igammac(x)).numpy(), 1.0, rtol=1e-6)
    y = x.clone()
    assert y.i0_() is y and np.array_equal(y.numpy(), graphc.i0(x).numpy())
    b = a.clone()
    b.igamma_(x)
    np.testing.assert_array_equal(b.numpy(), S.gammainc(a, x).numpy())
    b = a.clone()
    b.igammac_(x)
    np.testing.assert_array_equal(b.numpy(), S.gammaincc(a, x).numpy())
    out = graphc.empty(3)
    assert S.log_ndtr(x, out=out) is out and np.array_equal(out.numpy(), S.log_ndtr(x).numpy())
    z = graphc.tensor([0.5, 1.5, 3.0])
    graphc.i0_(z)
    np.testing.assert_array_equal(z.numpy(), graphc.i0(x).numpy())


@pytest.mark.parametrize("name", UNARY)
def test_which_results_carry_a_gradient(name):
    x = graphc.tensor([0.5, 1.5], requires_grad=True)
    y = getattr(S, name)(x)
    assert y.requires_grad is (name in DIFFERENTIABLE)
    if name not in DIFFERENTIABLE:  # PyTorch: no derivative, the result is a constant
        with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
            y.sum().backward()


def test_grad_fn_names_are_pytorchs():
    x = graphc.tensor([0.5, 1.5], requires_grad=True)
    names = {n: type(getattr(S, n)(x).grad_fn).__name__ for n in ("i0", "i0e", "i1", "i1e", "erfcx", "log_ndtr")}
    assert names == {"i0": "I0Backward0", "i0e": "SpecialI0EBackward0", "i1": "SpecialI1Backward0",
                     "i1e": "SpecialI1EBackward0", "erfcx": "SpecialErfcxBackward0",
                     "log_ndtr": "SpecialLogNdtrBackward0"}
    a = graphc.tensor([2.0, 3.0], requires_grad=True)
    assert [type(f(a, x).grad_fn).__name__ for f in (S.gammainc, S.gammaincc, S.zeta)] == [
        "IgammaBackward0", "IgammacBackward0", "SpecialZetaBackward0"]


@pytest.mark.parametrize("name, what", [("gammainc", "igamma: input"), ("gammaincc", "igammac: input"),
                                        ("zeta", "zeta")])
def test_no_derivative_in_the_first_operand(name, what):
    fn = getattr(S, name)
    a = graphc.tensor([2.5, 3.0], requires_grad=True)
    x = graphc.tensor([0.5, 1.5], requires_grad=True)
    message = f"the derivative for '{what}' is not implemented."
    with pytest.raises(NotImplementedError, match=message):
        fn(a, x).sum().backward()
    assert x.grad is None  # raised before any gradient was accumulated
    # through another op to the leaf, too
    with pytest.raises(NotImplementedError, match=message):
        fn(a * 2, x).sum().backward()
    # a gradient nobody asks for is never computed (PyTorch does the same)
    (gx,) = graphc.autograd.grad(fn(a * 2, x).sum(), x)
    (want,) = graphc.autograd.grad(fn(a.detach() * 2, x).sum(), x)
    np.testing.assert_array_equal(gx.numpy(), want.numpy())
    # compiled: the autodiff pass meets the missing derivative when the operand's gradient is wanted
    compiled = graphc.compile(lambda a, x: fn(a, x).sum())
    with pytest.raises(NotImplementedError, match=message):
        compiled(a, x).backward()
    x.grad = None
    compiled(a.detach(), x).backward()
    (want,) = graphc.autograd.grad(fn(a.detach(), x).sum(), x)
    np.testing.assert_allclose(x.grad.numpy(), want.numpy(), rtol=1e-6)


def test_gradients_match_pytorch():
    torch = _torch()
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-4, 4, 7), [0.0]])
    for name in sorted(DIFFERENTIABLE):
        t = torch.tensor(x, requires_grad=True)
        getattr(torch.special, name)(t).sum().backward()
        g = graphc.tensor(x, requires_grad=True)
        getattr(S, name)(g).sum().backward()
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    a, q = rng.uniform(0.5, 4, 6), rng.uniform(0.1, 5, 6)
    for name in BINARY:
        t = torch.tensor(q, requires_grad=True)
        getattr(torch.special, name)(torch.tensor(a + (1 if name == "zeta" else 0)), t).sum().backward()
        g = graphc.tensor(q, requires_grad=True)
        getattr(S, name)(graphc.tensor(a + (1 if name == "zeta" else 0)), g).sum().backward()
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("backend", ["numpy", "triton"])
def test_compiled_matches_eager(backend):
    if backend == "triton":
        pytest.importorskip("triton")
    x = graphc.tensor(np.array([0.0, 0.3, -1.2, 2.5, 9.0, np.inf, np.nan], np.float32))
    a = graphc.tensor(np.array([0.5, 1.0, 2.0, 2.5, 3.0, 1.5, 4.0], np.float32))

    def f(x, a):
        outs = [getattr(S, n)(x) for n in UNARY]
        return outs + [S.gammainc(a, x.abs()), S.gammaincc(a, x.abs()), S.zeta(a + 1, x.abs() + 1)]

    want = f(x, a)
    got = graphc.compile(f, backend=backend)(x, a)
    for n, g, w in zip(UNARY + BINARY, got, want):
        assert g.dtype is w.dtype
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, equal_nan=True, err_msg=n)


def test_vmap_of_grad_per_sample():
    # per-sample gradients through the special functions: vmap(grad(f)) equals a loop
    xs = graphc.tensor(np.linspace(-2.0, 2.0, 6).reshape(3, 2))

    def f(x):
        return (S.i1e(x) * S.log_ndtr(x) + S.i0(x) + S.gammaincc(graphc.tensor(2.0), x.abs() + 0.1)).sum()

    got = graphc.func.vmap(graphc.func.grad(f))(xs)
    want = graphc.stack([graphc.func.grad(f)(x) for x in xs])
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_a_device_library_without_airy_says_so():
    # cupyx.scipy.special has every function here but Airy's: a device array gets a clear error
    import types

    from graphc.ir import array_module
    from graphc.ir import prims as P

    class DeviceArray(np.ndarray):
        pass

    lib = types.SimpleNamespace(__name__="cupyx.scipy.special")
    array_module.register(DeviceArray, np, lambda: lib)
    try:
        with pytest.raises(NotImplementedError, match="airy_ai: cupyx.scipy.special has no Airy function"):
            P.airy_ai.impl(np.ones(2).view(DeviceArray))
    finally:
        del array_module._REGISTERED[DeviceArray]
