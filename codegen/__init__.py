"""graphc.codegen: the schedule (kernels, extern calls, buffers, memory plan) and the numpy and
Triton code generators that lower it."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys


@functools.lru_cache(maxsize=None)
def generator_version(*modules: str) -> str:
    """A hash of the named modules' source: generated code cached on disk is keyed by it, so any
    change to a generator invalidates what it generated before. (Once per process, as the
    frontend's ``pipeline_version``: the modules that run are those imported, whatever the files
    say later; every compile's cache key asks for it.)"""
    h = hashlib.sha256()
    for name in modules:
        with open(_source_file(name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def _source_file(name: str) -> str:
    """The file of module ``name``, found without importing it (a warm start that loads cached
    code never imports the code generator whose source keys it)."""
    module = sys.modules.get(name)
    if module is not None:
        return module.__file__
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"no module named {name!r}")
    return spec.origin
