"""Devices: ``graphc.device`` objects, the default device, and moving arrays between devices.

A tensor's data is an array owned by a device (``graphc.runtime.devices``): numpy arrays on the
``cpu``, CuPy arrays on ``cuda``. ``device(...)`` names a place; ``check_device`` turns a device
argument into the device tensors report (``cuda`` becomes ``cuda:0``) and raises the clear
``DeviceUnavailableError`` when there is no such device here.

The default device (``set_default_device``, ``with graphc.device("cuda"):``) is where factory
functions put tensors when no ``device=`` is given, as in PyTorch. It is context-local, and it is
also where operand-free primitives (``full``, ``arange``) place their result in eager mode, which
is how the autograd engine and composite ops create their constants on their tensors' device.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

from graphc.runtime import devices as _rt
from graphc.runtime.devices import DeviceUnavailableError

__all__ = ["device", "DeviceUnavailableError", "CPU", "check_device", "device_of_array", "array_to",
           "get_default_device", "set_default_device", "using_device"]


class device:
    __slots__ = ("type", "index")

    def __init__(self, type_or_str, index: int | None = None) -> None:
        if isinstance(type_or_str, device):
            self.type, self.index = type_or_str.type, type_or_str.index
            return
        if isinstance(type_or_str, int):
            type_or_str, index = "cuda", type_or_str
        s = str(type_or_str)
        if ":" in s:
            s, idx = s.split(":", 1)
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed explicitly: {type_or_str}")
            try:
                index = int(idx)
            except ValueError:
                raise RuntimeError(f"Invalid device string: '{type_or_str}'") from None
        if s not in KNOWN_TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(KNOWN_TYPES)} device type at start of device string: {type_or_str}")
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = s, index

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __enter__(self) -> "device":
        """``with graphc.device("cuda"):`` makes it the default device inside the block."""
        _default_stack.set(_default_stack.get() + (check_device(self),))
        return self

    def __exit__(self, *exc) -> None:
        _default_stack.set(_default_stack.get()[:-1])


KNOWN_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")
CPU = device("cpu")

# innermost last; empty: the CPU (or what set_default_device chose)
_default_stack: contextvars.ContextVar[tuple[device, ...]] = contextvars.ContextVar("graphc_default_device", default=())
_global_default: list[device] = [CPU]


def get_default_device() -> device:
    """Where factory functions put tensors when no ``device=`` is given."""
    stack = _default_stack.get()
    return stack[-1] if stack else _global_default[0]


def set_default_device(dev) -> None:
    """PyTorch's ``torch.set_default_device``: None restores the CPU."""
    _global_default[0] = CPU if dev is None else check_device(dev)


@contextlib.contextmanager
def using_device(dev: device) -> Iterator[None]:
    """The default device inside the block (graphc-internal: no checks, ``dev`` is normalized).
    The CPU case, the common one, costs nothing."""
    if dev is CPU and not _default_stack.get() and _global_default[0] is CPU:
        yield
        return
    token = _default_stack.set(_default_stack.get() + (dev,))
    try:
        yield
    finally:
        _default_stack.reset(token)


def _unavailable(d: device, reason: str | None) -> DeviceUnavailableError:
    what = "graphc.cuda" if d.type == "cuda" else "graphc.accelerator"
    why = f" ({reason})" if reason else ""
    return DeviceUnavailableError(
        f"{d.type} device requested ({d}), but graphc found no {d.type.upper()} device: "
        f"{what}.is_available() is False{why}. Use device='cpu', or pick the device with "
        "`'cuda' if graphc.cuda.is_available() else 'cpu'`.")


_indexed: dict[tuple[str, int | None], device] = {("cpu", None): CPU}


def check_device(dev) -> device:
    """Normalize a device argument to the device tensors report: None is the default device,
    ``cpu:0`` is ``cpu``, ``cuda`` is ``cuda:<current index>``. Raises DeviceUnavailableError
    (saying what is missing) for a device that isn't here."""
    if dev is None:
        return get_default_device()
    d = dev if isinstance(dev, device) else device(dev)
    if d.type == "cpu":
        return CPU
    rt = _rt.get(d.type)
    if rt is None or not rt.is_available():
        raise _unavailable(d, rt.unavailable_reason() if rt is not None else None)
    index = getattr(rt, "current", 0) if d.index is None else d.index
    if index >= rt.device_count():
        raise RuntimeError(f"CUDA error: invalid device ordinal (device {d} requested, "
                           f"{rt.device_count()} visible)")
    return _device(d.type, index)


def _device(type_: str, index: int | None) -> device:
    key = (type_, index)
    d = _indexed.get(key)
    if d is None:
        d = _indexed[key] = device(type_, index)
    return d


def device_of_array(array: Any) -> device:
    """The device whose memory holds ``array`` (shared objects: compare with ``is`` or ``==``)."""
    return _device(*_rt.device_of(array))


def array_to(array: Any, dev: device) -> Any:
    """``array`` itself if it is on ``dev`` (a checked device), else a copy there."""
    if device_of_array(array) is dev:
        return array
    return _rt.get(dev.type).from_host(array, dev.index)
