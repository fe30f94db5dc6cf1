"""graphc.accelerator: PyTorch's device-agnostic helpers; the accelerator is CUDA when it is available."""
from __future__ import annotations

from . import cuda
from .device import DeviceUnavailableError, device


def is_available() -> bool:
    return cuda.is_available()


def device_count() -> int:
    return cuda.device_count()


def current_accelerator(check_available: bool = False) -> device | None:
    """``device(type='cuda')`` when a GPU is usable, else None."""
    return device("cuda") if cuda.is_available() else None


def current_device_index() -> int:
    if not cuda.is_available():
        raise DeviceUnavailableError("graphc found no accelerator (graphc.accelerator.is_available() is False)")
    return cuda.current_device()


current_device_idx = current_device_index


def set_device_index(index) -> None:
    cuda.set_device(index)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    """Wait for the accelerator's queued work (nothing to wait for on the CPU)."""
    if cuda.is_available():
        cuda.synchronize(device)
