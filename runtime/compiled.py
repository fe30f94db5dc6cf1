"""CompiledGraph: a backend's generated code for one graph, ready to run on device arrays.

Each call takes a workspace (the memory plan's temp buffers) from a pool, or makes one, and
gives it back when done, so a compiled graph is safe to call from several threads at once and
to re-enter: no two running calls share a buffer.

Memory kept between calls is bounded: a graph keeps at most ``POOL_LIMIT`` workspaces, and all
graphs of the process together at most ``IDLE_LIMIT_BYTES`` of them (``GRAPHC_IDLE_WORKSPACE_MB``,
default 64), counted from a graph's first kept workspace until it is dropped, whether idle or in a
running call: past the cap, the least recently released are dropped, whichever graph they belong
to. A function compiled for many input shapes so holds no more than that between calls.
"""
from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import Callable, Sequence

import numpy as np

from graphc.codegen.host import output_aliases, workspace_buffers
from graphc.codegen.memory_plan import MemoryPlan
from graphc.codegen.schedule import Schedule
from graphc.ir import dtypes
from graphc.ir.graph import Graph
from graphc.ir.primitive import TensorType

POOL_LIMIT = 1  # workspaces kept per compiled graph
IDLE_LIMIT_BYTES = int(float(os.environ.get("GRAPHC_IDLE_WORKSPACE_MB", "64")) * (1 << 20))

# Pools that keep workspaces: weak reference -> bytes counted (a pool that dies takes its
# workspaces with it; its entry is dropped at the next trim or count), and their sum, kept as they
# change. Registering, dropping and trimming take the lock; a call of a pool already counted takes
# and gives back its workspace without it (``WorkspacePool``).
_kept: dict[weakref.ref, int] = {}
_kept_total = 0
_lock = threading.Lock()
_clock = itertools.count()  # release stamps: the least recently released pools are trimmed first


def idle_workspace_bytes() -> int:
    """Bytes of workspaces that live compiled graphs keep between calls, all together."""
    with _lock:
        _drop_dead()
        return _kept_total


def _drop_dead() -> None:
    global _kept_total
    for ref in [r for r in _kept if r() is None]:
        _kept_total -= _kept.pop(ref)


def _trim(limit: int) -> None:
    """Drop the least recently released pools' workspaces until at most ``limit`` bytes are kept."""
    global _kept_total
    _drop_dead()
    # strong references first: a pool may die meanwhile (another thread drops its graph, or the
    # cyclic collector runs during the sort); its entry then goes at the next trim or count
    live = [(pool._used, ref, pool) for ref in list(_kept) if (pool := ref()) is not None]
    for _, ref, pool in sorted(live, key=lambda t: t[0]):
        if _kept_total <= limit:
            break
        pool._counted = False  # first: a release running at once then settles under the lock
        pool._free.clear()
        _kept_total -= _kept.pop(ref)


class WorkspacePool:
    """Workspaces of one memory plan. A pool already counted under the cap takes and gives back
    its workspace with list operations alone (atomic: one workspace is never handed to two calls),
    ~1 us a call less than taking the process-wide lock; registering, dropping and trimming
    (``_settle``) take the lock."""

    def __init__(self, nbytes: int, layout: list[tuple], allocate: Callable) -> None:
        self.nbytes = nbytes
        self.allocate = allocate
        self.layout = layout  # per workspace buffer: (byte offset, bytes, shape, numpy dtype)
        self._free: list[tuple] = []
        self._counted = False  # whether this pool's bytes are in ``_kept_total``
        self._used = 0         # stamp of its latest release
        self._ref = weakref.ref(self)

    def _make(self) -> tuple:
        arena = self.allocate((max(self.nbytes, 1),), np.dtype(np.uint8))
        return tuple(arena[off:off + n].view(dtype).reshape(shape) for off, n, shape, dtype in self.layout)

    def acquire(self) -> tuple:
        try:
            return self._free.pop()
        except IndexError:
            return self._make()

    def release(self, ws: tuple) -> None:
        if self.nbytes > IDLE_LIMIT_BYTES:
            return  # never kept: no lock taken for it
        self._used = next(_clock)
        if self._counted and _kept_total <= IDLE_LIMIT_BYTES:
            self._free.append(ws)
            del self._free[POOL_LIMIT:]  # releases at once: any extra goes (all of them are idle)
            if self._counted:
                return
            ws = None  # a trim dropped this pool meanwhile: count what it holds now
        self._settle(ws)

    def _settle(self, ws: tuple | None) -> None:
        """Under the lock: keep ``ws`` if there is room, count or uncount this pool by what it
        holds, and trim all pools back under the cap."""
        global _kept_total
        limit = IDLE_LIMIT_BYTES
        with _lock:
            if ws is not None and self.nbytes <= limit and len(self._free) < POOL_LIMIT:
                self._free.append(ws)
            del self._free[POOL_LIMIT:]  # as in release: one that ran beside a trim may have added one
            keep = bool(self._free)
            if keep and not self._counted:
                _kept[self._ref] = self.nbytes
                _kept_total += self.nbytes
            elif not keep and self._counted:
                _kept_total -= _kept.pop(self._ref, 0)
            self._counted = keep
            if _kept_total > limit:
                _trim(limit)

    @property
    def idle(self) -> int:
        """How many idle workspaces this pool holds."""
        return len(self._free)


def workspace_layout(plan: MemoryPlan, schedule: Schedule) -> list[tuple]:
    """(byte offset, bytes, shape, numpy dtype) of each workspace buffer, in the order the
    generated code unpacks them."""
    layout = []
    for name in workspace_buffers(schedule):
        b = schedule.buffers[name]
        layout.append((plan.offsets[plan.assignment[name]], b.nbytes, b.shape, b.dtype.np))
    return layout


class CompiledGraph:
    """Runs ``fn(*inputs, workspace)``; checks the inputs first (count, shape, dtype).
    ``allocate(shape, dtype)``: the backend's allocator, on its device.

    ``aliased[i]``: output ``i`` is an input or another output's buffer seen through views. The
    generated code returns it so; it is copied (every returned array is the caller's own) unless
    its position is in ``keep`` (the frontend makes such outputs views of the tensors they alias,
    as eager mode returns them)."""

    def __init__(self, graph: Graph, schedule: Schedule, fn: Callable, source: str, key: str,
                 from_cache: bool, backend: str, allocate: Callable) -> None:
        self.graph: Graph | None = graph
        self.schedule: Schedule | None = schedule
        self.plan: MemoryPlan | None = schedule.plan
        self._setup(graph.name, [v.type for v in graph.inputs], output_aliases(schedule),
                    WorkspacePool(schedule.plan.workspace_bytes, workspace_layout(schedule.plan, schedule), allocate),
                    fn, source, key, from_cache, backend, schedule.plan.summary())

    def _setup(self, name: str, input_types: list, aliased: list, pool: WorkspacePool, fn: Callable, source: str,
               key: str, from_cache: bool, backend: str, plan_summary: str) -> None:
        self.name = name
        self.fn = fn
        self.source = source
        self.key = key
        self.from_cache = from_cache
        self.backend = backend
        self.input_types = input_types
        # (shape, numpy dtype) per input, as each call checks them
        self._expected = tuple((tuple(t.shape), t.dtype.np) for t in input_types)
        self.aliased = aliased
        self._any_aliased = any(aliased)
        self.pool = pool
        self.plan_summary = plan_summary
        self.fn_name = ""  # the generated function's name (the backend sets it)
        self.callees: dict[str, "CompiledGraph"] = {}  # the compiled bodies its code calls (the backend sets them)

    def describe(self) -> dict:
        """What the runtime needs besides the generated code, as JSON-able data: with the code (in
        the code cache under ``key``) it rebuilds this compiled graph (``restore``), no IR needed."""
        return {"name": self.name, "fn_name": self.fn_name, "key": self.key,
                "inputs": [[list(t.shape), t.dtype.name] for t in self.input_types],
                "aliased": [bool(a) for a in self.aliased], "workspace_bytes": self.pool.nbytes,
                # dtypes by graphc name: numpy spells ml_dtypes' bfloat16 "<V2", a plain void type
                "layout": [[off, n, list(shape), dtypes.BY_NUMPY[dt].name] for off, n, shape, dt in self.pool.layout],
                "plan": self.plan_summary,
                # the compiled bodies its code calls (outlined calls), each cached under its own key
                "callees": {name: c.describe() for name, c in self.callees.items()}}

    @classmethod
    def restore(cls, desc: dict, fn: Callable, source: str, backend: str, allocate: Callable) -> "CompiledGraph":
        """The compiled graph ``describe()`` recorded, running ``fn`` (its code, from the cache)."""
        self = cls.__new__(cls)
        self.graph = self.schedule = self.plan = None
        layout = [(int(off), int(n), tuple(shape), dtypes.from_name(dt).np) for off, n, shape, dt in desc["layout"]]
        types = [TensorType(tuple(shape), dtypes.from_name(dt)) for shape, dt in desc["inputs"]]
        self._setup(desc["name"], types, [bool(a) for a in desc["aliased"]],
                    WorkspacePool(int(desc["workspace_bytes"]), layout, allocate), fn, source, desc["key"], True,
                    backend, desc["plan"])
        self.fn_name = desc["fn_name"]
        return self

    def release_ir(self) -> None:
        """Forget the graph and schedule it was generated from (the code does not need them)."""
        self.graph = self.schedule = None

    def check_inputs(self, arrays: Sequence) -> None:
        expected = self._expected
        if len(arrays) != len(expected):
            raise ValueError(f"compiled graph {self.name} takes {len(expected)} inputs, got {len(arrays)}")
        for a, (shape, dtype) in zip(arrays, expected):
            if a.shape != shape or (a.dtype is not dtype and a.dtype != dtype):
                for i, (a, (shape, dtype)) in enumerate(zip(arrays, expected)):  # which one, for the message
                    if a.shape != shape or a.dtype != dtype:
                        raise ValueError(f"compiled graph {self.name}: input {i} is {a.dtype}{list(a.shape)}, "
                                         f"expected {dtype}{list(shape)}")

    def __call__(self, arrays: Sequence, keep: frozenset = frozenset(), checked: bool = False) -> tuple:
        """Run on ``arrays``; ``checked``: the caller has checked their count, shapes and dtypes
        (``graphc.compile``'s guards do), so this call does not check them again."""
        if not checked:
            self.check_inputs(arrays)
        pool = self.pool
        if not pool.layout:  # no workspace buffers: nothing to take from the pool
            outs = self.fn(*arrays, ())
        else:
            ws = pool.acquire()
            try:
                outs = self.fn(*arrays, ws)
            finally:
                pool.release(ws)
        if not self._any_aliased:
            return outs
        return tuple(o.copy() if aliased and i not in keep else o
                     for i, (o, aliased) in enumerate(zip(outs, self.aliased)))
