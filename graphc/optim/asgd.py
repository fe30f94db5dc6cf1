"""Averaged SGD, as ``torch.optim.ASGD``."""
from __future__ import annotations

from ._per_parameter import maximum, _PerParameterOptimizer, _scalar_tensor, _weight_decay, where, _zeros_like
from .optimizer import _check_hyperparameters, _to_scalar

__all__ = ["ASGD"]


class ASGD(_PerParameterOptimizer):
    r"""Implements averaged SGD: :math:`\theta_t = \theta_{t-1}(1 - \lambda\eta_t) - \eta_t g_t`, with the
    average ``ax`` of the iterates (kept from step ``t0`` on),
    :math:`\eta_{t+1} = \gamma / (1 + \lambda\gamma t)^\alpha`
    and :math:`\mu_{t+1} = 1 / \max(1, t - t_0)`.

    Args: params, lr (1e-2), lambd (1e-4), alpha (0.75), t0 (1e6), weight_decay (0), foreach, maximize,
    differentiable, capturable.
    """

    _sparse_message = "ASGD does not support sparse gradients"
    _setstate_defaults = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}
    _scalar_state_keys = ("step", "eta", "mu")

    def __init__(self, params, lr=1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _check_hyperparameters(lr=lr, weight_decay=weight_decay)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        return {"step": _scalar_tensor(0.0), "eta": _scalar_tensor(float(_to_scalar(group["lr"]))), "mu": _scalar_tensor(1.0),
                "ax": _zeros_like(p)}

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        lr, lambd = tx.hyper(group, "lr"), group["lambd"]
        param, grad = _weight_decay(tx, group, param, grad)
        eta = tx.read(state["eta"])
        if not tx.tensors:
            eta = float(eta)
        param = param * (1 - lambd * eta)
        param = param + (-eta) * grad
        tx.write(p, param)
        mu = tx.read(state["mu"])
        ax = tx.read(state["ax"])
        if tx.tensors:
            tx.write(state["ax"], where(mu != 1, ax + (param - ax) * mu, param))
        else:
            mu = float(mu)
            tx.write(state["ax"], ax + (param - ax) * mu if mu != 1 else param)
        tx.write(state["eta"], lr / ((1 + lambd * lr * step) ** group["alpha"]))
        tx.write(state["mu"], 1 / maximum(1.0, step - group["t0"]))
