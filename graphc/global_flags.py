"""Process-wide switches PyTorch exposes (float32 matmul precision, deterministic debug mode,
warn-always, anomaly mode) and type queries (typename, is_complex, is_storage...). graphc records
the switches; what each changes in graphc is said where it is set."""
from __future__ import annotations

from . import compat_extras
from .tensors import Tensor

__all__ = ["typename", "is_complex", "is_inference", "is_storage", "is_vulkan_available", "get_device",
           "set_float32_matmul_precision", "get_float32_matmul_precision", "set_deterministic_debug_mode",
           "get_deterministic_debug_mode", "set_warn_always", "is_warn_always_enabled", "set_anomaly_enabled",
           "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]


def typename(obj) -> str:
    if isinstance(obj, Tensor):
        return obj.type()
    module = type(obj).__module__
    return (module + "." if module not in (None, "builtins") else "") + type(obj).__qualname__


def is_complex(input) -> bool:
    return input.dtype.is_complex


def is_inference(input) -> bool:
    return input.is_inference()


def is_storage(obj) -> bool:
    return False  # graphc tensors own arrays, not Storage objects


def is_vulkan_available() -> bool:
    return False


def get_device(input) -> int:
    return input.get_device()


_settings = {"matmul_precision": "highest", "warn_always": False}


def set_float32_matmul_precision(precision: str) -> None:
    """Recorded only: graphc's float32 matmuls are always full precision ("highest")."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision: {precision}, expected one of highest, high, medium")
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def set_deterministic_debug_mode(debug_mode) -> None:
    modes = {"default": 0, "warn": 1, "error": 2}
    mode = modes[debug_mode] if isinstance(debug_mode, str) else int(debug_mode)
    compat_extras.use_deterministic_algorithms(mode > 0, warn_only=mode == 1)


def get_deterministic_debug_mode() -> int:
    """0, 1 (warn) or 2 (error), read from the one deterministic-algorithms setting."""
    if not compat_extras.are_deterministic_algorithms_enabled():
        return 0
    return 1 if compat_extras.is_deterministic_algorithms_warn_only_enabled() else 2


def set_warn_always(b: bool) -> None:
    _settings["warn_always"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _settings["warn_always"]


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    compat_extras._anomaly.update(enabled=bool(enabled), check_nan=check_nan)


is_anomaly_enabled = compat_extras.is_anomaly_enabled
is_anomaly_check_nan_enabled = compat_extras.is_anomaly_check_nan_enabled
