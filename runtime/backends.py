"""The backend interface and registry: the frontend hands an optimized graph to
``backend.compile(graph)`` and knows nothing else about code generation.

A backend states its device; which primitives it generates inside kernels and which it calls as
library routines (``target``: the scheduler's view of it); its fusion legality
(``in_kernels``); its code generator; its allocator (the array module ``xp``); and how compiled
code is loaded (``_load``). ``for_device`` picks the backend of the inputs' device.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from graphc.codegen import generator_version
from graphc.codegen.memory_plan import plan_memory
from graphc.codegen.scheduler import build_schedule
from graphc.ir.call import bodies as call_bodies
from graphc.ir.graph import Graph
from graphc.ir.primitive import Primitive
from graphc.ir.printer import print_graph

from . import cache, devices
from .compiled import CompiledGraph


class Backend:
    name = ""
    device = ""
    alignment = 64
    target: Any = None
    # codegen modules whose source is part of the cache key
    generator_modules: tuple[str, ...] = ("graphc.codegen.schedule", "graphc.codegen.scheduler",
                                          "graphc.codegen.views", "graphc.codegen.memory_plan",
                                          "graphc.codegen.host")

    def in_kernels(self, prim: Primitive) -> bool:
        """Fusion legality: only primitives this backend generates inside kernels are fused."""
        return prim in self.target.kernel_ops

    def version(self) -> str:
        return generator_version(*self.generator_modules)

    def runtime(self) -> devices.DeviceRuntime:
        """The device runtime this backend's code runs on: its allocator and array module."""
        rt = devices.get(self.device)
        if rt is None or not rt.is_available():
            raise devices.DeviceUnavailableError(
                f"the {self.name} backend on {self.device}: {rt.unavailable_reason() if rt else 'no such device'}")
        return rt

    def xp(self) -> Any:
        """The device's array module (numpy, CuPy): extern calls and input/output handling."""
        return self.runtime().xp

    # whether ``restore`` can rebuild a compiled graph from its cached code and ``describe()``
    can_restore = False

    def compile(self, graph: Graph, name: str, saved_from: int | None = None, key: str | None = None,
                donate: dict[int, int] | None = None) -> CompiledGraph:
        """``key``: the code cache key, when the caller has one that determines the graph (the
        frontend's compiled-entry key, which must then cover ``donate``); else it is computed from
        the graph's text and plan. ``donate``: output index -> the input whose new value it is,
        which the code may compute in the input's own array (the caller then copies nothing)."""
        t0 = time.perf_counter()
        # outlined bodies first, each once however often it is called (a backend compiles calls
        # only if its target declares it can: the outline pass runs only for such backends)
        callees = {id(body): (f"body{i}", self.compile(body, f"{name}_body{i}"))
                   for i, body in enumerate(call_bodies(graph))}
        schedule = build_schedule(graph, self.target, saved_from, callees)
        schedule.plan = plan_memory(schedule, self.device, self.alignment, self.target.materializes_intermediates,
                                    donate if self.target.donates else None, self.target.scratch_buffers(schedule),
                                    self.target.statement_reads(schedule))
        fn_name = "graphc_" + "".join(c if c.isalnum() else "_" for c in name)
        if key is None:  # the function's name is in its code: two graphs of one text may differ by it
            text = f"{fn_name}\n{print_graph(graph)}saved_from={saved_from}\n{schedule.plan.text()}"
            key = cache.structural_hash(text, self.name, self.version() + self.environment())
        t1 = time.perf_counter()
        fn, source, from_cache, not_stored = self._load(schedule, fn_name, key)
        compiled = CompiledGraph(graph, schedule, fn, source, key, from_cache, self.name, self.runtime().allocate)
        compiled.callees = schedule.callees  # the compiled bodies its code calls, by name
        compiled.not_stored = not_stored  # why the generated code was not written to the disk cache (None: it was)
        compiled.fn_name = fn_name
        # seconds: schedule and memory plan; generating the code (or loading it) and compiling it
        compiled.timings = {"schedule": t1 - t0, "code": time.perf_counter() - t1}
        return compiled

    def restore(self, desc: dict) -> CompiledGraph | None:
        """The compiled graph ``desc`` (a ``CompiledGraph.describe()`` record) describes, its code
        loaded from the code cache; no IR, schedule or code generation involved. None when the
        code is absent, damaged or refused, or this backend can't restore (``can_restore``)."""
        if not self.can_restore:
            return None
        callees = {}
        for name, d in desc.get("callees", {}).items():  # the bodies its calls call: each from its own entry
            callees[name] = self.restore(d)
            if callees[name] is None:
                return None
        fn_source = self._load_cached(desc["fn_name"], desc["key"], callees)
        if fn_source is None:
            return None
        compiled = CompiledGraph.restore(desc, fn_source[0], fn_source[1], self.name, self.runtime().allocate)
        compiled.callees = callees
        compiled.not_stored = None
        return compiled

    def _load_cached(self, fn_name: str, key: str, callees: dict | None = None) -> tuple[Callable, str] | None:
        """(function, source) of the code cached under ``key`` (``callees``: the compiled bodies
        its calls call, by name), None if it is not usable."""
        return None

    def environment(self) -> str:
        """What else generated code depends on (compiler versions, GPU architecture)."""
        return ""

    def _load(self, schedule, fn_name: str, key: str) -> tuple[Callable, str, bool, str | None]:
        """(function, its source, whether it came from the on-disk cache, None if it was stored
        there or else why not)."""
        raise NotImplementedError


_BACKENDS: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()

# name -> the device types it runs on (the first is its default device)
BUILTIN = {"numpy": ("cpu",), "triton": ("cuda", "cpu")}
# device type -> its default backend
DEFAULT = {"cpu": "numpy", "cuda": "triton"}


def get(name: str, device: str) -> Backend:
    """The backend ``name`` for tensors on ``device`` (``triton`` on cpu runs its kernels under
    Triton's interpreter, for debugging)."""
    if name not in BUILTIN:
        raise ValueError(f"unknown backend {name!r}; graphc has {sorted(BUILTIN)}")
    if device not in BUILTIN[name]:
        raise ValueError(f"the {name} backend can't run on {device} tensors; use backend="
                         f"{DEFAULT.get(device, 'numpy')!r} or move the tensors to {BUILTIN[name][0]}")
    with _lock:
        b = _BACKENDS.get((name, device))
        if b is None:
            b = _BACKENDS[(name, device)] = _make(name, device)
    return b


def for_device(device: str) -> Backend:
    """The default backend of a device type: cpu -> numpy, cuda -> triton."""
    if device not in DEFAULT:
        raise ValueError(f"no compiler backend for device {device!r}")
    return get(DEFAULT[device], device)


def _make(name: str, device: str) -> Backend:
    # imported on first use: the triton package is only imported when the Triton backend is
    if name == "numpy":
        from .numpy_backend import NumpyBackend
        return NumpyBackend()
    from .triton_backend import TritonBackend
    return TritonBackend(device)
