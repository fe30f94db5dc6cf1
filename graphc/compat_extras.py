"""Small PyTorch functions that tutorial code reaches for (reproducibility switches, anomaly
detection, activation checkpointing, and a few tensor helpers), composed from graphc ops so autograd works through them."""
from __future__ import annotations

import os
import warnings
import numpy as np

from graphc.ir.array_module import array_module

# ---- reproducibility and threads --------------------------------------------------------------

_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """graphc's CPU kernels are deterministic already; the flag is recorded for the getters."""
    _deterministic["mode"], _deterministic["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic["warn_only"]


_threads = {"n": os.cpu_count() or 1, "interop": os.cpu_count() or 1}


def set_num_threads(n: int) -> None:
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    _threads["n"] = int(n)


def get_num_threads() -> int:
    return _threads["n"]


def set_num_interop_threads(n: int) -> None:
    if n <= 0:
        raise RuntimeError("Expected positive number of threads")
    _threads["interop"] = int(n)


def get_num_interop_threads() -> int:
    return _threads["interop"]


# ---- anomaly detection ------------------------------------------------------------------------

_anomaly = {"enabled": False, "check_nan": True}


def is_anomaly_enabled() -> bool:
    return _anomaly["enabled"]


def is_anomaly_check_nan_enabled() -> bool:
    return _anomaly["check_nan"]


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly mode on; graphc records the flag."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime and should only "
                      "be enabled for debugging.", stacklevel=2)

    def __enter__(self) -> None:
        self.prev = dict(_anomaly)
        _anomaly.update(enabled=True, check_nan=self.check_nan)

    def __exit__(self, *args) -> None:
        _anomaly.update(self.prev)

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__(self.check_nan):
                return fn(*a, **k)
        return wrapper


class set_detect_anomaly:
    """``torch.autograd.set_detect_anomaly(True)``: sets the mode now, restores it on ``__exit__``."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = dict(_anomaly)
        _anomaly.update(enabled=bool(mode), check_nan=check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args) -> None:
        _anomaly.update(self.prev)


# ---- activation checkpointing -----------------------------------------------------------------

def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check: str = "default",
               debug: bool = False, preserve_rng_state: bool = True, **kwargs):
    """Runs ``function``; graphc keeps the activations instead of recomputing them, which gives the
    same values and gradients."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. Starting "
                      "in PyTorch 2.9, calling checkpoint without use_reentrant will raise an exception. "
                      "use_reentrant=False is recommended, but if you need to preserve the current default "
                      "behavior, you can pass use_reentrant=True. Refer to docs for more details on the "
                      "differences between the two variants.", stacklevel=2)
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):
    mods = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for m in mods:
        input = m(input)
    return input


# ---- tensor helpers ---------------------------------------------------------------------------

def ravel(input):
    return input.reshape(-1)


def row_stack(tensors, *, out=None):
    import graphc
    return graphc.vstack(tensors)


def column_stack(tensors, *, out=None):
    import graphc
    cols = [t.reshape(-1, 1) if t.dim() <= 1 else t for t in tensors]
    return graphc.cat(cols, 1)


def dstack(tensors, *, out=None):
    import graphc
    return graphc.cat([graphc.atleast_3d(t) for t in tensors], 2)


def hsplit(input, indices_or_sections):
    if input.dim() < 1:
        raise RuntimeError(f"torch.hsplit requires a tensor with at least 1 dimension, but got a tensor with "
                           f"{input.dim()} dimensions!")
    return _split_dim(input, indices_or_sections, 1 if input.dim() > 1 else 0, "hsplit")


def vsplit(input, indices_or_sections):
    if input.dim() < 2:
        raise RuntimeError(f"torch.vsplit requires a tensor with at least 2 dimension, but got a tensor with "
                           f"{input.dim()} dimensions!")
    return _split_dim(input, indices_or_sections, 0, "vsplit")


def dsplit(input, indices_or_sections):
    if input.dim() < 3:
        raise RuntimeError(f"torch.dsplit requires a tensor with at least 3 dimension, but got a tensor with "
                           f"{input.dim()} dimensions!")
    return _split_dim(input, indices_or_sections, 2, "dsplit")


def _split_dim(input, sections, dim: int, name: str):
    if isinstance(sections, int) and input.shape[dim] % sections != 0:
        raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size of the dimension "
                           f"{input.shape[dim]} is not divisible by the split_size {sections}!")
    return input.tensor_split(sections, dim)


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None, out=None):
    import graphc
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{str(x.dtype).replace('graphc.', '')}")
    count = (~graphc.isnan(x)).sum(dim=dim, keepdim=keepdim) if dim is not None else (~graphc.isnan(x)).sum()
    total = graphc.nansum(x, dim=dim, keepdim=keepdim) if dim is not None else graphc.nansum(x)
    return total / count


def aminmax(input, *, dim=None, keepdim: bool = False):
    from .math_ops import _return_type
    rt = _return_type("aminmax", ["min", "max"])
    if dim is None:
        mn, mx = input.amin(), input.amax()
        if keepdim:
            shape = (1,) * input.dim()
            mn, mx = mn.reshape(shape), mx.reshape(shape)
        return rt(mn, mx)
    return rt(input.amin(dim, keepdim), input.amax(dim, keepdim))


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    import graphc
    from .tensors import device_tensor, host_array
    e = host_array(elements._data) if isinstance(elements, graphc.Tensor) else np.asarray(elements)
    t = host_array(test_elements._data) if isinstance(test_elements, graphc.Tensor) else np.asarray(test_elements)
    like = elements if isinstance(elements, graphc.Tensor) else test_elements
    return device_tensor(np.asarray(np.isin(e, t, invert=invert)), like)


def hypot(input, other, *, out=None):
    return (input * input + other * other).sqrt()


def signbit(input, *, out=None):
    import graphc
    return graphc.Tensor._make(array_module(input._data).asarray(np.signbit(input._data)))


def rot90(input, k: int = 1, dims=(0, 1)):
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    d0, d1 = dims
    k %= 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip(d0).flip(d1)
    if k == 3:
        return input.flip(d0).transpose(d0, d1)
    return input.clone()


def cov(input, *, correction: int = 1, fweights=None, aweights=None):
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov(): fweights and aweights are not supported by graphc")
    x = input if input.dim() == 2 else input.reshape(1, -1)
    n = x.shape[1]
    xc = x - x.mean(dim=1, keepdim=True)
    c = (xc @ xc.transpose(0, 1)) / max(n - correction, 0)
    return c.squeeze() if input.dim() < 2 else c


def corrcoef(input):
    c = cov(input)
    if c.dim() == 0:
        return c / c
    d = c.diagonal().sqrt()
    out = c / d[:, None] / d[None, :]
    return out.clamp(-1, 1)


def diag_embed(input, offset: int = 0, dim1: int = -2, dim2: int = -1):
    import graphc
    n = input.shape[-1] + abs(offset)
    # (..., k) -> (..., n, n): place the values on the chosen diagonal of the last two dims
    idx = graphc.arange(input.shape[-1])
    rows = idx + max(-offset, 0)
    cols = idx + max(offset, 0)
    sel = graphc.zeros((input.shape[-1], n, n), dtype=input.dtype)
    sel[idx, rows, cols] = 1.0
    out = (input.unsqueeze(-1).unsqueeze(-1) * sel).sum(-3)
    nd = out.dim()
    d1, d2 = dim1 % nd, dim2 % nd
    if (d1, d2) != (nd - 2, nd - 1):
        out = out.movedim((nd - 2, nd - 1), (d1, d2))
    return out


def tensor_unfold(self, dimension: int, size: int, step: int):
    """``Tensor.unfold``: every window of ``size`` along ``dimension`` (``step`` apart) as a new
    last dimension. (graphc returns a copy, not a view.)"""
    from .tensors import device_tensor
    nd = self.dim()
    d = dimension % nd if nd else 0
    length = self.shape[d] if nd else 1
    if size > length:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {length} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if nd == 0:
        return self.reshape(1)
    n = (length - size) // step + 1
    idx = (np.arange(n)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    out = self.index_select(d, device_tensor(idx.astype(np.int64), self))
    shape = tuple(self.shape[:d]) + (n, size) + tuple(self.shape[d + 1:])
    return out.reshape(shape).movedim(d + 1, -1)


def scatter_reduce(input, dim: int, index, src, reduce: str, *, include_self: bool = True):
    """``input.scatter_reduce(dim, index, src, reduce)`` for reduce in sum, mean, amax, amin and
    prod; the gradient of amax/amin is shared evenly by the elements equal to the result."""
    import graphc
    from .tensors import device_tensor, host_array
    if reduce not in ("sum", "mean", "amax", "amin", "prod"):
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    d = dim % input.dim() if input.dim() else 0
    idx = host_array(index._data).astype(np.int64)  # the pairing is worked out on the host
    # the (destination, source) flat positions, as numpy's put_along_axis would pair them
    dest_full = np.indices(idx.shape)
    dest_full[d] = idx
    dest = np.ravel_multi_index(tuple(dest_full), tuple(input.shape)).reshape(-1)
    src_part = src[tuple(slice(0, n) for n in idx.shape)] if tuple(src.shape) != tuple(idx.shape) else src
    sv = src_part.reshape(-1)
    n = input.numel()
    flat_in = input.reshape(-1)
    count = np.bincount(dest, minlength=n).astype(np.float64)
    touched = count > 0

    def on(arr: np.ndarray):
        return device_tensor(arr, input)

    if reduce in ("sum", "mean"):
        acc = graphc.zeros(n, dtype=input.dtype, device=input.device).index_add(0, on(dest), sv)
        if include_self:
            acc = acc + flat_in
            count = count + 1
        out = acc
        if reduce == "mean":
            denom = np.where(touched, np.maximum(count, 1), 1).astype(input.dtype.np)
            out = acc / on(denom) if input.dtype.is_floating_point else \
                graphc.floor_divide(acc, on(denom.astype(input.dtype.np)))
        keep = on(touched)
        return _named(graphc.where(keep, out, flat_in).reshape(tuple(input.shape)), "ScatterReduceBackward0")
    # amax / amin / prod: the values by numpy, the gradient through the elements that made them
    vals = host_array(sv.detach()._data)
    base = host_array(flat_in.detach()._data).copy()
    init = {"amax": -np.inf, "amin": np.inf, "prod": 1}[reduce]
    res = base.copy() if include_self else np.where(touched, np.array(init, dtype=base.dtype), base)
    op = {"amax": np.maximum, "amin": np.minimum, "prod": np.multiply}[reduce]
    op.at(res, dest, vals)
    out = on(res.astype(input.dtype.np))
    if reduce != "prod" and (input.requires_grad or src.requires_grad) and graphc.is_grad_enabled():
        hit_src = vals == res[dest]
        hit_in = (base == res) & (touched if include_self else np.zeros(n, bool)) | ~touched
        ties = np.bincount(dest, weights=hit_src.astype(np.float64), minlength=n) + hit_in
        w_src = on((hit_src / np.maximum(ties[dest], 1)).astype(input.dtype.np))
        w_in = on((hit_in / np.maximum(ties, 1)).astype(input.dtype.np))
        delta = graphc.zeros(n, dtype=input.dtype, device=input.device).index_add(0, on(dest),
                                                              (sv - sv.detach()) * w_src)
        out = out + delta + (flat_in - flat_in.detach()) * w_in
    return _named(out.reshape(tuple(input.shape)), "ScatterReduceBackward0")


def _named(t, name):
    from .math_ops import grad_named
    return grad_named(t, name)


def scatter_reduce_(self, dim: int, index, src, reduce: str, *, include_self: bool = True):
    res = scatter_reduce(self, dim, index, src, reduce, include_self=include_self)
    self.copy_(res)
    return self
