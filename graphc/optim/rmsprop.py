"""RMSprop, as ``torch.optim.RMSprop``."""
from __future__ import annotations

from ._per_parameter import (_decayed_square, _lerp, _PerParameterOptimizer, _scalar_tensor, sqrt,
                             _weight_decay, _zeros_like)
from .optimizer import _check_hyperparameters

__all__ = ["RMSprop"]


class RMSprop(_PerParameterOptimizer):
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

    _sparse_message = "RMSprop does not support sparse gradients"
    _setstate_defaults = {"momentum": 0, "centered": False, "foreach": None, "maximize": False,
                          "differentiable": False, "capturable": False}

    def __init__(self, params, lr=1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_hyperparameters(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        state = {"step": _scalar_tensor(0.0), "square_avg": _zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = _zeros_like(p)
        return state

    def _update(self, tx, group, p, param, grad) -> None:
        state, _ = self._counted_state(tx, group, p)
        alpha, lr = group["alpha"], tx.hyper(group, "lr")
        param, grad = _weight_decay(tx, group, param, grad)
        square_avg = _decayed_square(tx.read(state["square_avg"]), grad, alpha)
        tx.write(state["square_avg"], square_avg)
        if group["centered"]:
            grad_avg = _lerp(tx.read(state["grad_avg"]), grad, 1 - alpha)
            tx.write(state["grad_avg"], grad_avg)
            avg = sqrt(square_avg - grad_avg * grad_avg)  # addcmul(value=-1): the same bits, one op less
        else:
            avg = sqrt(square_avg)
        avg = avg + group["eps"]
        if group["momentum"] > 0:
            buf = tx.read(state["momentum_buffer"]) * tx.hyper(group, "momentum") + grad / avg
            tx.write(state["momentum_buffer"], buf)
            tx.write(p, param + (-lr) * buf)
        else:
            tx.write(p, param + (-lr) * grad / avg)
