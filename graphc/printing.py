"""PyTorch-style tensor repr: ``tensor([[1.0000, 2.5000]], requires_grad=True)``."""
from __future__ import annotations

import numpy as np

from graphc.ir import dtypes as dt

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


def _float_formatter(arr: np.ndarray):
    finite = arr[np.isfinite(arr)]
    p = _options["precision"]
    if finite.size == 0:
        return lambda x: str(x).replace("inf", "inf")
    absf = np.abs(finite.astype(np.float64))
    nonzero = absf[absf > 0]
    ints = np.all(finite == np.round(finite))
    sci = _options["sci_mode"]
    if sci is None:
        sci = nonzero.size > 0 and (nonzero.max() / nonzero.min() > 1000.0 or nonzero.max() > 1e8
                                    or nonzero.min() < 1e-4)
    if ints and not sci:
        return lambda x: f"{x:.0f}." if np.isfinite(x) else str(x)
    if sci:
        return lambda x: f"{x:.{p}e}" if np.isfinite(x) else str(x)
    return lambda x: f"{x:.{p}f}" if np.isfinite(x) else str(x)


def _format_array(arr: np.ndarray, prefix: str) -> str:
    if arr.dtype.kind == "f":
        fmt = _float_formatter(arr)
    elif arr.dtype.kind == "b":
        fmt = lambda x: "True" if x else "False"
    else:
        fmt = str
    summarize = arr.size > _options["threshold"]
    shown = arr
    if summarize:
        e = _options["edgeitems"]
        for ax in range(arr.ndim):
            if shown.shape[ax] > 2 * e:
                shown = np.concatenate([np.take(shown, range(e), axis=ax),
                                        np.take(shown, range(shown.shape[ax] - e, shown.shape[ax]), axis=ax)], axis=ax)
    width = max((len(fmt(x)) for x in shown.flat), default=0)
    return np.array2string(
        arr, separator=", ", prefix=prefix, max_line_width=_options["linewidth"],
        threshold=_options["threshold"], edgeitems=_options["edgeitems"],
        formatter={"all": lambda x: fmt(x).rjust(width)})


def tensor_repr(t) -> str:
    arr = t._data
    prefix = "tensor("
    if arr.size == 0:
        body = "[]"
    elif arr.ndim == 0:
        body = _format_array(arr.reshape(1), prefix)[1:-1].strip()
    else:
        body = _format_array(arr, prefix)
    suffix = []
    if arr.size == 0 and arr.shape != (0,):
        suffix.append(f"size={tuple(arr.shape)}")
    d = t.dtype
    default_shown = {dt.get_default_dtype(), dt.int64, dt.bool_}
    if d not in default_shown or (arr.size == 0 and d is not dt.get_default_dtype()):
        suffix.append(f"dtype={d}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    return prefix + body + "".join(", " + s for s in suffix) + ")"
