"""Adagrad, as ``torch.optim.Adagrad``."""
from __future__ import annotations

import numpy as np

from ..tensors import Tensor
from .optimizer import (Optimizer, _Transaction, _check_fused_foreach, _check_lr, _check_not_differentiable,
                        _full_like, _get_scalar_dtype, _grad_array, _param_array, _scalar_tensor, _to_scalar,
                        _use_grad_for_differentiable)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Implements the Adagrad algorithm.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad (\text{if } \lambda \neq 0) \\
        \tilde\gamma &\leftarrow \gamma / (1 + (t - 1)\eta) \\
        s_t &\leftarrow s_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)

    with :math:`s_0` = ``initial_accumulator_value``. As in PyTorch, the state (``step`` and
    ``sum``) of the parameters given to the constructor is created right away.

    Args: params, lr (1e-2), lr_decay (0), weight_decay (0), initial_accumulator_value (0),
    eps (1e-10), foreach, keyword-only maximize, differentiable, fused.
    """

    def __init__(self, params, lr=1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")

        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)
        if fused:
            _check_fused_foreach(fused, foreach, differentiable)
            self._step_supports_amp_scaling = True

        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _scalar_tensor(0.0, _get_scalar_dtype(group["fused"]))
                state["sum"] = _full_like(p, initial_accumulator_value)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)
        for s in self.state.values():
            if isinstance(s, dict) and "step" in s and not isinstance(s["step"], Tensor):
                s["step"] = _scalar_tensor(float(s["step"]))

    def share_memory(self) -> None:
        """No-op here (PyTorch moves the ``sum`` buffers to shared memory)."""

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): A closure that reevaluates the model and returns the loss.
        """
        loss = self._run_closure(closure)
        tx = _Transaction(self)
        for group in self.param_groups:
            lr = float(_to_scalar(group["lr"]))
            weight_decay, lr_decay, eps = _to_scalar(group["weight_decay"]), group["lr_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    # parameters added after construction: initialized lazily from the defaults
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0, _get_scalar_dtype(group["fused"])),
                                             "sum": _full_like(p, self.defaults["initial_accumulator_value"])})
                step_arr = tx.read(state["step"]) + 1
                tx.write(state["step"], step_arr)
                step = float(step_arr)

                if weight_decay != 0:
                    grad = grad + weight_decay * param
                clr = lr / (1 + (step - 1) * lr_decay)
                state_sum = tx.read(state["sum"]) + 1 * grad * grad
                tx.write(state["sum"], state_sum)
                std = np.sqrt(state_sum) + eps
                tx.write(p, param + (-clr) * grad / std)
        tx.commit()
        return loss
