"""Which array library computes on an eager operand: numpy, or a device's library (CuPy).

Primitive implementations are written against numpy's API. Most of it reaches CuPy by itself:
``np.add(cupy_array, 1)`` and ``np.sum(cupy_array)`` are forwarded to CuPy by NumPy's
``__array_ufunc__``/``__array_function__`` protocols (NEP 13/18). The few places that *create*
arrays without an array argument (``np.zeros``), call functions outside those protocols
(``as_strided``), or call SciPy functions that are not ufuncs (``polygamma``) ask this module for
the library of their operands instead.

graphc.ir imports no device library: ``graphc.runtime.devices`` registers a device's array type
when it loads the library, so an array of an unregistered type cannot exist here.
"""
from __future__ import annotations

from types import ModuleType
from typing import Callable

import numpy as np

# array type -> (its numpy-like module, a loader for its scipy.special-like module)
_REGISTERED: dict[type, tuple[ModuleType, Callable[[], ModuleType]]] = {}


def register(array_type: type, xp: ModuleType, special: Callable[[], ModuleType]) -> None:
    """Arrays of ``array_type`` compute with ``xp`` (and ``special()`` for special functions)."""
    _REGISTERED[array_type] = (xp, special)


def array_module(*values) -> ModuleType:
    """The numpy-like module of the first registered device array among ``values``, else numpy."""
    for v in values:
        entry = _REGISTERED.get(type(v))
        if entry is not None:
            return entry[0]
    return np


def special_module(*values) -> ModuleType:
    """``scipy.special`` for host arrays, the device's equivalent (``cupyx.scipy.special``) else;
    imported on first use, as scipy is everywhere in graphc.ir."""
    for v in values:
        entry = _REGISTERED.get(type(v))
        if entry is not None:
            return entry[1]()
    import scipy.special
    return scipy.special


# ``np.errstate(all="ignore")`` around one call, without the context manager's Python-level cost
# (most of a small elementwise op's time): set numpy's error-state context variable directly.
# The state set ignores every floating-point error and keeps numpy's buffer size of when graphc
# was imported; for elementwise ufuncs the buffer size changes no result, and no error handler is
# called when errors are ignored. Generated numpy code (graphc.compile) runs under it too: there a
# reduction that numpy buffers (a casting one) sums in buffer-sized blocks, so a program that calls
# ``np.setbufsize`` after importing graphc could see its last bits move; nothing in graphc does.
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
except ImportError:  # another numpy layout: the plain context manager
    _extobj_contextvar = None


def ignoring_fp_errors(fn: Callable) -> Callable:
    """``fn`` run as under ``np.errstate(all="ignore")``: inf and nan follow IEEE rules silently."""
    if _extobj_contextvar is None:
        def run(*args):
            with np.errstate(all="ignore"):
                return fn(*args)
        return run

    set_state, reset_state = _extobj_contextvar.set, _extobj_contextvar.reset

    def run(*args):
        token = set_state(_QUIET)
        try:
            return fn(*args)
        finally:
            reset_state(token)
    return run


if _extobj_contextvar is not None:
    _QUIET = _make_extobj(all="ignore")
