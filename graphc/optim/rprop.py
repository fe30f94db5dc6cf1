"""Rprop (resilient backpropagation), as ``torch.optim.Rprop``."""
from __future__ import annotations

from ._per_parameter import clip, _full_like, _PerParameterOptimizer, _scalar_tensor, sign, where, _zeros_like
from .optimizer import _check_hyperparameters, _to_scalar

__all__ = ["Rprop"]


class Rprop(_PerParameterOptimizer):
    r"""Implements Rprop: per-element step sizes grow by ``etaplus`` while the gradient keeps its sign,
    shrink by ``etaminus`` when it flips (and that element is not moved this step), clamped to
    ``step_sizes``; the update is :math:`-\mathrm{sign}(g_t)\,\eta_t`.

    Args: params, lr (1e-2), etas ((0.5, 1.2)), step_sizes ((1e-6, 50)), keyword-only capturable,
    foreach, maximize, differentiable.
    """

    _sparse_message = "Rprop does not support sparse gradients"
    _setstate_defaults = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_hyperparameters(lr=lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        return {"step": _scalar_tensor(0.0), "prev": _zeros_like(p),
                "step_size": _full_like(p, _to_scalar(group["lr"]))}

    def _update(self, tx, group, p, param, grad) -> None:
        state, _ = self._counted_state(tx, group, p)
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        prod = grad * tx.read(state["prev"])
        factor = where(prod > 0, etaplus, where(prod < 0, etaminus, 1.0))
        factor = factor.to(param.dtype) if tx.tensors else factor.astype(param.dtype)
        step_size = clip(tx.read(state["step_size"]) * factor, step_size_min, step_size_max)
        zero = 0.0 if tx.tensors else grad.dtype.type(0)  # a scalar: device arrays take no host arrays
        grad = where(prod < 0, zero, grad)
        tx.write(state["step_size"], step_size)
        tx.write(p, param + (-1) * sign(grad) * step_size)
        tx.write(state["prev"], grad)
