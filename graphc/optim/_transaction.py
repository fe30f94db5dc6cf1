"""What makes an optimizer step all-or-nothing: :class:`_Transaction` stages every new value
(parameters and state buffers) and commits them only once all are computed, so an exception
raised mid-step leaves parameters and optimizer state exactly as they were; plus the checks that
turn a parameter's gradient into the array the update reads.

Updates compute on the parameters' arrays with numpy's functions, which reach CuPy for GPU
parameters through numpy's dispatch protocols; scalars (a step count) stay on the host.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..device import array_to
from ..tensors import Tensor

if TYPE_CHECKING:
    from .optimizer import Optimizer


def _check_broadcast(out_shape: tuple, other_shape: tuple) -> None:
    """Raise PyTorch's error when ``other`` can't be used in an in-place op on ``out``."""
    a, b = tuple(out_shape), tuple(other_shape)
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b ({y}) "
                               f"at non-singleton dimension {i}")
    bshape = tuple(max(x, y) if 0 not in (x, y) else 0 for x, y in zip(pa, pb))
    if bshape != a:
        raise RuntimeError(f"output with shape {list(a)} doesn't match the broadcast shape {list(bshape)}")


def _param_array(p: Tensor) -> np.ndarray:
    arr = p._data
    if not np.issubdtype(arr.dtype, np.floating):
        raise RuntimeError(f"graphc.optim: only floating point parameters can be optimized, got {p.dtype}")
    return arr


def _grad_array(p: Tensor, grad: Tensor, sparse_msg: str | None = None, maximize: bool = False) -> np.ndarray:
    """The gradient of ``p`` as a numpy array of ``p``'s shape and dtype (negated when maximizing)."""
    if not isinstance(grad, Tensor):
        raise TypeError(f"expected the grad of a parameter to be a Tensor, but got {type(grad).__name__}")
    if getattr(grad, "is_sparse", False) is True:
        raise RuntimeError(sparse_msg or "graphc.optim does not support sparse gradients")
    if p.is_complex() or grad.is_complex():
        raise RuntimeError("graphc.optim does not support complex parameters")
    if grad.device != p.device:
        raise RuntimeError(f"the gradient of a parameter on {p.device} is on {grad.device}")
    arr = grad._data
    if arr.shape != p._data.shape:
        _check_broadcast(p._data.shape, arr.shape)
        arr = np.broadcast_to(arr, p._data.shape)
    arr = arr.astype(p._data.dtype, copy=False)
    return -arr if maximize else arr


def _write_in_place(t: Tensor, arr: np.ndarray) -> None:
    """``t.copy_(arr)`` outside autograd: the buffer is overwritten and its version bumped."""
    np.copyto(t._data, arr, casting="unsafe")
    t._version.value += 1


class _Transaction:
    """New values of one optimizer step, committed all at once.

    ``read(t)`` gives the value a tensor will have once the pending writes land (so a parameter
    listed twice is updated twice, in order, as in PyTorch); ``write(t, arr)`` queues an in-place
    write; ``new_state(p, d)`` queues a state dict to install for ``p``.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self._writes: dict[int, tuple[Tensor, np.ndarray]] = {}
        self._states: dict[int, tuple[Tensor, dict]] = {}

    def read(self, t: Tensor) -> np.ndarray:
        w = self._writes.get(id(t))
        return w[1] if w is not None else t._data

    def write(self, t: Tensor, arr) -> None:
        target = t._data
        if isinstance(arr, (bool, int, float, np.generic)):
            arr = np.asarray(arr)
        if type(arr) is not type(target):
            arr = array_to(arr, t.device)
        if arr.shape != target.shape:
            _check_broadcast(target.shape, arr.shape)
            arr = np.broadcast_to(arr, target.shape)
        if arr.dtype != target.dtype:
            arr = arr.astype(target.dtype)
        self._writes[id(t)] = (t, arr)

    def state(self, p: Tensor) -> dict:
        """The state dict of ``p`` as this step sees it (a pending one, if created in this step)."""
        s = self._states.get(id(p))
        if s is not None:
            return s[1]
        return self.optimizer.state.get(p, {})

    def new_state(self, p: Tensor, state: dict) -> dict:
        self._states[id(p)] = (p, state)
        return state

    def commit(self) -> None:
        # Every value is ready: nothing below can fail on shapes or dtypes.
        for p, st in self._states.values():
            self.optimizer.state[p].update(st)
        for t, arr in self._writes.values():
            _write_in_place(t, arr)
        self._writes.clear()
        self._states.clear()
