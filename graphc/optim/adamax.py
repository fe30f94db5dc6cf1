"""Adamax (Adam with the infinity norm), as ``torch.optim.Adamax``."""
from __future__ import annotations

import numpy as np

from .optimizer import (Optimizer, _Transaction, _check_adam_like, _check_not_differentiable, _grad_array, _lerp,
                        _param_array, _scalar_tensor, _tensorize_state_scalars, _to_scalar,
                        _use_grad_for_differentiable, _zeros_like)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Implements Adamax.

    .. math::
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        u_t \leftarrow \max(\beta_2 u_{t-1}, |g_t| + \epsilon),\quad
        \theta_t \leftarrow \theta_{t-1} - \frac{\gamma\, m_t}{(1-\beta_1^t)\, u_t}

    Args: params, lr (2e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), foreach,
    keyword-only maximize, differentiable, capturable.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 foreach: bool | None = None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_adam_like(lr, eps, betas, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("foreach", None), ("maximize", False), ("differentiable", False),
                               ("capturable", False)):
                group.setdefault(key, value)
        _tensorize_state_scalars(self)

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = self._run_closure(closure)
        tx = _Transaction(self)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = float(_to_scalar(group["lr"]))
            eps, weight_decay = group["eps"], _to_scalar(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "Adamax does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0), "exp_avg": _zeros_like(p),
                                             "exp_inf": _zeros_like(p)})
                step_arr = tx.read(state["step"]) + 1
                tx.write(state["step"], step_arr)
                if weight_decay != 0:
                    grad = grad + weight_decay * param
                exp_avg = _lerp(tx.read(state["exp_avg"]), grad, 1 - beta1)
                exp_inf = np.maximum(tx.read(state["exp_inf"]) * beta2, np.abs(grad) + eps)
                tx.write(state["exp_avg"], exp_avg)
                tx.write(state["exp_inf"], exp_inf)
                clr = lr / (1 - beta1 ** float(step_arr))
                tx.write(p, param + (-clr) * exp_avg / exp_inf)
        tx.commit()
        return loss
