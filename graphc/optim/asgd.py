"""Averaged SGD, as ``torch.optim.ASGD``."""
from __future__ import annotations

from .optimizer import (Optimizer, _Transaction, _check_lr, _check_not_differentiable, _grad_array, _param_array,
                        _scalar_tensor, _tensorize_state_scalars, _to_scalar, _use_grad_for_differentiable,
                        _zeros_like)

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""Implements averaged SGD: :math:`\theta_t = \theta_{t-1}(1 - \lambda\eta_t) - \eta_t g_t`, with the
    average ``ax`` of the iterates (kept from step ``t0`` on),
    :math:`\eta_{t+1} = \gamma / (1 + \lambda\gamma t)^\alpha`
    and :math:`\mu_{t+1} = 1 / \max(1, t - t_0)`.

    Args: params, lr (1e-2), lambd (1e-4), alpha (0.75), t0 (1e6), weight_decay (0), foreach, maximize,
    differentiable, capturable.
    """

    def __init__(self, params, lr=1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        _check_not_differentiable(differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("foreach", None), ("maximize", False), ("differentiable", False),
                               ("capturable", False)):
                group.setdefault(key, value)
        _tensorize_state_scalars(self, ("step", "eta", "mu"))

    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform a single optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = self._run_closure(closure)
        tx = _Transaction(self)
        for group in self.param_groups:
            lr = float(_to_scalar(group["lr"]))
            lambd, alpha, t0 = group["lambd"], group["alpha"], group["t0"]
            weight_decay = _to_scalar(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                _param_array(p)
                grad = _grad_array(p, p.grad, "ASGD does not support sparse gradients", maximize=group["maximize"])
                param = tx.read(p)
                state = tx.state(p)
                if len(state) == 0:
                    state = tx.new_state(p, {"step": _scalar_tensor(0.0), "eta": _scalar_tensor(lr),
                                             "mu": _scalar_tensor(1.0), "ax": _zeros_like(p)})
                step_arr = tx.read(state["step"]) + 1
                tx.write(state["step"], step_arr)
                step = float(step_arr)
                if weight_decay != 0:
                    grad = grad + weight_decay * param
                eta = float(tx.read(state["eta"]))
                param = param * (1 - lambd * eta)
                param = param + (-eta) * grad
                tx.write(p, param)
                mu = float(tx.read(state["mu"]))
                ax = tx.read(state["ax"])
                tx.write(state["ax"], ax + (param - ax) * mu if mu != 1 else param)
                tx.write(state["eta"], lr / ((1 + lambd * lr * step) ** alpha))
                tx.write(state["mu"], 1 / max(1, step - t0))
        tx.commit()
        return loss
