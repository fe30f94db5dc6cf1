"""Fractional max pooling (Graham, 2014), as ``torch.nn.functional.fractional_max_pool2d/3d``:
windows of a fixed size start at pseudo-random positions, so the output size need not divide
the input size. The window starts come from one uniform sample per (batch, channel, dimension),
by ATen's formula, so the same ``_random_samples`` pick the same windows as PyTorch.

The starts are computed on the host; the values are then a ``gather`` of the input and a ``max``
over each window, so autograd gives the gradient (to each window's first maximum) unchanged."""
from __future__ import annotations

import numpy as np

from .. import creation
from ..dispatch import current as _dispatch
from ..tensors import Tensor, device_tensor, host_array

_DIM_NAMES = ("time", "height", "width")


def _starts(sample: np.ndarray, in_size: int, out_size: int, pool: int) -> np.ndarray:
    """ATen's ``generate_intervals``: window starts (..., out_size) for samples u in [0, 1):
    ``int((i + u) * alpha) - int(u * alpha)`` with ``alpha = (in - pool) / (out - 1)``, computed in
    the samples' dtype, and the last window flush with the end."""
    seq = np.empty(sample.shape + (out_size,), np.int64)
    if out_size > 1:
        f = sample.dtype.type
        alpha = f(in_size - pool) / f(out_size - 1)
        i = np.arange(out_size - 1).astype(sample.dtype)
        u = sample[..., None]
        seq[..., :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    if out_size > 0:
        seq[..., -1] = in_size - pool
    return seq


def _fractional_max_pool(input: Tensor, kernel_size, output_size, output_ratio, return_indices: bool,
                         samples: Tensor | None, nsp: int):
    name = f"fractional_max_pool{nsp}d"
    if output_size is None and output_ratio is None:
        raise ValueError(f"{name} requires specifying either an output_size or an output_ratio")
    if input.dim() not in (nsp + 1, nsp + 2):
        raise RuntimeError(f"{name}(): Expected {nsp + 1}D or {nsp + 2}D tensor, but got: {list(input.shape)}")
    sizes = tuple(input.shape[-nsp:])
    if output_size is None:
        ratio = tuple(output_ratio) if isinstance(output_ratio, (list, tuple)) else (output_ratio,) * nsp
        if len(ratio) == 1:
            ratio = ratio * nsp
        if len(ratio) != nsp:
            raise ValueError(f"{name} requires output_ratio to either be a single Int or tuple of Ints.")
        output_size = tuple(int(s * r) for s, r in zip(sizes, ratio))
    out = tuple(output_size) if isinstance(output_size, (list, tuple)) else (output_size,) * nsp
    k = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (kernel_size,) * nsp
    if len(out) == 1:
        out = out * nsp
    if len(k) == 1:
        k = k * nsp
    names = _DIM_NAMES[3 - nsp:]
    for d in range(nsp):
        if out[d] + k[d] - 1 > sizes[d]:
            raise RuntimeError(f"{name}(){'_out' * (nsp == 3)}: pool {names[d]} {k[d]} too large relative to input "
                               f"{names[d]} {sizes[d]}")
    unbatched = input.dim() == nsp + 1
    x = input.unsqueeze(0) if unbatched else input
    n, c = x.shape[0], x.shape[1]
    if samples is None:
        samples = creation.rand(n, c, nsp, dtype=input.dtype, device=input.device)
    if samples.dim() != 3 or samples.shape[2] != nsp:
        raise RuntimeError(f"Expect _random_samples.size(2) equals to {nsp}; got {samples.shape[-1]}.")
    # the window starts are computed on the host: under graphc.compile, samples held by the module
    # (a buffer that may change) break the graph rather than being baked in
    _dispatch().reading_values(samples, f"{name}'s window starts")
    u = host_array(samples.detach()._data)[:n, :c]
    # ATen's sample order: 2-d (width, height); 3-d (time, height, width)
    order = (1, 0) if nsp == 2 else (0, 1, 2)
    idx = np.zeros((n, c) + out + k, np.int64)
    for d in range(nsp):
        start = _starts(u[..., order[d]], sizes[d], out[d], k[d])  # (n, c, out[d])
        pos = start.reshape((n, c) + tuple(out[d] if e == d else 1 for e in range(nsp)) + (1,) * nsp)
        pos = pos + np.arange(k[d]).reshape((1,) * (2 + nsp) + tuple(k[d] if e == d else 1 for e in range(nsp)))
        idx = idx * sizes[d] + pos
    window = int(np.prod(k))
    flat_idx = idx.reshape(n, c, -1)
    vals = x.flatten(2).gather(2, device_tensor(flat_idx, x)).reshape(n, c, *out, window)
    y, arg = vals.max(dim=-1)
    if unbatched:
        y = y.squeeze(0)
    if not return_indices:
        return y
    chosen = np.take_along_axis(idx.reshape(n, c, *out, window), host_array(arg._data)[..., None], -1)[..., 0]
    return y, device_tensor(chosen[0] if unbatched else chosen, x)


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples: Tensor | None = None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, True, _random_samples, 2)


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples: Tensor | None = None):
    """Max over ``kernel_size`` windows at pseudo-random starts, to ``output_size`` (or
    ``output_ratio`` of the input's size); ``(output, indices)`` with ``return_indices``."""
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 2)


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples: Tensor | None = None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, True, _random_samples, 3)


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples: Tensor | None = None):
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 3)
