"""CompiledGraph: a backend's generated code for one graph, ready to run on device arrays.

Each call takes a workspace (the memory plan's temp buffers) from a pool, or makes one, and
gives it back when done, so a compiled graph is safe to call from several threads at once and
to re-enter: no two running calls share a buffer.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from graphc.codegen.host import workspace_buffers
from graphc.codegen.memory_plan import MemoryPlan
from graphc.codegen.schedule import Schedule
from graphc.ir.graph import Graph

_POOL_LIMIT = 8  # idle workspaces kept per compiled graph


class WorkspacePool:
    """Workspaces of one memory plan. ``acquire``/``release`` use list.pop/append, which are
    atomic in CPython: no lock, and no workspace is ever handed to two calls."""

    def __init__(self, plan: MemoryPlan, schedule: Schedule, allocate: Callable) -> None:
        self.plan = plan
        self.allocate = allocate
        self.layout = []
        for name in workspace_buffers(schedule):
            b = schedule.buffers[name]
            self.layout.append((plan.offsets[plan.assignment[name]], b.nbytes, b.shape, b.dtype.np))
        self._free: list[tuple] = []

    def _make(self) -> tuple:
        arena = self.allocate((max(self.plan.workspace_bytes, 1),), np.dtype(np.uint8))
        return tuple(arena[off:off + n].view(dtype).reshape(shape) for off, n, shape, dtype in self.layout)

    def acquire(self) -> tuple:
        try:
            return self._free.pop()
        except IndexError:
            return self._make()

    def release(self, ws: tuple) -> None:
        if len(self._free) < _POOL_LIMIT:
            self._free.append(ws)


class CompiledGraph:
    """Runs ``fn(*inputs, workspace)``; checks the inputs first (count, shape, dtype).
    ``allocate(shape, dtype)``: the backend's allocator, on its device."""

    def __init__(self, graph: Graph, schedule: Schedule, fn: Callable, source: str, key: str,
                 from_cache: bool, backend: str, allocate: Callable) -> None:
        self.graph = graph
        self.schedule = schedule
        self.plan: MemoryPlan = schedule.plan
        self.fn = fn
        self.source = source
        self.key = key
        self.from_cache = from_cache
        self.backend = backend
        self.input_types = [v.type for v in graph.inputs]
        self.pool = WorkspacePool(schedule.plan, schedule, allocate)

    def check_inputs(self, arrays: Sequence) -> None:
        if len(arrays) != len(self.input_types):
            raise ValueError(f"compiled graph {self.graph.name} takes {len(self.input_types)} inputs, "
                             f"got {len(arrays)}")
        for i, (a, t) in enumerate(zip(arrays, self.input_types)):
            if a.shape != t.shape or a.dtype != t.dtype.np:
                raise ValueError(f"compiled graph {self.graph.name}: input {i} is {a.dtype}{list(a.shape)}, "
                                 f"expected {t.dtype.np}{list(t.shape)}")

    def __call__(self, arrays: Sequence) -> tuple:
        self.check_inputs(arrays)
        ws = self.pool.acquire()
        try:
            return self.fn(*arrays, ws)
        finally:
            self.pool.release(ws)
