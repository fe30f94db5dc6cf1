"""RMSprop, as ``torch.optim.RMSprop``."""
from __future__ import annotations

import numpy as np

from ..tensors import Tensor
from .optimizer import (Optimizer, _Transaction, _check_lr, _check_not_differentiable, _grad_array, _lerp,
                        _param_array, _scalar_tensor, _to_scalar, _use_grad_for_differentiable, _zeros_like)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""Implements the RMSprop algorithm.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad (\text{if } \lambda \neq 0) \\
        v_t &\leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \tilde v_t &\leftarrow v_t - (g^{ave}_t)^2,\ g^{ave}_t \leftarrow \alpha g^{ave}_{t-1}
            + (1-\alpha) g_t \ \text{(centered) else } v_t \\
        b_t &\leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon),\
            \theta_t \leftarrow \theta_{t-1} - \gamma b_t \ (\mu > 0) \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon) \ (\mu = 0)

    Args: params, lr (1e-2), alpha (0.99), eps (1e-8), weight_decay (0), momentum (0),
    centered (False), capturable, foreach, maximize, differentiable.
    """

    def __init__(self, params, lr=1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")

        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
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
            alpha, eps, weight_decay = group["alpha"], group["eps"], _to_scalar(group["weight_decay"])
            momentum, centered = group["momentum"], group["centered"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "RMSprop does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = {"step": _scalar_tensor(0.0), "square_avg": _zeros_like(p)}
                    if momentum > 0:
                        state["momentum_buffer"] = _zeros_like(p)
                    if centered:
                        state["grad_avg"] = _zeros_like(p)
                    tx.new_state(p, state)
                tx.write(state["step"], tx.read(state["step"]) + 1)

                if weight_decay != 0:
                    grad = grad + weight_decay * param
                square_avg = tx.read(state["square_avg"]) * alpha + (1 - alpha) * grad * grad
                tx.write(state["square_avg"], square_avg)
                if centered:
                    grad_avg = _lerp(tx.read(state["grad_avg"]), grad, 1 - alpha)
                    tx.write(state["grad_avg"], grad_avg)
                    avg = np.sqrt(square_avg + (-1) * grad_avg * grad_avg)
                else:
                    avg = np.sqrt(square_avg)
                avg = avg + eps
                if momentum > 0:
                    buf = tx.read(state["momentum_buffer"]) * momentum + grad / avg
                    tx.write(state["momentum_buffer"], buf)
                    tx.write(p, param + (-lr) * buf)
                else:
                    tx.write(p, param + (-lr) * grad / avg)
        tx.commit()
        return loss
