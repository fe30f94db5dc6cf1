"""Tensor methods: conversions, operators, in-place variants, and the functional API as methods.

Most methods are the functions of ``math_ops``/``shape_ops`` themselves (``self`` is ``input``);
this module adds what only makes sense as a method and attaches everything to ``Tensor``.
"""
from __future__ import annotations

import warnings

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.array_module import array_module
from graphc.ir.primitive import bind

from . import creation, indexing, inplace, math_ops, random as grandom, shape_ops
from .autograd import grad_mode
from .autograd.graph import ToCopyBackward0
from .device import array_to, check_device, device as device_cls
from .tensors import Tensor, device_full, device_tensor, host_array

_TYPE_STRINGS = {f"torch.{d.scalar_name}Tensor": d for d in dt.ALL_DTYPES}
_TYPE_STRINGS.update({k.replace("torch.", "graphc."): v for k, v in list(_TYPE_STRINGS.items())})
_TYPE_NAMES = {v: k for k, v in _TYPE_STRINGS.items() if k.startswith("torch.")}


# ---- conversion -----------------------------------------------------------------------------

def _parse_to(args, kwargs):
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, dt.DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (str, device_cls, int)) and not isinstance(a, bool):
            device = a
        elif isinstance(a, bool):
            pass  # non_blocking / copy positional flags
        else:
            raise TypeError(f"to() received an invalid combination of arguments: {a!r}")
    return dtype, device, copy


def to_device(t: Tensor, dev: device_cls) -> Tensor:
    """A copy of ``t`` on ``dev`` (a checked device, not ``t``'s), differentiable as PyTorch's
    ``to``: the gradient is copied back."""
    out = Tensor._make(array_to(t._data, dev))
    if t.requires_grad and grad_mode.is_grad_enabled():
        out.grad_fn = ToCopyBackward0(t, t.device)
    return out


def to(self, *args, **kwargs):
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)``: ``self`` when
    nothing changes (unless ``copy=True``), else a converted copy."""
    dtype, device, copy = _parse_to(args, dict(kwargs))
    out = self
    if device is not None:
        dev = check_device(device)
        if dev is not self.device:
            out, copy = to_device(self, dev), False
    if dtype is None or dtype is out.dtype:
        return P.copy(out) if copy else out
    if out.dtype.is_complex and not dtype.is_complex:
        warnings.warn("Casting complex values to real discards the imaginary part", UserWarning, stacklevel=2)
    return P.cast(out, dtype=dtype)


def _caster(d: dt.DType):
    def convert(self, memory_format=None):
        return self if self.dtype is d else P.cast(self, dtype=d)
    convert.__name__ = d.torch_names[-1]
    return convert


def type_(self, dtype=None, non_blocking: bool = False):
    if dtype is None:  # 'graphc.FloatTensor', or 'graphc.cuda.FloatTensor' on a GPU (as PyTorch)
        prefix = "graphc.cuda." if self.device.type == "cuda" else "graphc."
        return _TYPE_NAMES[self.dtype].replace("torch.", prefix)
    if hasattr(dtype, "_legacy_dtype"):  # x.type(torch.FloatTensor): that dtype, on that device type
        return to(self, dtype._legacy_device, dtype._legacy_dtype)
    if isinstance(dtype, str):
        device = "cpu"
        if ".cuda." in dtype:  # 'torch.cuda.FloatTensor': that dtype, on the current GPU
            dtype, device = dtype.replace(".cuda.", "."), "cuda"
        if dtype not in _TYPE_STRINGS:
            raise ValueError(f"invalid type: '{dtype}'")
        return to(self, device, _TYPE_STRINGS[dtype])
    return to(self, dtype)


def type_as(self, other):
    return to(self, other.dtype)


def cpu(self, memory_format=None):
    return to(self, "cpu")


def cuda(self, device=None, non_blocking: bool = False, memory_format=None):
    """A copy on the GPU (``self`` if it is there already); ``device`` an index or a cuda device."""
    return to(self, cuda_device(device))


def cuda_device(device) -> device_cls:
    """The GPU that ``.cuda(device)`` names: the current one for None, else an index or a cuda device."""
    if device is None:
        from . import cuda
        device = cuda.current_device()
    d = check_device(device_cls("cuda", device) if isinstance(device, int) else device)
    if d.type != "cuda":
        raise RuntimeError(f"Invalid device, must be cuda device, got {d}")
    return d


def clone(self, *, memory_format=None):
    return P.copy(self)


def contiguous(self, memory_format=None):
    if self._data.flags.c_contiguous:
        return self
    out = P.copy(self)  # copies keep the input's layout (like clone); contiguous() wants row-major
    if not out._data.flags.c_contiguous:
        out._data = array_module(out._data).ascontiguousarray(out._data)
    return out


# new_* create on ``self``'s device and with its dtype unless told otherwise
def _new(factory):
    def method(self, *size, dtype=None, device=None, requires_grad: bool = False, **kw):
        return factory(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad,
                       **kw)
    return method


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False):
    return creation.full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                         requires_grad=requires_grad)


def new_tensor(self, data, *, dtype=None, device=None, requires_grad: bool = False):
    return creation.tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                           requires_grad=requires_grad)


# ---- in-place ops that are not "op then write" of an existing function ----------------------

def copy_(self, src, non_blocking: bool = False):
    if not isinstance(src, Tensor):
        src = creation.tensor(src)
    if src is self:
        return self
    if src.device != self.device:  # copy_ copies across devices, as in PyTorch
        src = to_device(src, self.device)
    try:
        value = P.expand(src, shape=tuple(self.shape)) if tuple(src.shape) != tuple(self.shape) else src
    except RuntimeError:
        raise RuntimeError(
            f"The size of tensor a ({list(self.shape)}) must match the size of tensor b "
            f"({list(src.shape)}): copy_ source does not broadcast to the destination") from None
    if value.dtype is not self.dtype:
        value = P.cast(value, dtype=self.dtype)
    elif value is src:
        value = P.copy(src)
    return inplace.write(self, value)


def fill_(self, value):
    if not isinstance(value, (Tensor, bool, int, float, np.number, np.bool_)):
        raise TypeError(f"fill_() received an invalid combination of arguments - got ({type(value).__name__}), "
                        "but expected (Tensor value) or (Number value)")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions.")
        v = P.expand(P.cast(value.to(self.device), dtype=self.dtype), shape=tuple(self.shape))
        return inplace.write(self, P.copy(v))
    return inplace.write(self, device_full(self, shape=tuple(self.shape), value=value, dtype=self.dtype))


def zero_(self):
    return fill_(self, 0)


def _random_fill(self, arr: np.ndarray):
    """Write host-drawn numbers into ``self`` (copied to its device; see graphc.random)."""
    inplace.check_writable(self)
    with grad_mode.no_grad():
        return inplace.write(self, Tensor._make(array_to(arr.astype(self._data.dtype), self.device)))


def _gen(self, generator):
    return grandom.gen(generator, self.device)


def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
    return _random_fill(self, _gen(self, generator).random(self._data.shape) * (b - a) + a)


def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
    return _random_fill(self, _gen(self, generator).standard_normal(self._data.shape) * std + mean)


def bernoulli_(self, p=0.5, *, generator=None):
    probs = host_array(p._data) if isinstance(p, Tensor) else p
    return _random_fill(self, _gen(self, generator).random(self._data.shape) < probs)


def random_(self, from_=0, to=None, *, generator=None):
    if to is None:
        from_, to = 0, from_ if from_ else (2 ** 24 if self.dtype.is_floating_point else np.iinfo(self._data.dtype).max)
    return _random_fill(self, _gen(self, generator).integers(from_, to, size=self._data.shape))


def exponential_(self, lambd: float = 1.0, *, generator=None):
    return _random_fill(self, _gen(self, generator).exponential(1.0 / lambd, size=self._data.shape))


def geometric_(self, p: float, *, generator=None):
    return _random_fill(self, _gen(self, generator).geometric(p, size=self._data.shape))


def log_normal_(self, mean: float = 1.0, std: float = 2.0, *, generator=None):
    return _random_fill(self, _gen(self, generator).lognormal(mean, std, size=self._data.shape))


def bernoulli(self, p=None, *, generator=None):
    return creation.bernoulli(self, p, generator=generator)


def multinomial(self, num_samples: int, replacement: bool = False, *, generator=None):
    return creation.multinomial(self, num_samples, replacement, generator=generator)


# ---- operators ------------------------------------------------------------------------------

def _reflected(fn):
    def method(self, other):
        return fn(math_ops.as_operand(other), self)
    return method


_OPERANDS = math_ops.OPERAND_TYPES


def _operator(prim, general):
    """``self <op> other``: with a tensor or a Python number, the primitive itself (what the
    function ``general`` binds for such operands, minus its argument handling); anything else
    through ``general``. Arithmetic operators are the most frequent ops of all."""
    def op(self, other):
        if isinstance(other, _OPERANDS):
            return bind(prim, self, other)  # prim(self, other), without the instance call
        return general(self, other)
    return op


def _bool_only_invert(self):
    if self.dtype.is_floating_point:
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return math_ops.bitwise_not(self)


def _bitwise_operator(bitwise):
    def op(self, other):
        other = math_ops.as_operand(other)
        if self.dtype.is_floating_point or (isinstance(other, Tensor) and other.dtype.is_floating_point) \
                or isinstance(other, float):
            d = dt.result_type(self, other)
            raise NotImplementedError(
                f'"{bitwise.__name__}_cpu" not implemented for \'{d.scalar_name}\'')
        return bitwise(self, other)
    return op


def _attach() -> None:
    T = Tensor
    # functional API as methods
    for mod, names in (
        (math_ops, """add sub mul div true_divide floor_divide remainder pow maximum minimum atan2 eq ne lt
            le gt ge logical_and logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor
            bitwise_not neg negative abs absolute sign floor ceil round trunc fix frac exp exp2 expm1 log
            log2 log10 log1p sin cos tan asin acos atan arcsin arccos arctan sinh cosh tanh sigmoid sqrt
            rsqrt reciprocal erf erfc square relu isnan isinf isfinite clamp clip clamp_min clamp_max
            lerp addcmul addcdiv fmod nan_to_num sum nansum prod mean var std amax amin max min argmax
            argmin all any count_nonzero cumsum logsumexp softmax log_softmax norm dist matmul mm bmm
            dot mv outer ger addmm baddbmm multiply divide subtract greater greater_equal less less_equal
            not_equal""".split()),
        (shape_ops, """reshape view view_as reshape_as permute transpose swapaxes swapdims t movedim
            moveaxis squeeze unsqueeze flatten ravel unflatten expand expand_as broadcast_to repeat tile
            repeat_interleave narrow split chunk tensor_split unbind select flip fliplr flipud roll
            diagonal tril triu trace diag index_select gather take_along_dim take scatter scatter_add
            index_add masked_fill masked_select nonzero argwhere sort argsort topk unique""".split()),
    ):
        for name in names:
            setattr(T, name, getattr(mod, name))
    T.where = lambda self, condition, other: math_ops.where(condition, self, other)
    from . import comparison
    T.equal, T.allclose, T.isclose = comparison.equal, comparison.allclose, comparison.isclose
    T.to, T.type, T.type_as, T.cpu, T.cuda, T.clone, T.contiguous = to, type_, type_as, cpu, cuda, clone, contiguous
    T.float, T.double, T.half = _caster(dt.float32), _caster(dt.float64), _caster(dt.float16)
    T.bfloat16 = _caster(dt.bfloat16)
    T.cfloat, T.cdouble = _caster(dt.complex64), _caster(dt.complex128)
    T.long, T.int, T.short, T.char = _caster(dt.int64), _caster(dt.int32), _caster(dt.int16), _caster(dt.int8)
    T.byte, T.bool = _caster(dt.uint8), _caster(dt.bool_)
    T.new_zeros, T.new_ones, T.new_empty = _new(creation.zeros), _new(creation.ones), _new(creation.empty)
    T.new_full, T.new_tensor = new_full, new_tensor
    T.copy_, T.fill_, T.zero_ = copy_, fill_, zero_
    T.uniform_, T.normal_, T.bernoulli_, T.random_ = uniform_, normal_, bernoulli_, random_
    T.exponential_, T.geometric_, T.log_normal_ = exponential_, geometric_, log_normal_
    T.bernoulli, T.multinomial = bernoulli, multinomial
    T.__getitem__, T.__setitem__ = indexing.getitem, indexing.setitem

    # in-place variants: compute out of place, write back
    for name in """add sub mul div true_divide floor_divide remainder pow maximum minimum atan2 neg abs sign
            floor ceil round trunc frac exp exp2 expm1 log log2 log10 log1p sin cos tan asin acos atan sinh
            cosh tanh sigmoid sqrt rsqrt reciprocal erf erfc square relu clamp clip clamp_min clamp_max lerp
            addcmul addcdiv fmod nan_to_num logical_and logical_or logical_xor logical_not bitwise_and
            bitwise_or bitwise_xor bitwise_not eq ne lt le gt ge cumsum masked_fill index_add scatter
            scatter_add t transpose squeeze unsqueeze multiply divide subtract""".split():
        fn = getattr(T, name)
        setattr(T, name + "_", inplace.inplace_method(fn, name + "_"))
    for name in ("t", "transpose", "squeeze", "unsqueeze"):  # these change the shape, not the data
        setattr(T, name + "_", _inplace_view(getattr(T, name), name + "_"))
    T.swapaxes_ = T.swapdims_ = T.transpose_
    T.is_mps = property(lambda self: False)

    # arithmetic operators
    T.__add__ = T.__radd__ = _operator(P.add, lambda self, other: math_ops.add(self, other))
    T.__sub__ = _operator(P.sub, lambda self, other: math_ops.sub(self, other))
    T.__rsub__ = _reflected(math_ops.sub)
    T.__mul__ = T.__rmul__ = _operator(P.mul, lambda self, other: math_ops.mul(self, other))
    T.__truediv__ = _operator(P.div, lambda self, other: math_ops.div(self, other))
    T.__rtruediv__ = _reflected(math_ops.div)
    T.__floordiv__ = lambda self, other: math_ops.floor_divide(self, other)
    T.__rfloordiv__ = _reflected(math_ops.floor_divide)
    T.__mod__ = lambda self, other: math_ops.remainder(self, other)
    T.__rmod__ = _reflected(math_ops.remainder)
    T.__pow__ = lambda self, other: math_ops.pow(self, other)
    T.__rpow__ = _reflected(math_ops.pow)
    # (grad_names wraps it, as math_ops.matmul, to name its node)
    T.__matmul__ = lambda self, other: bind(P.matmul, self, other) if isinstance(other, Tensor) else NotImplemented
    T.__rmatmul__ = lambda self, other: NotImplemented if isinstance(other, (int, float)) \
        else _reflected(math_ops.matmul)(self, other)
    T.__neg__ = math_ops.neg
    T.__pos__ = lambda self: self
    T.__abs__ = math_ops.abs
    T.__invert__ = _bool_only_invert
    T.__and__ = T.__rand__ = _bitwise_operator(math_ops.bitwise_and)
    T.__or__ = T.__ror__ = _bitwise_operator(math_ops.bitwise_or)
    T.__xor__ = T.__rxor__ = _bitwise_operator(math_ops.bitwise_xor)
    T.__eq__ = lambda self, other: math_ops.eq(self, other) if _comparable(other) else NotImplemented
    T.__ne__ = lambda self, other: math_ops.ne(self, other) if _comparable(other) else NotImplemented
    T.__lt__ = lambda self, other: math_ops.lt(self, other)
    T.__le__ = lambda self, other: math_ops.le(self, other)
    T.__gt__ = lambda self, other: math_ops.gt(self, other)
    T.__ge__ = lambda self, other: math_ops.ge(self, other)
    T.__hash__ = lambda self: id(self)
    # augmented assignment is in place, as in PyTorch
    T.__iadd__, T.__isub__, T.__imul__, T.__itruediv__ = T.add_, T.sub_, T.mul_, T.div_
    T.__ifloordiv__, T.__imod__, T.__ipow__ = T.floor_divide_, T.remainder_, T.pow_
    T.__iand__, T.__ior__, T.__ixor__ = T.bitwise_and_, T.bitwise_or_, T.bitwise_xor_
    T.T = property(_T)
    T.mT = property(lambda self: shape_ops.transpose(self, -2, -1))
    T.H = T.T
    T.mH = T.mT


def _inplace_view(fn, name: str):
    """``t_``, ``unsqueeze_`` ...: the tensor itself becomes the view (same memory, new shape)."""
    def method(self, *args, **kwargs):
        inplace.check_writable(self)
        result = fn(self, *args, **kwargs)
        self._data = result._data
        self._version.value += 1
        if self._base is not None and result._base is self._base:
            self._view_ops = result._view_ops  # a view's grad_fn may be replayed from these
        if result.grad_fn is not None:
            self.grad_fn, self._output_nr = result.grad_fn, 0
        return self
    method.__name__ = name
    return method


def _comparable(other) -> bool:
    return isinstance(other, (Tensor, bool, int, float, np.ndarray, np.generic, list, tuple))


def _T(self):
    return P.permute(self, dims=tuple(reversed(range(self.ndim))))


_attach()


def _attach_more_ops() -> None:
    """Scans, special functions, order statistics, products, indexing fills and linear algebra."""
    from . import linalg
    T = Tensor
    for mod, names in (
        (math_ops, """cumprod logcumsumexp cummax cummin diff logaddexp logaddexp2 xlogy lgamma erfinv digamma
            i0 igamma igammac mvlgamma sinc logit float_power median nanmedian mode kthvalue quantile nanquantile bincount histc kron""".split()),
        (shape_ops, "index_fill masked_scatter msort put".split()),
        (linalg, "inverse det logdet slogdet pinverse matrix_power".split()),
    ):
        for name in names:
            setattr(T, name, getattr(mod, name))
    T.cross = lambda self, other, dim=None: math_ops.cross(self, other, dim)
    T.polygamma = lambda self, n: math_ops.polygamma(n, self)
    from . import spectral
    T.stft, T.istft = spectral.stft, spectral.istft
    T.cholesky = linalg.torch_cholesky
    T.svd, T.qr = linalg.torch_svd, linalg.torch_qr
    from . import factorizations
    T.lu, T.lu_solve = factorizations.tensor_lu, factorizations.tensor_lu_solve
    for name in "cumprod xlogy lgamma erfinv digamma i0 igamma igammac mvlgamma sinc logit index_fill masked_scatter put".split():
        setattr(T, name + "_", inplace.inplace_method(getattr(T, name), name + "_"))
    T.polygamma_ = inplace.inplace_method(T.polygamma, "polygamma_")

    def float_power_(self, exponent):
        if self.dtype is not dt.float64:
            raise RuntimeError(f"the base given to float_power_ has dtype {self.dtype.scalar_name} but the "
                               "operation's result requires dtype Double")
        return inplace.inplace_method(math_ops.float_power, "float_power_")(self, exponent)
    T.float_power_ = float_power_

    def fill_diagonal_(self, fill_value, wrap: bool = False):
        """Fill the main diagonal in place; a tall matrix with ``wrap`` restarts it every cols+1 rows."""
        if self.dim() < 2:
            raise RuntimeError("dimensions must larger than 1")
        shape = tuple(self.shape)
        if self.dim() > 2 and len(set(shape)) != 1:
            raise RuntimeError("all dimensions of input must be of equal length")
        n = min(shape)
        if self.dim() == 2:
            h, w = shape
            flat = np.arange(0, h * w if wrap else n * w, w + 1)[: None if wrap else n]
            rows, cols = flat // w, flat % w
            idx = (Tensor._make(rows.astype(np.int64)), Tensor._make(cols.astype(np.int64)))
        else:
            idx = (Tensor._make(np.arange(n, dtype=np.int64)),) * self.dim()
        self[idx] = fill_value
        if self._base is None:
            math_ops.grad_named(self, "CopySlices")
        return self
    T.fill_diagonal_ = fill_diagonal_

    def index_put_(self, indices, values, accumulate: bool = False):
        """``self[indices] = values``; with ``accumulate``, repeated indices add up."""
        from . import indexing
        key = tuple(indices)
        if not accumulate:
            self[key] = values
            return self
        pos = indexing.positions(tuple(self.shape), key)
        if not isinstance(values, Tensor):
            values = device_tensor(np.asarray(values, dtype=self.dtype.np), self)
        vals = values.to(self.device, self.dtype).expand(pos.shape).reshape(-1)
        upd = self.new_zeros((self.numel(),)).index_add(0, device_tensor(pos.reshape(-1), self), vals)
        self.add_(upd.reshape(tuple(self.shape)))
        if self._base is None:
            math_ops.grad_named(self, "IndexPutBackward0")
        return self
    T.index_put_ = index_put_
    T.index_put = lambda self, indices, values, accumulate=False: index_put_(self.clone(), indices, values,
                                                                              accumulate)


_attach_more_ops()


def _attach_dlpack() -> None:
    from .utils.dlpack import tensor_dlpack, tensor_dlpack_device
    Tensor.__dlpack__, Tensor.__dlpack_device__ = tensor_dlpack, tensor_dlpack_device


_attach_dlpack()
