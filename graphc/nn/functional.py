"""graphc.nn.functional: PyTorch's functional API. Arguments are checked and normalized here;
the math is in the composites of ``graphc.passes`` (or primitives directly)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.shapes import wrap_dim
from graphc.passes.nn_decompositions import pool_padding

from .. import creation, math_ops, shape_ops
from .. import random as grandom
from ..autograd import grad_mode
from ..math_ops import call_composite
from ..tensors import Tensor, device_tensor, host_array


def _tuple(v, n: int, name: str = "argument") -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return tuple(int(v[0]) for _ in range(n))
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values")
        return tuple(int(x) for x in v)
    return (int(v),) * n




def _scalar(dtype) -> str:
    """PyTorch's ScalarType name ('Float', 'Long', ...) used in its error messages."""
    return dtype.scalar_name


def _check_params_dtype(input: Tensor, *params) -> None:
    """CPU norm kernels: float32/float64 inputs need parameters and statistics of the same dtype;
    float16/bfloat16 inputs take those of their own dtype or float32 (PyTorch's mixed-type kernels)."""
    if not input.dtype.is_floating_point:
        return
    allowed = (input.dtype, dt.float32) if input.dtype.is_low_precision else (input.dtype,)
    for p in params:
        if p is not None and p.dtype not in allowed:
            want = dt.float32 if input.dtype.is_low_precision else input.dtype
            raise RuntimeError(f"mixed dtype (CPU): expect parameter to have scalar type of {_scalar(want)}")


def _check_float(x: Tensor, fn: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' must be Tensor, not {type(x).__name__}")


# ---- activations ----------------------------------------------------------------------------

def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("leaky_relu", input, negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("elu", input, alpha))


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite(
        "elu", input, 1.6732632423543772, 1.0507009873554805))


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("elu", input, alpha, 1.0, 1.0 / alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return call_composite("gelu", input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("silu", input))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("mish", input))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return call_composite("softplus", input, beta, threshold)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _maybe_inplace(input, inplace, lambda: call_composite("hardtanh", input, min_val, max_val))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("hardsigmoid", input))


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: call_composite("hardswish", input))


def logsigmoid(input: Tensor) -> Tensor:
    return call_composite("logsigmoid", input)


def softsign(input: Tensor) -> Tensor:
    return call_composite("softsign", input)


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def glu(input: Tensor, dim: int = -1) -> Tensor:
    d = wrap_dim(dim, input.ndim)
    if input.shape[d] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    return call_composite("glu", input, d)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    return call_composite("prelu", input, weight)


def softmin(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    return math_ops.softmax(-input, _default_dim(input, dim, "softmin"), dtype)


def _default_dim(input, dim, name):
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                      "include dim=X as an argument.", UserWarning, stacklevel=3)
        return 0 if input.ndim in (0, 1, 3) else 1
    return dim


def _softmax_public(input, dim=None, _stacklevel=3, dtype=None):
    return math_ops.softmax(input, _default_dim(input, dim, "softmax"), dtype)


def _log_softmax_public(input, dim=None, _stacklevel=3, dtype=None):
    return math_ops.log_softmax(input, _default_dim(input, dim, "log_softmax"), dtype)


def _maybe_inplace(input: Tensor, inplace: bool, compute):
    if not inplace:
        return compute()
    from ..inplace import inplace as run_inplace
    return run_inplace(input, compute)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: math_ops.where(input > threshold, input, value))


# ---- linear, embedding, dropout -------------------------------------------------------------

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    if input.shape[-1] != weight.shape[-1]:
        rows = int(np.prod(input.shape[:-1])) if input.ndim > 1 else 1
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and "
            f"{weight.shape[-1]}x{weight.shape[0] if weight.ndim == 2 else 1})")
    return math_ops.linear(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    # y_k = x1^T W_k x2 + b_k
    y = math_ops.einsum("bi,kij,bj->bk", input1.reshape(-1, input1.shape[-1]), weight,
                        input2.reshape(-1, input2.shape[-1]))
    y = y.reshape(*input1.shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm=None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    if input.dtype.is_floating_point:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar "
                           f"types: Long, Int; but got {input.type()} instead (while checking arguments for embedding)")
    if padding_idx is not None:
        if not -weight.shape[0] <= padding_idx < weight.shape[0]:
            raise AssertionError("Padding_idx must be within num_embeddings")
        if padding_idx < 0:
            padding_idx += weight.shape[0]
    if input.numel() and _has_values(input) and (
            int(input._data.min()) < 0 or int(input._data.max()) >= weight.shape[0]):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        with grad_mode.no_grad():
            rows = np.unique(input._data)
            norms = np.linalg.norm(weight._data[rows], ord=norm_type, axis=1, keepdims=True)
            scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
            weight._data[rows] *= scale.astype(weight._data.dtype)
            weight._version.value += 1
    return call_composite("embedding", weight, input, padding_idx)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    if tensor.dtype is not dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes != -1 and not _has_values(tensor):  # traced: num_classes given, no value checks
        return P.cast(P.eq(P.reshape(tensor, shape=tuple(tensor.shape) + (1,)),
                           creation.arange(num_classes, device=tensor.device)), dtype=dt.int64)
    data = tensor._data
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    if data.size and (data.min() < 0 or data.max() >= num_classes):
        raise RuntimeError("Class values must be smaller than num_classes." if data.size and data.max() >= num_classes
                           else "Class values must be non-negative.")
    return P.cast(P.eq(P.reshape(tensor, shape=tuple(tensor.shape) + (1,)),
                       creation.arange(num_classes, device=tensor.device)), dtype=dt.int64)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _dropout(input, p, training, inplace, 0)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _dropout(input, p, training, inplace, 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _dropout(input, p, training, inplace, 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _dropout(input, p, training, inplace, 3)


def _dropout(input: Tensor, p: float, training: bool, inplace: bool, nsp: int) -> Tensor:
    """Dropout with one mask value per element of all but the last ``nsp`` dims (0: plain dropout)."""
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return _maybe_inplace(input, inplace, lambda: input * 0)
    shape = tuple(input.shape[:-nsp]) + (1,) * nsp if nsp else tuple(input.shape)
    mask = (grandom.uniform_tensor(shape, input.dtype, input.device) >= p).to(input.dtype) / (1 - p)
    return _maybe_inplace(input, inplace, lambda: input * mask)


def _alpha_dropout(input, p: float, mask_shape: tuple) -> Tensor:
    """SELU-preserving dropout: dropped entries (one draw per element of ``mask_shape``,
    broadcast over input) become SELU's negative saturation, then all are rescaled."""
    alpha = -1.7580993408473766
    mask = (grandom.uniform_tensor(mask_shape, input.dtype, input.device) >= p).to(input.dtype)
    a = (1 - p + p * alpha ** 2 * (1 - p)) ** -0.5
    b = -a * alpha * p
    return (input * mask + alpha * (1 - mask)) * a + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    if not training or p == 0:
        return input
    return _alpha_dropout(input, p, tuple(input.shape))


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout of whole channels: one draw per (N, C), kept across the other dims."""
    if input.dim() < 2:
        raise RuntimeError("Feature alpha dropout requires at least 2 dimensions in the input")
    if not training or p == 0:
        return input
    return _alpha_dropout(input, p, tuple(input.shape[:2]) + (1,) * (input.dim() - 2))


# ---- convolution and pooling ----------------------------------------------------------------

def _conv_padding(padding, nsp, kernel, dilation, stride, name):
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in range(nsp))
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"Invalid padding string '{padding}', should be one of {{'same', 'valid'}}")
    return tuple((p, p) for p in _tuple(padding, nsp, "padding"))


def _batchify(input: Tensor, nsp: int, name: str):
    if input.ndim == nsp + 1:
        return shape_ops.unsqueeze(input, 0), True
    if input.ndim != nsp + 2:
        raise RuntimeError(
            f"Expected {nsp + 1}D (unbatched) or {nsp + 2}D (batched) input to {name}, but got input of size: "
            f"{list(input.shape)}")
    return input, False


def _conv(input, weight, bias, stride, padding, dilation, groups, nsp, name):
    x, unbatched = _batchify(input, nsp, name)
    if weight.ndim != nsp + 2:
        raise RuntimeError(f"weight should have {nsp + 2} dimensions for {name}, got {weight.ndim}")
    stride, dilation = _tuple(stride, nsp, "stride"), _tuple(dilation, nsp, "dilation")
    kernel = tuple(weight.shape[2:])
    pads = _conv_padding(padding, nsp, kernel, dilation, stride, name)
    c = x.shape[1]
    if c % groups or weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected input channels ({c}) and out channels "
                           f"({weight.shape[0]}) to be divisible by groups")
    if weight.shape[1] * groups != c:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(input.shape)} "
            f"to have {weight.shape[1] * groups} channels, but got {c} channels instead")
    for i in range(nsp):
        eff = dilation[i] * (kernel[i] - 1) + 1
        if x.shape[2 + i] + pads[i][0] + pads[i][1] < eff:
            raise RuntimeError(
                f"Calculated padded input size per channel: ({' x '.join(str(x.shape[2 + j] + sum(pads[j])) for j in range(nsp))}). "
                f"Kernel size: ({' x '.join(str(k) for k in kernel)}). Kernel size can't be greater than actual input size")
    y = call_composite("conv", x, weight, bias, stride, pads, dilation, groups)
    return shape_ops.squeeze(y, 0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nsp, name):
    x, unbatched = _batchify(input, nsp, name)
    stride, dilation = _tuple(stride, nsp, "stride"), _tuple(dilation, nsp, "dilation")
    pad = _tuple(padding, nsp, "padding")
    out_pad = _tuple(output_padding, nsp, "output_padding")
    for op, s, d in zip(out_pad, stride, dilation):
        if op >= s and op >= d:
            raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                               f"output_padding={list(out_pad)}, stride={list(stride)}, dilation={list(dilation)}")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    y = call_composite("conv_transpose", x, weight, bias, stride, tuple((p, p) for p in pad), out_pad, groups, dilation)
    return shape_ops.squeeze(y, 0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2, "conv_transpose2d")


def _pool_args(kernel_size, stride, padding, dilation, nsp):
    k = _tuple(kernel_size, nsp, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _tuple(stride, nsp, "stride")
    p = _tuple(padding, nsp, "padding")
    d = _tuple(dilation, nsp, "dilation")
    for pi, ki in zip(p, k):
        if pi > ki // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={pi}, "
                               f"kernel_size={ki} and dilation=1")
    return k, s, p, d


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nsp, name):
    x, unbatched = _batchify(input, nsp, name)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, nsp)
    pads = pool_padding(tuple(x.shape[2:]), k, s, p, d, ceil_mode)
    y = call_composite("max_pool", x, k, s, pads, d)
    if return_indices:
        idx = _max_pool_indices(x, k, s, pads, d)
        if unbatched:
            return shape_ops.squeeze(y, 0), shape_ops.squeeze(idx, 0)
        return y, idx
    return shape_ops.squeeze(y, 0) if unbatched else y


def _max_pool_indices(x, k, s, pads, d):
    """Flat input positions of each window's maximum (PyTorch's return_indices), found on the host."""
    nsp = len(k)
    cols = host_array(P.unfold(x.detach(), kernel=k, stride=s, padding=pads, dilation=d, value=-math.inf)._data)
    lead = cols.shape[:2 + nsp]
    windows = cols.reshape(lead + (-1,))
    arg = windows.argmax(-1)
    if x.dtype.is_floating_point:  # PyTorch's rule: a window's last NaN (argmax finds the first)
        nan = np.isnan(windows)
        arg = np.where(nan.any(-1), windows.shape[-1] - 1 - nan[..., ::-1].argmax(-1), arg)
    koff = np.unravel_index(arg, k)
    grids = np.indices(lead[2:], sparse=False)
    flat = np.zeros(lead, dtype=np.int64)
    for i in range(nsp):
        pos = grids[i][None, None] * s[i] - pads[i][0] + koff[i] * d[i]
        flat = flat * x.shape[2 + i] + pos
    return device_tensor(flat.astype(np.int64), x)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nsp, name):
    x, unbatched = _batchify(input, nsp, name)
    k, s, p, d = _pool_args(kernel_size, stride, padding, 1, nsp)
    pads = pool_padding(tuple(x.shape[2:]), k, s, p, d, ceil_mode)
    y = call_composite("avg_pool", x, k, s, pads, count_include_pad, divisor_override, p)
    return shape_ops.squeeze(y, 0) if unbatched else y


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2, "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3, "avg_pool3d")


def _adaptive_avg(input, output_size, nsp, name):
    x, unbatched = _batchify(input, nsp, name)
    out = tuple(x.shape[2 + i] if o is None else int(o) for i, o in enumerate(_sizes(output_size, nsp)))
    y = call_composite("adaptive_avg_pool", x, out)
    return shape_ops.squeeze(y, 0) if unbatched else y


def _sizes(output_size, nsp):
    if isinstance(output_size, (list, tuple)):
        return tuple(output_size)
    return (output_size,) * nsp


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


def _adaptive_max(input, output_size, return_indices, nsp, name):
    import itertools
    x, unbatched = _batchify(input, nsp, name)
    sp = tuple(x.shape[2:])
    out = tuple(sp[i] if o is None else int(o) for i, o in enumerate(_sizes(output_size, nsp)))
    bounds = [[((j * sp[i]) // out[i], -(-((j + 1) * sp[i]) // out[i])) for j in range(out[i])] for i in range(nsp)]
    vals = []
    idx = np.zeros(tuple(x.shape[:2]) + out, dtype=np.int64)
    data = host_array(x._data) if return_indices else None  # the argmax positions are found on the host
    for pos in itertools.product(*(range(o) for o in out)):
        win = tuple(slice(*bounds[i][pos[i]]) for i in range(nsp))
        vals.append(x[(slice(None), slice(None)) + win].flatten(2).max(dim=2).values)
        if return_indices:
            w = data[(slice(None), slice(None)) + win]
            arg = w.reshape(w.shape[:2] + (-1,)).argmax(-1)
            local = np.unravel_index(arg, w.shape[2:])
            flat = np.zeros(arg.shape, dtype=np.int64)
            for i in range(nsp):
                flat = flat * sp[i] + local[i] + bounds[i][pos[i]][0]
            idx[(slice(None), slice(None)) + pos] = flat
    y = shape_ops.stack(vals, -1).reshape(*x.shape[:2], *out)
    if unbatched:
        y = shape_ops.squeeze(y, 0)
        idx = idx[0]
    return (y, device_tensor(idx, x)) if return_indices else y


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive_max(input, output_size, return_indices, 3, "adaptive_max_pool3d")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: (N, C, H, W) -> (N, C*kh*kw, L), as torch.nn.functional.unfold."""
    x, unbatched = _batchify(input, 2, "unfold")
    k, d = _tuple(kernel_size, 2), _tuple(dilation, 2)
    p, s = _tuple(padding, 2), _tuple(stride, 2)
    cols = P.unfold(x, kernel=k, stride=s, padding=tuple((q, q) for q in p), dilation=d)
    n, c, oh, ow = cols.shape[:4]
    cols = P.permute(cols, dims=(0, 1, 4, 5, 2, 3))
    y = P.reshape(cols, shape=(n, c * k[0] * k[1], oh * ow))
    return shape_ops.squeeze(y, 0) if unbatched else y


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im, the inverse layout of ``unfold`` (overlapping values are summed)."""
    x, unbatched = (shape_ops.unsqueeze(input, 0), True) if input.ndim == 2 else (input, False)
    size, k = _tuple(output_size, 2), _tuple(kernel_size, 2)
    d, p, s = _tuple(dilation, 2), _tuple(padding, 2), _tuple(stride, 2)
    pads = tuple((q, q) for q in p)
    oh, ow = ((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))
    n, ckk, L = x.shape
    if L != oh * ow:
        raise RuntimeError(f"Given output_size={list(size)}, kernel_size={list(k)}, dilation={list(d)}, "
                           f"padding={list(p)}, stride={list(s)}, expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks {oh} * {ow} = {oh * ow}, but got "
                           f"input.size(2)={L}.")
    c = ckk // (k[0] * k[1])
    cols = P.permute(P.reshape(x, shape=(n, c, k[0], k[1], oh, ow)), dims=(0, 1, 4, 5, 2, 3))
    y = P.fold(cols, size=size, kernel=k, stride=s, padding=pads, dilation=d)
    return shape_ops.squeeze(y, 0) if unbatched else y


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    pad = tuple(int(v) for v in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise RuntimeError("Padding length must be divisible by 2" if len(pad) % 2 else
                           "Padding length should be less than or equal to two times the input dimension "
                           f"but got padding length {len(pad)} and input of dimension {input.ndim}")
    npairs = len(pad) // 2
    pairs = [(0, 0)] * (input.ndim - npairs) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(npairs))]
    if mode == "constant":
        x = input
        # negative padding crops
        if any(lo < 0 or hi < 0 for lo, hi in pairs):
            index = tuple((max(0, -lo), s - max(0, -hi), 1) for (lo, hi), s in zip(pairs, input.shape))
            x = P.slice(x, index=index)
            pairs = [(max(0, lo), max(0, hi)) for lo, hi in pairs]
        return P.pad(x, pads=tuple(pairs), value=0.0 if value is None else value)
    if mode in ("reflect", "replicate", "circular"):
        x = input
        for d, (lo, hi) in enumerate(pairs):
            if lo == 0 and hi == 0:
                continue
            n = x.shape[d]
            if mode == "reflect":
                if lo >= n or hi >= n:
                    raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input "
                                       f"dimension, but got: padding ({lo}, {hi}) at dimension {d} of input {list(input.shape)}")
                idx = list(range(lo, 0, -1)) + list(range(n)) + list(range(n - 2, n - 2 - hi, -1))
            elif mode == "replicate":
                idx = [0] * lo + list(range(n)) + [n - 1] * hi
            else:
                idx = [i % n for i in range(-lo, n + hi)]
            x = P.take(x, device_tensor(np.asarray(idx, dtype=np.int64), x), axis=d)
        return x
    raise NotImplementedError(f"pad mode {mode!r} is not supported")


def affine_grid(theta: Tensor, size, align_corners=None) -> Tensor:
    """The (N, H, W, 2) sampling grid of 2-d affine maps ``theta`` (N, 2, 3), in [-1, 1] coordinates
    (for grid_sample; the spatial transformer networks' first half)."""
    if align_corners is None:
        align_corners = False
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3) or len(size) != 4:
        raise ValueError("Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                         f"{tuple(size)}. Got {tuple(theta.shape)}.")
    n, _, h, w = size

    def coords(k: int):
        if k <= 1:
            return creation.zeros(k, dtype=theta.dtype, device=theta.device)
        c = creation.linspace(-1, 1, k, dtype=theta.dtype, device=theta.device)
        return c if align_corners else c * ((k - 1) / k)
    x = coords(w).reshape(1, w).expand(h, w)
    y = coords(h).reshape(h, 1).expand(h, w)
    base = shape_ops.stack([x, y, creation.ones(h, w, dtype=theta.dtype, device=theta.device)], -1)  # (H, W, 3)
    grid = math_ops.matmul(base.reshape(1, h * w, 3), theta.transpose(1, 2))  # (N, H*W, 2)
    return grid.reshape(n, h, w, 2)


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners=None) -> Tensor:
    """``input`` (N, C, H, W) sampled at ``grid`` (N, Ho, Wo, 2) of (x, y) in [-1, 1]; bilinear or
    nearest, zeros or border padding. Differentiable in both (gathers and the bilinear weights)."""
    if align_corners is None:
        align_corners = False
    if mode not in ("bilinear", "nearest"):
        raise NotImplementedError(f"grid_sample(mode={mode!r}) is not supported by graphc; use 'bilinear' or 'nearest'")
    if padding_mode not in ("zeros", "border"):
        raise NotImplementedError(f"grid_sample(padding_mode={padding_mode!r}) is not supported by graphc; "
                                  "use 'zeros' or 'border'")
    if input.dim() != 4 or grid.dim() != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise RuntimeError("grid_sample(): expected 4D input (N, C, H, W) and grid (N, H_out, W_out, 2) with the "
                           f"same batch size, but got input {tuple(input.shape)} and grid {tuple(grid.shape)}")
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]

    def unnormalize(v, size):
        return (v + 1) / 2 * (size - 1) if align_corners else ((v + 1) * size - 1) / 2
    ix, iy = unnormalize(grid[..., 0], w), unnormalize(grid[..., 1], h)
    if padding_mode == "border":
        ix, iy = ix.clamp(0, w - 1), iy.clamp(0, h - 1)
    flat = input.reshape(n, c, h * w)

    def tap(xi, yi):
        """input at integer positions (xi, yi), zero outside (N, C, Ho, Wo)."""
        inside = ((xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)).to(input.dtype)
        idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().reshape(n, 1, ho * wo).expand(n, c, ho * wo)
        return flat.gather(2, idx).reshape(n, c, ho, wo) * inside.unsqueeze(1)
    if mode == "nearest":
        return tap(ix.detach().round(), iy.detach().round())
    x0, y0 = ix.detach().floor(), iy.detach().floor()
    wx1, wy1 = (ix - x0).unsqueeze(1), (iy - y0).unsqueeze(1)
    wx0, wy0 = 1 - wx1, 1 - wy1
    return (tap(x0, y0) * wx0 * wy0 + tap(x0 + 1, y0) * wx1 * wy0 + tap(x0, y0 + 1) * wx0 * wy1
            + tap(x0 + 1, y0 + 1) * wx1 * wy1)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    nsp = input.ndim - 2
    if nsp < 1 or nsp > 3 or mode not in ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear",
                                          "area", "lanczos"):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the modes: "
            f"nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {mode})")
    in_sp = tuple(input.shape[2:])
    if align_corners is not None and mode not in ("linear", "bilinear", "bicubic", "trilinear"):
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate(antialias=True) is not supported by graphc")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        out_sp = _sizes(size, nsp)
        scales = [None] * nsp
    elif scale_factor is not None:
        sf = _sizes(scale_factor, nsp)
        out_sp = tuple(int(math.floor(n * f)) for n, f in zip(in_sp, sf))
        scales = [None if recompute_scale_factor else f for f in sf]
    else:
        raise ValueError("either size or scale_factor should be defined")
    if mode in ("nearest", "nearest-exact"):
        x = input
        for i in range(nsp):
            n, o = in_sp[i], out_sp[i]
            scale = (1.0 / scales[i]) if scales[i] else n / o
            if mode == "nearest":
                src = np.minimum(np.floor(np.arange(o) * scale).astype(np.int64), n - 1)
            else:
                src = np.minimum(np.floor((np.arange(o) + 0.5) * scale).astype(np.int64), n - 1)
            x = P.take(x, device_tensor(src, x), axis=2 + i)
        return x
    if mode == "area":
        return _adaptive_avg(input, out_sp, nsp, "interpolate")
    if mode in ("linear", "bilinear", "trilinear", "bicubic"):
        if align_corners is None:
            align_corners = False
        x = input
        for i in range(nsp):
            n, o = in_sp[i], out_sp[i]
            if align_corners:
                pos = np.arange(o) * ((n - 1) / (o - 1) if o > 1 else 0.0)
            else:
                scale = (1.0 / scales[i]) if scales[i] else n / o
                pos = (np.arange(o) + 0.5) * scale - 0.5
                if mode != "bicubic":
                    pos = np.maximum(pos, 0.0)   # linear clamps the source index at 0; cubic does not
            if mode == "bicubic":
                x = _cubic_along(x, 2 + i, n, o, pos, input.dtype.np)
                continue
            lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
            hi = np.minimum(lo + 1, n - 1)
            frac = (pos - lo).astype(input.dtype.np)
            shape = [1] * x.ndim
            shape[2 + i] = o
            w = device_tensor(frac.reshape(shape), x)
            a = P.take(x, device_tensor(lo, x), axis=2 + i)
            b = P.take(x, device_tensor(hi, x), axis=2 + i)
            x = a * (1 - w) + b * w
        return x
    raise NotImplementedError(f"interpolate mode {mode!r} is not supported by graphc "
                              "(nearest, nearest-exact, linear, bilinear, bicubic, trilinear and area are)")


def _cubic_along(x, axis, n, o, pos, dtype):
    """PyTorch's bicubic (Keys cubic convolution, A = -0.75) along one axis, border-replicated."""
    A = -0.75
    base = np.floor(pos).astype(np.int64)
    t = pos - base

    def near(d):  # |d| <= 1
        return ((A + 2) * d - (A + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A

    coeffs = (far(t + 1), near(t), near(1 - t), far(2 - t))
    out = None
    for j, c in enumerate(coeffs):
        idx = np.clip(base - 1 + j, 0, n - 1)
        shape = [1] * x.ndim
        shape[axis] = o
        term = P.take(x, device_tensor(idx, x), axis=axis) * device_tensor(c.astype(dtype).reshape(shape), x)
        out = term if out is None else out + term
    return out


upsample = interpolate


# ---- normalization --------------------------------------------------------------------------

def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(ns):]) != ns:
        raise RuntimeError(
            f"Given normalized_shape={list(ns)}, expected input with shape [*, {', '.join(map(str, ns))}], but "
            f"got input of size{list(input.shape)}")
    if input.dtype is dt.float64 and any(p is not None and p.dtype is not dt.float64 for p in (weight, bias)):
        raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
    _check_params_dtype(input, weight, bias)
    return call_composite("layer_norm", input, len(ns), weight, bias, eps)


def rms_norm(input: Tensor, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    dims = tuple(range(input.ndim - len(ns), input.ndim))
    if eps is None:
        eps = float(dt.float_info(input.dtype).eps)
    y = input * math_ops.rsqrt(math_ops.mean(input * input, dims, keepdim=True) + eps)
    return y if weight is None else y * weight


def group_norm(input: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    if input.shape[1] % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(input.shape)} and num_groups={num_groups}")
    _check_params_dtype(input, weight, bias)
    return call_composite("group_norm", input, num_groups, weight, bias, eps)


def batch_norm(input: Tensor, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5) -> Tensor:
    _check_params_dtype(input, weight, bias, running_mean, running_var)
    if training:
        count = input.numel() // input.shape[1]
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
        y, bmean, bvar = call_composite("batch_norm", input, None, None, weight, bias, True, eps)
        if running_mean is not None:
            with grad_mode.no_grad():
                m = 0.1 if momentum is None else momentum
                running_mean.mul_(1 - m).add_(bmean.detach() * m)
                running_var.mul_(1 - m).add_(bvar.detach() * m)
        return y
    if running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    y, _, _ = call_composite("batch_norm", input, running_mean, running_var, weight, bias, False, eps)
    return y


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    n, c = input.shape[:2]
    spatial = input.shape[2:]
    count = int(np.prod(spatial)) if spatial else 1
    shape = (1, c) + (1,) * (input.ndim - 2)
    if use_input_stats:
        if count <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size {list(input.shape)}")
        y = call_composite("group_norm", input.reshape(1, n * c, *spatial), n * c, None, None, eps)
        y = y.reshape(input.shape)
        if running_mean is not None and running_var is not None:
            with grad_mode.no_grad():
                d = input.detach()
                dims = tuple(range(2, input.ndim))
                m = d.mean(dims)                                   # (N, C)
                v = d.var(dims, correction=1)                      # unbiased, per instance
                running_mean.mul_(1 - momentum).add_(m.mean(0) * momentum)
                running_var.mul_(1 - momentum).add_(v.mean(0) * momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
        y = (input - running_mean.reshape(shape)) * math_ops.rsqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    denom = math_ops.clamp_min(math_ops.norm(input, p, dim, keepdim=True), eps)
    return math_ops.write_out(out, input / denom.expand_as(input))


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    dot = math_ops.sum(x1 * x2, dim)
    n1 = math_ops.clamp_min(math_ops.norm(x1, 2, dim), eps)
    n2 = math_ops.clamp_min(math_ops.norm(x2, 2, dim), eps)
    return dot / (n1 * n2)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    """The p-norm distances between all pairs of rows, in the order of the upper triangle."""
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    n = input.shape[0]
    rows, cols = creation.triu_indices(n, n, 1, device=input.device)
    return math_ops.norm(input[rows] - input[cols], p, dim=-1)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    return math_ops.norm(x1 - x2 + eps, p, -1, keepdim)


# ---- attention ------------------------------------------------------------------------------

def _additive_mask(mask, dtype):
    if mask is None:
        return None
    if mask.dtype is dt.bool_:
        # PyTorch: True means "take part in attention" for SDPA masks
        return math_ops.where(mask, 0.0, -math.inf).to(dtype)
    return mask


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    mask = _additive_mask(attn_mask, query.dtype)
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
        causal = device_tensor(np.tril(np.ones((L, S), dtype=bool)), query)
        mask = _additive_mask(causal, query.dtype)
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key = shape_ops.repeat_interleave(key, rep, -3)
        value = shape_ops.repeat_interleave(value, rep, -3)
    if dropout_p > 0:
        nd = key.ndim
        scores = math_ops.matmul(query, key.transpose(nd - 2, nd - 1)) * scale
        if mask is not None:
            scores = scores + mask
            dead = scores.amax(-1, keepdim=True) == -math.inf   # fully masked rows attend to nothing
            attn = math_ops.where(dead, 0.0, math_ops.softmax(math_ops.where(dead, 0.0, scores), -1))
        else:
            attn = math_ops.softmax(scores, -1)
        attn = dropout(attn, dropout_p, True)
        return math_ops.matmul(attn, value)
    return call_composite("scaled_dot_product_attention", query, key, value, mask, scale)


# ---- losses ---------------------------------------------------------------------------------

def _reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def _check_same_size(input, target, name):
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.",
            UserWarning, stacklevel=3)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    _check_same_size(input, target, "mse_loss")
    return call_composite("mse_loss", input, target, _reduction(size_average, reduce, reduction))


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    _check_same_size(input, target, "l1_loss")
    return call_composite("l1_loss", input, target, _reduction(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _check_same_size(input, target, "smooth_l1_loss")
    return call_composite("smooth_l1_loss", input, target, _reduction(size_average, reduce, reduction), beta)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _check_same_size(input, target, "huber_loss")
    return call_composite("huber_loss", input, target, reduction, delta)


def _has_values(t) -> bool:
    """False for a symbolic tensor (graphc.compile tracing): value checks are skipped there."""
    return not t._symbolic


def _check_targets(target, nclass, ignore_index):
    if target.dtype.name not in ("int64", "uint8"):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_scalar(target.dtype)}")
    if not _has_values(target):
        return
    t = target._data
    bad = (t != ignore_index) & ((t < 0) | (t >= nclass))
    if bad.any():
        raise IndexError(f"Target {int(t[bad].ravel()[0])} is out of bounds.")


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    if input.ndim <= 2 and target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input.ndim < 1 or (input.ndim >= 2 and input.shape[0] != target.shape[0]):
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({target.shape[0]}).")
    _check_targets(target, input.shape[0 if input.ndim == 1 else 1], ignore_index)
    return call_composite("nll_loss", input, target, weight, ignore_index, _reduction(size_average, reduce, reduction))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if target.dtype.is_floating_point and tuple(target.shape) == tuple(input.shape):
        pass  # class probabilities
    else:
        if input.ndim >= 2 and input.shape[0] != target.shape[0]:
            raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({target.shape[0]}).")
        if input.ndim >= 2 and tuple(target.shape[1:]) != tuple(input.shape[2:]):
            raise RuntimeError(f"Expected target size {[input.shape[0]] + list(input.shape[2:])}, got {list(target.shape)}")
        _check_targets(target, input.shape[0 if input.ndim == 1 else 1], ignore_index)
    return call_composite("cross_entropy", input, target, weight, ignore_index,
                          _reduction(size_average, reduce, reduction), label_smoothing)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if target.dtype is not input.dtype:
        raise RuntimeError(f"Found dtype {_scalar(target.dtype)} but expected {_scalar(input.dtype)}")
    if _has_values(input) and ((input._data < 0).any() or (input._data > 1).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    return call_composite("binary_cross_entropy", input, target, weight, _reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    return call_composite("binary_cross_entropy_with_logits", input, target, weight, pos_weight,
                          _reduction(size_average, reduce, reduction))


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False) -> Tensor:
    r = _reduction(size_average, reduce, reduction)
    if r == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    return call_composite("kl_div", input, target, r, log_target)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    from graphc.passes.nn_decompositions import reduce_loss
    loss = math_ops.exp(input) - target * input if log_input else input - target * math_ops.log(input + eps)
    if full:
        t = target
        stirling = t * math_ops.log(t) - t + 0.5 * math_ops.log(2 * math.pi * t)
        loss = loss + math_ops.where(t > 1, stirling, 0.0)
    return reduce_loss(loss, _reduction(size_average, reduce, reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    from graphc.passes.nn_decompositions import reduce_loss
    return reduce_loss(math_ops.clamp_min(-target * (input1 - input2) + margin, 0), _reduction(size_average, reduce, reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    from graphc.passes.nn_decompositions import reduce_loss
    cos = cosine_similarity(input1, input2, 1, 1e-8)
    loss = math_ops.where(target == 1, 1 - cos, math_ops.clamp_min(cos - margin, 0))
    return reduce_loss(loss, _reduction(size_average, reduce, reduction))


def _safe_logaddexp(terms):
    """log(sum(exp(t))) over a list of same-shape tensors; -inf where every term is -inf, with a zero
    (not NaN) gradient there, so unreachable CTC states do not poison the backward pass."""
    with grad_mode.no_grad():
        m = terms[0].detach()
        for t in terms[1:]:
            m = math_ops.maximum(m, t.detach())
        m = math_ops.where(m > -math.inf, m, 0.0)
    total = None
    for t in terms:
        e = math_ops.exp(t - m)
        total = e if total is None else total + e
    pos = total > 0
    return math_ops.where(pos, math_ops.log(math_ops.where(pos, total, 1.0)) + m, -math.inf)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False) -> Tensor:
    """CTC by the forward (alpha) recursion in log space over the blank-extended labels, batched over
    the samples and built from differentiable tensor ops, so autograd supplies the gradient.
    log_probs: (T, N, C) or (T, C); targets: (N, S) padded or 1-D concatenated.

    The gradient is the exact one with respect to ``log_probs``; PyTorch's kernel instead returns the
    gradient with respect to the logits under an assumed log_softmax. Both agree once the loss is
    taken through ``log_softmax``, which is how CTC is used."""
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        targets = targets.unsqueeze(0)
        input_lengths = _lengths(input_lengths).reshape(1)
        target_lengths = _lengths(target_lengths).reshape(1)
    if log_probs.ndim != 3:
        raise RuntimeError(f"ctc_loss: expected log_probs of 2 or 3 dimensions, got {log_probs.ndim}")
    T, N, C = log_probs.shape
    # the alignment lattice is laid out on the host; the recursion runs on log_probs' device
    in_len = host_array(_lengths(input_lengths)._data).astype(np.int64).reshape(-1)
    tg_len = host_array(_lengths(target_lengths)._data).astype(np.int64).reshape(-1)
    if in_len.shape[0] != N or tg_len.shape[0] != N:
        raise RuntimeError(f"input_lengths and target_lengths must have {N} entries (the batch size), got "
                           f"{in_len.shape[0]} and {tg_len.shape[0]}")
    if (in_len > T).any():
        raise RuntimeError(f"Expected input_lengths to have value at most {T}, but got value {int(in_len.max())}")
    tg = host_array(targets._data).astype(np.int64)
    Lmax = int(tg_len.max()) if N else 0
    S = 2 * Lmax + 1
    ext = np.full((N, S), blank, dtype=np.int64)
    offset = 0
    for b in range(N):
        L = int(tg_len[b])
        labels = tg[offset:offset + L] if tg.ndim == 1 else tg[b, :L]
        if len(labels) != L:
            raise RuntimeError(f"Expected tensor to have size at least {L} at dimension 1, but got size "
                               f"{len(labels)} for argument #2 'targets'")
        offset += L
        ext[b, 1:2 * L:2] = labels
    # the skip transition s-2 -> s is allowed onto a label that differs from the label two back
    skip = np.zeros((N, S), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    dtype = log_probs._data.dtype

    def on(arr: np.ndarray) -> Tensor:
        return device_tensor(arr, log_probs)

    emit = log_probs.gather(2, on(np.broadcast_to(ext, (T, N, S)).copy()))   # (T, N, S)
    init = np.full((N, S), -np.inf, dtype=dtype)
    init[:, 0] = 0.0
    if S > 1:
        init[np.asarray(tg_len) > 0, 1] = 0.0
    alpha = emit[0] + on(init)
    ninf_col = on(np.full((N, 1), -np.inf, dtype=dtype))
    ninf_2 = on(np.full((N, 2), -np.inf, dtype=dtype))
    skip_t = on(skip)
    for t in range(1, int(in_len.max()) if N else 0):
        prev1 = shape_ops.cat([ninf_col, alpha[:, :-1]], 1) if S > 1 else ninf_col
        prev2 = shape_ops.cat([ninf_2, alpha[:, :-2]], 1) if S > 2 else None
        terms = [alpha, prev1] if prev2 is None else [alpha, prev1, math_ops.where(skip_t, prev2, -math.inf)]
        new = _safe_logaddexp(terms) + emit[t]
        active = on((t < in_len).reshape(N, 1))
        alpha = math_ops.where(active, new, alpha)
    last = on((2 * tg_len).reshape(N, 1))
    before = on(np.maximum(2 * tg_len - 1, 0).reshape(N, 1))
    a_last = alpha.gather(1, last).reshape(N)
    a_before = math_ops.where(on(tg_len > 0), alpha.gather(1, before).reshape(N), -math.inf)
    loss = -_safe_logaddexp([a_last, a_before])
    loss = math_ops.where(on(in_len == 0), math_ops.where(on(tg_len == 0), 0.0, math.inf), loss) \
        if (in_len == 0).any() else loss
    if zero_infinity:
        loss = math_ops.where(loss == math.inf, 0.0, loss)
    if reduction == "mean":
        denom = on(np.maximum(tg_len, 1).astype(dtype))
        return (loss / denom).mean()
    if reduction == "sum":
        return loss.sum()
    if reduction != "none":
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return loss[0] if unbatched else loss


def _lengths(x) -> Tensor:
    return x if isinstance(x, Tensor) else creation.tensor(list(x) if not isinstance(x, int) else [x])


# PyTorch exposes these names in torch.nn.functional too
softmax = _softmax_public
log_softmax = _log_softmax_public
sigmoid = math_ops.sigmoid
tanh = math_ops.tanh


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda: math_ops.relu(input))


# ---- in-place variants and further activations ----------------------------------------------------

def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return globals()["threshold"](input, threshold, value, True)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return math_ops.where((input > lambd) | (input < -lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return math_ops.where(input > lambd, input - lambd, math_ops.where(input < -lambd, input + lambd, 0.0))


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU: a slope drawn from U(lower, upper) per element in training, their mean
    in evaluation."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    slope = device_tensor((grandom.gen(None, input.device).random(tuple(input.shape)) * (upper - lower) + lower)
                          .astype(input.dtype.np), input)
    return _maybe_inplace(input, inplace, lambda: math_ops.where(input >= 0, input, input * slope))


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, True)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    g = -math_ops.log(device_tensor(grandom.gen(None, logits.device).exponential(size=tuple(logits.shape))
                                    .astype(logits.dtype.np), logits))
    y = math_ops.softmax((logits + g) / tau, dim)
    if not hard:
        return y
    index = y.max(dim, keepdim=True)[1]
    y_hard = creation.zeros_like(logits).scatter(dim, index, 1.0)
    return y_hard - y.detach() + y


# ---- shuffles -------------------------------------------------------------------------------------

def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r)."""
    r = int(upscale_factor)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W)."""
    r = int(downscale_factor)
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by downscale_factor, but "
                           f"input.size(-2)={h} and input.size(-1)={w} are not divisible by {r}")
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    n, c = input.shape[:2]
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


native_channel_shuffle = channel_shuffle


# ---- pooling extras -------------------------------------------------------------------------------

def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool3d(input, output_size, True)


from .linear_cross_entropy import linear_cross_entropy  # noqa: E402
from .fractional_pool import (fractional_max_pool2d, fractional_max_pool2d_with_indices,  # noqa: E402
                              fractional_max_pool3d, fractional_max_pool3d_with_indices)


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, nsp):
    k = _tuple(kernel_size, nsp, "kernel_size")
    pool = (avg_pool1d, avg_pool2d, avg_pool3d)[nsp - 1]
    out = pool(input.pow(norm_type), k, stride, 0, ceil_mode)
    return (math_ops.sign(out) * math_ops.relu(out.abs())).mul(int(np.prod(k))).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 3)


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, nsp):
    k = _tuple(kernel_size, nsp, "kernel_size")
    s = k if stride is None else _tuple(stride, nsp, "stride")
    p = _tuple(padding, nsp, "padding")
    x, unbatched = _batchify(input, nsp, "max_unpool")
    idx = indices.unsqueeze(0) if unbatched else indices
    if output_size is None:
        size = tuple((x.shape[2 + i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(nsp))
    else:
        size = tuple(output_size)[-nsp:]
    n, c = x.shape[:2]
    flat = creation.zeros(n, c, int(np.prod(size)), dtype=x.dtype, device=x.device)
    y = flat.scatter(2, idx.reshape(n, c, -1), x.reshape(n, c, -1)).reshape(n, c, *size)
    return shape_ops.squeeze(y, 0) if unbatched else y


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 3, "conv_transpose3d")


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Normalize over ``size`` neighbouring channels: x / (k + alpha/size * sum x^2) ** beta."""
    if input.dim() < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.dim()} dimensions)")
    div = (input * input).unsqueeze(1)
    if input.dim() == 3:
        div = pad(div, (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(div, (size, 1), stride=1).squeeze(1)
    else:
        sizes = tuple(input.shape)
        div = div.reshape(sizes[0], 1, sizes[1], sizes[2], -1)
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool3d(div, (size, 1, 1), stride=1).squeeze(1).reshape(sizes)
    return input / (div * alpha + k).pow(beta)


# ---- further losses -------------------------------------------------------------------------------

def _reduce(loss, reduction):
    from graphc.passes.nn_decompositions import reduce_loss
    return reduce_loss(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _reduce(softplus(-target * input), _reduction(size_average, reduce, reduction))


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(dim=input.dim() - 1) / input.shape[-1]
    return _reduce(loss, _reduction(size_average, reduce, reduction))


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    margin_part = math_ops.where(target != 1, math_ops.clamp_min(margin - input, 0), 0.0)
    self_part = math_ops.where(target != -1, input, 0.0)
    return _reduce(margin_part + self_part, _reduction(size_average, reduce, reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = math_ops.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce(math_ops.clamp_min(margin + d_ap - d_an, 0), _reduction(size_average, reduce, reduction))


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    dist = distance_function if distance_function is not None else pairwise_distance
    d_ap, d_an = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_an = math_ops.minimum(d_an, dist(positive, negative))
    return _reduce(math_ops.clamp_min(margin + d_ap - d_an, 0), reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    if isinstance(var, (int, float)):
        var = creation.full(tuple(input.shape), float(var), dtype=input.dtype, device=input.device)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    if _has_values(var) and (var._data < 0).any():
        raise ValueError("var has negative entry/entries")
    # the clamp is not differentiated through, as in PyTorch
    var = var + (math_ops.clamp_min(var.detach(), eps) - var.detach())
    loss = 0.5 * (math_ops.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input if input.dim() == 2 else input.reshape(1, -1)
    t = target.reshape(-1, 1)
    c = x.shape[1]
    picked = x.gather(1, t)
    terms = math_ops.clamp_min(margin - picked + x, 0)
    if p == 2:
        terms = terms * terms
    if weight is not None:
        terms = terms * weight.index_select(0, t.reshape(-1)).reshape(-1, 1)
    not_target = creation.ones_like(x).scatter(1, t, 0.0)
    loss = (terms * not_target).sum(1) / c
    if input.dim() < 2:
        loss = loss.reshape(())
    return _reduce(loss, _reduction(size_average, reduce, reduction))


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """target holds class indices, padded after the last one with -1."""
    x = input if input.dim() == 2 else input.reshape(1, -1)
    tg = host_array(target._data).reshape(x.shape[0], -1)
    n, c = x.shape
    is_target = np.zeros((n, c), dtype=bool)
    pairs = np.zeros((n, c, c), dtype=x.dtype.np)  # pairs[n, j, i]: j a target class, i a non-target one
    for b in range(n):
        labels = []
        for v in tg[b]:
            if v < 0:
                break
            labels.append(int(v))
        is_target[b, labels] = True
        for j in labels:
            pairs[b, j] = 1.0
        pairs[b][:, is_target[b]] = 0.0
    margins = math_ops.clamp_min(1 - (x.unsqueeze(2) - x.unsqueeze(1)), 0)   # [n, j, i] = 1 - (x_j - x_i)
    loss = (margins * device_tensor(pairs, x)).sum((1, 2)) / c
    if input.dim() < 2:
        loss = loss.reshape(())
    return _reduce(loss, _reduction(size_average, reduce, reduction))


# ---- embedding_bag --------------------------------------------------------------------------------

def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
                                  "the PyTorch GitHub.")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences.")
        b, length = input.shape
        starts = list(range(0, b * length, length))
        flat_idx = input.reshape(-1)
        psw = per_sample_weights.reshape(-1) if per_sample_weights is not None else None
        ends = starts[1:] + [b * length]
    else:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = [int(v) for v in host_array(offsets._data).reshape(-1)]
        flat_idx = input
        psw = per_sample_weights
        total = input.shape[0]
        if include_last_offset:
            starts, ends = off[:-1], off[1:]
        else:
            starts, ends = off, off[1:] + [total]
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    rows = embedding(flat_idx, weight, None, max_norm, norm_type)
    if psw is not None:
        rows = rows * psw.unsqueeze(1)
    idx_np = host_array(flat_idx._data)
    bags = []
    for s, e in zip(starts, ends):
        keep = [i for i in range(s, e) if padding_idx is None or int(idx_np[i]) != padding_idx]
        if not keep:
            bags.append(creation.zeros(weight.shape[1], dtype=weight.dtype, device=weight.device))
            continue
        part = rows.index_select(0, device_tensor(np.asarray(keep, dtype=np.int64), weight))
        if mode == "sum":
            bags.append(part.sum(0))
        elif mode == "mean":
            bags.append(part.mean(0))
        else:
            bags.append(part.max(0).values)
    if not bags:
        return creation.zeros(0, weight.shape[1], dtype=weight.dtype, device=weight.device)
    from graphc.math_ops import grad_named
    return grad_named(shape_ops.stack(bags, 0), "EmbeddingBagBackward0")


# ---- multi-head attention -------------------------------------------------------------------------

def _mha_additive(mask, dtype, name: str):
    """MultiheadAttention masks: bool True means 'may not attend' (the opposite of SDPA's); floats add."""
    if mask is None:
        return None
    if mask.dtype is dt.bool_:
        return math_ops.where(mask, -math.inf, 0.0).to(dtype)
    if not mask.dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """torch.nn.functional.multi_head_attention_forward; inputs are sequence-first (L, N, E) or
    unbatched (L, E). Returns (output, averaged or per-head weights or None)."""
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    h = num_heads
    hd = E // h
    if hd * h != E:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {h}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                           "module method `generate_square_subsequent_mask` to create this mask.")
    if use_separate_proj_weight:
        ws = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        ws = (in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:])
    bs = (None, None, None) if in_proj_bias is None else (in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:])
    q = linear(query, ws[0], bs[0])
    k = linear(key, ws[1], bs[1])
    v = linear(value, ws[2], bs[2])
    mask = _mha_additive(attn_mask, q.dtype, "attn_mask")
    kpm = _mha_additive(key_padding_mask, q.dtype, "key_padding_mask")
    S = k.shape[0]
    if mask is not None:
        if mask.dim() == 2:
            if tuple(mask.shape) != (L, S):
                raise RuntimeError(f"The shape of the 2D attn_mask is {mask.shape}, but should be {(L, S)}.")
            mask = mask.unsqueeze(0)
        elif mask.dim() == 3:
            if tuple(mask.shape) != (N * h, L, S):
                raise RuntimeError(f"The shape of the 3D attn_mask is {mask.shape}, but should be {(N * h, L, S)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {mask.dim()} is not supported")
    if bias_k is not None and bias_v is not None:
        k = shape_ops.cat([k, bias_k.expand(1, N, E)], 0)
        v = shape_ops.cat([v, bias_v.expand(1, N, E)], 0)
        mask = pad(mask, (0, 1)) if mask is not None else None
        kpm = pad(kpm, (0, 1)) if kpm is not None else None
    q = q.reshape(L, N * h, hd).transpose(0, 1)                                   # (N*h, L, hd)
    k = (static_k if static_k is not None else k.reshape(k.shape[0], N * h, hd).transpose(0, 1))
    v = (static_v if static_v is not None else v.reshape(v.shape[0], N * h, hd).transpose(0, 1))
    if add_zero_attn:
        k = shape_ops.cat([k, creation.zeros(N * h, 1, hd, dtype=k.dtype, device=k.device)], 1)
        v = shape_ops.cat([v, creation.zeros(N * h, 1, hd, dtype=v.dtype, device=v.device)], 1)
        mask = pad(mask, (0, 1)) if mask is not None else None
        kpm = pad(kpm, (0, 1)) if kpm is not None else None
    S = k.shape[1]
    if kpm is not None:
        if kpm.shape[0] != N:
            raise AssertionError(f"Expected key_padded_mask.shape[0] to be {N}, but got {kpm.shape[0]}")
        if kpm.dim() != 2 or kpm.shape[1] != S:
            raise AssertionError(f"Expected key_padded_mask.shape[1] to be {S}, but got {kpm.shape[-1]}")
        kpm = kpm.reshape(N, 1, 1, S).expand(N, h, 1, S).reshape(N * h, 1, S)
        mask = kpm if mask is None else mask + kpm
    scores = math_ops.bmm(q * (1.0 / math.sqrt(hd)), k.transpose(1, 2))
    if mask is not None:
        scores = scores + mask
    if need_weights or mask is None:
        weights = math_ops.softmax(scores, -1)
    else:
        # PyTorch's need_weights=False path runs SDPA, whose softmax gives fully masked rows zeros
        dead = scores.amax(-1, keepdim=True) == -math.inf
        weights = math_ops.where(dead, 0.0, math_ops.softmax(math_ops.where(dead, 0.0, scores), -1))
    if dropout_p > 0 and training:
        weights = dropout(weights, dropout_p, True)
    out = math_ops.bmm(weights, v).transpose(0, 1).reshape(L, N, E)
    out = linear(out, out_proj_weight, out_proj_bias)
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    w = weights.reshape(N, h, L, S)
    if average_attn_weights:
        w = w.mean(dim=1)
    return out, (w.squeeze(0) if unbatched else w)
