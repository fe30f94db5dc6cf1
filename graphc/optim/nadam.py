"""NAdam (Adam with Nesterov momentum), as ``torch.optim.NAdam``."""
from __future__ import annotations

import numpy as np

from .optimizer import (Optimizer, _Transaction, _check_adam_like, _check_not_differentiable, _grad_array, _lerp,
                        _param_array, _scalar_tensor, _tensorize_state_scalars, _to_scalar,
                        _use_grad_for_differentiable, _zeros_like)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""Implements NAdam.

    .. math::
        \mu_t &= \beta_1 (1 - \tfrac12 0.96^{t\psi}),\quad \mu_{t+1} = \beta_1 (1 - \tfrac12 0.96^{(t+1)\psi}) \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \hat m_t &= \frac{\mu_{t+1} m_t}{1 - \prod_{i\le t+1}\mu_i}
            + \frac{(1-\mu_t) g_t}{1 - \prod_{i\le t}\mu_i},\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma \frac{\hat m_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}

    Args: params, lr (2e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), momentum_decay (4e-3),
    decoupled_weight_decay (False), keyword-only foreach, maximize, capturable, differentiable.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False) -> None:
        _check_adam_like(lr, eps, betas, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("maximize", False), ("foreach", None), ("capturable", False),
                               ("differentiable", False), ("decoupled_weight_decay", False)):
                group.setdefault(key, value)
        _tensorize_state_scalars(self, ("step", "mu_product"))

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = self._run_closure(closure)
        tx = _Transaction(self)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = float(_to_scalar(group["lr"]))
            eps, weight_decay, momentum_decay = group["eps"], _to_scalar(group["weight_decay"]), group["momentum_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "NAdam does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0), "mu_product": _scalar_tensor(1.0),
                                             "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)})
                step_arr = tx.read(state["step"]) + 1
                tx.write(state["step"], step_arr)
                step = float(step_arr)
                bias_correction2 = 1 - beta2 ** step
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param = param * (1 - lr * weight_decay)
                    else:
                        grad = grad + weight_decay * param
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
                mu_product_arr = tx.read(state["mu_product"]) * mu
                tx.write(state["mu_product"], mu_product_arr)
                mu_product = float(mu_product_arr)
                exp_avg = _lerp(tx.read(state["exp_avg"]), grad, 1 - beta1)
                exp_avg_sq = tx.read(state["exp_avg_sq"]) * beta2 + (1 - beta2) * grad * grad
                tx.write(state["exp_avg"], exp_avg)
                tx.write(state["exp_avg_sq"], exp_avg_sq)
                denom = np.sqrt(exp_avg_sq / bias_correction2) + eps
                mu_product_next = mu_product * mu_next
                param = param + (-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
                param = param + (-lr * mu_next / (1.0 - mu_product_next)) * exp_avg / denom
                tx.write(p, param)
        tx.commit()
        return loss
