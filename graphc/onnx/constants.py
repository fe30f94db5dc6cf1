"""Tensors a model makes from data during forward whose size follows a dynamic axis (``zeros(n,
batch, h)`` for an RNN's initial state, ``arange(time)`` for positions, a causal mask built with
``triu``). graphc's tracer holds them as constants of the example's size; ONNX export rebuilds
them at run time from the sizes, when their values follow one of these patterns in every trace:

- one repeated value (``zeros``, ``ones``, ``full``);
- 1-d ``start + step * i`` (``arange``);
- 2-d, one value on and above diagonal ``k`` and another below it (``triu``/``tril``, causal masks).
"""
from __future__ import annotations

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir.dtypes import DType

from .dims import Dim, Reciprocal, fit
from .emitter import Emitter, onnx_dtype
from .errors import OnnxExporterError


def _uniform(a: np.ndarray):
    flat = a.reshape(-1)
    if flat.size and np.array_equal(flat, np.full_like(flat, flat[0]), equal_nan=True):
        return ("uniform", flat[0].item())
    return None


def _arange(a: np.ndarray):
    if a.ndim != 1 or a.size < 2 or a.dtype.kind not in "iuf":
        return None
    start, step = a[0].item(), (a[1] - a[0]).item()
    if np.array_equal(a, (start + step * np.arange(a.size)).astype(a.dtype)):
        return ("arange", start, step)
    return None


def _triangular(a: np.ndarray):
    """(upper value, lower value, k): a[i, j] is the upper value where j - i >= k."""
    if a.ndim != 2 or min(a.shape) < 2:
        return None
    n, m = a.shape
    upper, lower = a[0, m - 1], a[n - 1, 0]
    if np.array_equal(upper, lower, equal_nan=True):
        return None
    is_upper = (a == upper) | (np.isnan(a) & np.isnan(upper)) if a.dtype.kind == "f" else a == upper
    k = int(np.argmax(is_upper[0]))
    want = (np.arange(m)[None, :] - np.arange(n)[:, None]) >= k
    if np.array_equal(is_upper, want) and np.array_equal(a, np.where(want, upper, lower), equal_nan=True):
        return ("triangular", upper.item(), lower.item(), k)
    return None


def _pattern(a: np.ndarray):
    return _uniform(a) or _arange(a) or _triangular(a)


def rebuild(e: Emitter, datas: list[np.ndarray], sizes: list[dict[str, int]], shape: tuple, d: DType) -> str:
    """The ONNX tensor for a constant of dynamic ``shape`` whose values in the trace at ``sizes[k]``
    are ``datas[k]``; the pattern's numbers may follow the sizes too (``full((b, 1), float(t))``)."""
    patterns = [_pattern(a) for a in datas]
    kind = patterns[0] and patterns[0][0]
    if kind is None or any(q is None or q[0] != kind for q in patterns):
        raise OnnxExporterError(
            "graphc.onnx.export: the model makes a tensor from data during forward whose size follows a dynamic axis "
            f"(shape {[str(s) for s in shape]}), and its values are not one repeated value (zeros, ones, full), an "
            "arange or a triangular mask (triu, tril), which export can rebuild at any size. Build it from the input "
            "with tensor operations, or export without dynamic_axes for that axis.")
    p = fit(patterns, sizes, "the values of a tensor the model makes during forward")
    if kind == "uniform":
        if isinstance(p[1], (Dim, Reciprocal)):
            return e.op("Expand", [e.scalar(p[1], d), e.ints(shape)])
        fill = e.helper.make_tensor("value", onnx_dtype(d), [1], np.array([p[1]], d.np))
        return e.op("ConstantOfShape", [e.ints(shape)], value=fill)
    if kind == "arange":
        _, start, step = p  # start + step * i over integer i: a float Range could round to one more element
        i = e.op("Range", [e.scalar(0, dt.int64), e.scalar(shape[0], dt.int64), e.scalar(1, dt.int64)])
        return e.op("Add", [e.op("Mul", [e.cast(i, dt.int64, d), e.scalar(step, d)]), e.scalar(start, d)])
    _, upper, lower, k = p
    one, zero = e.scalar(1, dt.int64), e.scalar(0, dt.int64)
    rows = e.op("Range", [zero, e.scalar(shape[0], dt.int64), one])
    rows = e.op("Unsqueeze", [rows, e.const(np.array([1], np.int64))])
    cols = e.op("Range", [zero, e.scalar(shape[1], dt.int64), one])
    above = e.op("GreaterOrEqual", [e.op("Sub", [cols, rows]), e.scalar(k, dt.int64)])
    return e.op("Where", [above, e.scalar(upper, d), e.scalar(lower, d)])
