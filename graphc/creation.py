"""Tensor creation: tensor/as_tensor/from_numpy, filled and ranged tensors, random tensors.

``device=None`` means the default device (``graphc.set_default_device``, the CPU unless changed),
except for the ``*_like`` functions, which follow their input, as in PyTorch. Filled tensors are
made on their device; values that need the host (ranges, random numbers, Python data) are
computed there and copied.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from graphc.ir import dtypes as dt

from graphc.runtime import devices as _rt

from . import random as grandom
from .autograd import grad_mode
from .device import CPU, array_to, check_device
from .dispatch import current as _dispatch
from .shape_ops import sizes_arg
from .tensors import Tensor, host_array


def _finish(arr: np.ndarray, requires_grad: bool, device=CPU) -> Tensor:
    """The tensor of a host array, copied to ``device`` (a checked device)."""
    t = Tensor._make(array_to(arr, device))
    if requires_grad:
        if not t.dtype.is_inexact:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad_(True)
    return t


_PY_NUMBERS = frozenset((bool, int, float))


def _infer_dtype(data) -> dt.DType:
    """The dtype torch.tensor picks for Python data: bool < int64 < default float."""
    return _scan(data)[1]


def _leaf_dtype(x) -> dt.DType:
    if isinstance(x, (Tensor, np.ndarray, np.generic)):
        return x.dtype if isinstance(x, Tensor) else dt.from_numpy_dtype(x.dtype)
    if isinstance(x, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(x).__name__}'")
    if not isinstance(x, (bool, int, float, complex)):
        raise RuntimeError(f"Could not infer dtype of {type(x).__name__}")
    return dt.scalar_dtype(x)


def _scan(data, dim: int = 0):
    """One pass over Python data for tensor(): the data numpy can take (ranges become lists),
    the inferred dtype, and PyTorch's errors for ragged or non-numeric data."""
    if isinstance(data, range):
        data = list(data)
    if not isinstance(data, (list, tuple)):
        return (host_array(data._data) if isinstance(data, Tensor) else data), _leaf_dtype(data)
    types = set(map(type, data))
    if types and types <= _PY_NUMBERS:  # the common flat case, without a Python loop
        return data, (dt.get_default_dtype() if float in types else dt.int64 if int in types else dt.bool_)
    items, best = [], None
    for x in data:
        x, d = _scan(x, dim + 1)
        items.append(x)
        best = d if best is None else dt.promote_types(best, d)
    seqs = [isinstance(x, (list, tuple)) for x in items]
    if any(seqs) and not all(seqs):
        raise TypeError("not a sequence")
    if items and all(seqs):
        n = len(items[0])
        for x in items:
            if len(x) != n:
                raise ValueError(f"expected sequence of length {n} at dim {dim + 1} (got {len(x)})")
    return items, best or dt.get_default_dtype()


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    dev = check_device(data.device if device is None and isinstance(data, Tensor) else device)
    if isinstance(data, Tensor):
        warnings.warn(
            "To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() "
            "or sourceTensor.detach().clone().requires_grad_(True), rather than torch.tensor(sourceTensor).",
            UserWarning, stacklevel=2)
    data, inferred = _scan(data)
    d = dtype or inferred
    try:
        arr = dt.host_array(data, d)  # _scan turned tensors inside into arrays
    except OverflowError:
        if dtype is None:
            raise ValueError("Overflow when unpacking long long") from None
        raise RuntimeError(f"value cannot be converted to type {d.name} without overflow") from None
    except ValueError as e:
        raise ValueError(f"could not build a tensor from the given data: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"could not infer a dtype for a tensor from {type(data).__name__}")
    return _finish(arr, requires_grad, dev)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` itself when it already is a tensor of that dtype and device; a numpy array's
    memory is shared on the CPU."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    dev = check_device(device)
    if isinstance(data, np.ndarray):
        d = dtype or dt.from_numpy_dtype(data.dtype)
        return Tensor._make(array_to(data if data.dtype == d.np else data.astype(d.np), dev))
    return tensor(data, dtype=dtype, device=dev)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    dt.from_numpy_dtype(ndarray.dtype)  # raises PyTorch's error for unsupported dtypes
    if not ndarray.flags.writeable:
        warnings.warn(
            "The given NumPy array is not writable, and PyTorch does not support non-writable tensors. "
            "This means writing to this tensor will result in undefined behavior.", UserWarning, stacklevel=2)
    return Tensor._make(ndarray)


def _new_shape(size) -> tuple[int, ...]:
    """The shape of a new tensor from ``*size`` arguments (``sizes_arg``), with PyTorch's error for
    a negative dimension (the first one), before numpy sees it."""
    shape = sizes_arg(size)
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(shape)}")
    return shape


def _filled(size, value, dtype, device, requires_grad) -> Tensor:
    dev = check_device(device)
    shape = _new_shape(size)
    d = dtype or dt.get_default_dtype()
    npd, value = d.np, dt.fill_value(value, d)
    if dev is CPU:
        return _finish(np.full(shape, value, dtype=npd), requires_grad)
    arr = _rt.get(dev.type).allocate(shape, npd, dev.index)  # filled on the device, no host copy
    arr.fill(value)
    return _finish(arr, requires_grad, dev)


def zeros(*size, out=None, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(size, 0, dtype, device, requires_grad)


def ones(*size, out=None, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(size, 1, dtype, device, requires_grad)


def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad: bool = False,
          pin_memory: bool = False, memory_format=None) -> Tensor:
    return _filled(size, 0, dtype, device, requires_grad)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, Tensor) else dt.scalar_dtype(fill_value)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _filled((tuple(size),) if not isinstance(size, int) else (size,), fill_value, dtype, device, requires_grad)


def _like(input, dtype, device):
    """Shape, dtype and device of a ``*_like`` result: the input's unless given."""
    return tuple(input.shape), (dtype or input.dtype), (input.device if device is None else device)


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, d, dev = _like(input, dtype, device)
    return _filled(shape, 0, d, dev, requires_grad)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, d, dev = _like(input, dtype, device)
    return _filled(shape, 1, d, dev, requires_grad)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, d, dev = _like(input, dtype, device)
    return _filled(shape, 0, d, dev, requires_grad)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    shape, d, dev = _like(input, dtype, device)
    return _filled(shape, fill_value, d, dev, requires_grad)


def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad: bool = False) -> Tensor:
    dev = check_device(device)
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if dtype is None:
        dtype = dt.get_default_dtype() if any(isinstance(v, float) for v in vals) else dt.int64
    if dtype is dt.bool_:
        raise NotImplementedError('"arange_cpu" not implemented for \'Bool\'')
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    n = max(0, math.ceil((end - start) / step))
    base = np.arange(n, dtype=np.float64 if dtype.is_floating_point else np.int64)
    return _finish((start + base * step).astype(dtype.np), requires_grad, dev)


def range_(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """torch.range (deprecated in PyTorch): like arange but includes ``end``."""
    warnings.warn("torch.range is deprecated and will be removed in a future release because its "
                  "behavior is inconsistent with Python's range builtin. Instead, use torch.arange, "
                  "which produces values in [start, end).", UserWarning, stacklevel=2)
    dev = check_device(device)
    if end is None:
        start, end = 0, start
    n = int(math.floor((end - start) / step)) + 1
    return _finish((start + np.arange(n) * step).astype((dtype or dt.get_default_dtype()).np), requires_grad, dev)


def linspace(start, end, steps: int, *, out=None, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    dev = check_device(device)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    d = dtype or dt.get_default_dtype()
    if d.np in (np.float32, np.float64) and steps > 1:
        # PyTorch's kernel: the first half counts up from start, the second half down from end,
        # in the dtype's own precision, so e.g. linspace(-1, 1, 7)[3] is
        # -2.98e-08, not 0.
        # The step is rounded to the dtype; each value is a fused multiply-add (one rounding),
        # emulated in a wider type.
        ct = np.float64 if d.np == np.float64 else np.float32
        wide = np.longdouble if ct == np.float64 else np.float64
        lo, hi = ct(float(start)), ct(float(end))
        step = wide(ct((wide(hi) - wide(lo)) / wide(steps - 1)))
        idx = np.arange(steps)
        half = steps // 2
        vals = np.where(idx < half, wide(lo) + step * idx.astype(wide),
                        wide(hi) - step * (steps - 1 - idx).astype(wide))
        return _finish(vals.astype(ct).astype(d.np), requires_grad, dev)
    return _finish(np.linspace(float(start), float(end), steps).astype(d.np), requires_grad, dev)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    dev = check_device(device)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    d = dtype or dt.get_default_dtype()
    return _finish(np.power(base, np.linspace(float(start), float(end), steps)).astype(d.np), requires_grad, dev)


def eye(n: int, m: int | None = None, *, out=None, dtype=None, layout=None, device=None,
        requires_grad: bool = False) -> Tensor:
    dev = check_device(device)
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"{'n' if n < 0 else 'm'} must be greater or equal to 0, got {n if n < 0 else m}")
    return _finish(np.eye(n, n if m is None else m, dtype=(dtype or dt.get_default_dtype()).np), requires_grad, dev)


def _tri_indices(lower: bool, row: int, col: int, offset: int, dtype, device) -> Tensor:
    dev = check_device(device)
    if row < 0 or col < 0:
        raise RuntimeError(f"row must be non-negative, got{row}" if row < 0 else f"col must be non-negative, got{col}")
    dtype = dtype or dt.int64
    if dtype not in (dt.int64, dt.int32):
        raise RuntimeError(f"\"{'tril' if lower else 'triu'}_indices\" not implemented for '{dtype}'")
    rows, cols = (np.tril_indices if lower else np.triu_indices)(row, offset, col)
    return _finish(np.stack([rows, cols]).astype(dtype.np).reshape(2, -1), False, dev)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, layout=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the lower triangle of a row x col matrix, row by row."""
    return _tri_indices(True, row, col, offset, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, layout=None, device=None) -> Tensor:
    return _tri_indices(False, row, col, offset, dtype, device)


# ---- random ---------------------------------------------------------------------------------

def _random(kind, size, dtype, generator, requires_grad, device, **kw) -> Tensor:
    dev = check_device(device)
    shape = _new_shape(size)
    d = dtype or dt.get_default_dtype()
    if kind != "integers" and not d.is_floating_point:
        kernel = "check_uniform_bounds" if kind == "uniform" else "normal_kernel_cpu"
        raise NotImplementedError(f'"{kernel}" not implemented for \'{d.scalar_name}\'')
    if generator is None and not requires_grad and not kw:
        ops = _dispatch().random(kind, shape, d)  # inside a compiled function: ops on the call's random key
        if ops is not None:
            return ops
    if generator is None and not kw and kind in ("uniform", "normal"):
        # eagerly, the numbers a compiled function draws (keyed draws), so a program gives the
        # same results compiled and eager under one seed
        with grad_mode.no_grad():
            t = grandom.keyed_sample(kind, shape, d, dev)
        return t.requires_grad_(True) if requires_grad else t
    return _finish(grandom.sample(kind, shape, d, generator, dev, **kw), requires_grad, dev)


def rand(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad: bool = False,
         pin_memory: bool = False) -> Tensor:
    return _random("uniform", size, dtype, generator, requires_grad, device)


def randn(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad: bool = False,
          pin_memory: bool = False) -> Tensor:
    return _random("normal", size, dtype, generator, requires_grad, device)


def randint(low=0, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None,
            device=None, requires_grad: bool = False) -> Tensor:
    if size is None:
        # randint(high, size) form
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("randint() missing required arguments: high and size")
    shape = _new_shape((tuple(size),))
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dev = check_device(device)
    d = dtype or dt.int64
    return _finish(grandom.sample("integers", shape, d, generator, dev, low=low, high=high), requires_grad, dev)


def rand_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, d, dev = _like(input, dtype, device)
    return rand(shape, dtype=d, requires_grad=requires_grad, device=dev)


def randn_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, d, dev = _like(input, dtype, device)
    return randn(shape, dtype=d, requires_grad=requires_grad, device=dev)


def randint_like(input, low=0, high=None, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                 memory_format=None) -> Tensor:
    if high is None:
        low, high = 0, low
    shape, d, dev = _like(input, dtype, device)
    return randint(low, high, shape, dtype=d, device=dev)


def randperm(n: int, *, generator=None, out=None, dtype=None, layout=None, device=None,
             requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    dev = check_device(device)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    return _finish(grandom.gen(generator, dev).permutation(n).astype((dtype or dt.int64).np), requires_grad, dev)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None,
           device=None, requires_grad: bool = False) -> Tensor:
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        m = host_array(mean._data) if isinstance(mean, Tensor) else mean
        s = host_array(std._data) if isinstance(std, Tensor) else std
        if isinstance(s, np.ndarray) and (s < 0).any() or not isinstance(s, np.ndarray) and s < 0:
            raise RuntimeError("normal expects all elements of std >= 0.0")
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        ref = mean if isinstance(mean, Tensor) else std
        z = grandom.gen(generator, ref.device).standard_normal(shape)
        return _finish((z * s + m).astype(ref._data.dtype), False, ref.device)
    if size is None:
        raise TypeError("normal() with float mean and std needs a size")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _random("normal", (tuple(size),), dtype, generator, requires_grad, device, mean=mean, std=std)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """Drawn on the host (see graphc.random), the result on ``input``'s device."""
    probs = host_array(input._data) if p is None else np.full(input._data.shape, p)
    if np.any((probs < 0) | (probs > 1)):
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    draw = grandom.gen(generator, input.device).random(input._data.shape)
    return _finish((draw < probs).astype(input._data.dtype), False, input.device)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Drawn on the host (see graphc.random), the result on ``input``'s device."""
    probs = np.asarray(host_array(input._data), dtype=np.float64)
    rows = probs.reshape(-1, probs.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    g = grandom.gen(generator, input.device)
    out = []
    for r in rows:
        s = r.sum()
        if s <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        out.append(g.choice(len(r), size=num_samples, replace=replacement, p=r / s))
    res = np.array(out, dtype=np.int64)
    return _finish(res.reshape(probs.shape[:-1] + (num_samples,)), False, input.device)
