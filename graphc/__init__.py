"""graphc: a PyTorch-style deep-learning framework whose heart is a graph compiler.

``import graphc as torch`` and PyTorch tensor/autograd code runs eagerly on the CPU.
"""
from __future__ import annotations

import builtins as _builtins

import numpy as _np

from graphc.ir import dtypes as _dt
from graphc.ir.dtypes import DType as dtype
from graphc.ir.dtypes import get_default_dtype, set_default_dtype

from . import autograd
from .autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                                 no_grad, set_grad_enabled)
from .device import DeviceUnavailableError, device, get_default_device, set_default_device
from .tensors import Size, Tensor

from . import methods as _methods  # noqa: F401  (attaches Tensor methods)
from . import grad_names as _grad_names  # PyTorch's grad_fn names (ViewBackward0 ...)
_grad_names.install()
from . import accelerator, backends, cuda, fft, linalg, nn, random, testing
from .comparison import allclose, equal, isclose
from .compiler import GraphBreakError, compile, explain  # noqa: A004
from . import optim
from . import utils  # graphc.utils.data (DataLoader ...); imports the rest of graphc lazily
from .creation import (arange, as_tensor, asarray, bernoulli, empty, empty_like, eye, from_numpy, full,
                       full_like, linspace, logspace, multinomial, normal, ones, ones_like, rand,
                       rand_like, randint, randint_like, randn, randn_like, randperm, tensor, zeros,
                       zeros_like)
from .creation import range_ as range  # noqa: A001  (torch.range)
from .math_ops import (abs, absolute, acos, add, addcdiv, addcmul, addmm, all, amax, amin, any, arccos,
                       arcsin, arctan, argmax, argmin, asin, atan, atan2, baddbmm, bitwise_and,
                       bitwise_not, bitwise_or, bitwise_xor, bmm, ceil, clamp, clamp_max, clamp_min,
                       clip, cos, cosh, count_nonzero, cumsum, dist, div, divide, dot, einsum, eq, erf,
                       erfc, exp, exp2, expm1, fix, floor, floor_divide, fmod, frac, ge, ger, greater,
                       greater_equal, gt, isfinite, isinf, isnan, le, lerp, less, less_equal, linear, log,
                       log10, log1p, log2, log_softmax, logical_and, logical_not, logical_or, logical_xor,
                       logsumexp, lt, matmul, max, maximum, mean, min, minimum, mm, mul, multiply, mv,
                       nan_to_num, nansum, ne, neg, negative, norm, not_equal, outer, pow, prod,
                       reciprocal, relu, remainder, round, rsqrt, rsub, sigmoid, sign, sin, sinh, softmax,
                       sqrt, square, std, std_mean, sub, subtract, sum, tan, tanh, true_divide, trunc,
                       var, var_mean, where)
from .printing import set_printoptions
from .random import Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .shape_ops import (argsort, argwhere, broadcast_shapes, broadcast_tensors, broadcast_to, cat, chunk, concat, concatenate,
                        diag, diagonal, flatten, flip, fliplr, flipud, gather, hstack, index_add,
                        index_select, masked_fill, masked_select, meshgrid, movedim, moveaxis, narrow,
                        nonzero, permute, repeat_interleave, reshape, roll, scatter, scatter_add, select,
                        sort, split, squeeze, stack, swapaxes, swapdims, t, take, take_along_dim,
                        tensor_split, tile, topk, trace, transpose, tril, triu, unbind, unflatten, unique,
                        unsqueeze, vstack)
from .math_ops import (bincount, bucketize, cdist, cross, cummax, cummin, cumprod, cumulative_trapezoid, diff,
                       digamma, erfinv, float_power, histc, i0, igamma, igammac, kron, lgamma, logaddexp, logaddexp2, logcumsumexp, logit,
                       kthvalue, median, mode, mvlgamma, nanquantile, quantile, nanmedian, polygamma, searchsorted, sinc, tensordot, trapezoid, trapz,
                       xlogy)
from .shape_ops import (atleast_1d, atleast_2d, atleast_3d, block_diag, cartesian_prod, index_fill,
                        masked_scatter, msort, put)
from .creation import tril_indices, triu_indices
from .linalg import det, inverse, logdet, matrix_power, pinverse, slogdet
from .linalg import torch_cholesky as cholesky, torch_qr as qr, torch_svd as svd
from .factorizations import lu_unpack, torch_lu as lu, torch_lu_solve as lu_solve
from . import special
from .spectral import istft, stft  # noqa: E402
from . import distributions  # noqa: E402
from . import distributed  # noqa: E402  (mpi4py loads only when a process group starts)
from . import safetensors, serialization
from . import func  # graphc.func: grad, vjp, jvp, jacrev, jacfwd, hessian, vmap, functional_call
from . import jit  # saved compiled programs (torch.jit.trace/save/load)
from .utils.dlpack import from_dlpack
from .serialization import load, save
from . import onnx  # torch.onnx.export (the onnx package itself is imported on first export)

float16 = half = _dt.float16
bfloat16 = _dt.bfloat16  # its numpy type comes from ml_dtypes, imported on first use
float32 = float = _dt.float32  # noqa: A001
float64 = double = _dt.float64
complex64 = cfloat = _dt.complex64
complex128 = cdouble = _dt.complex128
int8 = _dt.int8
int16 = short = _dt.int16
int32 = int = _dt.int32  # noqa: A001
int64 = long = _dt.int64
uint8 = _dt.uint8
bool = _dt.bool_  # noqa: A001
promote_types = _dt.promote_types

__version__ = "0.1.0"


def is_tensor(obj) -> _builtins.bool:
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> _builtins.bool:
    return input.dtype.is_floating_point


def numel(input: Tensor) -> _builtins.int:
    return input.numel()


def result_type(tensor1, tensor2) -> dtype:
    return _dt.result_type(tensor1, tensor2)


def can_cast(from_: dtype, to: dtype) -> _builtins.bool:
    return from_.category <= to.category


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return input.clone()


def detach(input: Tensor) -> Tensor:
    return input.detach()


def is_nonzero(input: Tensor) -> _builtins.bool:
    if input.numel() != 1:
        raise RuntimeError(f"Boolean value of Tensor with {'no' if input.numel() == 0 else 'more than one'} values is ambiguous")
    return _builtins.bool(input.item())


class finfo:
    def __init__(self, type: dtype | None = None) -> None:
        type = (type or get_default_dtype()).to_real()  # a complex type: its parts' (PyTorch)
        if not type.is_floating_point:
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        info = _dt.float_info(type)
        self.bits, self.eps, self.max, self.min = info.bits, _builtins.float(info.eps), _builtins.float(info.max), _builtins.float(info.min)
        self.tiny = self.smallest_normal = _builtins.float(info.tiny)
        self.resolution = 10.0 ** -info.precision  # PyTorch's: a power of ten, not rounded to the type
        self.dtype = type.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    def __init__(self, type: dtype) -> None:
        info = _np.iinfo(type.np)
        self.bits, self.max, self.min, self.dtype = info.bits, _builtins.int(info.max), _builtins.int(info.min), type.name


class _LegacyTensorType(type):
    """torch.FloatTensor, torch.cuda.FloatTensor and friends: callable constructors, usable in
    ``isinstance`` (dtype and device type) and ``Tensor.type(torch.FloatTensor)``."""

    def __call__(cls, *args):
        if cls._legacy_device == "cuda" and not cuda.is_available():
            raise TypeError(f"type graphc.cuda.{cls.__name__} not available: graphc.cuda.is_available() is False")
        return Tensor(*args, dtype=cls._legacy_dtype, device=cls._legacy_device)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype is cls._legacy_dtype and obj.device.type == cls._legacy_device

    def __repr__(cls):
        return f"<class 'graphc.{'cuda.' if cls._legacy_device == 'cuda' else ''}{cls.__name__}'>"


def _legacy_types(device: str) -> dict[str, type]:
    kinds = {"FloatTensor": float32, "DoubleTensor": float64, "HalfTensor": float16, "BFloat16Tensor": bfloat16,
             "LongTensor": int64, "IntTensor": int32, "BoolTensor": bool, "ByteTensor": uint8, "CharTensor": int8,
             "ShortTensor": int16}
    return {name: _LegacyTensorType(name, (), {"_legacy_dtype": d, "_legacy_device": device})
            for name, d in kinds.items()}


globals().update(_legacy_types("cpu"))
for _name, _type in _legacy_types("cuda").items():
    setattr(cuda, _name, _type)


def index_put(input, indices, values, accumulate: bool = False):
    return input.index_put(indices, values, accumulate)


def index_put_(input, indices, values, accumulate: bool = False):
    return input.index_put_(indices, values, accumulate)


from .compat_extras import (aminmax, are_deterministic_algorithms_enabled, column_stack,  # noqa: E402
                            corrcoef, cov, diag_embed, dsplit, dstack, get_num_interop_threads, get_num_threads,
                            hsplit, hypot, is_deterministic_algorithms_warn_only_enabled,
                            isin, nanmean, ravel, rot90, row_stack, set_num_interop_threads, set_num_threads,
                            scatter_reduce, signbit, use_deterministic_algorithms, vsplit)
from . import amp, cpu  # noqa: E402
from .amp import legacy as _amp_legacy  # noqa: E402  (graphc.cuda.amp, graphc.cpu.amp)
from .amp.legacy import (get_autocast_cpu_dtype, get_autocast_gpu_dtype, is_autocast_cpu_enabled,  # noqa: E402
                         set_autocast_cpu_dtype, set_autocast_cpu_enabled, set_autocast_gpu_dtype)
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402
from .amp.autocast_mode import (clear_autocast_cache, is_autocast_cache_enabled, set_autocast_cache_enabled,  # noqa: E402
                                set_autocast_dtype, set_autocast_enabled, autocast_increment_nesting,
                                autocast_decrement_nesting)
from .amp import GradScaler  # noqa: E402  (torch.GradScaler is torch.amp.GradScaler)
from .utils.dlpack import to_dlpack  # noqa: E402
from graphc.runtime.devices import OutOfMemoryError  # noqa: E402


class AcceleratorError(RuntimeError):
    """PyTorch's error for a failed accelerator (CUDA) call; graphc's GPU calls go through CuPy,
    whose own errors (``CUDARuntimeError``) reach the user unchanged."""


def _attach_compat_extras() -> None:
    from . import compat_extras as _cx

    cuda.amp = _amp_legacy.cuda_amp
    for name in ("ravel", "nanmean", "aminmax", "hypot", "signbit", "rot90", "diag_embed", "hsplit", "vsplit",
                 "dsplit"):
        setattr(Tensor, name, getattr(_cx, name))
    Tensor.unfold = _cx.tensor_unfold
    Tensor.scatter_reduce, Tensor.scatter_reduce_ = _cx.scatter_reduce, _cx.scatter_reduce_


_attach_compat_extras()
from .tensor_surface import *  # noqa: E402,F401,F403  (more functions and Tensor methods, attached there)
from .complex_ops import complex, is_complex, polar, view_as_complex, view_as_real  # noqa: E402,A004
