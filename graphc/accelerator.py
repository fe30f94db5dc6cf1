"""graphc.accelerator: PyTorch's device-agnostic helpers; eager graphc has no accelerator."""
from __future__ import annotations

from .device import DeviceUnavailableError


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def current_accelerator(check_available: bool = False):
    return None


def current_device_index() -> int:
    raise DeviceUnavailableError("graphc found no accelerator (graphc.accelerator.is_available() is False)")


current_device_idx = current_device_index


def synchronize(device=None) -> None:
    """Nothing runs asynchronously on the CPU."""
