"""``torch.cuda.amp`` and ``torch.cpu.amp``: the deprecated spellings of ``torch.amp``'s
``autocast`` and ``GradScaler`` with the device fixed, warning as PyTorch does."""
from __future__ import annotations

import sys
import types
import warnings

from graphc.ir import dtypes as dt

from . import autocast_mode
from .autocast_mode import autocast, custom_bwd, custom_fwd
from .grad_scaler import GradScaler


def _deprecated(old: str, device: str) -> None:
    warnings.warn(f"`torch.{device}.amp.{old}(args...)` is deprecated. Please use "
                  f"`torch.amp.{old}('{device}', args...)` instead.", FutureWarning, stacklevel=3)


def _legacy_custom_fwd(fwd=None, *, cast_inputs=None):
    warnings.warn("`torch.cuda.amp.custom_fwd(args...)` is deprecated. Please use "
                  "`torch.amp.custom_fwd(args..., device_type='cuda')` instead.", FutureWarning, stacklevel=2)
    return custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def _legacy_custom_bwd(bwd=None):
    warnings.warn("`torch.cuda.amp.custom_bwd(args...)` is deprecated. Please use "
                  "`torch.amp.custom_bwd(args..., device_type='cuda')` instead.", FutureWarning, stacklevel=2)
    return custom_bwd(bwd, device_type="cuda")


def _module(device: str, default_dtype) -> types.ModuleType:
    class Autocast(autocast):
        def __init__(self, enabled: bool = True, dtype=default_dtype, cache_enabled: bool = True) -> None:
            _deprecated("autocast", device)
            super().__init__(device, dtype, enabled, cache_enabled)

    class Scaler(GradScaler):
        def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                     growth_interval: int = 2000, enabled: bool = True) -> None:
            _deprecated("GradScaler", device)
            super().__init__(device, init_scale, growth_factor, backoff_factor, growth_interval, enabled)

    Autocast.__name__ = Autocast.__qualname__ = "autocast"
    Scaler.__name__ = Scaler.__qualname__ = "GradScaler"
    mod = types.ModuleType(f"graphc.{device}.amp")
    mod.autocast, mod.GradScaler = Autocast, Scaler
    if device == "cuda":
        mod.custom_fwd, mod.custom_bwd = _legacy_custom_fwd, _legacy_custom_bwd
    sys.modules[mod.__name__] = mod
    return mod


cuda_amp = _module("cuda", dt.float16)
cpu_amp = _module("cpu", dt.bfloat16)


# ---- the per-device state functions PyTorch deprecated for the device_type-taking ones ----------

def _deprecated_fn(old: str, new: str) -> None:
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.", DeprecationWarning, stacklevel=3)


def is_autocast_cpu_enabled() -> bool:
    _deprecated_fn("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return autocast_mode.is_autocast_enabled("cpu")


def get_autocast_cpu_dtype():
    _deprecated_fn("get_autocast_cpu_dtype()", "get_autocast_dtype('cpu')")
    return autocast_mode.get_autocast_dtype("cpu")


def get_autocast_gpu_dtype():
    _deprecated_fn("get_autocast_gpu_dtype()", "get_autocast_dtype('cuda')")
    return autocast_mode.get_autocast_dtype("cuda")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    _deprecated_fn("set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)")
    autocast_mode.set_autocast_enabled("cpu", enabled)


def set_autocast_cpu_dtype(dtype) -> None:
    _deprecated_fn("set_autocast_cpu_dtype(dtype)", "set_autocast_dtype('cpu', dtype)")
    autocast_mode.set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype) -> None:
    _deprecated_fn("set_autocast_gpu_dtype(dtype)", "set_autocast_dtype('cuda', dtype)")
    autocast_mode.set_autocast_dtype("cuda", dtype)
