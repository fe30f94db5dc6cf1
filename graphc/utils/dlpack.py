"""DLPack: exchanging tensors with other libraries without copying (PyTorch's ``torch.utils.dlpack``).

A graphc tensor's data is a numpy array (cpu) or a CuPy array (cuda), and both speak DLPack, so
``Tensor.__dlpack__``/``__dlpack_device__`` hand over the array's own memory (views keep their
strides), and :func:`from_dlpack` wraps what numpy or CuPy import. Writes through either side are
seen by the other.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import dtypes as dt

from ..tensors import Tensor

__all__ = ["from_dlpack", "to_dlpack"]

# DLPack device types (dlpack.h DLDeviceType)
_CPU, _CUDA, _CUDA_HOST = 1, 2, 3


def tensor_dlpack(self: Tensor, *, stream=None, max_version=None, dl_device=None, copy=None):
    """``Tensor.__dlpack__``: a DLPack capsule over this tensor's memory."""
    if self.requires_grad:
        raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
    if getattr(self, "_symbolic", False):
        raise RuntimeError("a tensor being traced by graphc.compile has no memory to export through DLPack")
    kwargs = {"stream": stream}
    # only the keywords the producer was given: older array libraries accept ``stream`` alone
    for key, value in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy)):
        if value is not None:
            kwargs[key] = value
    return self._data.__dlpack__(**kwargs)


def tensor_dlpack_device(self: Tensor) -> tuple[int, int]:
    """``Tensor.__dlpack_device__``: (DLPack device type, device index)."""
    return self._data.__dlpack_device__()


class _Capsule:
    """A bare DLPack capsule (from a legacy ``to_dlpack``) in the protocol numpy and CuPy import."""

    def __init__(self, capsule: Any, device: tuple[int, int]) -> None:
        self.capsule, self.device = capsule, device

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.device


def from_dlpack(ext_tensor: Any) -> Tensor:
    """A graphc tensor sharing memory with ``ext_tensor``: an object with ``__dlpack__`` (a numpy
    or CuPy array, a PyTorch tensor ...) or a legacy DLPack capsule (numpy imports those read-only:
    pass the tensor itself to get a writable one)."""
    if hasattr(ext_tensor, "__dlpack__"):
        device = ext_tensor.__dlpack_device__() if hasattr(ext_tensor, "__dlpack_device__") else (_CPU, 0)
        source = ext_tensor
    elif type(ext_tensor).__name__ == "PyCapsule":
        # a capsule does not say its device: a cpu one is the common case; CuPy reads cuda ones
        source, device = ext_tensor, None
    else:
        raise TypeError(f"from_dlpack expects an object with __dlpack__ (a tensor or array) or a DLPack capsule, "
                        f"got {type(ext_tensor).__name__}")
    kind = None if device is None else int(device[0])
    if kind in (_CPU, _CUDA_HOST) or kind is None:
        try:
            arr = np.from_dlpack(source if kind is not None else _Capsule(source, (_CPU, 0)))
        except (BufferError, RuntimeError, TypeError) as e:
            if kind is not None:
                raise RuntimeError(f"from_dlpack: numpy could not import the tensor: {e}") from None
            arr = _cuda_import(source)
    elif kind == _CUDA:
        arr = _cuda_import(source)
    else:
        raise RuntimeError(f"from_dlpack: DLPack device type {kind} is not supported by graphc (it has cpu and "
                           "cuda tensors)")
    dt.from_numpy_dtype(arr.dtype)  # PyTorch's error for a dtype graphc lacks
    return Tensor._make(arr)


def _cuda_import(source: Any):
    from graphc.runtime import devices
    rt = devices.get("cuda")
    if rt is None or not rt.is_available():
        reason = rt.unavailable_reason() if rt is not None else "no cuda runtime"
        raise RuntimeError(f"from_dlpack: the tensor is on a cuda device, which is not available: {reason}")
    return rt.xp.from_dlpack(source)


def to_dlpack(tensor: Tensor):
    """A DLPack capsule over ``tensor``'s memory (PyTorch's legacy ``to_dlpack``; prefer passing the
    tensor itself to the consumer's ``from_dlpack``)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack expects a Tensor, got {type(tensor).__name__}")
    return tensor.__dlpack__()
