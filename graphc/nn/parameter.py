"""``nn.Parameter`` and ``nn.Buffer``: tensors that modules register when assigned."""
from __future__ import annotations

import numpy as np

from ..tensors import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad (by default) and registers itself on module assignment.

    It shares memory with the tensor it is made from, as in PyTorch.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        t = object.__new__(cls)
        if data is None:
            arr = np.empty((0,), dtype=np.float32)
            version = None
        else:
            if not isinstance(data, Tensor):
                raise TypeError(f"Parameter expects a Tensor, got {type(data).__name__}")
            arr, version = data._data, data._version
        Tensor._init_fields(t, arr)
        if version is not None:
            t._version = version
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    @property
    def is_param(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self._data.copy(), self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(Tensor._make(self._data.copy()), self.requires_grad)
        if self._grad is not None:
            p._grad = Tensor._make(self._grad._data.copy())
        memo[id(self)] = p
        return p


def _rebuild_parameter(arr, requires_grad):
    return Parameter(Tensor._make(arr), requires_grad)


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a module attribute."""

    def __new__(cls, data: Tensor | None = None, *, persistent: bool = True):
        t = object.__new__(cls)
        arr = np.empty((0,), dtype=np.float32) if data is None else data._data
        Tensor._init_fields(t, arr)
        t.persistent = persistent
        return t

    def __init__(self, data: Tensor | None = None, *, persistent: bool = True) -> None:
        pass


class _Uninitialized:
    """A lazy module's parameter or buffer before its first forward: no shape yet. ``materialize``
    gives it one in place (the same object becomes a ``Parameter``/``Buffer``, so an optimizer made
    earlier holds it). Its placeholder data carries the dtype and device to be: ``module.to``,
    ``.double()`` ... convert it as any parameter."""
    cls_to_become: type

    def materialize(self, shape, device=None, dtype=None) -> None:
        from graphc import creation
        self._data = creation.empty(*tuple(shape), dtype=dtype or self.dtype, device=device or self.device)._data
        self.__class__ = self.cls_to_become

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __deepcopy__(self, memo):
        """A copy is uninitialized too (a deep-copied lazy module stays lazy), as in PyTorch."""
        if id(self) not in memo:
            memo[id(self)] = type(self)(Tensor._make(self._data.copy()))
        return memo[id(self)]


class UninitializedParameter(_Uninitialized, Parameter):
    cls_to_become = Parameter


class UninitializedBuffer(_Uninitialized, Buffer):
    cls_to_become = Tensor  # a materialized buffer is a plain tensor, as registered buffers are
