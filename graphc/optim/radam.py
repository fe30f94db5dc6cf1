"""RAdam (rectified Adam), as ``torch.optim.RAdam``."""
from __future__ import annotations

import numpy as np

from .optimizer import (Optimizer, _Transaction, _check_adam_like, _check_not_differentiable, _grad_array, _lerp,
                        _param_array, _scalar_tensor, _tensorize_state_scalars, _to_scalar,
                        _use_grad_for_differentiable, _zeros_like)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""Implements RAdam: Adam whose adaptive term is used only once the variance of the adaptive
    learning rate is tractable (:math:`\rho_t > 5`), scaled by the rectification term :math:`r_t`;
    before that, an SGD-with-momentum step :math:`\theta_t = \theta_{t-1} - \gamma \hat m_t`.

    Args: params, lr (1e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0),
    decoupled_weight_decay (False), keyword-only foreach, maximize, capturable, differentiable.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        _check_adam_like(lr, eps, betas, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable, "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("foreach", None), ("maximize", False), ("differentiable", False),
                               ("capturable", False), ("decoupled_weight_decay", False)):
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
                grad = _grad_array(p, p.grad, "RAdam does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0), "exp_avg": _zeros_like(p),
                                             "exp_avg_sq": _zeros_like(p)})
                step_arr = tx.read(state["step"]) + 1
                tx.write(state["step"], step_arr)
                step = float(step_arr)
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param = param * (1 - lr * weight_decay)
                    else:
                        grad = grad + weight_decay * param
                exp_avg = _lerp(tx.read(state["exp_avg"]), grad, 1 - beta1)
                exp_avg_sq = tx.read(state["exp_avg_sq"]) * beta2 + (1 - beta2) * grad * grad
                tx.write(state["exp_avg"], exp_avg)
                tx.write(state["exp_avg_sq"], exp_avg_sq)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                bias_corrected_exp_avg = exp_avg / bias_correction1
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
                if rho_t > 5.0:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    adaptive_lr = bias_correction2 ** 0.5 / (np.sqrt(exp_avg_sq) + eps)
                    tx.write(p, param + (-1.0) * (bias_corrected_exp_avg * lr * adaptive_lr * rect))
                else:
                    tx.write(p, param + (-1.0) * (bias_corrected_exp_avg * lr))
        tx.commit()
        return loss
