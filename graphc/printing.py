"""PyTorch-style tensor repr: ``tensor([[1.0000, 2.5000]], requires_grad=True)``."""
from __future__ import annotations

import math

import numpy as np

from graphc.ir import dtypes as dt

from . import cuda as _cuda
from .device import get_default_device
from .tensors import host_array

_options = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    if profile == "default":
        _options.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    elif profile == "short":
        _options.update(precision=2, threshold=1000, edgeitems=2, linewidth=80)
    elif profile == "full":
        _options.update(precision=4, threshold=np.inf, edgeitems=3, linewidth=80)
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            _options[k] = v
    _options["sci_mode"] = sci_mode


class _Formatter:
    """PyTorch's element formatter: one width, and int/fixed/scientific mode, for a whole tensor."""

    def __init__(self, arr: np.ndarray) -> None:
        self.floating = arr.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = arr.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return
        absd = np.abs(vals.astype(np.float64))
        lo, hi = absd.min(), absd.max()
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        sci = _options["sci_mode"]
        self.sci_mode = bool(hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if sci is None else sci
        p = _options["precision"]
        for v in vals.tolist():
            if self.sci_mode:
                n = len(f"{v:.{p}e}")
            elif self.int_mode:
                n = len(f"{v:.0f}") + 1
            else:
                n = len(f"{v:.{p}f}")
            self.max_width = max(self.max_width, n)

    def width(self) -> int:
        return self.max_width

    def format(self, v) -> str:
        p = _options["precision"]
        if self.floating:
            if self.sci_mode:
                ret = f"{v:{self.max_width}.{p}e}"
            elif self.int_mode:
                ret = f"{v:.0f}"
                if np.isfinite(v):
                    ret += "."
            else:
                ret = f"{v:.{p}f}"
        else:
            ret = f"{v}"
        return ret.rjust(self.max_width)


class _ComplexFormatter:
    """PyTorch's pair of formatters for complex tensors: one for the real parts (right-justified
    to their width), one for the imaginary parts (sign always shown, then ``j``)."""

    def __init__(self, arr: np.ndarray) -> None:
        self.real, self.imag = _Formatter(arr.real), _Formatter(arr.imag)

    def width(self) -> int:
        return self.real.width() + self.imag.width() + 1

    def format(self, v) -> str:
        imag = (self.imag.format(v.imag) + "j").lstrip()
        return self.real.format(v.real) + (imag if imag[0] in "+-" else "+" + imag)


def _summarized(a: np.ndarray) -> np.ndarray:
    """The elements a summarized print shows (they decide the formatter's width and mode)."""
    e = _options["edgeitems"]
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    if not e:
        return np.empty([0] * a.ndim, dtype=a.dtype)
    n = a.shape[0]
    rows = list(range(e)) + list(range(n - e, n)) if n > 2 * e else range(n)
    return np.stack([_summarized(a[i]) for i in rows])


def _vector_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, int(math.floor((_options["linewidth"] - indent) / (fmt.width() + 2))))
    e = _options["edgeitems"]
    if summarize and not e:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * e:
        data = ([fmt.format(v) for v in a[:e].tolist()] + [" ..."]
                + [fmt.format(v) for v in a[-e:].tolist()])
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    e = _options["edgeitems"]
    n = a.shape[0]
    if summarize and n > 2 * e:
        slices = ([_nested_str(a[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."]
                  + [_nested_str(a[i], indent + 1, summarize, fmt) for i in range(n - e, n)])
    else:
        slices = [_nested_str(a[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _add_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > _options["linewidth"]:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def tensor_repr(t) -> str:
    """PyTorch's algorithm (torch/_tensor_str.py), on the values copied to the host (float16
    and bfloat16 widened to float32 first, as PyTorch does)."""
    arr = host_array(t._data)
    if t.dtype.is_low_precision:
        arr = arr.astype(np.float32)
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    dev, default = t.device, get_default_device()
    if dev.type != default.type or (dev.type == "cuda" and dev.index != _cuda.current_device()):
        suffixes.append(f"device='{dev}'")
    d = t.dtype
    if arr.size == 0:
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if d is not dt.get_default_dtype():
            suffixes.append(f"dtype={d}")
        body = "[]"
    else:
        if not _options["edgeitems"]:
            suffixes.append(f"size={tuple(arr.shape)}")
        if d not in (dt.get_default_dtype(), dt.get_default_dtype().to_complex(), dt.int64, dt.bool_):
            suffixes.append(f"dtype={d}")
        summarize = arr.size > _options["threshold"]
        fmt = (_ComplexFormatter if d.is_complex else _Formatter)(_summarized(arr) if summarize else arr)
        body = _nested_str(arr, indent, summarize, fmt)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{type(t.grad_fn).__name__}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
