"""The autocast table: what each op does with its floating-point operands inside ``autocast``.

One entry per op (a primitive of ``graphc.ir`` or a composite of ``graphc.passes``), giving the
rule on ``"cpu"`` and on ``"cuda"``, transcribed from PyTorch's "Autocast Op Reference"
(``torch.amp`` documentation) and checked against ``torch.autocast("cpu")``
(tests/test_autocast.py):

- ``LOWER``: the operands run in the autocast dtype (bfloat16/float16): matmul, linear, conv ...
- ``FP32``: the operands run in float32 (losses, linear algebra, and on cuda softmax, exp, sum ...).
- ``PROMOTE``: the operands run in the widest floating type among them.
- None: the op is not on the device's lists and runs in its operands' dtypes (ordinary type
  promotion still applies, so ``bfloat16 + float32`` is float32, as in PyTorch).
- a function of the operands giving one of the above (a pool is on the CPU float32 list only
  when it is 3-d).

Only floating-point operands that are not float64 are cast ("eligible" in PyTorch's words).
``graphc.amp.autocast_mode`` applies the table, at the one dispatch point (``bind``) and where
composites are called. tests/test_autocast.py checks that every primitive and composite has an
entry here or in ``UNLISTED``.
"""
from __future__ import annotations

from graphc.ir import special_prims

LOWER, FP32, PROMOTE = "lower_precision_fp", "fp32", "promote"
# binary_cross_entropy under cuda autocast: PyTorch refuses it (its backward is unsafe in float16)
UNSAFE = "unsafe"


def _pool3d(args: tuple) -> str | None:
    """avg_pool3d, max_pool3d and adaptive_avg_pool3d are on the CPU float32 list, their 1-d and
    2-d forms on no list: the composite's second argument holds one size per pooled dimension."""
    return FP32 if len(args) > 1 and isinstance(args[1], (tuple, list)) and len(args[1]) == 3 else None


_ELEMENTWISE_FP32_ON_CUDA = (None, FP32)
_LINALG_FP32_ON_CPU = (FP32, None)

AUTOCAST_RULES: dict[str, tuple] = {
    # op:                         (cpu,      cuda)
    # -- lower precision: matmul covers PyTorch's matmul, mm, bmm, mv, dot, addmm, baddbmm, addbmm
    "matmul":                       (LOWER, LOWER),
    "linear":                       (LOWER, LOWER),
    "conv":                         (LOWER, LOWER),     # conv1d, conv2d, conv3d
    "conv_transpose":               (LOWER, LOWER),     # conv_transpose1d/2d/3d
    "prelu":                        (LOWER, LOWER),
    "scaled_dot_product_attention": (LOWER, LOWER),
    # -- float32: losses
    "mse_loss":                     (FP32, FP32),
    "l1_loss":                      (FP32, FP32),
    "smooth_l1_loss":               (FP32, FP32),
    "huber_loss":                   (FP32, FP32),
    "nll_loss":                     (FP32, FP32),
    "cross_entropy":                (FP32, FP32),
    "kl_div":                       (FP32, FP32),
    "binary_cross_entropy_with_logits": (FP32, FP32),
    "binary_cross_entropy":         (FP32, UNSAFE),
    # -- float32: reductions and distances
    "prod":                         (FP32, FP32),
    "cdist":                        (FP32, FP32),
    "sum":                          (None, FP32),
    "cumsum":                       (None, FP32),
    "cumprod":                      (None, FP32),
    "logsumexp":                    (None, FP32),
    "norm":                         (None, FP32),
    # -- float32 on cuda only: normalizations, softmax and pointwise functions
    "softmax":                      (None, FP32),
    "log_softmax":                  (None, FP32),
    "layer_norm":                   (None, FP32),
    "group_norm":                   (None, FP32),
    "softplus":                     (None, FP32),
    "exp":                          _ELEMENTWISE_FP32_ON_CUDA,
    "expm1":                        _ELEMENTWISE_FP32_ON_CUDA,
    "log":                          _ELEMENTWISE_FP32_ON_CUDA,
    "log10":                        _ELEMENTWISE_FP32_ON_CUDA,
    "log1p":                        _ELEMENTWISE_FP32_ON_CUDA,
    "log2":                         _ELEMENTWISE_FP32_ON_CUDA,
    "pow":                          _ELEMENTWISE_FP32_ON_CUDA,
    "acos":                         _ELEMENTWISE_FP32_ON_CUDA,
    "asin":                         _ELEMENTWISE_FP32_ON_CUDA,
    "cosh":                         _ELEMENTWISE_FP32_ON_CUDA,
    "sinh":                         _ELEMENTWISE_FP32_ON_CUDA,
    "tan":                          _ELEMENTWISE_FP32_ON_CUDA,
    "reciprocal":                   _ELEMENTWISE_FP32_ON_CUDA,
    "rsqrt":                        _ELEMENTWISE_FP32_ON_CUDA,
    "erfinv":                       _ELEMENTWISE_FP32_ON_CUDA,
    # -- float32 on cpu: linear algebra (linalg_* / cholesky / inverse / pinverse / qr / svd / eigh)
    "cholesky":                     _LINALG_FP32_ON_CPU,
    "inv":                          _LINALG_FP32_ON_CPU,
    "solve":                        _LINALG_FP32_ON_CPU,
    "pinv":                         _LINALG_FP32_ON_CPU,
    "qr_q":                         _LINALG_FP32_ON_CPU,
    "qr_r":                         _LINALG_FP32_ON_CPU,
    "svd_u":                        _LINALG_FP32_ON_CPU,
    "svd_vh":                       _LINALG_FP32_ON_CPU,
    "svdvals":                      _LINALG_FP32_ON_CPU,
    "eigh_vectors":                 _LINALG_FP32_ON_CPU,
    "eigvalsh":                     _LINALG_FP32_ON_CPU,
    "lstsq":                        _LINALG_FP32_ON_CPU,     # linalg_lstsq (its solution and rank)
    "lstsq_rank":                   _LINALG_FP32_ON_CPU,
    # -- float32 on cpu: 3-d pooling
    "avg_pool":                     (_pool3d, None),
    "max_pool":                     (_pool3d, None),
    "adaptive_avg_pool":            (_pool3d, None),
    # -- widest input type
    "concat":                       (PROMOTE, None),    # cat, stack
    "atan2":                        (None, PROMOTE),
    "scatter_add":                  (None, PROMOTE),
    "addcmul":                      (None, PROMOTE),
    "addcdiv":                      (None, PROMOTE),
}

# Ops on no autocast list of either device: they run in their operands' dtypes. Listed so that a
# new op has to be placed somewhere (the coverage test).
UNLISTED = frozenset("""
    abs add amax amin arange argmax argmin argsort atan bitwise_and bitwise_not bitwise_or bitwise_xor
    cast ceil collective composite copy cos cumargmax cumargmin det det_sign div eq erf exp2 expand floor
    floor_divide fold full fused gather ge gt index_add index_check isfinite isinf isnan le lgamma
    logabsdet logical_and logical_not logical_or logical_xor lt maximum minimum mul ne neg nonzero pad
    permute polygamma rand_uniform relu remainder reshape round scatter searchsorted sigmoid sign sin
    select slice slice_scatter sqrt stop_gradient sub take tanh trunc unfold where xlogy custom_vjp call
    batch_norm clamp cummax cummin elu embedding entr erfc fmod frac gelu glu hardsigmoid hardswish
    hardtanh leaky_relu lerp logaddexp logaddexp2 logcumsumexp logit logsigmoid max_dim mean min_dim
    mish silu sinc softsign square std var xlog1py
    real imag conj make_complex view_as_real view_as_complex fft_c2c fft_r2c fft_c2r
    lu_factor lu_pivots lu_permutation lu_solve ldl_factor ldl_pivots ldl_info ldl_solve
""".split()) | {p.name for p in special_prims.ALL}  # PyTorch keeps them off both lists too
