"""Adam and AdamW, as ``torch.optim.Adam`` / ``torch.optim.AdamW``."""
from __future__ import annotations

from ..tensors import Tensor
from ._per_parameter import (_decayed_square, _get_scalar_dtype, _lerp, _PerParameterOptimizer, _scalar_tensor,
                             _weight_decay, _zeros_like, maximum, sqrt)
from ._transaction import _Transaction
from .optimizer import _check_hyperparameters

__all__ = ["Adam", "AdamW"]


def _adam_moments(tx: _Transaction, group: dict, state: dict, grad, beta1, beta2) -> tuple:
    """Adam's first and second moment estimates (``exp_avg``, ``exp_avg_sq``), staged and returned."""
    exp_avg = _lerp(tx.read(state["exp_avg"]), grad, 1 - beta1, small=_small_lerp_weight(tx, group))
    exp_avg_sq = _decayed_square(tx.read(state["exp_avg_sq"]), grad, beta2)
    tx.write(state["exp_avg"], exp_avg)
    tx.write(state["exp_avg_sq"], exp_avg_sq)
    return exp_avg, exp_avg_sq


def _small_lerp_weight(tx: _Transaction, group: dict) -> bool:
    """Whether ``1 - beta1`` (the first moment's lerp weight) is below 0.5: which of lerp's two
    formulas PyTorch uses."""
    return tx.hyper_test(group, "betas", 0, lambda b: abs(1 - b) < 0.5)


class Adam(_PerParameterOptimizer):
    r"""Implements the Adam algorithm.

    .. math::
        g_t &\leftarrow \nabla_\theta f_t(\theta_{t-1}) \ (\text{negated if maximize}) \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \ \text{(L2, default) or }
            \theta_{t-1} \leftarrow \theta_{t-1}(1 - \gamma\lambda) \ \text{(decoupled)} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &\leftarrow \max(\hat v_{t-1}, v_t) \ \text{(amsgrad) else } v_t \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Args: params, lr (1e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), amsgrad (False),
    keyword-only foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay.
    State per parameter: ``step`` (0-d float tensor), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.
    """

    _sparse_message = "Adam does not support sparse gradients, please consider SparseAdam instead"
    _setstate_defaults = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                          "differentiable": False, "decoupled_weight_decay": False, "fused": None}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        if isinstance(lr, Tensor) and foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        _check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        for i in (0, 1):
            if isinstance(betas[i], Tensor):
                if not capturable and foreach:
                    raise ValueError(f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True")
                if betas[i].numel() != 1:
                    raise ValueError(f"Tensor betas[{i}] must be 1-element")
        betas = tuple(b.reshape(()) if isinstance(b, Tensor) and b.dim() != 0 else b for b in betas)

        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        state = {"step": _scalar_tensor(0.0, _get_scalar_dtype(group["fused"])),
                 "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros_like(p)
        return state

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        beta1, beta2 = tx.hyper(group, "betas", 0), tx.hyper(group, "betas", 1)
        lr = tx.hyper(group, "lr")
        param, grad = _weight_decay(tx, group, param, grad, group["decoupled_weight_decay"])
        exp_avg, exp_avg_sq = _adam_moments(tx, group, state, grad, beta1, beta2)
        if group["amsgrad"]:
            exp_avg_sq = maximum(tx.read(state["max_exp_avg_sq"]), exp_avg_sq)
            tx.write(state["max_exp_avg_sq"], exp_avg_sq)
        # PyTorch's ``p - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`` with both sides of the
        # fraction scaled by sqrt(bc2) (bc: the bias corrections): the scalars fold into two
        # factors computed once, so each element costs one division and 13 ops, not two and 15
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        step_size = lr / (1 - beta1 ** step)
        denom = sqrt(exp_avg_sq) + group["eps"] * bias_correction2_sqrt
        tx.write(p, param + (-step_size * bias_correction2_sqrt) * exp_avg / denom)


class AdamW(Adam):
    r"""Implements AdamW: Adam with decoupled weight decay
    (:math:`\theta_{t-1} \leftarrow \theta_{t-1} - \gamma\lambda\theta_{t-1}` before the Adam update;
    the decay never enters the moment estimates). Default ``weight_decay`` is 1e-2.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
