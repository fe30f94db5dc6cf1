"""graphc.testing.assert_close, as torch.testing.assert_close (defaults by dtype)."""
from __future__ import annotations

import numpy as np

from .tensors import Tensor, host_array

_DEFAULT_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
                       "float64": (1e-7, 1e-7)}


def assert_close(actual, expected, *, rtol: float | None = None, atol: float | None = None,
                 equal_nan: bool = False, check_dtype: bool = True, check_device: bool = True, msg: str | None = None,
                 **_ignored) -> None:
    if isinstance(actual, (list, tuple)):
        if len(actual) != len(expected):
            raise AssertionError(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype,
                         check_device=check_device, msg=msg)
        return
    if check_device and isinstance(actual, Tensor) and isinstance(expected, Tensor) and actual.device != expected.device:
        raise AssertionError(msg or f"The values for attribute 'device' do not match: {actual.device} != {expected.device}.")
    a = host_array(actual._data) if isinstance(actual, Tensor) else np.asarray(actual)
    e = host_array(expected._data) if isinstance(expected, Tensor) else np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: {a.shape} != {e.shape}.")
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor) and actual.dtype is not expected.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}.")
    if (rtol is None) != (atol is None):
        raise ValueError("Both 'rtol' and 'atol' must be either specified or omitted, but got no atol." if atol is None
                         else "Both 'rtol' and 'atol' must be either specified or omitted, but got no rtol.")
    if rtol is None:
        rtol, atol = _DEFAULT_TOLERANCES.get(a.dtype.name, (0.0, 0.0))
    if a.dtype.name == "bfloat16" or e.dtype.name == "bfloat16":  # compared in float64: exact
        a, e = a.astype(np.float64), e.astype(np.float64)
    ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not ok.all():
        bad = int((~ok).sum())
        diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
        i = int(np.nanargmax(np.where(ok, -1, diff)))
        raise AssertionError(msg or (
            f"Tensor-likes are not close!\n\nMismatched elements: {bad} / {a.size} ({100 * bad / max(a.size, 1):.1f}%)\n"
            f"Greatest absolute difference: {diff.reshape(-1)[i]} at index {np.unravel_index(i, a.shape)} "
            f"(up to {atol} allowed)"))


def assert_allclose(actual, expected, rtol: float | None = None, atol: float | None = None, equal_nan: bool = True,
                    msg: str = "") -> None:
    """Deprecated in PyTorch (use assert_close); compares values only, NaN equal to NaN."""
    import warnings
    warnings.warn("`torch.testing.assert_allclose()` is deprecated since 1.12 and will be removed in a future "
                  "release. Please use `torch.testing.assert_close()` instead.", FutureWarning, stacklevel=2)
    if (rtol is None) != (atol is None):
        raise ValueError("rtol and atol must both be specified or both be unspecified")
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=False,
                 check_device=False, msg=msg or None)


def make_tensor(*shape, dtype, device=None, low: float | None = None, high: float | None = None,
                requires_grad: bool = False, noncontiguous: bool = False, exclude_zero: bool = False,
                memory_format=None):
    """A tensor of ``shape`` with random values in [low, high) (defaults by dtype, as PyTorch's)."""
    import graphc
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if dtype is graphc.bool:
        out = graphc.randint(0, 2, shape, device=device).to(graphc.bool)
    elif dtype.is_floating_point:
        lo, hi = (-9.0 if low is None else low), (9.0 if high is None else high)
        out = (graphc.rand(shape, dtype=dtype, device=device) * (hi - lo) + lo)
        if exclude_zero:
            out = graphc.where(out == 0, graphc.full_like(out, graphc.finfo(dtype).tiny), out)
    else:
        info = np.iinfo(dtype.np)
        lo = max(-9 if low is None else int(low), int(info.min))
        hi = min(10 if high is None else int(high), int(info.max))
        out = graphc.randint(lo, hi, shape, device=device).to(dtype)
        if exclude_zero:
            out = graphc.where(out == 0, graphc.ones_like(out), out)
    return out.requires_grad_(requires_grad) if requires_grad else out
