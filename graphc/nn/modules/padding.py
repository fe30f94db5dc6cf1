"""Padding layers (ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad; 1d/2d/3d)."""
from __future__ import annotations

from .. import functional as F
from .module import Module
from .utils import _check_input_dim


def _ntuple(padding, n: int) -> tuple[int, ...]:
    if isinstance(padding, (list, tuple)):
        if len(padding) != n:
            raise ValueError(f"expected padding of {n} values, got {len(padding)}")
        return tuple(int(p) for p in padding)
    return (int(padding),) * n


class _PadNd(Module):
    _mode = "constant"
    _n = 2                      # number of padding values (2 per padded dim)
    _dims: tuple[int, ...] = ()  # accepted input ranks

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _ntuple(padding, self._n)

    def forward(self, input):
        if self._dims:
            _check_input_dim(input, self._dims)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    _n = 2


class ConstantPad2d(_ConstantPadNd):
    _n = 4


class ConstantPad3d(_ConstantPadNd):
    _n = 6


class _ZeroPad:
    """Mixed in before ConstantPadNd (PyTorch's ZeroPadNd subclasses it): value 0, and the repr
    shows only the padding."""

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    extra_repr = _PadNd.extra_repr


class ZeroPad1d(_ZeroPad, ConstantPad1d):
    pass


class ZeroPad2d(_ZeroPad, ConstantPad2d):
    pass


class ZeroPad3d(_ZeroPad, ConstantPad3d):
    pass


class ReflectionPad1d(_PadNd):
    _mode, _n = "reflect", 2


class ReflectionPad2d(_PadNd):
    _mode, _n = "reflect", 4


class ReflectionPad3d(_PadNd):
    _mode, _n = "reflect", 6


class ReplicationPad1d(_PadNd):
    _mode, _n = "replicate", 2


class ReplicationPad2d(_PadNd):
    _mode, _n = "replicate", 4


class ReplicationPad3d(_PadNd):
    _mode, _n = "replicate", 6


class CircularPad1d(_PadNd):
    _mode, _n, _dims = "circular", 2, (2, 3)


class CircularPad2d(_PadNd):
    _mode, _n, _dims = "circular", 4, (3, 4)


class CircularPad3d(_PadNd):
    _mode, _n, _dims = "circular", 6, (4, 5)
