"""Adadelta, as ``torch.optim.Adadelta``."""
from __future__ import annotations

from ._per_parameter import (_decayed_square, _PerParameterOptimizer, _scalar_tensor, sqrt, _weight_decay,
                             _zeros_like)
from .optimizer import _check_hyperparameters

__all__ = ["Adadelta"]


class Adadelta(_PerParameterOptimizer):
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

    _sparse_message = "Adadelta does not support sparse gradients"
    _setstate_defaults = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

    def __init__(self, params, lr=1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach: bool | None = None, *, capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_hyperparameters(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        return {"step": _scalar_tensor(0.0), "square_avg": _zeros_like(p), "acc_delta": _zeros_like(p)}

    def _update(self, tx, group, p, param, grad) -> None:
        state, _ = self._counted_state(tx, group, p)
        rho, eps = group["rho"], group["eps"]
        param, grad = _weight_decay(tx, group, param, grad)
        square_avg = _decayed_square(tx.read(state["square_avg"]), grad, rho)
        acc_delta = tx.read(state["acc_delta"])
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * grad
        tx.write(state["square_avg"], square_avg)
        tx.write(state["acc_delta"], _decayed_square(acc_delta, delta, rho))
        tx.write(p, param + (-tx.hyper(group, "lr")) * delta)
