"""torch.stft and torch.istft, the short-time Fourier transform and its inverse, on graphc.fft.

Written as PyTorch writes them (``aten/src/ATen/native/SpectralOps.cpp``) with graphc's own ops:
frames are a strided view (``unfold``), each windowed frame goes through one FFT primitive, and
the inverse overlap-adds the frames with ``fold`` (col2im) and divides by the overlap-added
squared window. So both are differentiable and compile like any other composition.
"""
from __future__ import annotations

import warnings

from graphc.ir import prims as P

from . import creation, fft, math_ops
from .nn import functional as F
from .tensors import Tensor

__all__ = ["stft", "istft"]


# PyTorch's warnings when no window is given
_NO_WINDOW = {
    "stft": "A window was not provided. A rectangular window will be applied,which is known to cause spectral "
            "leakage. Other windows such as torch.hann_window or torch.hamming_window are recommended to reduce "
            "spectral leakage.To suppress this warning and use a rectangular window, explicitly set "
            "`window=torch.ones(n_fft, device=<device>)`.",
    "istft": "A window was not provided. A rectangular window will be applied.Please provide the same window used "
             "by stft to make the inversion lossless.To suppress this warning and use a rectangular window, "
             "explicitly set `window=torch.ones(n_fft, device=<device>)`.",
}


def _window(window: Tensor | None, win_length: int, n_fft: int, like: Tensor, name: str) -> Tensor:
    """The window (ones by default) zero-padded on both sides to ``n_fft``, as PyTorch centres it."""
    if window is None:
        warnings.warn(_NO_WINDOW[name])
        window = creation.ones(win_length, dtype=like.dtype.to_real(), device=like.device)
    elif window.dim() != 1 or window.shape[0] != win_length:
        raise RuntimeError(f"{name}: expected a 1D window tensor of size equal to win_length={win_length}, "
                           f"but got window with size {list(window.shape)}")
    if win_length < n_fft:
        left = (n_fft - win_length) // 2
        window = F.pad(window, (left, n_fft - win_length - left))
    return window


def _lengths(name: str, n_fft: int, hop_length, win_length) -> tuple[int, int]:
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if hop <= 0:
        raise RuntimeError(f"{name}: expected hop_length > 0, but got hop_length={hop}")
    if win <= 0 or win > n_fft:
        raise RuntimeError(f"{name}: expected 0 < win_length <= n_fft, but got win_length={win}")
    return hop, win


def stft(input: Tensor, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window: Tensor | None = None, center: bool = True, pad_mode: str = "reflect", normalized: bool = False,
         onesided: bool | None = None, return_complex: bool | None = None) -> Tensor:
    """The short-time Fourier transform of a signal (L,) or a batch of signals (B, L): a complex
    tensor (B?, n_fft // 2 + 1 or n_fft, n_frames), or its (real, imag) pairs when
    ``return_complex=False``."""
    if return_complex is None:
        if not (input.dtype.is_complex or (window is not None and window.dtype.is_complex)):
            raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will "
                               "further require that return_complex=True in a future PyTorch release.")
        return_complex = True
    if not return_complex:
        warnings.warn("stft with return_complex=False is deprecated. In a future pytorch release, stft will "
                      "return complex tensors for all inputs, and return_complex=False will raise an error.")
    if input.dim() not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, but got {input.dim()}D tensor")
    hop, win = _lengths("stft", n_fft, hop_length, win_length)
    x = input if input.dim() == 2 else input.unsqueeze(0)
    x = math_ops._to_float(x)
    if center:
        pad = n_fft // 2
        x = F.pad(x.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)
    length = x.shape[-1]
    if n_fft <= 0 or n_fft > length:
        raise RuntimeError(f"stft: expected 0 < n_fft < {length}, but got n_fft={n_fft}")
    frames = x.unfold(-1, n_fft, hop)                       # (B, n_frames, n_fft)
    frames = frames * _window(window, win, n_fft, x, "stft")
    complex_input = frames.dtype.is_complex
    if onesided is None:
        onesided = not complex_input
    elif onesided and complex_input:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    norm = "ortho" if normalized else "backward"
    out = (fft.rfft if onesided else fft.fft)(frames, dim=-1, norm=norm).transpose(1, 2)
    if input.dim() == 1:
        out = out.squeeze(0)
    return out if return_complex else P.view_as_real(out)


def istft(input: Tensor, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
          window: Tensor | None = None, center: bool = True, normalized: bool = False, onesided: bool | None = None,
          length: int | None = None, return_complex: bool = False) -> Tensor:
    """The inverse of ``stft``: overlap-adds the inverse FFTs of the windowed frames and divides
    by the overlap-added squared window (the least-squares estimate of Griffin and Lim)."""
    if not input.dtype.is_complex:
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    if input.dim() not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor with 2 or 3 dimensions of complex, but got {input.dim()}")
    hop, win = _lengths("istft", n_fft, hop_length, win_length)
    z = input if input.dim() == 3 else input.unsqueeze(0)
    n_freq, n_frames = z.shape[-2], z.shape[-1]
    if onesided is None:
        onesided = n_freq != n_fft
    if onesided and n_fft // 2 + 1 != n_freq:
        raise RuntimeError(f"istft: expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft / 2 + 1 when onesided=True, but got {n_freq}")
    if not onesided and n_freq != n_fft:
        raise RuntimeError(f"istft: expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft when onesided=False, but got {n_freq}")
    if return_complex and onesided:
        raise RuntimeError("cannot have onesided output if window or input is complex")
    norm = "ortho" if normalized else "backward"
    z = z.transpose(1, 2)                                   # (B, n_frames, n_freq)
    if return_complex:
        frames = fft.ifft(z, n=n_fft, dim=-1, norm=norm)
    else:
        if not onesided:
            z = z[..., :n_fft // 2 + 1]
        frames = fft.irfft(z, n=n_fft, dim=-1, norm=norm)
    w = _window(window, win, n_fft, frames, "istft")
    frames = frames * w
    expected = n_fft + hop * (n_frames - 1)

    def overlap_add(cols: Tensor) -> Tensor:               # (B, n_frames, n_fft) -> (B, expected)
        return F.fold(cols.transpose(1, 2), (1, expected), (1, n_fft), stride=(1, hop)).reshape(cols.shape[0], expected)

    y = overlap_add(frames)
    envelope = overlap_add((w * w).expand(1, n_frames, n_fft))
    start = n_fft // 2 if center else 0
    end = start + length if length is not None else (expected - n_fft // 2 if center else expected)
    y, envelope = y[:, start:min(end, expected)], envelope[:, start:min(end, expected)]
    if bool((envelope.abs() < 1e-11).any()):
        raise RuntimeError("istft: window overlap add min: 1 (the windows do not overlap enough to invert: "
                           "check the window, hop_length and win_length)")
    y = y / envelope
    if end > expected:
        y = F.pad(y, (0, end - expected))
    return y.squeeze(0) if input.dim() == 2 else y

