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
