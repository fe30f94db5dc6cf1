"""``tensor[key]`` and ``tensor[key] = value`` with PyTorch (= numpy) indexing semantics.

Basic indexing (ints, slices, None, ...) becomes view primitives (a slice, then a select per int
as in PyTorch, or a reshape where None adds dimensions), so the result is a view sharing memory. Advanced indexing (integer tensors, boolean masks, lists) gathers from the
flattened tensor at the positions numpy's indexing rules select, which gives a copy. Those
positions are worked out on the host (index tensors on a GPU are copied there) and the gather
runs on the tensor's device.
"""
from __future__ import annotations

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.primitive import bind, only_base_handler

from . import inplace
from .autograd import grad_mode
from .dispatch import current as _dispatch
from .autograd.graph import backward_name
from .device import array_to
from .math_ops import grad_named
from .tensors import Tensor, device_tensor, eager_view, host_array


def _is_basic(k) -> bool:
    return k is None or k is Ellipsis or isinstance(k, slice) or (
        isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)))


def _np_key(k):
    if isinstance(k, Tensor):
        if k.dtype.is_floating_point:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return host_array(k._data)
    if isinstance(k, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(k).__name__}'")
    if isinstance(k, (list, tuple)):
        arr = np.asarray([host_array(x._data) if isinstance(x, Tensor) else x for x in k])
        if arr.size == 0:
            arr = arr.astype(np.int64)  # x[[]] selects nothing
        if dt.is_floating_array_dtype(arr.dtype):
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return arr
    if isinstance(k, slice):
        for v in (k.start, k.stop, k.step):
            if isinstance(v, Tensor):
                return slice(*(int(x) if isinstance(x, Tensor) else x for x in (k.start, k.stop, k.step)))
        if k.step == 0:
            raise ValueError("slice step cannot be zero")
        if k.step is not None and k.step < 0:
            raise ValueError("step must be greater than zero")
    return k


def _as_tuple(key) -> tuple:
    if isinstance(key, tuple):
        return key
    return (key,)


def _basic_plan(shape: tuple[int, ...], key: tuple):
    """Ranges for every dim, the result shape and the (dim, wrapped index) of every int, for a key
    of ints/slices/None/Ellipsis."""
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    if consumed > len(shape):
        if not shape:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                             "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    ranges, out_shape, ints, d = [], [], [], 0
    for pos, k in enumerate(key):
        if k is Ellipsis:
            for _ in range(len(shape) - consumed):
                ranges.append((0, shape[d], 1))
                out_shape.append(shape[d])
                d += 1
        elif k is None:
            out_shape.append(1)
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[d])
            ranges.append((start, stop, step))
            out_shape.append(len(range(start, stop, step)))
            d += 1
        else:
            i = int(k)
            n = shape[d]
            if not -n <= i < n:  # PyTorch names the index's position in the key (x[..., 9]: 1)
                raise IndexError(f"index {i} is out of bounds for dimension {pos} with size {n}")
            i %= n
            ranges.append((i, i + 1, 1))
            ints.append((d, i))
            d += 1
    while d < len(shape):
        ranges.append((0, shape[d], 1))
        out_shape.append(shape[d])
        d += 1
    return tuple(ranges), tuple(out_shape), ints


def _grad_name(ndim: int, key: tuple) -> str:
    """PyTorch's name for the grad_fn of ``x[key]`` (x with ``ndim`` dimensions)."""
    if not all(_is_basic(k) for k in key):
        return "IndexBackward0"
    last = None
    for k in key:
        if k is None:
            last = "UnsqueezeBackward0"
        elif isinstance(k, slice):
            if k != slice(None) or len(key) == 1:
                last = "SliceBackward0"
        elif k is not Ellipsis:
            last = "SelectBackward0"
    return last or "AliasBackward0"


def _view_steps(shape: tuple[int, ...], key: tuple) -> tuple:
    """The views making ``x[key]`` for a key of ints/slices/None/Ellipsis, as (primitive,
    attributes) pairs: a slice of the ranges that are not whole dimensions, then, as PyTorch does,
    a select per int (without None), or one reshape dropping the ints' dimensions and adding
    None's. Never empty: ``x[:]`` and ``x[...]`` are new views too."""
    ranges, out_shape, ints = _basic_plan(shape, key)
    if ints and not any(k is None for k in key):
        int_dims = {d for d, _ in ints}
        ranges = tuple((0, n, 1) if d in int_dims else r for d, (r, n) in enumerate(zip(ranges, shape)))
        # each select drops a dimension: the later ones count from what is left
        steps = tuple((P.select, {"dim": d - k, "index": i}) for k, (d, i) in enumerate(ints))
    else:
        steps = ((P.reshape, {"shape": out_shape}),)
    if any(r != (0, n, 1) for r, n in zip(ranges, shape)):
        steps = ((P.slice, {"index": ranges}),) + steps
        if steps[-1][0] is P.reshape and tuple(len(range(*r)) for r in ranges) == out_shape:
            steps = steps[:-1]  # the slice has the result's shape already (no ints, no None)
    return steps


def positions(shape: tuple[int, ...], key) -> np.ndarray:
    """Flat element indices that ``key`` selects, by numpy's (= PyTorch's) indexing rules."""
    base = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    np_key = tuple(_np_key(k) for k in _as_tuple(key))
    try:
        return np.ascontiguousarray(base[np_key if len(np_key) != 1 else np_key[0]])
    except IndexError as e:
        _check_mask_shapes(shape, _as_tuple(key))
        msg = str(e).replace("axis", "dimension")
        raise IndexError(msg) from None


def _check_mask_shapes(shape: tuple, key: tuple) -> None:
    """PyTorch's error for a boolean mask whose shape does not match the dimensions it indexes."""
    consumed = sum(1 if not isinstance(k, (Tensor, np.ndarray)) or np.asarray(_np_key(k)).dtype != np.bool_
                   else np.asarray(_np_key(k)).ndim for k in key if k is not None and k is not Ellipsis)
    d = 0
    for k in key:
        if k is None:
            continue
        if k is Ellipsis:
            d += len(shape) - consumed
            continue
        arr = _np_key(k) if isinstance(k, (Tensor, np.ndarray)) else None
        if arr is not None and np.asarray(arr).dtype == np.bool_:
            m = np.asarray(arr)
            for j in range(m.ndim):
                if d + j < len(shape) and m.shape[j] != shape[d + j]:
                    raise IndexError(f"The shape of the mask {list(m.shape)} at index {j} does not match the shape "
                                     f"of the indexed tensor {list(shape)} at index {d + j}")
            d += m.ndim
        else:
            d += 1


_SELECT_ATTRS: dict = {}  # i -> select's attributes for x[i] (shared: attributes are never changed)

# (shape, key) -> its _view_steps and PyTorch's name for their last grad_fn where the primitive's
# own differs (None: it is the same), for plain keys
_BASIC_PLANS: dict = {}


def _plan_key(shape: tuple, key: tuple):
    """What a basic plan depends on, hashable (slices are not, before Python 3.12), or None for
    keys with parts other than ints, None, ``...`` and slices of ints."""
    parts = [shape]
    for k in key:
        t = type(k)
        if t is int or k is None or k is Ellipsis:
            parts.append(k)
        elif t is slice and all(v is None or type(v) is int for v in (k.start, k.stop, k.step)):
            parts.append((k.start, k.stop, k.step))
        else:
            return None
    return tuple(parts)


def getitem(self: Tensor, key):
    if type(key) is int and type(self) is Tensor and only_base_handler(self):
        # x[i] of a host matrix (bind would give it to the eager handler): numpy's own da[i] is
        # select's view, made without the primitive's binding (see eager_view)
        da = self._data
        if type(da) is np.ndarray and da.ndim > 1 and -(n := da.shape[0]) <= key < n:
            if key < 0:
                key += n  # select's index is normalized
            attrs = _SELECT_ATTRS.get(key)
            if attrs is None:
                if len(_SELECT_ATTRS) >= 4096:
                    _SELECT_ATTRS.clear()
                attrs = _SELECT_ATTRS[key] = {"dim": 0, "index": key}
            return eager_view(P.select, self, da[key], attrs)
    # (the array's shape: the Size of self.shape costs more than all of x[i]'s own work)
    shape = self._data.shape if type(self) is Tensor else tuple(self.shape)
    if type(key) is int:  # x[i], the most common key: its plan's key without _plan_key
        plan = _BASIC_PLANS.get(memo := (shape, key))
        if plan is None:
            key = (key,)  # the key as a tuple, read only to make the plan
    else:
        key = _as_tuple(key)
        memo = _plan_key(shape, key)
        plan = _BASIC_PLANS.get(memo) if memo is not None else None
    if plan is None and all(_is_basic(k) for k in key):
        steps = _view_steps(shape, tuple(_np_key(k) for k in key))
        name = _grad_name(len(shape), key)
        plan = steps, (None if name == backward_name(steps[-1][0].name) else name)
        if memo is not None:
            if len(_BASIC_PLANS) >= 4096:
                _BASIC_PLANS.clear()
            _BASIC_PLANS[memo] = plan
    if plan is not None:
        steps, name = plan
        # (bind(prim, ...) is prim(...), without an instance call's cost)
        if len(steps) == 1:  # x[i], x[:, i], x[a:b]: one view
            prim, attrs = steps[0]
            x = bind(prim, self, **attrs)
        else:
            x = self
            for prim, attrs in steps:
                x = bind(prim, x, **attrs)
        return x if name is None else grad_named(x, name)
    if any(isinstance(k, Tensor) and k._symbolic for k in key):
        out = _traced_take(self, key)
        if out is not None:
            return grad_named(out, "IndexBackward0")
    pos = positions(tuple(self.shape), key)
    flat = P.reshape(self, shape=(self.numel(),))
    return grad_named(P.take(flat, device_tensor(pos, self), axis=0), "IndexBackward0")


def _traced_take(self: Tensor, key: tuple):
    """``x[key]`` while tracing, where ``key`` holds symbolic integer index tensors (None: not
    expressible, e.g. a boolean mask, whose result shape depends on the data).

    The flat positions numpy's rules select are affine in each index tensor's values: offsets
    computed with every symbolic index at 0, plus, per index tensor, its (wrapped) values times
    the stride of the dimension it indexes, gathered to the result elements that use them. Which
    element of an index tensor a result element uses is found concretely, by indexing a stand-in
    shape whose indexed dimension enumerates the index tensor's elements.
    """
    shape = tuple(self.shape)
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    dims, d = [], 0
    for k in key:
        if isinstance(k, Tensor) and (k.dtype is dt.bool_ or k.dtype.is_floating_point):
            return None
        if isinstance(k, (list, tuple)) and any(isinstance(x, Tensor) and x._symbolic for x in k):
            return None
        dims.append(d)
        if k is Ellipsis:
            d += len(shape) - consumed
        elif k is not None:
            d += 1
    sym = [(i, dims[i], k) for i, k in enumerate(key) if isinstance(k, Tensor) and k._symbolic]
    if any(d >= len(shape) for _, d, _ in sym):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")

    def stand_in(which: int | None, dim_size: int | None):
        ks = list(key)
        for i, _, k in sym:
            n = k.numel()
            ks[i] = (np.arange(n, dtype=np.int64).reshape(tuple(k.shape)) if i == which
                     else np.zeros(tuple(k.shape), dtype=np.int64))
        return tuple(ks)

    pos = Tensor._make(positions(shape, stand_in(None, None)))
    out_shape = tuple(pos.shape)
    for i, d, k in sym:
        n = k.numel()
        fake = shape[:d] + (max(n, 1),) + shape[d + 1:]
        which = np.unravel_index(positions(fake, stand_in(i, n)), fake)[d]
        wrapped = P.index_check(k, size=shape[d], dim=d, mode="index")  # range-checked, as int64
        stride = int(np.prod(shape[d + 1:], dtype=np.int64))
        used = P.take(P.reshape(wrapped, shape=(n,)), Tensor._make(np.ascontiguousarray(which).reshape(-1)), axis=0)
        pos = P.add(pos, P.mul(P.reshape(used, shape=out_shape), stride))
    return P.take(P.reshape(self, shape=(self.numel(),)), pos, axis=0)


def _check_view_of_leaf(self: Tensor, key) -> None:
    """``x[0] = v`` writes through a view (select), so PyTorch names the view in its leaf error."""
    if not (grad_mode.is_grad_enabled() and self.grad_fn is None and self._requires_grad):
        return
    key = _as_tuple(key)
    if all(_is_basic(k) for k in key):
        shape = tuple(self.shape)
        ranges, out_shape, _ = _basic_plan(shape, tuple(_np_key(k) for k in key))
        if tuple(out_shape) != shape or any(r != (0, n, 1) for r, n in zip(ranges, shape)):
            raise RuntimeError(inplace._VIEW_LEAF_MSG)


def setitem(self: Tensor, key, value) -> None:
    _check_view_of_leaf(self, key)
    inplace.check_writable(self)
    functional = _dispatch().functional  # while tracing, every write is a graph op
    needs_graph = functional or grad_mode.is_grad_enabled() and self.dtype.is_inexact and (
        self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)
        or (self._base is not None and self._base.requires_grad))
    if not needs_graph:
        _assign_data(self, key, value)
        return
    if functional and _traced_masked_fill(self, key, value):
        return
    pos = positions(tuple(self.shape), key)
    if not isinstance(value, Tensor):
        value = device_tensor(np.asarray(value, dtype=self.dtype.np), self)
    elif value.dtype is not self.dtype:
        value = P.cast(value, dtype=self.dtype)
    if value.device != self.device:  # as PyTorch, assigning copies the value to the tensor's device
        value = value.to(self.device)
    try:
        value = P.expand(value, shape=pos.shape) if tuple(value.shape) != pos.shape else value
    except RuntimeError:
        raise RuntimeError(
            f"shape mismatch: value tensor of shape {list(value.shape)} cannot be broadcast to "
            f"indexing result of shape {list(pos.shape)}") from None
    n = self.numel()
    flat = P.scatter(P.reshape(self, shape=(n,)), device_tensor(pos.reshape(-1), self),
                     P.reshape(value, shape=(pos.size,)), axis=0)
    inplace.write(self, P.reshape(flat, shape=tuple(self.shape)))
    if not functional and self._base is None:  # PyTorch's node names: x[0] = v, x[idx] = v
        grad_named(self, "CopySlices" if all(_is_basic(k) for k in _as_tuple(key)) else "IndexPutBackward0")


def _traced_masked_fill(self: Tensor, key, value) -> bool:
    """``x[mask] = v`` while tracing, with a symbolic boolean mask over x's leading dimensions and
    a single value: a ``where`` (static shape), unlike the general case. False: not this case."""
    key = _as_tuple(key)
    if len(key) != 1 or not isinstance(key[0], Tensor) or not key[0]._symbolic or key[0].dtype is not dt.bool_:
        return False
    mask = key[0]
    if tuple(mask.shape) != tuple(self.shape)[:mask.ndim]:
        return False
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.ndim > 1:
            return False
        value = P.reshape(value, shape=())
        if value.dtype is not self.dtype:
            value = P.cast(value, dtype=self.dtype)
    elif not isinstance(value, (bool, int, float)):
        return False
    m = P.reshape(mask, shape=tuple(mask.shape) + (1,) * (self.ndim - mask.ndim))
    inplace.write(self, P.where(m, value, self))
    return True


def _assign_data(self: Tensor, key, value) -> None:
    np_key = tuple(_np_key(k) for k in _as_tuple(key))
    if isinstance(value, Tensor):
        src = array_to(value._data, self.device)
    elif isinstance(value, (np.ndarray, list, tuple)):
        src = array_to(np.asarray(value, dtype=self.dtype.np), self.device)
    else:
        if isinstance(value, float) and not self.dtype.is_floating_point and self.dtype is not dt.bool_:
            value = int(value)
        src = value
    try:
        self._data[np_key if len(np_key) != 1 else np_key[0]] = src
    except ValueError as e:
        if "broadcast" in str(e) or "boolean array indexing assignment" in str(e):
            tgt = self._data[np_key if len(np_key) != 1 else np_key[0]]
            raise RuntimeError(
                f"shape mismatch: value tensor of shape {list(np.shape(src))} cannot be broadcast to "
                f"indexing result of shape {list(np.shape(tgt))}") from None
        raise
    except IndexError as e:
        raise IndexError(str(e).replace("axis", "dimension")) from None
    self._version.value += 1
