"""What makes an optimizer step all-or-nothing: :class:`_Transaction` stages every new value
(parameters and state buffers) and commits them only once all are computed, so an exception
raised mid-step leaves parameters and optimizer state exactly as they were; plus the checks that
turn a parameter's gradient into the array the update reads.

Eagerly, updates compute on the parameters' arrays with numpy's functions, which reach CuPy for
GPU parameters through numpy's dispatch protocols; scalars (a step count) stay on the host. Where
writes are functional (inside ``graphc.compile``: a whole training step in one graph), the same
update rules compute on tensors instead, so they become graph ops: hyperparameters a scheduler
changes are read as graph inputs, the step count stays a tensor, and ``commit`` writes through
the current handler (mutations written back after each call).
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..device import array_to
from ..dispatch import current as _dispatch
from ..tensors import Tensor
from .optimizer import _to_scalar

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


def _check_param(p: Tensor) -> None:
    if not p.dtype.is_floating_point:
        raise RuntimeError(f"graphc.optim: only floating point parameters can be optimized, got {p.dtype}")


def _grad_value(tx: "_Transaction", p: Tensor, grad: Tensor, sparse_msg: str | None = None,
                maximize: bool = False):
    """The gradient of ``p`` for the update, of ``p``'s shape and dtype (negated when maximizing):
    an array eagerly, a tensor in a compiled function."""
    if not isinstance(grad, Tensor):
        raise TypeError(f"expected the grad of a parameter to be a Tensor, but got {type(grad).__name__}")
    if getattr(grad, "is_sparse", False) is True:
        raise RuntimeError(sparse_msg or "graphc.optim does not support sparse gradients")
    if p.is_complex() or grad.is_complex():
        raise RuntimeError("graphc.optim does not support complex parameters")
    if grad.device != p.device:
        raise RuntimeError(f"the gradient of a parameter on {p.device} is on {grad.device}")
    if tx.tensors:
        g = _as_tensor_of(p, grad)
        return -g if maximize else g
    arr = grad._data
    if arr.shape != p._data.shape:
        _check_broadcast(p._data.shape, arr.shape)
        arr = np.broadcast_to(arr, p._data.shape)
    arr = arr.astype(p._data.dtype, copy=False)
    return -arr if maximize else arr


def _hyper_value(group: dict, key: str, index: int | None) -> float:
    return float(_to_scalar(group[key] if index is None else group[key][index]))


def _as_tensor_of(t: Tensor, value) -> Tensor:
    """``value`` (a tensor or a number) as a tensor of ``t``'s shape and dtype."""
    from graphc.ir import prims as P
    if not isinstance(value, Tensor):
        from ..creation import full
        return full(tuple(t.shape), value, dtype=t.dtype)
    if tuple(value.shape) != tuple(t.shape):
        _check_broadcast(tuple(t.shape), tuple(value.shape))
        value = P.expand(value, shape=tuple(t.shape))
    return value if value.dtype is t.dtype else P.cast(value, dtype=t.dtype)


_OPTION_TYPES = (bool, int, float, str, type(None))


def _state_guard(optimizer: "Optimizer"):
    """A check that the optimizer's state is as when the step was traced: the same entries, and
    the same state tensors (a first step creates them; ``load_state_dict`` replaces them)."""
    state = optimizer.state
    before = [(p, tuple(state.get(p, {}).items())) for g in optimizer.param_groups for p in g["params"]]
    missing = object()

    def check() -> str | None:  # (run before every call: a tight loop, ~0.6 us a parameter)
        for p, old in before:
            now = state.get(p, {})
            if len(now) != len(old):
                break
            for k, v in old:
                if now.get(k, missing) is not v:
                    break
            else:
                continue
            break
        else:
            return None
        return "the optimizer's state changed (a first step creates it, load_state_dict replaces it)"
    return check


def _options_guard(group: dict, lifted: set[str]):
    """A check that the options of ``group`` the step read as numbers (not graph inputs) are unchanged."""
    before = {k: v for k, v in group.items() if k not in lifted and k != "params" and (
        type(v) in _OPTION_TYPES or type(v) is tuple and all(type(x) in _OPTION_TYPES for x in v))}

    def check() -> str | None:
        for k, v in before.items():
            now = group.get(k)
            if now is not v and (type(now) is not type(v) or now != v):
                return f"the optimizer option {k!r} changed from {v!r} to {now!r}"
        return None
    return check


def _write_in_place(t: Tensor, arr: np.ndarray) -> None:
    """``t.copy_(arr)`` outside autograd: the buffer is overwritten and its version bumped."""
    np.copyto(t._data, arr, casting="unsafe")
    t._version_counter.value += 1


class _SkipIf(threading.local):
    pred: Tensor | None = None


_skip_if = _SkipIf()


@contextlib.contextmanager
def writes_skipped_if(pred: Tensor) -> Iterator[None]:
    """Inside, a step computed with tensor ops (a compiled function) keeps every tensor it writes
    at its old value where ``pred`` (a 0-d bool tensor) holds: a skipped step without a branch on
    values (``GradScaler.step`` when a gradient holds inf/NaN)."""
    old, _skip_if.pred = _skip_if.pred, pred
    try:
        yield
    finally:
        _skip_if.pred = old


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
        self.handler = _dispatch()
        self.tensors = self.handler.functional  # compute with tensor ops (see the module docstring)
        self._lifted: set[tuple[int, str]] = set()  # (id(group), key) read as graph inputs
        self.own_states: dict[int, dict] = {}  # state kept outside optimizer.state (a flat group's)
        self.group_steps: dict[int, Tensor] = {}  # id(group) -> its one new step count (traced)
        self._tested: set[tuple] = set()  # hyperparameter tests guarded (see hyper_test)
        if self.tensors:
            self.handler.guard(_state_guard(optimizer))

    def read(self, t: Tensor):
        w = self._writes.get(id(t))
        if w is not None:
            return w[1]
        return t if self.tensors else t._data

    def hyper(self, group: dict, key: str, index: int | None = None):
        """A numeric hyperparameter of ``group`` (``group[key][index]`` with an index): a number
        eagerly, a 0-d float64 graph input when tracing (a scheduler may change it)."""
        if self.tensors:
            self._lifted.add((id(group), key))
            return self.handler.hyperparameter(functools.partial(_hyper_value, group, key, index),
                                               key if index is None else f"{key}[{index}]", (id(group), key, index))
        return _hyper_value(group, key, index)

    def hyper_test(self, group: dict, key: str, index: int | None, test: Callable[[float], bool]) -> bool:
        """``test`` of a hyperparameter's current value, for an update that branches on it. When
        tracing, the graph holds only the branch taken: a guard recompiles if a scheduler flips it."""
        result = bool(test(_hyper_value(group, key, index)))
        # one guard per test of a hyperparameter, not one per parameter that asks (guards run
        # before every call): the same code without captured values is the same test
        same = getattr(test, "__closure__", True) is None and not getattr(test, "__defaults__", None)
        tested = (id(group), key, index, test.__code__ if same else test)
        if self.tensors and tested not in self._tested:
            self._tested.add(tested)
            name = key if index is None else f"{key}[{index}]"
            self.handler.guard(lambda: None if bool(test(_hyper_value(group, key, index))) == result else
                               f"the optimizer's {name} moved across a branch of its update")
        return result

    def param(self, p: Tensor):
        """``p``'s value for the update (checked: only floating-point parameters are optimized)."""
        _check_param(p)
        return self.read(p)

    def write(self, t: Tensor, arr) -> None:
        if self.tensors:
            self._writes[id(t)] = (t, _as_tensor_of(t, arr))
            return
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
        own = self.own_states.get(id(p))
        return own if own is not None else self.optimizer.state.get(p, {})

    def new_state(self, p: Tensor, state: dict) -> dict:
        self._states[id(p)] = (p, state)
        return state

    def commit(self) -> None:
        if self.tensors:  # options read as numbers are baked into the graph: changing one recompiles
            for group in self.optimizer.param_groups:
                self.handler.guard(_options_guard(group, {k for i, k in self._lifted if i == id(group)}))
        # Every value is ready: nothing below can fail on shapes or dtypes.
        for p, st in self._states.values():
            own = self.own_states.get(id(p))
            (own if own is not None else self.optimizer.state[p]).update(st)
        skip = _skip_if.pred if self.tensors else None
        for t, arr in self._writes.values():
            if self.tensors:
                if skip is not None:
                    from graphc.ir import prims as P
                    arr = P.where(skip, t, arr)
                self.handler.write(t, arr)
            else:
                _write_in_place(t, arr)
        self._writes.clear()
        self._states.clear()
