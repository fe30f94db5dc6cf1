"""Complex dtypes, their autograd convention, and graphc.fft: against PyTorch's documented
behaviour (values written out here, and PyTorch itself where it is installed), numpy's FFT and
finite differences in float64/complex128."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as torch
import graphc.fft as gfft

RNG = np.random.default_rng(7)
TRANSFORMS = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn",
              "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn"]
REAL_ONLY = {"rfft", "rfft2", "rfftn", "ihfft", "ihfft2", "ihfftn"}


def _complex(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


# ---- dtypes ------------------------------------------------------------------------------------

def test_complex_dtypes_and_promotion():
    assert torch.cfloat is torch.complex64 and torch.cdouble is torch.complex128
    assert torch.complex64.is_complex and not torch.complex64.is_floating_point
    f, d, i = torch.ones(2), torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.int32)
    c = torch.ones(2, dtype=torch.complex64)
    # PyTorch 2.13's results
    assert (f + 1j).dtype is torch.complex64 and (d + 1j).dtype is torch.complex128
    assert (i + 1j).dtype is torch.complex64 and (c + d).dtype is torch.complex128
    assert (d + torch.tensor(1j)).dtype is torch.complex128
    assert (f + torch.tensor(1j, dtype=torch.complex128)).dtype is torch.complex64
    assert (c + torch.tensor(1.0, dtype=torch.float64)).dtype is torch.complex64
    assert torch.promote_types(torch.float64, torch.complex64) is torch.complex128
    assert torch.tensor([1 + 2j, 3]).dtype is torch.complex64
    assert torch.tensor(np.array([1j], dtype=np.complex128)).dtype is torch.complex128
    assert torch.is_complex(c) and c.is_complex() and not f.is_complex()
    assert c.to(torch.complex128).dtype is torch.complex128 and f.cdouble().dtype is torch.complex128


def test_printing_matches_pytorch():
    assert repr(torch.tensor([1 + 2j, 3])) == "tensor([1.+2.j, 3.+0.j])"
    assert repr(torch.tensor(1 + 2j)) == "tensor(1.+2.j)"
    assert repr(torch.tensor([1j], dtype=torch.complex128)) == "tensor([0.+1.j], dtype=graphc.complex128)"
    assert repr(torch.tensor([1.5 + 2j, -3.25 - 1e-3j])) == "tensor([ 1.5000+2.0000e+00j, -3.2500-1.0000e-03j])"


def test_parts_are_views_and_complex_builders():
    z = torch.tensor([1 + 2j, 3 - 1j])
    re, im = z.real, z.imag
    np.testing.assert_array_equal(re.numpy(), [1, 3])
    np.testing.assert_array_equal(im.numpy(), [2, -1])
    re.mul_(2)  # a view, as in PyTorch: the write shows in z
    np.testing.assert_array_equal(z.numpy(), [2 + 2j, 6 - 1j])
    v = torch.view_as_real(z)
    assert v.shape == (2, 2)
    v[0, 1] = 5.0
    assert z.numpy()[0] == 2 + 5j
    w = torch.view_as_complex(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(w.numpy(), [1 + 2j, 3 + 4j])
    np.testing.assert_allclose(torch.polar(torch.tensor([2.0]), torch.tensor([np.pi / 2])).numpy(), [2j], atol=1e-6)
    np.testing.assert_array_equal(torch.complex(torch.ones(2), torch.zeros(2)).numpy(), [1, 1])
    np.testing.assert_allclose(z.abs().numpy(), np.abs(z.numpy()))
    np.testing.assert_allclose(z.angle().numpy(), np.angle(z.numpy()), rtol=1e-6)
    np.testing.assert_array_equal(z.conj().numpy(), np.conj(z.numpy()))
    np.testing.assert_array_equal(z.conj_physical().numpy(), np.conj(z.numpy()))
    assert z.abs().dtype is torch.float32 and z.real.dtype is torch.float32


def test_complex_arithmetic_matches_numpy():
    a, b = _complex(3, 4), _complex(4, 2)
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_allclose((ta @ tb).numpy(), a @ b)
    for got, want in (((ta + 1j) * ta - ta / (ta + 2), (a + 1j) * a - a / (a + 2)), (ta.exp(), np.exp(a)),
                      (-ta, -a), (ta.sum(), a.sum()), (ta.mean(1), a.mean(1))):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_pytorch_errors_for_ops_without_complex_support():
    c = torch.ones(2, dtype=torch.complex64)
    with pytest.raises(NotImplementedError, match="\"lt_cpu\" not implemented for 'ComplexFloat'"):
        c < c
    with pytest.raises(NotImplementedError, match="not implemented for 'ComplexFloat'"):
        c.max()
    with pytest.raises(NotImplementedError, match="clamp is not supported for complex types"):
        torch.relu(c)
    with pytest.raises(NotImplementedError, match="torch.sign is not intended to support complex"):
        torch.sign(c)
    with pytest.raises(NotImplementedError, match="floor is not supported for complex inputs"):
        c.floor()
    with pytest.raises(RuntimeError, match="Tensor must have a last dimension of size 2"):
        torch.view_as_complex(torch.ones(3))
    with pytest.raises(RuntimeError, match="last dimension with stride 1"):
        torch.view_as_complex(torch.ones(2, 2).t())
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes"):
        torch.ones(2).imag
    with pytest.raises(RuntimeError, match="Expected object of scalar type Float but got scalar type Double"):
        torch.complex(torch.ones(2), torch.ones(2, dtype=torch.float64))
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        c.to(torch.float32)


# ---- autograd ----------------------------------------------------------------------------------

def test_grad_of_abs_squared_is_2z_and_complex_outputs_need_grad_output():
    z = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128, requires_grad=True)
    (z.abs() ** 2).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), 2 * z.detach().numpy())
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
        (z * 2).sum().backward()
    y = z * 2
    y.backward(torch.ones(2, dtype=torch.complex128))
    assert z.grad.dtype is torch.complex128


def _fd_complex_grad(loss, z0: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """dL/dx + i dL/dy by central differences on the real and imaginary parts."""
    g = np.zeros_like(z0)
    for idx in np.ndindex(z0.shape):
        for unit in (1.0, 1j):
            zp, zm = z0.copy(), z0.copy()
            zp[idx] += eps * unit
            zm[idx] -= eps * unit
            g[idx] += unit * (loss(zp) - loss(zm)) / (2 * eps)
    return g


def _complex_program(z, w, lib=torch):
    return (((z * w).exp() / (z + 3)).abs().sum() + (z.conj() @ w).real + z.sgn().imag.sum()
            + z.angle().sum() + lib.view_as_real(z.sin()).sum())


def test_complex_gradients_against_finite_differences():
    z0, w0 = _complex(3, 3), _complex(3, 3)
    z = torch.tensor(z0, requires_grad=True)
    _complex_program(z, torch.tensor(w0)).sum().backward()
    want = _fd_complex_grad(lambda v: _complex_program(torch.tensor(v), torch.tensor(w0)).sum().item(), z0)
    np.testing.assert_allclose(z.grad.numpy(), want, rtol=1e-5, atol=1e-6)


def test_real_leaf_through_complex_ops_gets_a_real_gradient():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.5 - 1j, 2 + 0.3j], dtype=torch.complex128)
    ((x * w).real.sum() + torch.polar(x, x).imag.sum()).backward()
    xs = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), w.numpy().real + np.sin(xs) + xs * np.cos(xs))
    assert x.grad.dtype is torch.float64


def test_complex_gradients_match_pytorch():
    pt = pytest.importorskip("torch")
    z0, w0 = _complex(3, 3), _complex(3, 3)
    z = torch.tensor(z0, requires_grad=True)
    _complex_program(z, torch.tensor(w0)).sum().backward()
    zt = pt.tensor(z0, requires_grad=True)
    _complex_program(zt, pt.tensor(w0), pt).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy(), rtol=1e-10)


# ---- graphc.fft --------------------------------------------------------------------------------

def _variants(name):
    if name[-1] in "2n":
        return [{}, {"s": (3, 5)}, {"dim": (1, 0)}, {"s": (5, 9), "dim": (0, 1)}]
    return [{}, {"n": 5}, {"dim": 0}, {"n": 9}]


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transforms_match_pytorch_and_keep_precision(name):
    pt = pytest.importorskip("torch")
    x = RNG.standard_normal((4, 6)).astype(np.float32) if name in REAL_ONLY else _complex(4, 6, dtype=np.complex64)
    for kw in _variants(name):
        for norm in (None, "backward", "ortho", "forward"):
            got = getattr(gfft, name)(torch.tensor(x), norm=norm, **kw)
            want = getattr(pt.fft, name)(pt.tensor(x), norm=norm, **kw).resolve_conj()
            assert got.dtype.name == str(want.dtype).split(".")[-1], (name, kw)
            assert tuple(got.shape) == tuple(want.shape), (name, kw)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-4, atol=2e-4, err_msg=f"{name} {kw} {norm}")


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"])
def test_one_dim_transforms_match_numpy(name):
    x = RNG.standard_normal((4, 6)).astype(np.float32) if name in REAL_ONLY else _complex(4, 6, dtype=np.complex64)
    for n in (None, 5, 9):
        for norm in (None, "ortho", "forward"):
            got = getattr(gfft, name)(torch.tensor(x), n=n, dim=0, norm=norm)
            want = getattr(np.fft, name)(x.astype(np.complex128 if x.dtype.kind == "c" else np.float64), n=n,
                                         axis=0, norm=norm)
            assert got.dtype is (torch.complex64 if np.iscomplexobj(want) else torch.float32)
            np.testing.assert_allclose(got.numpy(), want, rtol=2e-4, atol=2e-4)


def test_fft_of_real_and_integer_input_and_out():
    x = torch.arange(8)
    y = gfft.fft(x)
    assert y.dtype is torch.complex64
    np.testing.assert_allclose(y.numpy(), np.fft.fft(np.arange(8.0)), atol=1e-4)
    out = torch.empty(5, dtype=torch.complex64)
    r = gfft.rfft(x.double(), out=out)
    assert r is out
    np.testing.assert_allclose(out.numpy(), np.fft.rfft(np.arange(8.0)), atol=1e-4)
    assert gfft.fft(torch.ones(4, dtype=torch.float64)).dtype is torch.complex128


def test_fft_argument_errors():
    with pytest.raises(RuntimeError, match=r"Invalid number of data points \(0\) specified"):
        gfft.fft(torch.ones(4), n=0)
    with pytest.raises(ValueError, match='Invalid normalization mode: "bad"'):
        gfft.fft(torch.ones(4), norm="bad")
    with pytest.raises(RuntimeError, match="rfft expects a real input tensor, but got ComplexFloat"):
        gfft.rfft(torch.ones(4, dtype=torch.complex64))
    with pytest.raises(RuntimeError, match="FFT dims must be unique"):
        gfft.fftn(torch.ones(4, 4), dim=(0, 0))
    with pytest.raises(RuntimeError, match="dim and shape arguments must have the same length"):
        gfft.fftn(torch.ones(4, 4), s=(4,), dim=(0, 1))


def _fft_loss(name, kw):
    weights = {}

    def loss(t):
        y = getattr(gfft, name)(t, norm="ortho", **kw)
        w = weights.setdefault("w", torch.tensor(RNG.standard_normal(tuple(y.shape))))
        if y.dtype.is_complex:
            return (y.abs() ** 2 * w).sum() + (y.real * w).sum()
        return (y * y * w).sum()
    return loss


FD_CASES = [("fft", {}), ("ifft", {"n": 7}), ("fft2", {"s": (3, 6)}), ("rfft", {}), ("rfft", {"n": 7}),
            ("irfft", {}), ("irfft", {"n": 7}), ("hfft", {"n": 6}), ("ihfft", {}), ("rfftn", {"dim": (1, 0)}),
            ("irfftn", {"s": (4, 5)}), ("hfftn", {}), ("ihfftn", {})]


@pytest.mark.parametrize("name,kw", FD_CASES, ids=[f"{n}-{k}" for n, k in FD_CASES])
def test_fft_gradients_against_finite_differences(name, kw):
    loss = _fft_loss(name, kw)
    if name in REAL_ONLY:
        x0 = RNG.standard_normal((4, 5))
        x = torch.tensor(x0, requires_grad=True)
        loss(x).backward()
        assert torch.autograd.gradcheck(lambda t: loss(t), (torch.tensor(x0, requires_grad=True),))
        return
    z0 = _complex(4, 5)
    z = torch.tensor(z0, requires_grad=True)
    loss(z).backward()
    want = _fd_complex_grad(lambda v: loss(torch.tensor(v)).item(), z0)
    np.testing.assert_allclose(z.grad.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw", FD_CASES, ids=[f"{n}-{k}" for n, k in FD_CASES])
def test_fft_values_and_gradients_match_pytorch(name, kw):
    pt = pytest.importorskip("torch")
    x0 = RNG.standard_normal((4, 5)) if name in REAL_ONLY else _complex(4, 5)
    w0 = None
    grads = []
    for lib, fft_mod in ((torch, gfft), (pt, pt.fft)):
        x = lib.tensor(x0, requires_grad=True)
        y = getattr(fft_mod, name)(x, norm="forward", **kw)
        w0 = RNG.standard_normal(tuple(y.shape)) if w0 is None else w0
        w = lib.tensor(w0)
        ((y.abs() ** 2 * w).sum() + (y.imag * w).sum() if y.is_complex() else (y * w).sum()).backward()
        grads.append((y.detach().resolve_conj().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-9, atol=1e-12)


def test_compiled_fft_program_matches_eager_with_gradients():
    def f(x, z):
        X = gfft.rfft(x, norm="ortho")
        Z = gfft.fft2(z)
        return (gfft.irfft(X * X.conj(), n=x.shape[-1]).sum() + X.abs().sum()
                + torch.view_as_real(gfft.ifftn(Z * 2j, dim=(0,))).sum() + gfft.hfft(z, n=6).sum())

    x0, z0 = RNG.standard_normal((3, 8)), _complex(3, 4)
    results = []
    for fn in (f, torch.compile(f, fullgraph=True)):
        x, z = torch.tensor(x0, requires_grad=True), torch.tensor(z0, requires_grad=True)
        out = fn(x, z)
        out.backward()
        results.append((out.item(), x.grad.numpy(), z.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-10, atol=1e-12)


def test_triton_backend_refuses_complex_graphs_clearly():
    pytest.importorskip("triton")
    f = torch.compile(lambda x: gfft.fft(x).abs(), backend="triton", fullgraph=True)
    with pytest.raises(NotImplementedError, match="no complex types"):
        f(torch.ones(4))


def test_vmap_over_fft():
    x = torch.tensor(RNG.standard_normal((3, 4, 6)))
    got = torch.func.vmap(lambda t: gfft.rfft2(t).abs())(x)
    np.testing.assert_allclose(got.numpy(), np.abs(np.fft.rfft2(x.numpy())), rtol=1e-10)
