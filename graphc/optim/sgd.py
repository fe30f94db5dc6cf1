"""Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``."""
from __future__ import annotations

from ._per_parameter import _PerParameterOptimizer, _weight_decay, _zeros_like
from .optimizer import _check_hyperparameters

__all__ = ["SGD"]


class SGD(_PerParameterOptimizer):
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

    _setstate_defaults = {"nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
                          "fused": False}
    _scalar_state_keys = ()

    def __init__(self, params, lr=1e-3, momentum: float = 0, dampening: float = 0, weight_decay=0,
                 nesterov: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        # PyTorch's SGD tests ``< 0.0``: a NaN option passes
        _check_hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay, nan_ok=True)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                    "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _update(self, tx, group, p, param, grad) -> None:
        param, grad = _weight_decay(tx, group, param, grad)
        if group["momentum"] != 0:
            momentum = tx.hyper(group, "momentum")
            buf_t = tx.state(p).get("momentum_buffer")
            if buf_t is None:
                buf_t = _zeros_like(p)
                tx.new_state(p, {"momentum_buffer": buf_t})
                buf = grad.clone() if tx.tensors else grad.copy()
            else:
                dampening = group["dampening"]  # (x * 1.0 is x: no op for the default 0)
                buf = tx.read(buf_t) * momentum + (grad if dampening == 0 else (1 - dampening) * grad)
            tx.write(buf_t, buf)
            grad = grad + momentum * buf if group["nesterov"] else buf
        tx.write(p, param + (-tx.hyper(group, "lr")) * grad)
