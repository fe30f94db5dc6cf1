"""graphc.cpu: PyTorch's ``torch.cpu`` queries (the CPU is always there) and ``torch.cpu.amp``."""
from __future__ import annotations

from .amp.legacy import cpu_amp as amp  # noqa: F401

__all__ = ["amp", "current_device", "device_count", "is_available", "synchronize"]


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def current_device() -> str:
    return "cpu"


def synchronize(device=None) -> None:
    """CPU ops finish before they return: nothing to wait for."""

