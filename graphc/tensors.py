"""The eager Tensor: a device array plus autograd metadata, and the eager primitive handler.

A tensor's ``_data`` is the array itself: a numpy array on the CPU, a CuPy array on a GPU; the
device is derived from it. Ops on tensors bind primitives (``graphc.ir``); the eager handler
computes them with the array module of the operands' device (numpy's API, which CuPy follows) and
records a ``PrimBackward`` node when autograd needs one. PyTorch-level methods (``sum``,
``view``, ``__getitem__`` ...) are attached to the class by the modules that define them.
"""
from __future__ import annotations

import functools
import warnings
import weakref

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir.primitive import Handler, Primitive, as_dtype, base_level_operand_type, bind, set_base_handler
from graphc.passes.autodiff import VJP

from .autograd import grad_mode
from .autograd.graph import (AccumulateGrad, RemovableHandle, _operand_type, named_node_class, prim_node_class,
                             record as _record, tensor_class)
from .dispatch import FrontendHandler, current as _dispatch
from .device import CPU, array_to, check_device, device as _device_type, device_of_array, get_default_device
from graphc.runtime import devices as _rt


class VersionCounter:
    """Shared by a tensor and all its views; bumped by every in-place write. (A slot: an
    optimizer step bumps one per in-place update, a class-level default read and written through
    the instance's dict costs more there than an ``__init__`` call saves elsewhere.)"""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class _Version(int):
    """What ``t._version`` reads: an int, as in PyTorch, still linked to the shared counter so
    that ``t._version.value += 1`` (and passing it on to ``_alias``) keeps working."""

    def __new__(cls, counter: VersionCounter) -> "_Version":
        v = int.__new__(cls, counter.value)
        v.counter = counter
        return v

    @property
    def value(self) -> int:
        return self.counter.value

    @value.setter
    def value(self, v: int) -> None:
        self.counter.value = v


def _counter(c) -> VersionCounter:
    return c.counter if isinstance(c, _Version) else c


_warned_float_requires_grad = False
_new_object = object.__new__
_grad_state = grad_mode._state  # this thread's grad mode switches
_grad_altered = grad_mode.altered  # count 0: no thread has changed them (see AlteredThreads)


class Tensor:
    __slots__ = ("_data", "_requires_grad", "_grad_fn", "_view_ver", "_output_nr", "_vc",
                 "_base", "_grad", "_hooks", "_retains_grad", "_acc", "_inference", "_view_ops", "__dict__", "__weakref__")
    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators
    _graphc_handler: Handler  # set below to the eager handler
    _symbolic = False  # a traced tensor (graphc.compile) has a type but no values

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, device=None, dtype=None) -> None:
        # Legacy constructor, as in torch.Tensor: Tensor(data) or Tensor(*sizes); always float.
        d = dtype or dt.get_default_dtype()
        if len(args) == 1 and not isinstance(args[0], int):
            arr = dt.host_array(_to_nested(args[0]), d)
        else:
            from .creation import _new_shape  # PyTorch's error for a negative size
            arr = np.zeros(_new_shape(args), dtype=d.np)
        Tensor._init_fields(self, array_to(arr, check_device(device)))

    # ---- construction -----------------------------------------------------------------------

    @staticmethod
    def _init_fields(t: "Tensor", arr: np.ndarray, requires_grad: bool = False) -> None:
        # (EagerHandler.apply sets the same fields inline: keep the two in step)
        t._data = arr
        t._requires_grad = requires_grad
        t._grad_fn = None
        t._view_ver = None
        t._output_nr = 0
        t._vc = None  # the version counter, made when first asked for (see _version_counter)
        t._base = None
        t._view_ops = ()
        t._grad = None
        t._hooks = None
        t._retains_grad = False
        t._acc = None
        # grad_mode.is_inference_mode_enabled(), read only when some thread may have changed it
        t._inference = _grad_state.inference if _grad_altered.count else False

    @classmethod
    def _make(cls, arr: np.ndarray, requires_grad: bool = False) -> "Tensor":
        t = _new_object(cls)
        Tensor._init_fields(t, arr, requires_grad)
        return t

    @staticmethod
    def _alias(arr: np.ndarray, counter: VersionCounter) -> "Tensor":
        t = Tensor._make(arr)
        t._version_counter = _counter(counter)
        return t

    @property
    def _version_counter(self) -> VersionCounter:
        """Shared with this tensor's views; made on first use (most results are never written
        in place nor viewed, so most tensors never need one)."""
        counter = self._vc
        if counter is None:
            counter = self._vc = VersionCounter()
        return counter

    @_version_counter.setter
    def _version_counter(self, counter: VersionCounter) -> None:
        self._vc = counter

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's memory has seen (shared with its views)."""
        return _Version(self._version_counter)

    @_version.setter
    def _version(self, counter) -> None:
        self._version_counter = _counter(counter)

    # ---- basic attributes -------------------------------------------------------------------

    @property
    def dtype(self) -> dt.DType:
        try:
            return dt.BY_NUMPY[self._data.dtype]
        except KeyError:
            return dt.from_numpy_dtype(self._data.dtype)

    @property
    def shape(self) -> "Size":
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        from graphc.ir.shapes import wrap_dim
        return self._data.shape[wrap_dim(dim, self._data.ndim)] if self._data.ndim else 1

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    @property
    def device(self) -> _device_type:
        try:
            arr = _DATA_SLOT.__get__(self)
        except AttributeError:  # a traced tensor (graphc.compiler) holds no array: no data to ask
            return CPU
        return CPU if type(arr) is np.ndarray else device_of_array(arr)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self.device is CPU

    def get_device(self) -> int:
        """The GPU index, or -1 on the CPU (PyTorch's convention)."""
        d = self.device
        return -1 if d is CPU else d.index

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return self.dtype.is_complex

    def is_inference(self) -> bool:
        return self._inference

    def stride(self, dim: int | None = None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        if dim is None:
            return st
        from graphc.ir.shapes import wrap_dim
        return st[wrap_dim(dim, self._data.ndim)]

    def storage_offset(self) -> int:
        base = self._base._data if self._base is not None else self._data
        rt = _rt.runtime_of(self._data)
        return (rt.data_ptr(self._data) - rt.data_ptr(_root_array(base))) // self._data.itemsize

    def data_ptr(self) -> int:
        return _rt.runtime_of(self._data).data_ptr(self._data)

    def untyped_storage(self):
        return _Storage(_root_array(self._data))

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def _is_view(self) -> bool:
        return self._base is not None

    # ---- autograd state ---------------------------------------------------------------------

    @property
    def grad_fn(self):
        # A differentiable view whose memory was written in place through its base (or a sibling
        # view) since its grad_fn was set gets a fresh one, replayed from the base's new history,
        # so gradients flowing through the view see the write (PyTorch regenerates it the same way).
        if self._view_ver is not None and self._view_ver != self._version_counter.value:
            self._regenerate_view_grad_fn()
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, fn) -> None:
        self._grad_fn = fn
        self._view_ver = self._version_counter.value if self._base is not None and self._view_ops else None

    def _regenerate_view_grad_fn(self) -> None:
        self._view_ver = self._version_counter.value
        base = self._base
        if not base.requires_grad:
            return
        with grad_mode.enable_grad():
            v = base
            for prim, attrs in self._view_ops:
                v = prim(v, **attrs)
        self._grad_fn, self._output_nr = v._grad_fn, v._output_nr

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self.grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None:
            if flag:  # PyTorch: the setter refuses even True; requires_grad_(True) is a no-op
                raise RuntimeError("you can only change requires_grad flags of leaf variables.")
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().")
        if flag and not self.dtype.is_inexact:
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
        if flag and self._inference:
            raise RuntimeError(
                "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.grad_fn is not None:
            return self
        if requires_grad and not self.dtype.is_inexact:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self

    @property
    def grad(self):
        return _dispatch().get_grad(self)

    @grad.setter
    def grad(self, value) -> None:
        _dispatch().set_grad(self, value)

    @grad.deleter
    def grad(self) -> None:
        _dispatch().set_grad(self, None)

    def _read_grad(self):
        """``.grad`` as eager mode reads it (the current handler decides; see graphc.dispatch)."""
        if self.grad_fn is not None and not self._retains_grad and self._grad is None:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
                "non-leaf Tensor.", UserWarning, stacklevel=4)
        return self._grad

    def _write_grad(self, value) -> None:
        """``.grad = value`` as eager mode does it, after PyTorch's checks."""
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
            if value.dtype is not self.dtype:
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{value.dtype.c_name}' "
                    f"to a tensor with grad_dtype '{self.dtype.scalar_name}'. The gradient must match the "
                    "tensor's grad_dtype (defaults to the tensor's dtype).")
            if tuple(value.shape) != tuple(self.shape):
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of size "
                    f"'{list(self.shape)}'. Please ensure that the gradient and the tensor are the same size")
        self._grad = value

    @property
    def is_param(self) -> bool:
        return False

    def _grad_accumulator(self) -> AccumulateGrad:
        acc = self._acc() if self._acc is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._acc = weakref.ref(acc)
        return acc

    def retain_grad(self) -> None:
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        if self._retains_grad:
            return
        self._retains_grad = True
        ref = weakref.ref(self)

        def store(grad):
            t = ref()
            if t is None:
                return
            if t._grad is None:
                t._grad = grad.detach().clone() if not grad_mode.is_grad_enabled() else grad.clone()
            else:
                t._grad = t._grad + grad
        self.grad_fn._own("_retain_grad_hooks")[self._output_nr] = store

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook) -> RemovableHandle:
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = {}
            container = self._hooks
        else:
            container = self.grad_fn._own("_tensor_hooks").setdefault(self._output_nr, {})
        h = RemovableHandle(container)
        container[h.id] = hook
        return h

    def register_post_accumulate_grad_hook(self, hook) -> RemovableHandle:
        """``hook(tensor)`` runs after a backward pass has accumulated into this leaf's ``.grad``."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        container = self.__dict__.setdefault("_post_accumulate_hooks", {})
        h = RemovableHandle(container)
        container[h.id] = hook
        return h

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        from .autograd.engine import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """Same memory and version counter, no autograd history."""
        return Tensor._alias(self._data, self._version_counter)

    def detach_(self) -> "Tensor":
        if self._base is not None and self._base.requires_grad:
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) "
                "for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, "
                "and hence detach_() cannot be called on these gradients. To fix this error, please refer to the "
                "Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        """Same memory, no history, and (unlike detach()) its own version counter: in-place
        writes through ``.data`` are hidden from autograd's saved-tensor checks, as in PyTorch."""
        return Tensor._alias(self._data, VersionCounter())

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data  # the tensor keeps its own version counter, as in PyTorch

    # ---- conversion -------------------------------------------------------------------------

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The tensor's memory as a numpy array (shared, on the CPU); ``force`` copies a GPU
        tensor to the host and detaches, as in PyTorch."""
        if force:
            self._check_numpy_dtype()
            return _rt.runtime_of(self._data).to_host(self._data)
        _dispatch().reading_values(self, ".numpy()")
        self._check_numpy()
        return self._data

    def _check_numpy_dtype(self) -> None:
        if self.dtype is dt.bfloat16:  # numpy has no bfloat16: PyTorch refuses, so do we
            raise TypeError("Got unsupported ScalarType BFloat16")

    def _check_numpy(self) -> None:
        self._check_numpy_dtype()
        if type(self._data) is not np.ndarray and self.device is not CPU:
            raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to "
                            "copy the tensor to host memory first.")
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")

    def __array__(self, dtype=None, copy=None):
        self._check_numpy()
        return self._data if dtype is None else self._data.astype(dtype)

    def item(self):
        _dispatch().reading_values(self, ".item()")
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        _dispatch().reading_values(self, ".tolist()")
        return self._data.tolist()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def _scalar_check(self, kind: str):
        _dispatch().reading_values(self, f"{kind}(tensor)")
        if self._data.size != 1:
            if kind == "bool":
                raise RuntimeError(
                    f"Boolean value of Tensor with {'no values' if self._data.size == 0 else 'more than one value'}"
                    " is ambiguous")
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self._data.reshape(()).item()

    def __bool__(self) -> bool:
        return bool(self._scalar_check("bool"))

    def __float__(self) -> float:
        global _warned_float_requires_grad
        if not _warned_float_requires_grad and self.requires_grad:
            if grad_mode.is_grad_enabled():
                _warned_float_requires_grad = True  # PyTorch warns once per process
                warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to unexpected "
                               "behavior.\nConsider using tensor.detach() first.", UserWarning, stacklevel=2)
        return float(self._scalar_check("float"))

    def __int__(self) -> int:
        return int(self._scalar_check("int"))

    def __index__(self) -> int:
        _dispatch().reading_values(self, "using a tensor as an index")
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.reshape(()).item())

    def __complex__(self) -> complex:
        return complex(self._scalar_check("complex"))

    def __hash__(self) -> int:
        return id(self)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self._data.copy(), self.requires_grad))

    def __deepcopy__(self, memo):
        if not self.is_leaf:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the moment. "
                "If you were attempting to deepcopy a module, this may be because of a torch.nn.utils.weight_norm usage, "
                "see https://github.com/pytorch/pytorch/pull/103001")
        if id(self) in memo:
            return memo[id(self)]
        t = type(self).__new__(type(self))
        Tensor._init_fields(t, self._data.copy(), self._requires_grad)
        if self._grad is not None:
            t._grad = self._grad.__deepcopy__(memo)
        for k, v in getattr(self, "__dict__", {}).items():
            import copy
            t.__dict__[k] = copy.deepcopy(v, memo)
        memo[id(self)] = t
        return t

    def __repr__(self) -> str:
        from .printing import tensor_repr
        return tensor_repr(self)

    def __str__(self) -> str:
        return self.__repr__()  # so subclasses' reprs (Parameter containing:) print too

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)


def host_array(arr) -> np.ndarray:
    """A tensor's array as a numpy array: itself on the CPU, a copy from another device (for
    host-only computations: printing, serialization, data-dependent helpers). Callers pass
    ``t._data``, so that reading a traced tensor's values is a graph break named after them."""
    return arr if type(arr) is np.ndarray else _rt.runtime_of(arr).to_host(arr)


def device_tensor(arr: np.ndarray, like: Tensor) -> Tensor:
    """A tensor of host-computed values (indices, masks) on ``like``'s device."""
    return Tensor._make(array_to(arr, like.device))


def device_full(like: Tensor, *, shape: tuple[int, ...], value, dtype: dt.DType) -> Tensor:
    """``prims.full`` on ``like``'s device (an operand-free primitive lands on the default device)."""
    from graphc.ir import prims as P
    from .device import using_device
    with using_device(like.device):
        return P.full(shape=shape, value=value, dtype=dtype)


# the raw ``_data`` slot, read by ``device`` past subclasses that guard ``_data`` (traced tensors)
_DATA_SLOT = Tensor.__dict__["_data"]


def _rebuild(arr, requires_grad):
    return Tensor._make(arr, requires_grad)


def _root_array(arr):
    """The array that owns the memory ``arr`` views (numpy and CuPy both keep ``.base``)."""
    while isinstance(arr.base, type(arr)):
        arr = arr.base
    return arr


class _Storage:
    def __init__(self, arr) -> None:
        self._arr = arr

    def data_ptr(self) -> int:
        return _rt.runtime_of(self._arr).data_ptr(self._arr)

    def nbytes(self) -> int:
        return self._arr.nbytes

    def size(self) -> int:
        return self._arr.nbytes


class Size(tuple):
    """torch.Size: a tuple of ints with PyTorch's repr."""

    def __repr__(self) -> str:
        return f"graphc.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, item):
        r = tuple.__getitem__(self, item)
        return Size(r) if isinstance(item, slice) else r


def _to_nested(data):
    """Turn nested sequences that may contain tensors into something numpy accepts."""
    if isinstance(data, Tensor):
        return host_array(data._data)
    if isinstance(data, (list, tuple)):
        return [_to_nested(x) for x in data]
    return data


# ---- the eager handler ----------------------------------------------------------------------

_TYPING_LIMIT = 8192  # memoized signatures per primitive


def _typing(prim: Primitive, key: tuple, args: tuple, attrs: dict) -> tuple:
    """What an eager op's signature decides, memoized per primitive (``prim._eager_typing``):
    the type rule's result, the operand casts (None when no operand is cast), what makes the
    result's backward node (``_node_maker``; None when the result cannot carry a gradient), the
    result's numpy dtype, whether its dtype is floating or complex (a view of it then records
    how to replay its grad_fn), and the tensor operands' TensorTypes (what a backward node keeps
    of an operand whose values its rule does not read). ``key`` is the
    signature: operand shapes and dtypes, Python scalar types, attributes and the default
    dtype, all these depend on. The type rule is most of an eager op's cost."""
    try:
        memo = prim._eager_typing
    except AttributeError:
        memo = prim._eager_typing = {}
    typ = prim.infer(*args, **attrs)
    casts = prim.operand_casts(args, attrs)
    inexact = typ.dtype.is_inexact
    facts = (typ, casts if any(c is not None for c in casts) else None,
             _node_maker(prim, NODE_NAMES[prim](args) if prim in NODE_NAMES else None)
             if prim.differentiable and inexact else None, typ.dtype.np, inexact,
             tuple(_operand_type(a._data) if isinstance(a, Tensor) else None for a in args))
    try:
        if len(memo) >= _TYPING_LIMIT:
            memo.clear()
        memo[key] = facts
    except TypeError:  # an unhashable attribute: no memo
        pass
    return facts


# primitive -> namer(args): PyTorch's name for the backward node of an application of the
# primitive to ``args`` where it depends on them (x @ y: MmBackward0 for two matrices), None for
# the primitive's own name. graphc.grad_names fills it; read once per memoized signature.
NODE_NAMES: dict = {}


def _node_maker(prim: Primitive, name: str | None = None):
    """``maker(attrs, args, result, types)`` gives ``prim``'s backward node, or None when no
    differentiable operand requires grad: ``autograd.graph.record`` with the node's class (named
    ``name``, else for the primitive), the primitive and its VJP rule bound (a rule registered
    late is looked up when a node is made)."""
    maker = _MAKERS.get((prim, name))
    if maker is not None:  # (made once: signatures whose attributes vary, full's value, miss the memo)
        return maker
    cls = _node_class(prim) if name is None else named_node_class(name)
    keeps = _KEEPS.setdefault(prim, {})
    rule = VJP.get(prim)
    if rule is None:
        return lambda attrs, args, result, types=None: _record(cls, prim, VJP[prim], keeps, attrs, args, result, types)
    maker = _MAKERS[prim, name] = functools.partial(_record, cls, prim, rule, keeps)
    return maker


_KEEPS: dict = {}  # primitive -> the operands its node saves per set of wanted gradients (see record)
_MAKERS: dict = {}  # (primitive, node name or None) -> its node maker


def _mixed_devices(first, other) -> RuntimeError:
    return RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                        f"{first} and {other}!")


def _common_device(args: tuple) -> _device_type:
    """The device an op on ``args`` runs on: the device of its tensors. 0-dim CPU tensors (and
    Python scalars) may join tensors of another device, as in PyTorch; any other mix raises
    PyTorch's error. With no tensor at all, the default device."""
    found = None
    host_scalar = False
    for a in args:
        if isinstance(a, Tensor):
            d = a.device
            if d is CPU and a._data.ndim == 0:
                host_scalar = True
            elif found is None:
                found = d
            elif d is not found:
                first, other = (found, d) if found is not CPU else (d, found)
                raise _mixed_devices(first, other)
    if found is None:
        return CPU if host_scalar else get_default_device()
    return found


class EagerHandler(FrontendHandler):
    level = 0

    def apply(self, prim: Primitive, args: tuple, attrs: dict, attrs_key=None):
        # attrs_key: a caller's own memo key for ``attrs`` (see attrs_token), instead of the
        # tuple of their items made and hashed per call
        # The typing memo's key (the operands' signature: shapes and dtypes of tensors, types of
        # Python scalars, flat, then the default dtype; paired with the attributes if any), the
        # operands' arrays, and whether any operand may require grad (checked exactly below, only
        # then). One or two operands on the host, a tensor first, is the common case and skips
        # the general loop; its grad check is _may_require_grad, inline. (dt._default_float is
        # get_default_dtype(), without the call.)
        n = len(args)
        fast = False
        if n == 2:
            a, b = args
            if isinstance(a, Tensor) and type(da := a._data) is _ndarray:
                if isinstance(b, Tensor):
                    if type(db := b._data) is _ndarray:
                        key = (da.shape, da.dtype, db.shape, db.dtype, dt._default_float)
                        arrays = (da, db)
                        maybe_grad = (a._requires_grad or a._grad_fn is not None
                                      or (a._view_ver is not None and _view_written(a))
                                      or b._requires_grad or b._grad_fn is not None
                                      or (b._view_ver is not None and _view_written(b)))
                        fast = True
                elif type(b) in _SCALAR_TYPES:
                    key = (da.shape, da.dtype, type(b), dt._default_float)
                    arrays = (da, b)
                    maybe_grad = (a._requires_grad or a._grad_fn is not None
                                  or (a._view_ver is not None and _view_written(a)))
                    fast = True
        elif n == 1:
            a = args[0]
            if isinstance(a, Tensor) and type(da := a._data) is _ndarray:
                key = (da.shape, da.dtype, dt._default_float)
                arrays = (da,)
                maybe_grad = (a._requires_grad or a._grad_fn is not None
                              or (a._view_ver is not None and _view_written(a)))
                fast = True
        if fast and not prim.data_dependent:
            dev, xp = CPU, np
        else:
            sig, arrays, dev, xp, maybe_grad = _operands(args)
            key = sig + (dt._default_float,)
            if prim.data_dependent:
                out = prim.impl(*arrays, **attrs)
                return Tensor._make(out if type(out) is xp.ndarray else array_to(np.asarray(out), dev))
        if attrs:
            key = (key, tuple(attrs.items()) if attrs_key is None else attrs_key)
        try:
            typ, casts, node_maker, np_dtype, inexact, types = prim._eager_typing[key]
        except (AttributeError, KeyError, TypeError):  # not memoized yet (or not hashable)
            typ, casts, node_maker, np_dtype, inexact, types = _typing(prim, key, args, attrs)
        if casts is None:  # prim.run without casts, inline
            try:
                out = prim.impl(*arrays, **attrs) if attrs else prim.impl(*arrays)
            except OverflowError:  # (an int operand out of range: run wraps it)
                out = prim.run(arrays, attrs, casts, typ.dtype)
            else:
                if type(out) is not _ndarray or out.dtype is not np_dtype:
                    out = as_dtype(out, np_dtype)
        else:
            out = prim.run(arrays, attrs, casts, typ.dtype)
        if not fast and type(out) is not xp.ndarray:
            # on a GPU, a host array from an operand-free primitive (full, arange: computed on
            # the host, placed on the default device); on the fast path (host operands) the
            # checks above left a host array
            out = array_to(out, dev)
        result = _new_object(Tensor)  # Tensor._init_fields(result, out), inline: every op makes one
        result._data = out
        result._requires_grad = False
        result._grad_fn = None
        result._view_ver = None
        result._output_nr = 0
        result._vc = None
        result._base = None
        result._view_ops = ()
        result._grad = None
        result._hooks = None
        result._retains_grad = False
        result._acc = None
        result._inference = _grad_state.inference if _grad_altered.count else False
        if prim.view:
            _record_view(result, args[0], prim, attrs, inexact, xp)
        if maybe_grad and node_maker is not None and (_grad_state.enabled if _grad_altered.count else True):
            # (None unless a differentiable operand requires grad; not the grad_fn setter: its view
            # bookkeeping, _view_ver, is what _record_view just set for a differentiable view)
            result._grad_fn = node_maker(attrs, args, result, types)
        return result


_VIEW_NODE_MAKERS: dict = {}  # view primitive -> its _node_maker, for eager_view


def eager_view(prim: Primitive, src: Tensor, out: np.ndarray, attrs: dict) -> Tensor:
    """What ``bind(prim, src, **attrs)`` gives for a view primitive whose result numpy already
    computed as ``out`` (a view of ``src``'s host array, of its dtype), where the caller checked
    that the eager handler decides (no thread dispatches, ``src`` a plain Tensor) and that the
    type rule accepts the operands: the result with ``EagerHandler.apply``'s view record and
    backward node. ``x[i]``'s fast path (graphc.indexing): the primitive's own binding costs
    twice numpy's indexing and the tensor together."""
    result = _new_object(Tensor)
    _init_fields(result, out)
    d = out.dtype
    inexact = d.kind in "fc" or (d.kind == "V" and dt.from_numpy_dtype(d).is_inexact)  # (bfloat16)
    _record_view(result, src, prim, attrs, inexact, np)
    if inexact and (src._requires_grad or src._grad_fn is not None or src._view_ver is not None) and (
            _grad_state.enabled if _grad_altered.count else True):
        maker = _VIEW_NODE_MAKERS.get(prim)
        if maker is None:
            maker = _VIEW_NODE_MAKERS[prim] = _node_maker(prim)
        result._grad_fn = maker(attrs, (src,), result)  # (None unless src requires grad)
    return result


class attrs_token:
    """A memo key standing for one set of attributes, for a hot path that binds a primitive
    with attributes it keeps (``EagerHandler.apply(prim, args, attrs, token)``): hashed by
    identity, so keep one token per distinct ``attrs`` for as long as they are used."""

    __slots__ = ("__weakref__",)


def _view_written(a: Tensor) -> bool:
    """Whether view ``a`` (``a._view_ver`` set) was written in place since its grad_fn was set,
    so that reading ``a.grad_fn`` regenerates it, which may make it require grad."""
    return a._view_ver != a._version_counter.value


def _may_require_grad(a: Tensor) -> bool:
    """False only if ``a.requires_grad`` is False: a cheap first check before the exact one (a
    view's grad_fn may be regenerated after an in-place write)."""
    return a._requires_grad or a._grad_fn is not None or (a._view_ver is not None and _view_written(a))


_ndarray = np.ndarray
_node_class = prim_node_class
_SCALAR_TYPES = frozenset((int, float, bool))
_init_fields = Tensor._init_fields


def _operands(args: tuple) -> tuple:
    """``EagerHandler.apply``'s view of any operands: their signature, their arrays on the device
    the op runs on (0-dim CPU tensors are brought there), that device and its array module, and
    whether an operand may require grad."""
    sig = []
    arrays = []
    host = True
    maybe_grad = False
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            if type(d) is not _ndarray:
                host = False
            sig += (d.shape, d.dtype)
            arrays.append(d)
            if not maybe_grad and _may_require_grad(a):
                maybe_grad = True
        else:
            sig.append(type(a))
            arrays.append(a)
    if host and args:
        return tuple(sig), arrays, CPU, np, maybe_grad
    dev = _common_device(args) if args else get_default_device()
    if dev is CPU:
        return tuple(sig), arrays, dev, np, maybe_grad
    return tuple(sig), [_operand(a, dev) for a in args], dev, _rt.get(dev.type).xp, maybe_grad


def _record_view(result: Tensor, src: Tensor, prim: Primitive, attrs: dict, inexact: bool, xp) -> None:
    """A view primitive's result shares its operand's version counter and remembers how it was
    made from the base, if numpy (or the device library) made it a view of the operand
    (``inexact``: its dtype is floating or complex)."""
    base, sd = result._data.base, src._data
    # numpy's views keep the owner of the memory as base; anything else, such as a copy made by
    # reshape, is asked by may_share_memory
    if base is not None and (base is sd or base is sd.base or xp.may_share_memory(result._data, sd)):
        counter = src._vc  # src._version_counter, without the property call: every view op comes here
        if counter is None:
            counter = src._vc = VersionCounter()
        result._vc = counter
        if src._base is not None:
            result._base, result._view_ops = src._base, src._view_ops + ((prim, attrs),)
        else:
            result._base, result._view_ops = src, ((prim, attrs),)
        if inexact and (_grad_state.enabled if _grad_altered.count else True):
            # its grad_fn is replayed from the base after in-place writes (see grad_fn)
            result._view_ver = counter.value


def _operand(a, dev: _device_type):
    """A tensor operand's array on ``dev`` (a 0-dim CPU tensor is copied there); other operands as they are."""
    if not isinstance(a, Tensor):
        return a
    return a._data if type(a._data) is not np.ndarray or dev is CPU else array_to(a._data, dev)


EAGER = EagerHandler()
Tensor._graphc_handler = EAGER
tensor_class()  # autograd.graph's record checks operands against Tensor: known from now on
set_base_handler(EAGER)
base_level_operand_type(Tensor)

__all__ = ["Tensor", "Size", "VersionCounter", "EAGER", "bind", "_device_type", "host_array", "device_tensor",
           "device_full", "eager_view", "attrs_token"]
