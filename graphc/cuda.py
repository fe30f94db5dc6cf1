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

from .device import DeviceUnavailableError, check_device, device as _device

__all__ = ["is_available", "device_count", "current_device", "set_device", "get_device_name",
           "get_device_properties", "is_initialized", "synchronize", "memory_allocated", "max_memory_allocated",
           "reset_peak_memory_stats", "empty_cache", "manual_seed", "manual_seed_all", "seed", "initial_seed",
           "DeviceUnavailableError"]

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


def memory_allocated(device=None) -> int:
    """Bytes held by tensors on the GPU; 0 when CUDA is unavailable, as in PyTorch."""
    return _rt.CUDA.memory_allocated(_index(device)) if is_available() else 0


def max_memory_allocated(device=None) -> int:
    return _rt.CUDA.max_memory_allocated(_index(device)) if is_available() else 0


def reset_peak_memory_stats(device=None) -> None:
    if is_available():
        _rt.CUDA.reset_peak_memory_stats(_index(device))


def empty_cache() -> None:
    """Give the memory pool's unused blocks back to the driver (a no-op without CUDA)."""
    _rt.CUDA.empty_cache()


def manual_seed(seed: int) -> None:
    """Seed the current GPU's generator (accepted and kept for later without CUDA, as in PyTorch)."""
    from . import random
    random.cuda_generator(_rt.CUDA.current).manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    from . import random
    random.seed_cuda_generators(seed)


def seed() -> int:
    from . import random
    return random.cuda_generator(_rt.CUDA.current).seed()


def initial_seed() -> int:
    from . import random
    return random.cuda_generator(_rt.CUDA.current).initial_seed()


# ---- generator state (the per-GPU graphc Generators; see graphc.random) ------------------------

def get_rng_state(device="cuda"):
    """The state of ``device``'s generator (a uint8 tensor, as PyTorch's)."""
    from . import random
    return random.cuda_generator(_index(device)).get_state()


def set_rng_state(new_state, device="cuda") -> None:
    from . import random
    random.cuda_generator(_index(device)).set_state(new_state)


def get_rng_state_all() -> list:
    return [get_rng_state(i) for i in range(device_count())]


def set_rng_state_all(new_states) -> None:
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


def seed_all() -> None:
    """A fresh random seed for every GPU's generator."""
    from . import random
    for i in range(device_count()):
        random.cuda_generator(i).seed()


def get_device_capability(device=None) -> tuple[int, int]:
    """(major, minor) compute capability, e.g. (9, 0) on an H100 (CuPy spells it "90")."""
    cc = _rt.CUDA.lib().cuda.Device(_index(device)).compute_capability
    return int(cc[:-1]), int(cc[-1])


def is_tf32_supported() -> bool:
    return is_available() and get_device_capability()[0] >= 8


__all__ += ["get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all", "seed_all",
            "get_device_capability", "is_tf32_supported"]
