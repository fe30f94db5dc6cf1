"""Rprop (resilient backpropagation), as ``torch.optim.Rprop``."""
from __future__ import annotations

import numpy as np

from .optimizer import (Optimizer, _Transaction, _check_lr, _check_not_differentiable, _full_like, _grad_array,
                        _param_array, _scalar_tensor, _tensorize_state_scalars, _to_scalar,
                        _use_grad_for_differentiable, _zeros_like)

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Implements Rprop: per-element step sizes grow by ``etaplus`` while the gradient keeps its sign,
    shrink by ``etaminus`` when it flips (and that element is not moved this step), clamped to
    ``step_sizes``; the update is :math:`-\mathrm{sign}(g_t)\,\eta_t`.

    Args: params, lr (1e-2), etas ((0.5, 1.2)), step_sizes ((1e-6, 50)), keyword-only capturable,
    foreach, maximize, differentiable.
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("foreach", None), ("maximize", False), ("differentiable", False),
                               ("capturable", False)):
                group.setdefault(key, value)
        _tensorize_state_scalars(self)

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = self._run_closure(closure)
        tx = _Transaction(self)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "Rprop does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0), "prev": _zeros_like(p),
                                             "step_size": _full_like(p, _to_scalar(group["lr"]))})
                tx.write(state["step"], tx.read(state["step"]) + 1)
                prod = grad * tx.read(state["prev"])
                sign = np.where(prod > 0, etaplus, np.where(prod < 0, etaminus, 1.0)).astype(param.dtype)
                step_size = np.clip(tx.read(state["step_size"]) * sign, step_size_min, step_size_max)
                grad = np.where(prod < 0, np.zeros((), dtype=grad.dtype), grad)
                tx.write(state["step_size"], step_size)
                tx.write(p, param + (-1) * np.sign(grad) * step_size)
                tx.write(state["prev"], grad)
        tx.commit()
        return loss
