"""RAdam (rectified Adam), as ``torch.optim.RAdam``."""
from __future__ import annotations

from ._per_parameter import _PerParameterOptimizer, _scalar_tensor, sqrt, _weight_decay, where, _zeros_like
from .adam import _adam_moments
from .optimizer import _check_hyperparameters

__all__ = ["RAdam"]


class RAdam(_PerParameterOptimizer):
    r"""Implements RAdam: Adam whose adaptive term is used only once the variance of the adaptive
    learning rate is tractable (:math:`\rho_t > 5`), scaled by the rectification term :math:`r_t`;
    before that, an SGD-with-momentum step :math:`\theta_t = \theta_{t-1} - \gamma \hat m_t`.

    Args: params, lr (1e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0),
    decoupled_weight_decay (False), keyword-only foreach, maximize, capturable, differentiable.
    """

    _sparse_message = "RAdam does not support sparse gradients"
    _setstate_defaults = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False,
                          "decoupled_weight_decay": False}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        _check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable, "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        return {"step": _scalar_tensor(0.0), "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)}

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        beta1, beta2 = tx.hyper(group, "betas", 0), tx.hyper(group, "betas", 1)
        lr = tx.hyper(group, "lr")
        param, grad = _weight_decay(tx, group, param, grad, group["decoupled_weight_decay"])
        exp_avg, exp_avg_sq = _adam_moments(tx, group, state, grad, beta1, beta2)
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / (1 - beta1 ** step)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        # the step is exp_avg times a factor: -lr / bc1 (plain), or once rho_t > 5 (rectified)
        # that times rect * sqrt(bc2) / (sqrt(v) + eps), its scalars folded into one
        if tx.tensors or rho_t > 5.0:  # traced: the rectified factor where rho_t > 5, as a select
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            factor = (-step_size * rect * bias_correction2 ** 0.5) / (sqrt(exp_avg_sq) + group["eps"])
            if tx.tensors:
                factor = where(rho_t > 5.0, factor, -step_size)
        else:
            factor = -step_size
        tx.write(p, param + exp_avg * factor)
