"""graphc.cuda.memory: the GPU memory figures, from CuPy's memory pool (graphc's caching
allocator, as PyTorch's is its own). Without CUDA the statistics are 0 (``memory_stats()`` is
empty), as in PyTorch; the calls that need a device (``mem_get_info``, the memory fraction) raise
``DeviceUnavailableError``, an ``AssertionError`` and ``RuntimeError`` as PyTorch's "Torch not
compiled with CUDA enabled" is."""
from __future__ import annotations

import warnings
from collections import OrderedDict

from graphc.runtime import devices as _rt

__all__ = ["memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "reset_peak_memory_stats", "reset_max_memory_allocated", "reset_accumulated_memory_stats",
           "memory_stats", "memory_summary", "empty_cache", "mem_get_info", "set_per_process_memory_fraction",
           "get_per_process_memory_fraction"]


def _index(device) -> int:
    from . import _index
    return _index(device)


def _available() -> bool:
    return _rt.CUDA.is_available()


def memory_allocated(device=None) -> int:
    """Bytes held by tensors on the GPU; 0 when CUDA is unavailable, as in PyTorch."""
    return _rt.CUDA.memory_allocated(_index(device)) if _available() else 0


def max_memory_allocated(device=None) -> int:
    return _rt.CUDA.max_memory_allocated(_index(device)) if _available() else 0


def memory_reserved(device=None) -> int:
    """Bytes the memory pool holds from the driver: tensors' blocks and cached free ones."""
    return _rt.CUDA.memory_reserved(_index(device)) if _available() else 0


def max_memory_reserved(device=None) -> int:
    return memory_stats(device).get("reserved_bytes.all.peak", 0)


def reset_peak_memory_stats(device=None) -> None:
    if _available():
        _rt.CUDA.reset_peak_memory_stats(_index(device))


def reset_max_memory_allocated(device=None) -> None:
    warnings.warn("torch.cuda.reset_max_memory_allocated now calls torch.cuda.reset_peak_memory_stats, which resets "
                  "/all/ peak memory stats.", FutureWarning, stacklevel=2)
    reset_peak_memory_stats(device)


def reset_accumulated_memory_stats(device=None) -> None:
    """Zero the cumulative counters (allocations made, bytes allocated, out-of-memory errors)."""
    if _available():
        _rt.CUDA.reset_accumulated_memory_stats(_index(device))


def memory_stats(device=None) -> "OrderedDict[str, int]":
    """PyTorch's keys that CuPy's pool can answer: ``allocated_bytes.all.{current,peak,allocated}``,
    ``reserved_bytes.all.{current,peak}``, ``allocation.all.allocated`` and ``num_ooms``; empty
    without CUDA, as in PyTorch."""
    return OrderedDict(_rt.CUDA.memory_stats(_index(device)) if _available() else {})


def memory_summary(device=None, abbreviated: bool = False) -> str:
    """A printable table of ``memory_stats`` (``abbreviated`` is accepted; there is one table)."""
    stats = memory_stats(device)
    idx = _index(device) if _available() else 0

    def size(key: str) -> str:
        return _rt._format_bytes(stats.get(key, 0))
    rule = "|" + "=" * 75 + "|"
    rows = [rule, f"|{f'graphc CUDA memory summary, device ID {idx}':^75}|", rule,
            f"| {'Metric':<27}| {'Cur Usage':>14} | {'Peak Usage':>14} | {'Tot Alloc':>11} |", "|" + "-" * 75 + "|",
            f"| {'Allocated memory':<27}| {size('allocated_bytes.all.current'):>14} | "
            f"{size('allocated_bytes.all.peak'):>14} | {size('allocated_bytes.all.allocated'):>11} |",
            f"| {'GPU reserved memory':<27}| {size('reserved_bytes.all.current'):>14} | "
            f"{size('reserved_bytes.all.peak'):>14} | {'':>11} |",
            f"| {'Allocations':<27}| {'':>14} | {'':>14} | {stats.get('allocation.all.allocated', 0):>11} |",
            f"| {'CUDA OOMs':<27}| {stats.get('num_ooms', 0):>14} | {'':>14} | {'':>11} |", rule]
    return "\n".join(rows) + "\n"


def empty_cache() -> None:
    """Give the memory pool's unused blocks back to the driver (a no-op without CUDA)."""
    _rt.CUDA.empty_cache()


def mem_get_info(device=None) -> tuple[int, int]:
    """(free, total) bytes of the GPU, from the driver."""
    return _rt.CUDA.mem_get_info(_index(device))


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    """Cap this process's use of the GPU at ``fraction`` of its memory: an allocation past it
    raises ``OutOfMemoryError`` (CuPy's pool limit)."""
    index = _index(device)
    if not isinstance(fraction, float):
        raise TypeError("Invalid type for fraction argument, must be `float`")
    if fraction < 0 or fraction > 1:
        raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
    _rt.CUDA.set_memory_fraction(fraction, index)


def get_per_process_memory_fraction(device=None) -> float:
    return _rt.CUDA.memory_fraction(_index(device))
