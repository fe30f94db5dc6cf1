"""The base of the optimizers that update each parameter on its own (all but LBFGS), and the
pieces their update rules share.

Each optimizer only says how a parameter's state starts (``_init_state``) and how one parameter
moves (``_update``); the step loop, the gradient checks, the ``step`` count and the all-at-once
commit of a :class:`_Transaction` are written once, here. Update rules are written with
operators and the few functions below, so the same rule computes on numpy (or CuPy) arrays
eagerly and on tensors inside a compiled function (see ``_transaction``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import dtypes as _dt

from graphc.ir.array_module import array_module

from ..tensors import Tensor
from ._flat import flat_group
from ._transaction import _grad_value, _Transaction
from .optimizer import Optimizer, _to_scalar, _use_grad_for_differentiable


def _get_scalar_dtype(is_fused=None):
    """dtype of the ``step`` state tensors: float64 when that is the default dtype, else float32."""
    if is_fused:
        return _dt.float32
    return _dt.float64 if _dt.get_default_dtype() == _dt.float64 else _dt.float32


def _scalar_tensor(value: float, dtype=None) -> Tensor:
    d = dtype or _get_scalar_dtype()
    return Tensor._make(np.array(value, dtype=d.np))


def _zeros_like(p: Tensor) -> Tensor:
    """State buffers live on their parameter's device. ``zeros``, not ``full(.., 0)``: a large
    buffer then comes from ``calloc`` as untouched zero pages, not written twice (AdamW's two
    moments of an MLP took ~3 ms of a compiled step's first call, which makes them)."""
    arr = p._data
    return Tensor._make(array_module(arr).zeros(arr.shape, dtype=arr.dtype))


def _full_like(p: Tensor, value) -> Tensor:
    """A new state tensor, made now even inside a compiled function (state outlives the call)."""
    arr = p._data
    return Tensor._make(array_module(arr).full(arr.shape, value, dtype=arr.dtype))


# ---- functions for update rules: numpy's on arrays, graphc's on tensors ------------------------

def sqrt(x):
    return x.sqrt() if isinstance(x, Tensor) else np.sqrt(x)


def absolute(x):
    return x.abs() if isinstance(x, Tensor) else np.abs(x)


def sign(x):
    return x.sign() if isinstance(x, Tensor) else np.sign(x)


def maximum(a, b):
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        from ..math_ops import maximum as tensor_maximum
        return tensor_maximum(a, b)
    return np.maximum(a, b)


def where(cond, a, b):
    if isinstance(cond, Tensor):
        from ..math_ops import where as tensor_where
        return tensor_where(cond, a, b)
    return np.where(cond, a, b)


def minimum(a, b):
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        from ..math_ops import minimum as tensor_minimum
        return tensor_minimum(a, b)
    return np.minimum(a, b)


def mean_over(x, axis: int):
    """The mean over ``axis``, kept as a size-1 dimension."""
    return x.mean(dim=axis, keepdim=True) if isinstance(x, Tensor) else x.mean(axis=axis, keepdims=True)


def rms(x):
    """The root mean square of all elements (``x.norm() / sqrt(x.numel())``), a 0-d value."""
    return (x * x).mean().sqrt() if isinstance(x, Tensor) else np.sqrt((x * x).mean())


def clip(x, low: float, high: float):
    return x.clamp(low, high) if isinstance(x, Tensor) else np.clip(x, low, high)


def _lerp(start, end, weight, small: bool | None = None):
    """``start.lerp(end, weight)`` with PyTorch's formula (exact at both ends). ``small``: whether
    |weight| < 0.5, given by the caller for a weight that is a graph input (``tx.hyper_test``
    reads it and guards the choice, so a traced update computes one formula, not both)."""
    diff = end - start
    if small is None:
        small = abs(weight) < 0.5
    return start + weight * diff if small else end - diff * (1 - weight)


def _decayed_square(avg: np.ndarray, x: np.ndarray, decay: float) -> np.ndarray:
    """``avg.mul_(decay).addcmul_(x, x, value=1 - decay)``: a running average of squares."""
    return avg * decay + (1 - decay) * x * x


def _weight_decay(tx: _Transaction, group: dict[str, Any], param, grad, decoupled: bool = False) -> tuple:
    """``(param, grad)`` after the group's weight decay: L2 (added to the gradient) or decoupled
    (the parameter shrunk by ``1 - lr * weight_decay``, as AdamW)."""
    weight_decay = _to_scalar(group["weight_decay"])
    if weight_decay == 0:
        return param, grad
    if decoupled:
        return param * (1 - tx.hyper(group, "lr") * weight_decay), grad
    return param, grad + weight_decay * param


class _PerParameterOptimizer(Optimizer):
    """An optimizer whose step updates every parameter with a gradient independently.

    Subclasses set ``_sparse_message`` (the error for a sparse gradient), ``_setstate_defaults``
    (options an older pickle may lack, filled in on load in PyTorch's order) and
    ``_scalar_state_keys`` (0-d state entries an older pickle may hold as numbers).
    """

    _sparse_message: str | None = None
    # each element's update reads that element only, so a group may update as one flat buffer
    # (Adafactor's factored moments and Muon's orthogonalization need each parameter's shape)
    _elementwise: bool = True
    _setstate_defaults: dict[str, Any] = {}
    _scalar_state_keys: tuple[str, ...] = ("step",)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        if defaults["differentiable"]:
            raise NotImplementedError("graphc.optim: differentiable=True is not supported (updates are "
                                      "computed outside autograd)")
        super().__init__(params, defaults)
        if defaults.get("fused"):
            if defaults["foreach"]:
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
            self._step_supports_amp_scaling = True

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self._setstate_defaults.items():
                group.setdefault(key, value)
            for p in group["params"]:
                p_state = self.state.get(p, {})
                for key in self._scalar_state_keys:
                    if key in p_state and not isinstance(p_state[key], Tensor):
                        p_state[key] = _scalar_tensor(float(p_state[key]))

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): A closure that reevaluates the model and returns the loss.
        """
        loss = self._run_closure(closure)
        tx = _Transaction(self)
        flats = []
        with np.errstate(all="ignore"):  # overflow to inf is silent, as in PyTorch's kernels
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                grads = [_grad_value(tx, p, p.grad, self._sparse_message, maximize=group["maximize"])
                         for p in params]
                flat = None if tx.tensors or not self._elementwise else flat_group(self.__dict__.setdefault("_flat", {}), group, params)
                if flat is not None and flat.gather_state(self.state):
                    # the whole group at once (see _flat), in cache-sized chunks: the rule's
                    # temporaries stay in cache
                    for chunk, grad, state in flat.chunks(grads):
                        tx.own_states[id(chunk)] = state
                        self._update(tx, group, chunk, tx.param(chunk), grad)
                    flats.append(flat)
                    continue
                if tx.tensors:
                    self._count_group_once(tx, group, params)
                for p, grad in zip(params, grads):
                    self._update(tx, group, p, tx.param(p), grad)
        tx.commit()
        for flat in flats:
            flat.scatter_state(self.state)
        return loss

    def _count_group_once(self, tx: _Transaction, group: dict[str, Any], params: list[Tensor]) -> None:
        """Traced: when the parameters of ``group`` being updated count the same number of steps
        (as they do unless one went without a gradient, or a loaded state_dict says otherwise),
        the new count is computed once and written to each, so every scalar derived from it (the
        bias corrections) is one graph value for the whole group, not one per parameter. A guard
        recompiles the step, per parameter, once the counts differ."""
        states = [self.state.get(p) for p in params]
        if len(params) < 2 or len({id(p) for p in params}) != len(params) or not all(
                s and isinstance(s.get("step"), Tensor) and s["step"].ndim == 0 for s in states):
            return
        steps = [s["step"] for s in states]
        if any(t.dtype is not steps[0].dtype or float(t._data) != float(steps[0]._data) for t in steps):
            return
        state = self.state

        def counts_agree() -> str | None:
            try:
                first = float(state[params[0]]["step"]._data)
                if all(float(state[p]["step"]._data) == first for p in params):
                    return None
            except (KeyError, TypeError, AttributeError):  # (a state replaced: _state_guard says so first)
                pass
            return "the step counts of the parameters of an optimizer's group are no longer all equal"
        tx.handler.guard(counts_agree)
        tx.group_steps[id(group)] = tx.read(steps[0]) + 1

    def _update(self, tx: _Transaction, group: dict[str, Any], p: Tensor, param: np.ndarray,
                grad: np.ndarray) -> None:
        """Stage into ``tx`` the update of ``p`` (now ``param``) for the gradient ``grad``."""
        raise NotImplementedError

    def _init_state(self, group: dict[str, Any], p: Tensor) -> dict[str, Any]:
        """The state ``p`` starts its first step with."""
        raise NotImplementedError

    def _counted_state(self, tx: _Transaction, group: dict[str, Any], p: Tensor) -> tuple[dict[str, Any], Any]:
        """``p``'s state (from ``_init_state`` at its first step) with its ``step`` advanced, and
        the new count: a number eagerly, a 0-d float64 tensor in a compiled function."""
        state = tx.state(p)
        if len(state) == 0:
            state = tx.new_state(p, self._init_state(group, p))
        step = tx.group_steps.get(id(group))
        if step is None:
            step = tx.read(state["step"]) + 1
        tx.write(state["step"], step)
        if tx.tensors:
            from graphc.ir import prims as P
            return state, P.cast(step, dtype=_dt.float64) if step.dtype is not _dt.float64 else step
        return state, float(step)
