"""torch.stft / torch.istft (graphc/spectral.py): against PyTorch where it is installed, and without
it: the frames' DFTs computed directly with numpy, the inverse reconstructing the signal, gradients
against finite differences, compiled against eager, PyTorch's errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc

CONFIGS = [dict(n_fft=16), dict(n_fft=16, hop_length=5, win_length=12), dict(n_fft=15, normalized=True),
           dict(n_fft=16, center=False, hop_length=4), dict(n_fft=16, onesided=False),
           dict(n_fft=8, pad_mode="constant", hop_length=3)]
_rng = np.random.default_rng(11)


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic, as torch.hann_window


def _np_stft(x, n_fft, hop_length=None, win_length=None, center=True, pad_mode="reflect", normalized=False,
             onesided=True, window=None):
    """The textbook definition, frame by frame."""
    hop = hop_length or n_fft // 4
    win = np.ones(win_length or n_fft) if window is None else window
    left = (n_fft - len(win)) // 2
    win = np.pad(win, (left, n_fft - len(win) - left))
    if center:
        x = np.pad(x, n_fft // 2, mode=pad_mode)
    frames = [x[t:t + n_fft] * win for t in range(0, len(x) - n_fft + 1, hop)]
    k = np.arange(n_fft // 2 + 1 if onesided else n_fft)
    dft = np.exp(-2j * np.pi * np.outer(k, np.arange(n_fft)) / n_fft)
    out = np.stack([dft @ f for f in frames], axis=1)
    return out / np.sqrt(n_fft) if normalized else out


@pytest.mark.parametrize("windowed", [False, True], ids=["rect", "hann"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_stft_is_the_dft_of_windowed_frames_and_istft_inverts_it(config, windowed):
    x = _rng.normal(size=70)
    n = config.get("win_length", config["n_fft"])
    win = _hann(n) if windowed else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rectangular window's warning
        got = graphc.stft(graphc.tensor(x), window=None if win is None else graphc.tensor(win), return_complex=True,
                          **config)
        want = _np_stft(x, window=win, **{k: v for k, v in config.items() if k != "onesided"},
                        onesided=config.get("onesided", True))
        np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
        if windowed and not config.get("center", True):
            return  # a hann window is 0 at the ends: the first and last samples can't be recovered
        inv = {k: v for k, v in config.items() if k != "pad_mode"}
        back = graphc.istft(got, window=None if win is None else graphc.tensor(win), length=70, **inv)
    covered = 70  # without centring, the frames cover the samples up to the last frame's end
    if not config.get("center", True):
        n_fft, hop = config["n_fft"], config["hop_length"]
        covered = n_fft + hop * ((70 - n_fft) // hop)
        assert not back.numpy()[covered:].any()  # zeros beyond, as PyTorch pads to ``length``
    np.testing.assert_allclose(back.numpy()[:covered], x[:covered], atol=1e-10)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_matches_pytorch(config):
    torch = pytest.importorskip("torch")
    x = _rng.normal(size=(3, 61))
    n = config.get("win_length", config["n_fft"])
    tw = torch.hann_window(n, dtype=torch.float64)
    want = torch.stft(torch.tensor(x), window=tw, return_complex=True, **config)
    got = graphc.stft(graphc.tensor(x), window=graphc.tensor(tw.numpy()), return_complex=True, **config)
    assert tuple(got.shape) == tuple(want.shape) and got.dtype is graphc.complex128
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)
    inv = {k: v for k, v in config.items() if k != "pad_mode"}
    if config.get("center", True):
        np.testing.assert_allclose(
            graphc.istft(got, window=graphc.tensor(tw.numpy()), length=61, **inv).numpy(),
            torch.istft(want, window=tw, length=61, **inv).numpy(), atol=1e-12)
    # float32 in, complex64 out; the deprecated real pairs
    x32 = x.astype(np.float32)
    with pytest.warns(UserWarning, match="return_complex=False is deprecated"):
        pairs = graphc.tensor(x32).stft(config["n_fft"], window=graphc.tensor(tw.numpy().astype(np.float32)),
                                        return_complex=False, **{k: v for k, v in config.items() if k != "n_fft"})
    want32 = torch.stft(torch.tensor(x32), window=tw.float(), return_complex=True, **config)
    assert pairs.dtype is graphc.float32
    np.testing.assert_allclose(pairs.numpy(), torch.view_as_real(want32).numpy(), atol=2e-5)


def test_gradients_and_compile():
    x = graphc.tensor(_rng.normal(size=(2, 24)), requires_grad=True)
    w = graphc.tensor(_hann(8))

    def f(x):
        s = graphc.stft(x, 8, hop_length=3, window=w, return_complex=True)
        return (s.abs() ** 2).sum(1)

    assert graphc.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)
    # istft of a spectrogram given as (real, imag) pairs
    pairs = graphc.view_as_real(graphc.stft(x.detach(), 8, hop_length=2, window=w, return_complex=True))
    pairs = pairs.contiguous().requires_grad_()
    assert graphc.autograd.gradcheck(
        lambda r: graphc.istft(graphc.view_as_complex(r), 8, hop_length=2, window=w, length=24), (pairs,),
        eps=1e-6, atol=1e-5)
    compiled = graphc.compile(f, fullgraph=True)
    np.testing.assert_allclose(compiled(x).detach().numpy(), f(x).detach().numpy(), rtol=1e-10)
    (g,) = graphc.autograd.grad(compiled(x).sum(), x)
    (want,) = graphc.autograd.grad(f(x).sum(), x)
    np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-9)


def test_errors_are_pytorchs():
    x = graphc.randn(40)
    with pytest.raises(RuntimeError, match="stft requires the return_complex parameter be given for real inputs"):
        graphc.stft(x, 8)
    with pytest.warns(UserWarning, match="A window was not provided"):
        s = graphc.stft(x, 8, return_complex=True)
    with pytest.raises(RuntimeError, match="istft requires a complex-valued input tensor"):
        graphc.istft(s.real, 8, window=graphc.ones(8))
    with pytest.raises(RuntimeError, match="expected a 1D window tensor of size equal to win_length=8"):
        graphc.stft(x, 8, window=graphc.ones(5), return_complex=True)
    # a window that is 0 where frames don't overlap cannot be inverted there
    w = graphc.tensor(_hann(8))
    with pytest.raises(RuntimeError, match="window overlap add min: 1"):
        graphc.istft(graphc.stft(x, 8, hop_length=4, window=w, center=False, return_complex=True), 8,
                     hop_length=4, window=w, center=False)
