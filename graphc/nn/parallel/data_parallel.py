"""``nn.DataParallel`` on one device: a transparent wrapper, as PyTorch's is on a single GPU or on
a machine without one. The wrapped module is ``.module`` (so checkpoints saved from it have
``module.`` keys, as PyTorch's); its forward runs on ``device_ids[0]``, inputs moved there and
outputs moved to ``output_device``. Splitting a batch across several GPUs is not supported.
"""
from __future__ import annotations

from typing import Any, Sequence

from ... import cuda
from ...device import device as _device
from ...func import pytree
from ...tensors import Tensor
from ..modules.module import Module


def _index(d) -> int:
    return d.index if isinstance(d, _device) else _device(d).index if isinstance(d, str) else int(d)


def _move(obj, dev):
    """Tensors in (nested) tuples, named tuples, lists and dicts moved to ``dev``; everything else kept."""
    leaves, spec = pytree.flatten(obj)
    return pytree.unflatten([x.to(dev) if isinstance(x, Tensor) else x for x in leaves], spec)


class DataParallel(Module):
    def __init__(self, module: Module, device_ids: Sequence[int | _device] | None = None,
                 output_device: int | _device | None = None, dim: int = 0) -> None:
        super().__init__()
        self.module, self.dim = module, dim
        if not cuda.is_available():  # PyTorch: no accelerator, no device ids, a plain call
            self.device_ids: list[int] = []
            return
        ids = [_index(d) for d in (device_ids if device_ids is not None else [cuda.current_device()])]
        if len(ids) != 1:
            raise NotImplementedError(
                f"graphc's DataParallel runs the module on one device, got device_ids={list(ids)}; "
                "pass one device (device_ids=[0]) or use the module directly")
        self.device_ids = ids
        self.output_device = _index(output_device) if output_device is not None else ids[0]
        self.src_device_obj = _device("cuda", ids[0])
        self.module.to(self.src_device_obj)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            if t.device != self.src_device_obj:
                raise RuntimeError("module must have its parameters and buffers on device "
                                   f"{self.src_device_obj} (device_ids[0]) but found one of them on device: {t.device}")
        out = self.module(*_move(inputs, self.src_device_obj), **_move(kwargs, self.src_device_obj))
        return _move(out, _device("cuda", self.output_device))


def data_parallel(module: Module, inputs: Any, device_ids: Sequence[int | _device] | None = None,
                  output_device: int | _device | None = None, dim: int = 0,
                  module_kwargs: dict | None = None) -> Any:
    """The functional form: ``module(*inputs, **module_kwargs)`` through a one-device DataParallel."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return DataParallel(module, device_ids, output_device, dim)(*inputs, **(module_kwargs or {}))
