"""A stand-in for CuPy where graphc uses it, so the cuda device is tested on machines without a GPU.

``install(monkeypatch)`` puts it in ``sys.modules`` as ``cupy`` (and ``cupyx.scipy.special``). Its
``ndarray`` wraps a numpy array and is *not* a numpy subclass, and it is as strict as CuPy about
the host/device boundary, so graphc code that leaks device data into numpy (or host arrays into
device ops) fails here as it would on a GPU:

* ``__array__`` raises CuPy's implicit-conversion TypeError (so ``np.asarray(x)`` fails);
* ``__array_ufunc__``/``__array_function__`` (NEP 13/18) unwrap, call numpy and wrap the result,
  and refuse numpy array operands, as CuPy's kernels do;
* assigning a numpy array into it raises; numpy index arrays are accepted (CuPy copies them);
* ``flags`` has no ``writeable`` and there is no ``__array_interface__``, as in CuPy.

Memory is accounted like CuPy's pool: every array that owns its memory is allocated through the
current allocator (``cuda.set_allocator``, the pool's ``malloc`` by default) and given back when
it is garbage collected; ``get_default_memory_pool().used_bytes()`` is the live total.
"""
from __future__ import annotations

import sys
import types
import weakref

import numpy as np
import scipy.special

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")


def _real_cupy():
    """The real CuPy package, when it is installed (importing it needs no GPU): the stand-in
    then offers only what CuPy has, so graphc can't come to rely on a function CuPy lacks."""
    try:
        import importlib
        real = importlib.import_module("cupy")
        special = importlib.import_module("cupyx.scipy.special")
    except ImportError:
        return None
    return None if getattr(real, "_stand_in", False) else (real, special)


_REAL = _real_cupy()
_stand_in = True


def _cupy_has(numpy_path: str) -> bool:
    """Whether CuPy has the counterpart of numpy function ``numpy.X`` / ``numpy.linalg.X``
    (which its ``__array_function__`` dispatches to); True when CuPy isn't installed."""
    if _REAL is None:
        return True
    module, _, name = numpy_path.rpartition(".")
    obj = _REAL[0]
    for part in module.split(".")[1:]:
        obj = getattr(obj, part, None)
    return obj is not None and hasattr(obj, name)


# ---- memory ---------------------------------------------------------------------------------

class MemoryPointer:
    def __init__(self, nbytes: int, pool: "MemoryPool") -> None:
        self.size = nbytes
        self.device_id = 0
        self._pool = pool


class OutOfMemoryError(MemoryError):
    """CuPy's ``cupy.cuda.memory.OutOfMemoryError`` (its message)."""

    def __init__(self, size: int, total: int, limit: int = 0) -> None:
        msg = f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
        super().__init__(msg + (f", limit set to: {limit:,} bytes)." if limit else ")."))


TOTAL_MEMORY = 80 * 2 ** 30  # the stand-in GPU's memory (as getDeviceProperties says)


class MemoryPool:
    """Counts the bytes of live arrays (CuPy rounds to 512-byte blocks; so does this); a limit
    (``set_limit``) makes an allocation past it raise CuPy's OutOfMemoryError."""

    def __init__(self) -> None:
        self._used = 0
        self._limit = 0

    def malloc(self, nbytes: int) -> MemoryPointer:
        nbytes = -(-nbytes // 512) * 512
        if self._limit and self._used + nbytes > self._limit:
            raise OutOfMemoryError(nbytes, self._used, self._limit)
        self._used += nbytes
        return MemoryPointer(nbytes, self)

    def set_limit(self, size: int | None = None, fraction: float | None = None) -> None:
        self._limit = int(TOTAL_MEMORY * fraction) if fraction is not None else int(size or 0)

    def get_limit(self) -> int:
        return self._limit

    def _free(self, nbytes: int) -> None:
        self._used -= nbytes

    def used_bytes(self) -> int:
        return self._used

    def total_bytes(self) -> int:
        return self._used

    def free_all_blocks(self, stream=None) -> None:
        """Nothing is cached here."""


_pool = MemoryPool()
_allocator = [_pool.malloc]
_owners: dict[int, MemoryPointer] = {}  # id(numpy array owning memory) -> its allocation


def get_default_memory_pool() -> MemoryPool:
    return _pool


def _account(arr: np.ndarray) -> None:
    """Allocate a fresh array's memory through the current allocator; free it with the array."""
    owner = arr
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if owner.base is not None or id(owner) in _owners:
        return
    mem = _allocator[0](owner.nbytes)
    _owners[id(owner)] = mem
    key = id(owner)
    weakref.finalize(owner, _release, key)


def _release(key: int) -> None:
    mem = _owners.pop(key, None)
    if mem is not None:
        mem._pool._free(mem.size)


# ---- ndarray --------------------------------------------------------------------------------

class _Flags:
    def __init__(self, a: np.ndarray) -> None:
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata


class _Data:
    def __init__(self, a: np.ndarray) -> None:
        self.ptr = a.__array_interface__["data"][0]


_current = [0]  # the current device: new arrays are made on it, as in CuPy


class _Device:
    def __init__(self, index: int | None = None) -> None:
        self.id = _current[0] if index is None else index
        self._outer: list[int] = []

    def __enter__(self) -> "_Device":
        if self.id >= runtime.getDeviceCount():
            raise RuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        self._outer.append(_current[0])
        _current[0] = self.id
        return self

    def __exit__(self, *exc) -> None:
        _current[0] = self._outer.pop()

    def synchronize(self) -> None:
        """Nothing runs asynchronously here."""

    def use(self) -> None:
        self.__enter__()  # checks the ordinal, as CuPy does
        self._outer.clear()

    @property
    def compute_capability(self) -> str:
        return "90"  # as CuPy spells it: major and minor digits (a Hopper GPU)


def _unwrap(x):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray._wrap(x)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    if isinstance(x, np.generic):  # CuPy returns 0-d arrays, never numpy scalars
        return ndarray._wrap(np.asarray(x))
    return x


def _refuse_host_arrays(values) -> None:
    for v in values:
        if isinstance(v, np.ndarray):
            raise TypeError(f"Unsupported type {type(v)}")
        if isinstance(v, (list, tuple)):
            _refuse_host_arrays(v)


class ndarray:
    """A device array: a numpy array behind CuPy's interface (see the module docstring)."""

    __array_priority__ = 100

    def __init__(self, shape, dtype=float) -> None:
        self._a = np.empty(shape, dtype)
        self._dev = _current[0]
        _account(self._a)

    @classmethod
    def _wrap(cls, a: np.ndarray) -> "ndarray":
        x = object.__new__(cls)
        x._a = a
        x._dev = _current[0]
        _account(a)
        return x

    # CuPy's protocols
    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if not all(isinstance(x, (ndarray, np.ndarray, bool, int, float, complex, np.generic)) for x in inputs):
            return NotImplemented  # as CuPy: np.add.at(a, (i, j), b) must call cupy.add.at
        if _REAL is not None and not any(hasattr(m, ufunc.__name__) for m in _REAL):
            return NotImplemented  # CuPy (or cupyx.scipy.special) has no such ufunc
        _refuse_host_arrays(inputs)
        _refuse_host_arrays(kwargs.get("out", ()))
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        if not _cupy_has(f"{func.__module__}.{func.__name__}"):
            return NotImplemented  # numpy then raises "no implementation found", as with CuPy
        _refuse_host_arrays(args)
        _refuse_host_arrays(kwargs.values())
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    strides = property(lambda self: self._a.strides)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: ndarray._wrap(self._a.T))
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _Data(self._a))
    device = property(lambda self: _Device(self._dev))

    @property
    def base(self):
        return ndarray._wrap(self._a.base) if isinstance(self._a.base, np.ndarray) else None

    def __getattr__(self, name: str):
        # ndarray methods (sum, reshape, astype ...) run on the numpy array and wrap what they
        # return; no dunders, so numpy finds no __array_interface__ to convert through
        if name.startswith("__") or (_REAL is not None and not hasattr(_REAL[0].ndarray, name)):
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        attr = getattr(self._a, name)
        if not callable(attr):
            raise AttributeError(f"fake cupy.ndarray has no attribute {name!r}")

        def method(*args, **kwargs):
            _refuse_host_arrays(args)
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        return method

    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        return np.array(self._a, order=order, copy=True)

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def fill(self, value) -> None:
        if isinstance(value, np.ndarray) and value.ndim:
            raise TypeError(f"Unsupported type {type(value)}")
        self._a.fill(value)

    # indexing: numpy index arrays are copied to the device by CuPy; host values are refused
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value) -> None:
        if isinstance(value, np.ndarray) and value.ndim:
            raise TypeError(f"Unsupported type {type(value)}")
        self._a[_unwrap(key)] = _unwrap(value)

    # conversions that CuPy allows (they synchronize)
    def __bool__(self) -> bool:
        return bool(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __index__(self) -> int:
        return self._a.__index__()

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __repr__(self) -> str:
        return f"fake_cupy.{self._a!r}"

    def __reduce__(self):
        return (array, (self.get(),))

    def __hash__(self):
        raise TypeError("unhashable type: 'cupy.ndarray'")


def _binary(ufunc, reflected=False):
    def op(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}")
        if not isinstance(other, (ndarray, bool, int, float, complex, np.generic)):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return ufunc(a, b)
    return op


def _inplace(ufunc):
    def op(self, other):
        ufunc(self, other, out=(self,))
        return self
    return op


for _name, _uf in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
                   ("floordiv", np.floor_divide), ("mod", np.remainder), ("pow", np.power),
                   ("matmul", np.matmul), ("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)):
    setattr(ndarray, f"__{_name}__", _binary(_uf))
    setattr(ndarray, f"__r{_name}__", _binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in (("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                   ("gt", np.greater), ("ge", np.greater_equal)):
    setattr(ndarray, f"__{_name}__", _binary(_uf))
ndarray.__neg__ = lambda self: np.negative(self)
ndarray.__pos__ = lambda self: self
ndarray.__abs__ = lambda self: np.absolute(self)
ndarray.__invert__ = lambda self: np.invert(self)


# ---- module-level API -----------------------------------------------------------------------

def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        if order in ("C", "F") and not a._a.flags[f"{order}_CONTIGUOUS"]:  # CuPy copies to the layout asked
            a = ndarray._wrap(np.array(a._a, order=order))
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray._wrap(np.array(a, dtype=dtype, order=order, copy=True))  # a host-to-device copy


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    src = obj._a if isinstance(obj, ndarray) else obj
    return ndarray._wrap(np.array(src, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None) -> np.ndarray:
    return a.get(order=order) if isinstance(a, ndarray) else np.asarray(a, order=order)


class _Ufunc:
    """cupy.add and kin: callable, with ``at`` (CuPy's scatter ops)."""

    def __init__(self, uf: np.ufunc) -> None:
        self._uf = uf

    def __call__(self, *args, **kwargs):
        return self._uf(*args, **kwargs)  # dispatched to ndarray.__array_ufunc__

    def at(self, a, indices, b=None) -> None:
        _refuse_host_arrays((b,))
        self._uf.at(a._a, _unwrap(indices), _unwrap(b))


def __getattr__(name: str):
    """cupy.zeros, cupy.concatenate ...: numpy's function on unwrapped arguments, wrapped."""
    if _REAL is not None and not hasattr(_REAL[0], name):
        raise AttributeError(f"module 'cupy' has no attribute '{name}'")
    fn = getattr(np, name)
    if isinstance(fn, np.ufunc):
        return _Ufunc(fn)
    if not callable(fn):
        raise AttributeError(name)

    def call(*args, **kwargs):
        _refuse_host_arrays(args)
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))
    return call


class _Runtime(types.ModuleType):
    device_count = 1
    error: Exception | None = None  # raised by getDeviceCount: "no driver"

    def getDeviceCount(self) -> int:
        if self.error is not None:
            raise self.error
        return self.device_count

    def getDevice(self) -> int:
        return 0

    def memGetInfo(self) -> tuple[int, int]:
        return TOTAL_MEMORY - _pool.used_bytes(), TOTAL_MEMORY

    def getDeviceProperties(self, index: int) -> dict:
        return {"name": b"Fake CUDA GPU (tests/fake_cupy.py)", "totalGlobalMem": TOTAL_MEMORY,
                "multiProcessorCount": 132}


runtime = _Runtime("cupy.cuda.runtime")


def _set_allocator(allocator=None) -> None:
    _allocator[0] = allocator or _pool.malloc


cuda = types.ModuleType("cupy.cuda")
cuda.Device = _Device
cuda.runtime = runtime
cuda.set_allocator = _set_allocator
cuda.MemoryPointer = MemoryPointer
cuda.MemoryPool = MemoryPool
cuda.memory = types.ModuleType("cupy.cuda.memory")
cuda.memory.OutOfMemoryError = OutOfMemoryError

lib = types.ModuleType("cupy.lib")
lib.stride_tricks = types.ModuleType("cupy.lib.stride_tricks")


def _as_strided(x, shape=None, strides=None):
    return ndarray._wrap(np.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides))


lib.stride_tricks.as_strided = _as_strided


def _special_getattr(name: str):
    fn = getattr(scipy.special, name)

    def call(*args, **kwargs):
        _refuse_host_arrays(args)
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))
    return call


special = types.ModuleType("cupyx.scipy.special")
special.__getattr__ = _special_getattr


def install(monkeypatch, *, device_count: int = 1, error: Exception | None = None) -> None:
    """Make ``import cupy`` (and ``cupyx.scipy.special``) find this module for one test."""
    monkeypatch.setattr(runtime, "device_count", device_count)
    monkeypatch.setattr(runtime, "error", error)
    _allocator[0] = _pool.malloc  # graphc installs its own on loading
    monkeypatch.setattr(_pool, "_limit", 0)
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.special = special
    for name, mod in (("cupy", sys.modules[__name__]), ("cupy.cuda", cuda), ("cupy.cuda.runtime", runtime),
                      ("cupy.cuda.memory", cuda.memory),
                      ("cupy.lib", lib), ("cupy.lib.stride_tricks", lib.stride_tricks), ("cupyx", cupyx),
                      ("cupyx.scipy", cupyx.scipy), ("cupyx.scipy.special", special)):
        monkeypatch.setitem(sys.modules, name, mod)


def reset_runtime(monkeypatch) -> None:
    """Make graphc's cuda runtime load its library afresh in this test (and restore what it had
    loaded afterwards: with GRAPHC_REAL_CUDA=1, the real CuPy and its memory pool)."""
    from graphc.runtime import devices
    _current[0] = 0  # the stand-in's current device, for a test that changed it
    for name, fresh in (("_lib", None), ("_reason", None), ("_peak", {}), ("_pool", None), ("current", 0)):
        monkeypatch.setattr(devices.CUDA, name, fresh, raising=False)

