"""Adadelta, as ``torch.optim.Adadelta``."""
from __future__ import annotations

import numpy as np

from ..tensors import Tensor
from .optimizer import (Optimizer, _Transaction, _check_lr, _check_not_differentiable, _grad_array,
                        _param_array, _scalar_tensor, _to_scalar, _use_grad_for_differentiable, _zeros_like)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Implements the Adadelta algorithm.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad (\text{if } \lambda \neq 0) \\
        v_t &\leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta x_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t \\
        u_t &\leftarrow \rho u_{t-1} + (1 - \rho) \Delta x_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma \Delta x_t

    Args: params, lr (1.0), rho (0.9), eps (1e-6), weight_decay (0), foreach, keyword-only
    capturable, maximize, differentiable.
    """

    def __init__(self, params, lr=1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach: bool | None = None, *, capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")

        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
            for p in group["params"]:
                p_state = self.state.get(p, [])
                if len(p_state) != 0 and not isinstance(p_state["step"], Tensor):
                    p_state["step"] = _scalar_tensor(float(p_state["step"]))

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
            rho, eps, weight_decay = group["rho"], group["eps"], _to_scalar(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "Adadelta does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0), "square_avg": _zeros_like(p),
                                             "acc_delta": _zeros_like(p)})
                tx.write(state["step"], tx.read(state["step"]) + 1)

                if weight_decay != 0:
                    grad = grad + weight_decay * param
                square_avg = tx.read(state["square_avg"]) * rho + (1 - rho) * grad * grad
                std = np.sqrt(square_avg + eps)
                acc_delta = tx.read(state["acc_delta"])
                delta = np.sqrt(acc_delta + eps) / std * grad
                acc_delta = acc_delta * rho + (1 - rho) * delta * delta
                tx.write(state["square_avg"], square_avg)
                tx.write(state["acc_delta"], acc_delta)
                tx.write(p, param + (-lr) * delta)
        tx.commit()
        return loss
