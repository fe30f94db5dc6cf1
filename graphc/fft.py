"""graphc.fft: the parts of torch.fft that stay real. graphc has no complex dtype, so the
transforms themselves (fft, rfft, irfft, hfft ... each takes or returns complex tensors) are not
offered (see tests/data/api_excluded.txt); the sample frequencies and the shifts are, the shifts
differentiable (they are rolls)."""
from __future__ import annotations

from . import creation, math_ops, shape_ops
from .tensors import Tensor

__all__ = ["Tensor", "fftfreq", "fftshift", "ifftshift", "rfftfreq"]


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
