"""Muon (MomentUm Orthogonalized by Newton-Schulz; Jordan et al., 2024), as ``torch.optim.Muon``:
SGD momentum whose update for each 2-D parameter is replaced by its nearest semi-orthogonal
matrix, approximated by a few quintic Newton-Schulz iterations in bfloat16."""
from __future__ import annotations

import math

from graphc.ir import dtypes as _dt

from ..tensors import Tensor
from ._per_parameter import _lerp, _PerParameterOptimizer, _zeros_like

__all__ = ["Muon"]

EPS = 1e-7
DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5


def _zeropower_via_newtonschulz(grad: Tensor, ns_coefficients, ns_steps: int, eps: float) -> Tensor:
    """PyTorch's orthogonalization: normalize, then ``X <- a X + (b G + c G^2) X`` with ``G = X X^T``,
    ``ns_steps`` times, in bfloat16 (on the wide orientation: X has no more rows than columns)."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    x = grad.to(_dt.bfloat16)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = _addmm_bf16(x, _addmm_bf16(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def _addmm_bf16(input: Tensor, mat1: Tensor, mat2: Tensor, beta: float, alpha: float = 1.0) -> Tensor:
    """bfloat16 ``addmm`` as PyTorch's CPU kernel computes it: the product and the sum in float32,
    rounded to bfloat16 once."""
    f32 = _dt.float32
    return (beta * input.to(f32) + alpha * (mat1.to(f32) @ mat2.to(f32))).to(_dt.bfloat16)


def _adjust_lr(lr, adjust_lr_fn: str | None, param_shape) -> float:
    """The step size for a (rows, cols) matrix: "original" (default) scales by sqrt(max(1, rows/cols));
    "match_rms_adamw" by 0.2 sqrt(max(rows, cols)), so the update's RMS matches AdamW's."""
    rows, cols = param_shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(_PerParameterOptimizer):
    r"""Implements Muon, for 2-D parameters (use another optimizer for biases, norms, embeddings).

    .. math::
        B_t = \mu B_{t-1} + (1-\mu) g_t,\quad U_t = \mathrm{NS}(g_t + \mu (B_t - g_t) \text{ (nesterov) or } B_t),
        \quad \theta_t = \theta_{t-1}(1 - \gamma\lambda) - \gamma' U_t

    Args: params, lr (1e-3), weight_decay (0.1), momentum (0.95), nesterov (True), ns_coefficients
    ((3.4445, -4.7750, 2.0315)), eps (1e-7), ns_steps (5), adjust_lr_fn (None: "original", or
    "match_rms_adamw").
    """

    _sparse_message = "Muon does not support sparse gradients"
    _scalar_state_keys = ()
    _elementwise = False

    def __init__(self, params, lr=1e-3, weight_decay: float = 0.1, momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), eps: float = EPS, ns_steps: int = DEFAULT_NS_STEPS,
                 adjust_lr_fn: str | None = None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
                    "adjust_lr_fn": adjust_lr_fn, "maximize": False, "differentiable": False}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    def _update(self, tx, group, p, param, grad) -> None:
        state = tx.state(p)
        if len(state) == 0:
            state = tx.new_state(p, {"momentum_buffer": _zeros_like(p)})
        momentum = tx.hyper(group, "momentum")
        buf = _lerp(tx.read(state["momentum_buffer"]), grad, 1 - momentum,
                    small=tx.hyper_test(group, "momentum", None, lambda m: abs(1 - m) < 0.5))
        tx.write(state["momentum_buffer"], buf)
        update = buf
        if group["nesterov"]:
            update = _lerp(grad, buf, momentum, small=tx.hyper_test(group, "momentum", None, lambda m: abs(m) < 0.5))
        # the orthogonalization is written with tensor ops (bfloat16 matmuls); eagerly on a tensor view
        # of the update array, in a compiled step on the update itself
        ortho = _zeropower_via_newtonschulz(update if tx.tensors else Tensor._make(update), group["ns_coefficients"],
                                            group["ns_steps"], group["eps"]).to(p.dtype)
        lr = tx.hyper(group, "lr")
        step = _adjust_lr(lr, group["adjust_lr_fn"], tuple(p.shape))
        tx.write(p, param * (1 - lr * group["weight_decay"]) - step * (ortho if tx.tensors else ortho._data))
