"""graphc.cuda: NVIDIA GPUs, through CuPy (``pip install 'graphc[cuda]'``).

The queries answer as PyTorch's do: without CuPy or without a GPU ``is_available()`` is False,
``device_count()`` is 0, the memory statistics are 0 and the seeding calls are accepted (PyTorch
queues them); anything that needs a device raises ``DeviceUnavailableError`` saying which of the
two is missing.

Random numbers for cuda tensors are drawn on the host by a graphc ``Generator`` per GPU (numpy's
PCG64) and copied to the device, so a seed gives the same numbers on the CPU and on the GPU.
``manual_seed`` seeds the current GPU's generator, ``graphc.manual_seed`` every generator.
"""
from __future__ import annotations

from graphc.runtime import devices as _rt

from ..device import DeviceUnavailableError, check_device, device as _device

__all__ = ["is_available", "device_count", "current_device", "set_device", "get_device_name",
           "get_device_properties", "is_initialized", "synchronize", "manual_seed", "manual_seed_all", "seed",
           "initial_seed", "DeviceUnavailableError"]

def is_available() -> bool:
    return _rt.CUDA.is_available()


def device_count() -> int:
    return _rt.CUDA.device_count()


def is_initialized() -> bool:
    return is_available()


def _index(device) -> int:
    """The GPU index a ``device=`` argument names (None: the current one)."""
    if device is None:
        return check_device(_device("cuda", _rt.CUDA.current)).index
    if isinstance(device, int):
        return check_device(_device("cuda", device)).index
    d = check_device(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return d.index


def current_device() -> int:
    return _index(None)


def set_device(device) -> None:
    """Make ``device`` the current GPU: where ``"cuda"`` tensors go, and CuPy's current device."""
    _rt.CUDA.set_current(_index(device))


def get_device_name(device=None) -> str:
    return _rt.CUDA.device_name(_index(device))


def get_device_properties(device=None):
    """CuPy's property dict of the GPU (``name``, ``totalGlobalMem``, ``multiProcessorCount`` ...)."""
    return _rt.CUDA.lib().cuda.runtime.getDeviceProperties(_index(device))


def synchronize(device=None) -> None:
    """Wait for all queued work on the GPU."""
    _rt.CUDA.synchronize(_index(device))


def get_device_capability(device=None) -> tuple[int, int]:
    """(major, minor) compute capability, e.g. (9, 0) on an H100 (CuPy spells it "90")."""
    cc = _rt.CUDA.lib().cuda.Device(_index(device)).compute_capability
    return int(cc[:-1]), int(cc[-1])


def is_tf32_supported() -> bool:
    return is_available() and get_device_capability()[0] >= 8


__all__ += ["get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all", "seed_all",
            "get_device_capability", "is_tf32_supported"]

# ---- PyTorch's submodules (memory figures, generators), legacy types, device contexts ----------

from . import memory, random  # noqa: E402
from .memory import (empty_cache, get_per_process_memory_fraction, max_memory_allocated,  # noqa: E402
                     max_memory_reserved, mem_get_info, memory_allocated, memory_reserved, memory_stats,
                     memory_summary, reset_accumulated_memory_stats, reset_max_memory_allocated,
                     reset_peak_memory_stats, set_per_process_memory_fraction)
from .random import (get_rng_state, get_rng_state_all, initial_seed, manual_seed, manual_seed_all,  # noqa: E402
                     seed, seed_all, set_rng_state, set_rng_state_all)
from graphc.runtime.devices import OutOfMemoryError  # noqa: E402

__all__ += memory.__all__ + ["OutOfMemoryError", "init", "is_bf16_supported", "device", "device_of",
                             "default_generators"]


def __getattr__(name: str):
    if name == "default_generators":  # one per GPU, known once CuPy has looked (empty without CUDA)
        from .. import random as _random
        return tuple(_random.cuda_generator(i) for i in range(device_count()))
    raise AttributeError(f"module 'graphc.cuda' has no attribute '{name}'")


def init() -> None:
    """Initialize CUDA now rather than at first use (loads CuPy and finds the GPUs); raises
    ``DeviceUnavailableError`` without one, as PyTorch's raises without CUDA."""
    _rt.CUDA.lib()


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the GPU computes in bfloat16: natively from compute capability 8.0 (Ampere); older
    GPUs emulate it (graphc's kernels widen bfloat16 to float32 there), counted when
    ``including_emulation``. False without CUDA."""
    if not is_available():
        return False
    return get_device_capability()[0] >= 8 or including_emulation


class device:
    """``with graphc.cuda.device(i):`` makes GPU ``i`` the current one inside the block (None or
    a negative index: a no-op, as in PyTorch)."""

    def __init__(self, device) -> None:
        self.idx = -1 if device is None else (device if isinstance(device, int) else _index(device))
        self.prev_idx = -1

    def __enter__(self) -> "device":
        if self.idx >= 0:
            self.prev_idx = current_device()
            set_device(self.idx)
        return self

    def __exit__(self, *exc) -> bool:
        if self.idx >= 0:
            set_device(self.prev_idx)
        return False


class device_of(device):
    """``with graphc.cuda.device_of(t):``: the GPU of tensor ``t`` is current inside the block (a
    no-op for a CPU tensor)."""

    def __init__(self, obj) -> None:
        super().__init__(obj.get_device() if obj.is_cuda else -1)
