"""Adagrad, as ``torch.optim.Adagrad``."""
from __future__ import annotations

from ._per_parameter import (_full_like, _get_scalar_dtype, _PerParameterOptimizer, _scalar_tensor, sqrt,
                             _weight_decay)
from .optimizer import _check_hyperparameters

__all__ = ["Adagrad"]


class Adagrad(_PerParameterOptimizer):
    r"""Implements the Adagrad algorithm.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad (\text{if } \lambda \neq 0) \\
        \tilde\gamma &\leftarrow \gamma / (1 + (t - 1)\eta) \\
        s_t &\leftarrow s_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)

    with :math:`s_0` = ``initial_accumulator_value``. As in PyTorch, the state (``step`` and
    ``sum``) of the parameters given to the constructor is created right away.

    Args: params, lr (1e-2), lr_decay (0), weight_decay (0), initial_accumulator_value (0),
    eps (1e-10), foreach, keyword-only maximize, differentiable, fused.
    """

    _setstate_defaults = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}

    def __init__(self, params, lr=1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        _check_hyperparameters(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                               initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(self._init_state(group, p))

    def share_memory(self) -> None:
        """No-op here (PyTorch moves the ``sum`` buffers to shared memory)."""

    def _init_state(self, group, p) -> dict:
        # from the defaults, so that parameters added after construction start as the others did
        return {"step": _scalar_tensor(0.0, _get_scalar_dtype(group["fused"])),
                "sum": _full_like(p, self.defaults["initial_accumulator_value"])}

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        param, grad = _weight_decay(tx, group, param, grad)
        clr = tx.hyper(group, "lr") / (1 + (step - 1) * group["lr_decay"])
        state_sum = tx.read(state["sum"]) + 1 * grad * grad
        tx.write(state["sum"], state_sum)
        std = sqrt(state_sum) + group["eps"]
        tx.write(p, param + (-clr) * grad / std)
