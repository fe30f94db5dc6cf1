"""Adam and AdamW, as ``torch.optim.Adam`` / ``torch.optim.AdamW``."""
from __future__ import annotations

import numpy as np

from ..tensors import Tensor
from .optimizer import (Optimizer, _Transaction, _check_fused_foreach, _check_not_differentiable, _get_scalar_dtype,
                        _grad_array, _lerp, _param_array, _scalar_tensor, _to_scalar,
                        _use_grad_for_differentiable, _zeros_like)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
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

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        if isinstance(lr, Tensor):
            if foreach and not capturable:
                raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
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
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)
        if fused:
            _check_fused_foreach(fused, foreach, differentiable)
            self._step_supports_amp_scaling = True

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
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
            beta1, beta2 = (float(_to_scalar(b)) for b in group["betas"])
            lr = float(_to_scalar(group["lr"]))
            weight_decay = _to_scalar(group["weight_decay"])
            eps = group["eps"]
            amsgrad = group["amsgrad"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "Adam does not support sparse gradients, please consider "
                                   "SparseAdam instead", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = {"step": _scalar_tensor(0.0, _get_scalar_dtype(group["fused"])),
                             "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)}
                    if amsgrad:
                        state["max_exp_avg_sq"] = _zeros_like(p)
                    tx.new_state(p, state)
                step_t = state["step"]
                step_arr = tx.read(step_t) + 1
                tx.write(step_t, step_arr)
                step = float(step_arr)

                if weight_decay != 0:
                    if decoupled:
                        param = param * (1 - lr * weight_decay)
                    else:
                        grad = grad + weight_decay * param
                exp_avg = _lerp(tx.read(state["exp_avg"]), grad, 1 - beta1)
                exp_avg_sq = tx.read(state["exp_avg_sq"]) * beta2 + (1 - beta2) * grad * grad
                tx.write(state["exp_avg"], exp_avg)
                tx.write(state["exp_avg_sq"], exp_avg_sq)

                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2 ** 0.5
                if amsgrad:
                    if "max_exp_avg_sq" not in state:
                        raise KeyError("max_exp_avg_sq")
                    max_sq = np.maximum(tx.read(state["max_exp_avg_sq"]), exp_avg_sq)
                    tx.write(state["max_exp_avg_sq"], max_sq)
                    denom = np.sqrt(max_sq) / bias_correction2_sqrt + eps
                else:
                    denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
                tx.write(p, param + (-step_size) * exp_avg / denom)
        tx.commit()
        return loss


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
