"""Device runtimes: which array library holds a device's memory, and how data moves between devices.

A tensor's data is an array owned by a device: the ``cpu`` device holds numpy arrays, the ``cuda``
device holds CuPy arrays (the optional extra ``graphc[cuda]``; CuPy brings cuBLAS/cuSOLVER, a
memory pool and numpy's API). One ``DeviceRuntime`` object per device type answers for it; eager
tensors and the compiler's runtime use the same objects as their allocator.

The API, for a runtime ``rt = get("cuda")``:

    rt.is_available() / rt.unavailable_reason() / rt.device_count()
    rt.xp                          the array module (numpy or cupy)
    rt.allocate(shape, dtype, index)   an uninitialized array on device ``index``
    rt.from_host(array, index)     copy a numpy array onto the device (or another device's array)
    rt.to_host(array)              copy to a numpy array (the array itself on the CPU)
    rt.index_of(array), rt.data_ptr(array)
    rt.synchronize(index)          wait for the device's queued work
    rt.memory_allocated(index), rt.max_memory_allocated(index), rt.reset_peak_memory_stats(index),
    rt.empty_cache(), rt.device_name(index)
    cuda only: rt.memory_stats(index), rt.reset_accumulated_memory_stats(index), rt.mem_get_info(index),
    rt.set_memory_fraction(fraction, index), rt.memory_fraction(index)
    rt.lib()                       cuda only: the loaded cupy module (raises when unavailable)

and ``runtime_of(array)`` / ``device_of(array)`` find the runtime / (type, index) that owns an
array. Device indices are CUDA ordinals; None means device 0. CuPy is imported on first use of the
cuda runtime (never by ``import graphc``). Without CuPy, or without a GPU, every cuda request
raises ``DeviceUnavailableError`` saying which is missing.

This module imports only numpy, the standard library and graphc.ir (layering): the frontend wraps
``(type, index)`` pairs into ``graphc.device`` objects.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from graphc.ir import array_module

NOT_INSTALLED = "CuPy is not installed: pip install 'graphc[cuda]' (cupy-cuda12x)"
NO_GPU = "CuPy is installed but no CUDA GPU/driver was found"


class DeviceUnavailableError(RuntimeError, AssertionError):
    """No such device here. Both a RuntimeError (PyTorch with CUDA, no driver) and an
    AssertionError (PyTorch built without CUDA), so code written for either catches it."""


class DeviceRuntime:
    """The memory and data movement of one device type; see the module docstring."""

    type: str

    def is_available(self) -> bool:
        return self.unavailable_reason() is None

    def unavailable_reason(self) -> str | None:
        """None when usable, else why not (and how to fix it)."""
        return None

    def device_count(self) -> int:
        return 1

    @property
    def xp(self) -> ModuleType:
        raise NotImplementedError

    def owns(self, array: Any) -> bool:
        raise NotImplementedError

    def index_of(self, array: Any) -> int | None:
        raise NotImplementedError

    def data_ptr(self, array: Any) -> int:
        raise NotImplementedError

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype, index: int | None = None) -> Any:
        raise NotImplementedError

    def from_host(self, array: Any, index: int | None = None) -> Any:
        raise NotImplementedError

    def to_host(self, array: Any) -> np.ndarray:
        raise NotImplementedError

    def synchronize(self, index: int | None = None) -> None:
        """Wait until the device has finished all queued work."""


class CpuRuntime(DeviceRuntime):
    """Host memory as numpy arrays; every call is immediate."""

    type = "cpu"

    @property
    def xp(self) -> ModuleType:
        return np

    def owns(self, array: Any) -> bool:
        return isinstance(array, (np.ndarray, np.generic))

    def index_of(self, array: Any) -> None:
        return None

    def data_ptr(self, array: np.ndarray) -> int:
        return array.__array_interface__["data"][0]

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype, index: int | None = None) -> np.ndarray:
        return np.empty(shape, dtype)

    def from_host(self, array: Any, index: int | None = None) -> np.ndarray:
        """A numpy array stays as it is (no copy); another device's array is copied to the host."""
        return array if isinstance(array, np.ndarray) else runtime_of(array).to_host(array)

    def to_host(self, array: np.ndarray) -> np.ndarray:
        return array


class OutOfMemoryError(RuntimeError):
    """PyTorch's ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError``): a GPU allocation
    failed (CuPy's ``OutOfMemoryError``, raised by its memory pool, is turned into this one)."""


def _format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    raise AssertionError("unreachable")


class CudaRuntime(DeviceRuntime):
    """NVIDIA GPUs through CuPy, imported on first use.

    Memory comes from CuPy's default memory pool (a caching allocator, like PyTorch's): freed
    arrays return their blocks to the pool, ``empty_cache`` gives unused blocks back to the
    driver. graphc routes CuPy's allocations through ``_malloc`` to record each device's peak
    (``max_memory_allocated``), which CuPy's pool does not track.
    """

    type = "cuda"

    def __init__(self) -> None:
        self._lib: ModuleType | None = None  # cupy, once loaded and a GPU was found
        self._reason: str | None = None  # why not, once loading failed
        self._peak: dict[int, int] = {}
        # per device: peak reserved bytes and the counters memory_stats reports (PyTorch's names)
        self._peak_reserved: dict[int, int] = {}
        self._counts: dict[int, dict[str, int]] = {}
        self.current = 0  # the GPU "cuda" means (graphc.cuda.set_device)

    def set_current(self, index: int) -> None:
        """Make GPU ``index`` the one ``"cuda"`` names, and CuPy's current device."""
        self.lib().cuda.Device(index).use()
        self.current = index

    def _load(self) -> ModuleType | None:
        if self._lib is None and self._reason is None:
            try:
                import cupy
            except ImportError:
                self._reason = NOT_INSTALLED
                return None
            try:
                count = cupy.cuda.runtime.getDeviceCount()
            except Exception as e:  # CUDARuntimeError (no driver) and kin: all mean "no GPU"
                self._reason = f"{NO_GPU} ({type(e).__name__}: {e})"
                return None
            if count == 0:
                self._reason = f"{NO_GPU} (0 devices)"
                return None
            self._pool = cupy.get_default_memory_pool()
            cupy.cuda.set_allocator(self._malloc)
            array_module.register(cupy.ndarray, cupy, _cupyx_special)
            self._lib = cupy
        return self._lib

    def lib(self) -> ModuleType:
        """cupy, loaded on first use; DeviceUnavailableError saying what is missing otherwise."""
        lib = self._load()
        if lib is None:
            raise DeviceUnavailableError(f"CUDA is not available: {self._reason}")
        return lib

    def unavailable_reason(self) -> str | None:
        self._load()
        return self._reason

    def device_count(self) -> int:
        return self.lib().cuda.runtime.getDeviceCount() if self._load() is not None else 0

    @property
    def xp(self) -> ModuleType:
        return self.lib()

    def owns(self, array: Any) -> bool:
        return self._lib is not None and isinstance(array, self._lib.ndarray)

    def index_of(self, array: Any) -> int:
        return array.device.id

    def data_ptr(self, array: Any) -> int:
        return array.data.ptr

    def _on(self, index: int | None):
        return self.lib().cuda.Device(0 if index is None else index)

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype, index: int | None = None) -> Any:
        with self._on(index):
            return self.lib().empty(shape, dtype)

    def from_host(self, array: Any, index: int | None = None) -> Any:
        """A copy on device ``index`` of a numpy array or of another GPU's array."""
        with self._on(index):
            return self.lib().array(array, copy=True)

    def to_host(self, array: Any) -> np.ndarray:
        return self.lib().asnumpy(array)

    def synchronize(self, index: int | None = None) -> None:
        self._on(index).synchronize()

    def _counters(self, dev: int) -> dict[str, int]:
        return self._counts.setdefault(dev, {"allocation.all.allocated": 0, "allocated_bytes.all.allocated": 0,
                                             "num_ooms": 0})

    def _malloc(self, nbytes: int):
        try:
            mem = self._pool.malloc(nbytes)
        except self._lib.cuda.memory.OutOfMemoryError as e:
            dev = self._lib.cuda.runtime.getDevice()
            self._counters(dev)["num_ooms"] += 1
            raise OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {_format_bytes(nbytes)}. GPU {dev}: "
                f"{_format_bytes(self._pool.used_bytes())} is allocated by graphc and "
                f"{_format_bytes(self._pool.total_bytes())} reserved in CuPy's memory pool ({e}). Free tensors "
                "you no longer need, or use a smaller batch.") from None
        dev = mem.device_id
        used, reserved = self._pool.used_bytes(), self._pool.total_bytes()
        if used > self._peak.get(dev, 0):
            self._peak[dev] = used
        if reserved > self._peak_reserved.get(dev, 0):
            self._peak_reserved[dev] = reserved
        counts = self._counters(dev)
        counts["allocation.all.allocated"] += 1
        counts["allocated_bytes.all.allocated"] += mem.size
        return mem

    def memory_allocated(self, index: int | None = None) -> int:
        """Bytes held by live arrays on the device (rounded up to the pool's block size); 0 when
        CUDA is unavailable, as in PyTorch."""
        if self._load() is None:
            return 0
        with self._on(index):
            return self._pool.used_bytes()

    def max_memory_allocated(self, index: int | None = None) -> int:
        """The peak of ``memory_allocated`` since the start or the last reset_peak_memory_stats."""
        return max(self._peak.get(0 if index is None else index, 0), self.memory_allocated(index))

    def reset_peak_memory_stats(self, index: int | None = None) -> None:
        self._peak[0 if index is None else index] = self.memory_allocated(index)
        self._peak_reserved[0 if index is None else index] = self.memory_reserved(index)

    def memory_reserved(self, index: int | None = None) -> int:
        """Bytes CuPy's pool holds from the driver (live arrays and cached free blocks)."""
        if self._load() is None:
            return 0
        with self._on(index):
            return self._pool.total_bytes()

    def memory_stats(self, index: int | None = None) -> dict[str, int]:
        """PyTorch's ``memory_stats`` keys that CuPy's pool can answer; {} without CUDA."""
        if self._load() is None:
            return {}
        dev = 0 if index is None else index
        stats = {"allocated_bytes.all.current": self.memory_allocated(index),
                 "allocated_bytes.all.peak": self.max_memory_allocated(index),
                 "reserved_bytes.all.current": self.memory_reserved(index),
                 "reserved_bytes.all.peak": max(self._peak_reserved.get(dev, 0), self.memory_reserved(index)),
                 **self._counters(dev)}
        return dict(sorted(stats.items()))

    def reset_accumulated_memory_stats(self, index: int | None = None) -> None:
        self._counts.pop(0 if index is None else index, None)

    def mem_get_info(self, index: int | None = None) -> tuple[int, int]:
        """(free, total) bytes of the GPU, from the driver (cudaMemGetInfo)."""
        with self._on(index):
            free, total = self.lib().cuda.runtime.memGetInfo()
        return int(free), int(total)

    def set_memory_fraction(self, fraction: float, index: int | None = None) -> None:
        """Cap CuPy's pool on the device at ``fraction`` of its memory (allocations past it raise
        OutOfMemoryError)."""
        with self._on(index):
            self.lib().get_default_memory_pool().set_limit(fraction=fraction)

    def memory_fraction(self, index: int | None = None) -> float:
        with self._on(index):
            limit = self.lib().get_default_memory_pool().get_limit()
        return 1.0 if limit == 0 else limit / self.mem_get_info(index)[1]  # 0: no limit

    def empty_cache(self) -> None:
        """Return the pool's unused blocks to the driver (live arrays keep theirs)."""
        if self._load() is not None:
            self._pool.free_all_blocks()

    def device_name(self, index: int | None = None) -> str:
        name = self.lib().cuda.runtime.getDeviceProperties(0 if index is None else index)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)


def _cupyx_special() -> ModuleType:
    import cupyx.scipy.special
    return cupyx.scipy.special


CPU = CpuRuntime()
CUDA = CudaRuntime()
_RUNTIMES: dict[str, DeviceRuntime] = {"cpu": CPU, "cuda": CUDA}


def get(device_type: str) -> DeviceRuntime | None:
    """The runtime of a device type, or None for a type graphc has no runtime for (mps, xpu)."""
    return _RUNTIMES.get(device_type)


def runtime_of(array: Any) -> DeviceRuntime:
    """The runtime whose memory holds ``array`` (TypeError for anything else); numpy scalars
    count as host arrays."""
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    if CUDA.owns(array):
        return CUDA
    raise TypeError(f"graphc: {type(array).__module__}.{type(array).__name__} is not an array of any device")


def device_of(array: Any) -> tuple[str, int | None]:
    """(device type, index) of the memory holding ``array``: ("cpu", None) or ("cuda", 0)."""
    if type(array) is np.ndarray:
        return ("cpu", None)
    rt = runtime_of(array)
    return (rt.type, rt.index_of(array))
