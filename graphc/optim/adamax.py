"""Adamax (Adam with the infinity norm), as ``torch.optim.Adamax``."""
from __future__ import annotations

from .adam import _small_lerp_weight
from ._per_parameter import (absolute, _lerp, maximum, _PerParameterOptimizer, _scalar_tensor, _weight_decay,
                             _zeros_like)
from .optimizer import _check_hyperparameters

__all__ = ["Adamax"]


class Adamax(_PerParameterOptimizer):
    r"""Implements Adamax.

    .. math::
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        u_t \leftarrow \max(\beta_2 u_{t-1}, |g_t| + \epsilon),\quad
        \theta_t \leftarrow \theta_{t-1} - \frac{\gamma\, m_t}{(1-\beta_1^t)\, u_t}

    Args: params, lr (2e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), foreach,
    keyword-only maximize, differentiable, capturable.
    """

    _sparse_message = "Adamax does not support sparse gradients"
    _setstate_defaults = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 foreach: bool | None = None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        return {"step": _scalar_tensor(0.0), "exp_avg": _zeros_like(p), "exp_inf": _zeros_like(p)}

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        beta1, beta2 = tx.hyper(group, "betas", 0), tx.hyper(group, "betas", 1)
        param, grad = _weight_decay(tx, group, param, grad)
        exp_avg = _lerp(tx.read(state["exp_avg"]), grad, 1 - beta1, small=_small_lerp_weight(tx, group))
        exp_inf = maximum(tx.read(state["exp_inf"]) * beta2, absolute(grad) + group["eps"])
        tx.write(state["exp_avg"], exp_avg)
        tx.write(state["exp_inf"], exp_inf)
        clr = tx.hyper(group, "lr") / (1 - beta1 ** step)
        tx.write(p, param + (-clr) * exp_avg / exp_inf)
