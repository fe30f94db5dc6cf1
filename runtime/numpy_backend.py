"""The numpy backend: CPU arrays, numpy code from the schedule, loaded with ``exec``.

The code cache keeps both the generated source and its compiled code objects (``cache.load_code``):
a hit runs no ``compile()``, which for a training step's code is most of the time a warm start
takes to load it. Nor does a hit import the code generator (``numpy_codegen``, imported when code
is first generated): the code runs in ``numpy_runtime``'s namespace."""
from __future__ import annotations

import functools
from types import CodeType
from typing import Callable

from graphc.codegen import numpy_runtime
from graphc.ir.array_module import ignoring_fp_errors
from graphc.codegen.schedule import Schedule

from . import cache
from .pieces import in_pieces
from .backends import Backend


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"
    alignment = 64
    generator_modules = Backend.generator_modules + ("graphc.codegen.numpy_codegen", "graphc.codegen.parts",
                                                     "graphc.codegen.numpy_runtime")

    can_restore = True

    @property
    def target(self):
        """What the scheduler knows of this backend: the code generator's, imported at first use."""
        from graphc.codegen import numpy_codegen
        return numpy_codegen.TARGET

    def _load(self, schedule: Schedule, fn_name: str, key: str) -> tuple[Callable, str, bool, str | None]:
        cached = self._load_cached(fn_name, key, schedule.callees)
        if cached is not None:
            return cached[0], cached[1], True, None
        from graphc.codegen import numpy_codegen
        src = numpy_codegen.generate(schedule, fn_name)
        codes = _compile(src, fn_name)
        fn = _define(codes, fn_name, schedule.callees)
        not_stored = cache.store(key, src)
        if not_stored is None:
            cache.store_code(key, src, _filename(fn_name), codes)  # not stored: compiled again next time
        return fn, src, False, not_stored

    def _load_cached(self, fn_name: str, key: str, callees: dict | None = None) -> tuple[Callable, str] | None:
        src = cache.load(key)
        if src is None:
            return None
        codes = cache.load_code(key, src, _filename(fn_name))
        try:
            if codes is None:
                codes = _compile(src, fn_name)
                cache.store_code(key, src, _filename(fn_name), codes)
            return _define(codes, fn_name, callees), src
        except Exception:  # a stale or damaged entry: regenerate
            return None


def _filename(fn_name: str) -> str:
    """The file name tracebacks show for generated code."""
    return f"<graphc:{fn_name}>"


def _compile(src: str, fn_name: str) -> list[CodeType]:
    # one function at a time: bounded compile memory
    from graphc.codegen import parts
    return [compile(chunk, _filename(fn_name), "exec") for chunk in parts.top_level_chunks(src)]


def _define(codes: list[CodeType], fn_name: str, callees: dict | None = None) -> Callable:
    """The generated function ``fn_name``, defined by running ``codes`` (its module's code);
    ``callees``: the compiled bodies its calls call, by name."""
    ns = numpy_runtime.namespace()
    ns["_in_pieces"] = in_pieces  # kernels in pieces run on this process's pool
    for name, compiled in (callees or {}).items():
        ns[f"_call_{name}"] = compiled
    for code in codes:
        exec(code, ns)
    fn = ns[fn_name]
    # inf/nan follow IEEE rules silently, as in eager mode (numpy's error state set directly:
    # the ``np.errstate`` context manager costs several microseconds a call)
    return functools.wraps(fn)(ignoring_fp_errors(fn))
