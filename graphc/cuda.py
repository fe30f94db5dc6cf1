"""graphc.cuda: eager tensors live on the CPU, so no CUDA device is ever available to them.

The Triton backend of the compiler targets GPUs separately; these helpers answer for eager
tensors, which is what code like ``'cuda' if graphc.cuda.is_available() else 'cpu'`` asks.
"""
from __future__ import annotations

from .device import DeviceUnavailableError


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def _no_device(*args, **kwargs):
    raise DeviceUnavailableError(
        "graphc found no CUDA device (graphc.cuda.is_available() is False); use device='cpu'.")


current_device = get_device_name = get_device_properties = set_device = _no_device


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Accepted and ignored, as PyTorch does when CUDA is absent."""


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    """Nothing runs asynchronously on the CPU."""


def empty_cache() -> None:
    """No device memory to release."""
