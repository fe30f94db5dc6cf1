"""NAdam (Adam with Nesterov momentum), as ``torch.optim.NAdam``."""
from __future__ import annotations

from ._per_parameter import _PerParameterOptimizer, _scalar_tensor, sqrt, _weight_decay, _zeros_like
from .adam import _adam_moments
from .optimizer import _check_hyperparameters

__all__ = ["NAdam"]


class NAdam(_PerParameterOptimizer):
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

    _sparse_message = "NAdam does not support sparse gradients"
    _setstate_defaults = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                          "decoupled_weight_decay": False}
    _scalar_state_keys = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False) -> None:
        _check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, momentum_decay=momentum_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        return {"step": _scalar_tensor(0.0), "mu_product": _scalar_tensor(1.0), "exp_avg": _zeros_like(p),
                "exp_avg_sq": _zeros_like(p)}

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        beta1, beta2 = tx.hyper(group, "betas", 0), tx.hyper(group, "betas", 1)
        lr, momentum_decay = tx.hyper(group, "lr"), group["momentum_decay"]
        bias_correction2 = 1 - beta2 ** step
        param, grad = _weight_decay(tx, group, param, grad, group["decoupled_weight_decay"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        mu_product = tx.read(state["mu_product"]) * mu
        tx.write(state["mu_product"], mu_product)
        if not tx.tensors:
            mu_product = float(mu_product)
        exp_avg, exp_avg_sq = _adam_moments(tx, group, state, grad, beta1, beta2)
        mu_product_next = mu_product * mu_next
        # PyTorch's two steps along grad and exp_avg over sqrt(v / bc2) + eps, as one fraction
        # with both sides scaled by sqrt(bc2): one division per element instead of three
        bias_correction2_sqrt = bias_correction2 ** 0.5
        grad_factor = -lr * (1.0 - mu) / (1.0 - mu_product) * bias_correction2_sqrt
        avg_factor = -lr * mu_next / (1.0 - mu_product_next) * bias_correction2_sqrt
        denom = sqrt(exp_avg_sq) + group["eps"] * bias_correction2_sqrt
        tx.write(p, param + (grad_factor * grad + avg_factor * exp_avg) / denom)
