"""Adafactor (Shazeer & Stern, 2018), as ``torch.optim.Adafactor``: Adam's second moment kept as a
row and a column factor for each matrix (memory O(n + m), not O(nm)), a relative step size and
update clipping; no first moment."""
from __future__ import annotations

from graphc.ir import dtypes as _dt

from ..tensors import Tensor
from ._per_parameter import (_lerp, _PerParameterOptimizer, _scalar_tensor, maximum, mean_over, minimum, rms, sqrt,
                             where, _zeros_like)

__all__ = ["Adafactor"]


def _lerp_by(start, end, weight):
    """``start.lerp(end, weight)`` for a weight that is a tensor in a compiled step (it follows the
    step count): both of PyTorch's formulas, picked elementwise, rather than a branch on its value."""
    if isinstance(weight, Tensor):
        diff = end - start
        return where(weight < 0.5, start + weight * diff, end - diff * (1 - weight))
    return _lerp(start, end, weight)


def _factor_zeros(p: Tensor, axis: int) -> Tensor:
    from .. import creation
    shape = list(p.shape)
    shape[axis] = 1
    return creation.zeros(*shape, dtype=p.dtype, device=p.device)


class Adafactor(_PerParameterOptimizer):
    r"""Implements Adafactor (PyTorch's variant).

    .. math::
        \rho_t = \min(\text{lr}, 1/\sqrt{t}),\quad \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\rho_t,
        \quad \hat\beta_{2t} = 1 - t^{c}

    For a matrix (the last two dimensions), the row and column means of :math:`g_t^2` are averaged
    into :math:`R_t, C_t` with weight :math:`t^{c}`; :math:`\hat V_t = R_t C_t / \max(\mathrm{mean}(R_t), \epsilon_1)`.
    A vector keeps :math:`V_t` whole. Then :math:`U_t = g_t / \sqrt{\max(\hat V_t, \epsilon_1^2)}` and
    :math:`\theta_t = \theta_{t-1}(1 - \text{lr}\,\lambda) - \alpha_t U_t / \max(1, \mathrm{RMS}(U_t)/d)`.

    Args: params, lr (1e-2), beta2_decay :math:`c` (-0.8), eps ((None, 1e-3): :math:`\epsilon_1`,
    None for the dtype's machine epsilon, and :math:`\epsilon_2`), d (1.0, the clipping threshold),
    weight_decay (0.0), keyword-only foreach, maximize.
    """

    _sparse_message = "Adafactor does not support sparse gradients"
    _setstate_defaults = {"foreach": None}
    _elementwise = False

    def __init__(self, params, lr=1e-2, beta2_decay: float = -0.8, eps=(None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach: bool | None = None, maximize: bool = False) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": False}
        super().__init__(params, defaults)

    def _init_state(self, group, p) -> dict:
        if p.dim() > 1:
            return {"step": _scalar_tensor(0.0), "row_var": _factor_zeros(p, -1), "col_var": _factor_zeros(p, -2)}
        return {"step": _scalar_tensor(0.0), "variance": _zeros_like(p)}

    def _update(self, tx, group, p, param, grad) -> None:
        state, step = self._counted_state(tx, group, p)
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(_dt.float_info(p.dtype).eps)
        lr = tx.hyper(group, "lr")
        weight = step ** group["beta2_decay"]  # 1 - beta2_t
        rho = minimum(lr, 1 / sqrt(step))
        alpha = maximum(eps2, rms(param)) * rho
        if group["weight_decay"] != 0:
            param = param * (1 - lr * group["weight_decay"])
        if p.dim() > 1:
            row_var = _lerp_by(tx.read(state["row_var"]), mean_over(grad * grad, -1), weight)
            col_var = _lerp_by(tx.read(state["col_var"]), mean_over(grad * grad, -2), weight)
            tx.write(state["row_var"], row_var)
            tx.write(state["col_var"], col_var)
            var_estimate = (row_var @ col_var) / maximum(mean_over(row_var, -2), eps1)
        else:
            var_estimate = _lerp_by(tx.read(state["variance"]), grad * grad, weight)
            tx.write(state["variance"], var_estimate)
        update = grad / sqrt(maximum(var_estimate, eps1 * eps1))
        denom = maximum(1.0, rms(update) / group["d"])
        tx.write(p, param - (alpha / denom) * update)
