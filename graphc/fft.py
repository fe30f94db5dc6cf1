"""graphc.fft: PyTorch's torch.fft on numpy's pocketfft (``numpy.fft``; CuPy's cuFFT on cuda).

Every transform is one of three primitives (``ir/complex_prims.py``: ``fft_c2c``, ``fft_r2c``,
``fft_c2r``, PyTorch's own internal split), so all of them are differentiable (their VJPs are the
adjoint transforms, ``passes/autodiff/complex_rules.py``) and compile with the numpy backend.
Here is PyTorch's argument handling: ``n``/``s`` slice or zero-pad the input, ``dim`` picks the
dimensions, ``norm`` (None or "backward": the inverse scales by 1/n; "forward": the forward
does; "ortho": both by 1/sqrt(n)) becomes a scaling mode. Results have the input's precision:
float32 and complex64 give complex64 (numpy would give complex128), integers are taken as the
default float. The sample frequencies and the shifts are here too, the shifts differentiable
(they are rolls).
"""
from __future__ import annotations

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.shapes import wrap_dim

from . import creation, math_ops, shape_ops
from .tensors import Tensor

__all__ = ["Tensor", "fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn",
           "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq", "fftshift", "ifftshift",
           "rfftfreq"]

_NO_SCALING, _BY_ROOT_N, _BY_N = 0, 1, 2


def _norm_mode(norm: str | None, forward: bool) -> int:
    """PyTorch's norm_from_string: the scaling of a transform in the given direction."""
    if norm is None or norm == "backward":
        return _NO_SCALING if forward else _BY_N
    if norm == "forward":
        return _BY_N if forward else _NO_SCALING
    if norm == "ortho":
        return _BY_ROOT_N
    raise ValueError(f'Invalid normalization mode: "{norm}"')


def _promote(name: str, x: Tensor, require_complex: bool) -> Tensor:
    """The input as the transform takes it: integers as the default float, and a complex type
    where the transform needs one."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    d = x.dtype
    if not d.is_inexact:
        d = dt.get_default_dtype()
    if d.is_low_precision:
        raise RuntimeError(f"Unsupported dtype {d.scalar_name}")
    if require_complex:
        d = d.to_complex()
    return x if d is x.dtype else P.cast(x, dtype=d)


def _resize(x: Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]) -> Tensor:
    """Slice or zero-pad each of ``dims`` to its size in ``sizes`` (PyTorch's resize_fft_input)."""
    shape = tuple(x.shape)
    if all(shape[d] == n for d, n in zip(dims, sizes)):
        return x
    index = tuple((0, min(s, sizes[dims.index(d)]) if d in dims else s, 1) for d, s in enumerate(shape))
    if any(r[1] != s for r, s in zip(index, shape)):
        x = P.slice(x, index=index)
    pads = tuple((0, max(0, sizes[dims.index(d)] - s) if d in dims else 0) for d, s in enumerate(x.shape))
    return P.pad(x, pads=pads, value=0.0) if any(hi for _, hi in pads) else x


def _check_n(n: int) -> int:
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")
    return n


def _one_dim(x: Tensor, n: int | None, dim: int) -> tuple[int, int | None]:
    if x.dim() == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions")
    return wrap_dim(dim, x.dim()), (None if n is None else _check_n(n))


def _dims_and_sizes(x: Tensor, s, dim) -> tuple[tuple[int, ...], list[int | None]]:
    """PyTorch's canonicalize_fft_shape_and_dim_args: the transformed dims (in the caller's order)
    and a size per dim (None: as the input has it)."""
    if isinstance(dim, int):
        dim = (dim,)
    if s is not None and dim is not None and len(s) != len(dim):
        raise RuntimeError("When given, dim and shape arguments must have the same length")
    if dim is not None:
        dims = tuple(wrap_dim(d, x.dim()) for d in dim)
        if len(set(dims)) != len(dims):
            raise RuntimeError("FFT dims must be unique")
    elif s is not None:
        if len(s) > x.dim():
            raise RuntimeError(f"Got shape with {len(s)} values but input tensor only has {x.dim()} dimensions.")
        dims = tuple(range(x.dim() - len(s), x.dim()))
    else:
        dims = tuple(range(x.dim()))
    sizes = [None] * len(dims) if s is None else [None if n == -1 else _check_n(n) for n in s]
    return dims, sizes


def _c2c(name: str, input, s, dim, norm, forward: bool, out, one_dim: bool = False) -> Tensor:
    x = _promote(name, input, True)
    if one_dim:
        d, n = _one_dim(x, s, dim)
        dims, sizes = (d,), [n]
    else:
        dims, sizes = _dims_and_sizes(x, s, dim)
    x = _resize(x, dims, tuple(x.shape[d] if n is None else n for d, n in zip(dims, sizes)))
    if dims:
        x = P.fft_c2c(x, dims=tuple(sorted(dims)), norm=_norm_mode(norm, forward), forward=forward)
    return math_ops.write_out(out, x)


def _r2c(name: str, input, s, dim, norm, forward: bool, out, one_dim: bool = False) -> Tensor:
    """rfft (forward) and ihfft (not forward: the conjugate of the inverse-scaled rfft), over
    the last of ``dims`` onesided, then c2c over the others."""
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise RuntimeError(f"{name} expects a real input tensor, but got {input.dtype.scalar_name}")
    x = _promote(name, input, False)
    if one_dim:
        d, n = _one_dim(x, s, dim)
        dims, sizes = (d,), [n]
    else:
        dims, sizes = _dims_and_sizes(x, s, dim)
        if not dims:
            raise RuntimeError(f"{name} must transform at least one axis")
    x = _resize(x, dims, tuple(x.shape[d] if n is None else n for d, n in zip(dims, sizes)))
    mode = _norm_mode(norm, forward)
    x = P.fft_r2c(x, dims=(dims[-1],), norm=mode, onesided=True)
    if not forward:
        x = P.conj(x)
    if len(dims) > 1:
        x = P.fft_c2c(x, dims=tuple(sorted(dims[:-1])), norm=mode, forward=forward)
    return math_ops.write_out(out, x)


def _c2r(name: str, input, s, dim, norm, forward: bool, out, one_dim: bool = False) -> Tensor:
    """irfft (not forward) and hfft (forward: the c2r of the conjugate, forward-scaled): c2c over
    all but the last of ``dims``, then c2r over the last, to ``n`` (default 2 (m - 1)) outputs."""
    x = _promote(name, input, True)
    if one_dim:
        d, n = _one_dim(x, s, dim)
        dims, sizes = (d,), [n]
    else:
        dims, sizes = _dims_and_sizes(x, s, dim)
        if not dims:
            raise RuntimeError(f"{name} must transform at least one axis")
    last = dims[-1]
    n = sizes[-1] if sizes[-1] is not None else _check_n(2 * (x.shape[last] - 1))
    x = _resize(x, dims, tuple(x.shape[d] if m is None else m for d, m in zip(dims[:-1], sizes[:-1]))
                + (n // 2 + 1,))
    mode = _norm_mode(norm, forward)
    if len(dims) > 1:
        x = P.fft_c2c(x, dims=tuple(sorted(dims[:-1])), norm=mode, forward=forward)
    if forward:
        x = P.conj(x)
    return math_ops.write_out(out, P.fft_c2r(x, dims=(last,), norm=mode, last_dim_size=n))


def fft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The 1-d discrete Fourier transform of ``input`` along ``dim`` (n points: sliced or zero-padded)."""
    return _c2c("fft", input, n, dim, norm, True, out, one_dim=True)


def ifft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The 1-d inverse discrete Fourier transform."""
    return _c2c("ifft", input, n, dim, norm, False, out, one_dim=True)


def fft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None, *, out=None) -> Tensor:
    return _c2c("fft2", input, s, dim, norm, True, out)


def ifft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None, *, out=None) -> Tensor:
    return _c2c("ifft2", input, s, dim, norm, False, out)


def fftn(input: Tensor, s=None, dim=None, norm: str | None = None, *, out=None) -> Tensor:
    """The n-d discrete Fourier transform over ``dim`` (all dims, or the last len(s))."""
    return _c2c("fftn", input, s, dim, norm, True, out)


def ifftn(input: Tensor, s=None, dim=None, norm: str | None = None, *, out=None) -> Tensor:
    return _c2c("ifftn", input, s, dim, norm, False, out)


def rfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The FFT of a real signal: its n // 2 + 1 non-negative frequencies (Hermitian symmetry gives the rest)."""
    return _r2c("rfft", input, n, dim, norm, True, out, one_dim=True)


def irfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The inverse of rfft: ``n`` real outputs (default 2 (m - 1)) from the onesided half."""
    return _c2r("irfft", input, n, dim, norm, False, out, one_dim=True)


def rfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None, *, out=None) -> Tensor:
    return _r2c("rfft2", input, s, dim, norm, True, out)


def irfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None, *, out=None) -> Tensor:
    return _c2r("irfft2", input, s, dim, norm, False, out)


def rfftn(input: Tensor, s=None, dim=None, norm: str | None = None, *, out=None) -> Tensor:
    return _r2c("rfftn", input, s, dim, norm, True, out)


def irfftn(input: Tensor, s=None, dim=None, norm: str | None = None, *, out=None) -> Tensor:
    return _c2r("irfftn", input, s, dim, norm, False, out)


def hfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The FFT of a Hermitian-symmetric signal given by its onesided half: ``n`` real outputs."""
    return _c2r("hfft", input, n, dim, norm, True, out, one_dim=True)


def ihfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The inverse of hfft: the onesided half of the inverse FFT of a real signal."""
    return _r2c("ihfft", input, n, dim, norm, False, out, one_dim=True)


def hfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None, *, out=None) -> Tensor:
    return _c2r("hfft2", input, s, dim, norm, True, out)


def ihfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None, *, out=None) -> Tensor:
    return _r2c("ihfft2", input, s, dim, norm, False, out)


def hfftn(input: Tensor, s=None, dim=None, norm: str | None = None, *, out=None) -> Tensor:
    return _c2r("hfftn", input, s, dim, norm, True, out)


def ihfftn(input: Tensor, s=None, dim=None, norm: str | None = None, *, out=None) -> Tensor:
    return _r2c("ihfftn", input, s, dim, norm, False, out)


def _freq(values: list, n: int, d: float, dtype, device, requires_grad: bool, out) -> Tensor:
    result = creation.tensor(values, dtype=dtype, device=device) / (d * n) if n else creation.empty(0, dtype=dtype,
                                                                                                  device=device)
    return math_ops.write_out(out, result.requires_grad_(requires_grad) if requires_grad else result)


def fftfreq(n: int, d: float = 1.0, *, out=None, dtype=None, layout=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """The sample frequencies of an n-point FFT: [0, 1, ..., ceil(n/2) - 1, -floor(n/2), ..., -1] / (d n)."""
    values = [float(i) for i in range((n + 1) // 2)] + [float(i) for i in range(-(n // 2), 0)]
    return _freq(values, n, d, dtype, device, requires_grad, out)


def rfftfreq(n: int, d: float = 1.0, *, out=None, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """The sample frequencies of an n-point rfft: [0, 1, ..., n // 2] / (d n)."""
    return _freq([float(i) for i in range(n // 2 + 1)], n, d, dtype, device, requires_grad, out)


def _dims(input: Tensor, dim) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(input.dim()))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def fftshift(input: Tensor, dim=None) -> Tensor:
    """Move the zero frequency to the centre: a roll by n // 2 along each dimension in ``dim``."""
    dims = _dims(input, dim)
    return shape_ops.roll(input, [input.shape[d] // 2 for d in dims], dims) if dims else input.clone()


def ifftshift(input: Tensor, dim=None) -> Tensor:
    """The inverse of fftshift: a roll by -(n // 2)."""
    dims = _dims(input, dim)
    return shape_ops.roll(input, [-(input.shape[d] // 2) for d in dims], dims) if dims else input.clone()
