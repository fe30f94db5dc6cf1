"""The numpy backend: CPU arrays, numpy code from the schedule, loaded with ``exec``."""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from graphc.codegen import numpy_codegen, parts
from graphc.codegen.schedule import Schedule

from . import cache
from .pieces import in_pieces
from .backends import Backend


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"
    alignment = 64
    target = numpy_codegen.TARGET
    generator_modules = Backend.generator_modules + ("graphc.codegen.numpy_codegen", "graphc.codegen.parts")

    can_restore = True

    def _load(self, schedule: Schedule, fn_name: str, key: str) -> tuple[Callable, str, bool, str | None]:
        cached = self._load_cached(fn_name, key)
        if cached is not None:
            return cached[0], cached[1], True, None
        src = numpy_codegen.generate(schedule, fn_name)
        fn = _exec(src, fn_name)
        return fn, src, False, cache.store(key, src)

    def _load_cached(self, fn_name: str, key: str) -> tuple[Callable, str] | None:
        src = cache.load(key)
        if src is not None:
            try:
                return _exec(src, fn_name), src
            except Exception:  # a stale or damaged entry: regenerate
                pass
        return None


def _exec(src: str, fn_name: str) -> Callable:
    ns = numpy_codegen.namespace()
    ns["_in_pieces"] = in_pieces  # kernels in pieces run on this process's pool
    for chunk in parts.top_level_chunks(src):  # one function at a time: bounded compile memory
        exec(compile(chunk, f"<graphc:{fn_name}>", "exec"), ns)
    fn = ns[fn_name]

    @functools.wraps(fn)
    def run(*args):
        with np.errstate(all="ignore"):  # inf/nan follow IEEE rules silently, as in eager mode
            return fn(*args)
    return run
