"""Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``."""
from __future__ import annotations

from .optimizer import (Optimizer, _Transaction, _check_fused_foreach, _check_lr, _check_not_differentiable,
                        _grad_array, _param_array, _to_scalar, _use_grad_for_differentiable, _zeros_like)

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Implements stochastic gradient descent (optionally with momentum).

    For each parameter with a gradient :math:`g_t` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad (\text{if } \lambda \neq 0) \\
        b_t &\leftarrow g_t \text{ at } t = 1, \text{ else } \mu b_{t-1} + (1 - \tau) g_t
            \quad (\text{if } \mu \neq 0) \\
        g_t &\leftarrow g_t + \mu b_t \text{ (nesterov) or } b_t \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma g_t

    Args: params, lr (default 1e-3), momentum (0), dampening (0), weight_decay (0),
    nesterov (False), and keyword-only maximize, foreach, differentiable, fused (as PyTorch; foreach
    and fused select no different code path here).
    """

    def __init__(self, params, lr=1e-3, momentum: float = 0, dampening: float = 0, weight_decay=0,
                 nesterov: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        _check_lr(lr)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")

        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                    "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)
        if fused:
            self._step_supports_amp_scaling = True
            _check_fused_foreach(fused, foreach, differentiable)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

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
            weight_decay = _to_scalar(group["weight_decay"])
            momentum = group["momentum"]
            dampening = group["dampening"]
            nesterov = group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                param = tx.read(p)
                grad = _grad_array(p, p.grad, maximize=group["maximize"])
                if weight_decay != 0:
                    grad = grad + weight_decay * param
                if momentum != 0:
                    state = tx.state(p)
                    buf_t = state.get("momentum_buffer")
                    if buf_t is None:
                        buf_t = _zeros_like(p)
                        tx.new_state(p, {"momentum_buffer": buf_t})
                        buf = grad.copy()
                    else:
                        buf = tx.read(buf_t) * momentum + (1 - dampening) * grad
                    tx.write(buf_t, buf)
                    grad = grad + momentum * buf if nesterov else buf
                tx.write(p, param + (-lr) * grad)
        tx.commit()
        return loss
