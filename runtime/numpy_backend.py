"""The numpy backend: CPU arrays, numpy code from the schedule, loaded with ``exec``."""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from graphc.codegen import numpy_codegen
from graphc.codegen.schedule import Schedule

from . import cache
from .backends import Backend


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"
    alignment = 64
    target = numpy_codegen.TARGET
    generator_modules = Backend.generator_modules + ("graphc.codegen.numpy_codegen",)

    def _load(self, schedule: Schedule, fn_name: str, key: str) -> tuple[Callable, str, bool, str | None]:
        src = cache.load(key)
        if src is not None:
            try:
                return _exec(src, fn_name), src, True, None
            except Exception:  # a stale or damaged entry: regenerate
                pass
        src = numpy_codegen.generate(schedule, fn_name)
        fn = _exec(src, fn_name)
        return fn, src, False, cache.store(key, src)


def _exec(src: str, fn_name: str) -> Callable:
    ns = numpy_codegen.namespace()
    exec(compile(src, f"<graphc:{fn_name}>", "exec"), ns)
    fn = ns[fn_name]

    @functools.wraps(fn)
    def run(*args):
        with np.errstate(all="ignore"):  # inf/nan follow IEEE rules silently, as in eager mode
            return fn(*args)
    return run
