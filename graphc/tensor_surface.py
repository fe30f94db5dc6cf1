"""The tables that give graphc PyTorch's surface: ``Tensor`` methods (name -> function taking
``self`` first), in-place variants generated from their out-of-place methods, ``is_*`` flags,
and the ``torch.<op>_`` / ``torch.<view>_copy`` / ``torch.<nn.functional op>`` functions made from
them; plus layouts and memory formats. The functions themselves are in composed_ops.py and
global_flags.py. What graphc does not support (complex, sparse, quantized tensors...) is listed,
with the reason, in tests/data/api_excluded.txt.
"""
from __future__ import annotations

import builtins
import math
import warnings
from typing import Callable

import numpy as np

import graphc  # the package: is_nonzero lives in its __init__ (done by the time a method runs)
from graphc.ir.array_module import array_module

from . import compat_extras, composed_ops, creation, global_flags, inplace
from .func import vmap  # torch.vmap is torch.func.vmap
from .composed_ops import *  # noqa: F401,F403  (re-exported: graphc/__init__ star-imports this module)
from .global_flags import *  # noqa: F401,F403
from .nn import functional as F
from .tensors import Tensor, host_array

pi, e, inf, nan, newaxis = math.pi, math.e, math.inf, math.nan, None


class layout:
    """A tensor layout; graphc tensors are all ``strided`` (dense)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


strided = layout("graphc.strided")


class memory_format(layout):
    """A memory format, accepted by ``to``/``contiguous``/``empty_like``...; graphc keeps every
    tensor row-major, so all formats mean the same layout."""


contiguous_format, preserve_format = memory_format("graphc.contiguous_format"), memory_format("graphc.preserve_format")
channels_last, channels_last_3d = memory_format("graphc.channels_last"), memory_format("graphc.channels_last_3d")
legacy_contiguous_format = memory_format("graphc.legacy_contiguous_format")


# torch.<op>_: the in-place method as a function (``torch.relu_(x)`` is ``x.relu_()``)
_TORCH_INPLACE = """abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_
    atanh_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ conj_physical_ cos_ cosh_ deg2rad_ detach_ erf_ erfc_ exp2_ exp_
    expm1_ fill_ fix_ floor_ frac_ i0_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ negative_ rad2deg_ reciprocal_
    relu_ resize_as_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ square_ tan_ tanh_ trunc_ xlogy_ zero_ gcd_ lcm_
    ldexp_""".split()

# torch.<view>_copy: the view op's result as a new tensor (``torch.t_copy(x)`` is ``x.t().clone()``)
_COPY_OF_VIEW = """alias detach diagonal expand permute select split split_with_sizes squeeze t transpose unbind
    unfold unsqueeze view""".split()


def _torch_inplace(name: str):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    return fn


def _copy_of(name: str):
    def fn(input, *args, **kwargs):
        out = input.view_as(input) if name == "alias" else getattr(input, name)(*args, **kwargs)
        return tuple(o.clone() for o in out) if isinstance(out, (tuple, list)) else out.clone()
    fn.__name__ = name + "_copy"
    return fn


# torch.<op> that is the nn.functional op with the same positional arguments
_FROM_FUNCTIONAL = """conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d bilinear pixel_shuffle
    pixel_unshuffle channel_shuffle pairwise_distance cosine_similarity celu selu prelu rrelu
    threshold hardshrink avg_pool1d max_pool1d max_pool2d max_pool3d max_pool1d_with_indices adaptive_avg_pool1d
    rms_norm group_norm layer_norm celu_ selu_ rrelu_ threshold_ pdist""".split()

for _name in _FROM_FUNCTIONAL:
    globals()[_name] = getattr(F, _name)
for _name in _TORCH_INPLACE:
    globals()[_name] = _torch_inplace(_name)
for _name in _COPY_OF_VIEW:
    globals()[_name + "_copy"] = _copy_of(_name)
__all__ = _TORCH_INPLACE + _FROM_FUNCTIONAL + [n + "_copy" for n in _COPY_OF_VIEW]
__all__ += composed_ops.__all__ + global_flags.__all__ + """vmap pi e inf nan newaxis layout strided memory_format
    contiguous_format preserve_format channels_last channels_last_3d legacy_contiguous_format""".split()


# ---- methods only -----------------------------------------------------------------------------

def _new(self, *args, **kwargs):
    """Legacy ``x.new(...)`` with ``self``'s dtype and device: ``new(2, 3)`` or ``new(Size)`` an
    uninitialized tensor of that size, ``new(data)`` a tensor of that data, ``new()`` an empty one."""
    from .tensors import Size
    if len(args) == 1 and isinstance(args[0], Tensor):
        return args[0].to(self.device, self.dtype)
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)) and not isinstance(args[0], Size):
        return creation.tensor(args[0], dtype=self.dtype, device=self.device)
    return creation.empty(*(args or (0,)), dtype=self.dtype, device=self.device)


def _resize(self, *sizes):
    warnings.warn("non-inplace resize is deprecated")
    return self.reshape(*sizes)


def _python_elementwise(self, name: str, others: tuple, callable: Callable):
    """``callable`` on each element of ``self`` (and of ``others``, broadcast), written back in
    place: CPU only, not differentiable (PyTorch's apply_/map_/map2_)."""
    if self.device.type != "cpu":
        raise TypeError(f"{name} is only implemented on CPU tensors")
    arr = self._data
    args = [np.broadcast_to(host_array(t._data), arr.shape) for t in others]
    if arr.size:
        arr[...] = np.vectorize(callable, otypes=[arr.dtype])(arr, *args)
    self._version.value += 1
    return self


def _apply_(self, callable: Callable):
    return _python_elementwise(self, "apply_", (), callable)


def _map_(self, other, callable: Callable):
    return _python_elementwise(self, "map_", (other,), callable)


def _map2_(self, x, y, callable: Callable):
    return _python_elementwise(self, "map2_", (x, y), callable)


def _cauchy_(self, median: float = 0.0, sigma: float = 1.0, *, generator=None):
    from .methods import _gen, _random_fill
    return _random_fill(self, median + sigma * np.tan(math.pi * (_gen(self, generator).random(self._data.shape) - 0.5)))


def _dim_order(self, *, ambiguity_check=False):
    """Dimensions from outermost to innermost in memory (by stride, then by position)."""
    st = self.stride()
    return tuple(sorted(range(self.dim()), key=lambda d: (-st[d], d)))


def _resize_(self, *size, memory_format=None):
    """Reshape in place to ``size``, keeping the leading elements (new ones uninitialized)."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    inplace.check_writable(self)
    if self.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    n = int(np.prod(size))
    flat = self._data.reshape(-1)
    new = array_module(flat).empty(n, dtype=flat.dtype)
    m = builtins.min(n, flat.size)
    new[:m] = flat[:m]
    self._data = new.reshape(size)
    self._version.value += 1
    return self


# Tensor methods that are composed_ops' functions (or graphc's existing ones), ``self`` first.
_METHODS: dict[str, Callable] = {
    **{n: getattr(composed_ops, n) for n in """acosh arccosh asinh arcsinh atanh arctanh arctan2 deg2rad rad2deg
        copysign fmax fmin heaviside positive sgn isneginf isposinf isreal inner vdot addmv addr addbmm adjoint
        diagflat
        conj conj_physical resolve_conj resolve_neg angle is_conj is_neg is_signed is_same_size index_copy
        select_scatter slice_scatter diagonal_scatter narrow_copy renorm cholesky_inverse cholesky_solve
        triangular_solve matrix_exp histogram split_with_sizes unsafe_chunk unsafe_split
        unsafe_split_with_sizes sum_to_size bitwise_left_shift bitwise_right_shift ldexp gcd lcm nextafter frexp
        unique_consecutive index_reduce""".split()},
    "resize": _resize, "resize_as": lambda self, other: _resize(self, tuple(other.shape)), "map2_": _map2_,
    "corrcoef": compat_extras.corrcoef, "cov": compat_extras.cov,
    "new": _new, "apply_": _apply_, "map_": _map_, "cauchy_": _cauchy_, "dim_order": _dim_order,
    "resize_": _resize_, "resize_as_": lambda self, other, memory_format=None: _resize_(self, tuple(other.shape)),
    "new_empty_strided": lambda self, size, stride, **kw: self.new_empty(tuple(size), **kw),
    "const_data_ptr": Tensor.data_ptr, "is_nonzero": lambda self: graphc.is_nonzero(self),
    "pin_memory": lambda self, device=None: self, "share_memory_": lambda self: self,
    "is_pinned": lambda self, device=None: False, "is_shared": lambda self: False,
    "is_distributed": composed_ops.is_distributed, "is_set_to": lambda self, other: (
        self.data_ptr() == other.data_ptr() and tuple(self.shape) == tuple(other.shape)
        and self.stride() == other.stride()),
    "module_load": lambda self, other, assign=False: other,
    "record_stream": lambda self, stream: None,
    "to_dense": lambda self, dtype=None, *, masked_grad=None: self if dtype is None else self.to(dtype),
    "prelu": F.prelu, "hardshrink": F.hardshrink,
}

# Read-only properties: real tensors on graphc's devices, dense, strided, never quantized or nested.
_FLAGS = {name: False for name in """is_xpu is_ipu is_maia is_meta is_mkldnn is_mtia is_nested is_quantized
    is_sparse is_sparse_csr is_vulkan is_xla""".split()}

# In-place variants, each its out-of-place method computed and written back (inplace.inplace_method).
_INPLACE = """absolute arccos arcsin arctan arctan2 greater greater_equal less less_equal not_equal negative fix
    tril triu addmm baddbmm hypot acosh arccosh asinh arcsinh atanh arctanh deg2rad rad2deg copysign heaviside
    sgn addmv addr addbmm index_copy index_reduce renorm conj_physical bitwise_left_shift bitwise_right_shift ldexp gcd lcm
    nextafter""".split()


def _attach() -> None:
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    for name, value in _FLAGS.items():
        setattr(Tensor, name, property(lambda self, v=value: v))
    for name in _INPLACE:
        setattr(Tensor, name + "_", inplace.inplace_method(getattr(Tensor, name), name + "_"))
    Tensor.layout = property(lambda self: strided)
    Tensor.output_nr = property(lambda self: self._output_nr)
    Tensor.name = property(lambda self: None)
    Tensor.real, Tensor.imag = property(composed_ops.real), property(composed_ops.imag)


_attach()
