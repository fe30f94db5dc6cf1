"""``graphc.compile``: trace, optimize, generate code, cache by guards, and run.

The cache key (guards) is the input signature: tensor shapes, dtypes and requires_grad, Python
scalar values, grad mode, and the training flags of the modules called (found while tracing).
Parameters and buffers are read from their live tensors at every call; replacing one in its module
(``m.weight = Parameter(...)``) or changing its shape/dtype recompiles too. A miss recompiles and
logs which guard changed (against the closest cached entry); after ``RECOMPILE_LIMIT`` recompiles,
new signatures run eagerly (one warning) while cached ones stay compiled. A graph break makes that
signature run eagerly, with a one-time warning naming the user's file:line; with ``fullgraph=True``
it raises ``GraphBreakError`` with the same text.

Logs (``GRAPHC_LOGS=...``, comma-separated): graph, passes, code, fusion, recompiles,
graph_breaks, cache (generated code loaded from / stored into the on-disk cache), compile (each
compile stage with its seconds; a compile still running after ``SLOW_COMPILE_SECONDS`` prints
its next stages to stderr without being asked).

A compile keys its whole result by the traced graph and the guards that change it
(``entry_cache``): when a new process traces the same graph, the passes, autodiff and code
generation are skipped and the cached compiled graphs are loaded. Per-pass graph texts are kept
only when something shows them (a dump, ``explain``); verifying the graph after every pass is a
debug mode (``GRAPHC_VERIFY=1``; the test suite turns it on), else the result is verified once.
"""
from __future__ import annotations

import functools
import gc
import logging
import os
import sys
import threading
import time
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graphc.ir import dtypes
from graphc.ir.call import bodies as call_bodies
from graphc.ir.graph import Graph, Value
from graphc.ir.primitive import PRIMITIVES, threads_dispatching
from graphc.ir.printer import print_graph
from graphc.passes import outline
from graphc.passes.autodiff.transform import differentiate
from graphc.passes.custom_vjp import erase_custom_vjp
from graphc.passes.manager import PassManager, default_pipeline, lowering_pipeline
from graphc.runtime import backends
from graphc.runtime.compiled import CompiledGraph

from ..amp.autocast_mode import autocast_state
from ..autograd import grad_mode
from ..autograd.grad_mode import _state as _grad_state, altered as _grad_altered
from ..device import array_to
from ..autograd.graph import Node, gradient_edge
from ..nn.modules.module import Module
from ..tensors import Tensor
from . import dump, entry_cache
from ..dispatch import current as _dispatch
from . import py_state
from .tracing import AttrSlot, GradSlot, GraphBreak, Slot, SymbolicTensor, Trace

RECOMPILE_LIMIT = 8  # recompiles after the first compile (PyTorch's recompile_limit, also 8, counts cache entries)
log = logging.getLogger("graphc")


class GraphBreakError(RuntimeError):
    """Raised with ``fullgraph=True`` when the function can't be captured as one graph."""


def _logs() -> set[str]:
    return {s.strip() for s in os.environ.get("GRAPHC_LOGS", "").split(",") if s.strip()}


def _emit(kind: str, text: str) -> None:
    if kind in _logs():
        print(f"[graphc:{kind}] {text}", flush=True)
    logging.getLogger(f"graphc.{kind}").debug(text)


# A compile that has run this long prints each further stage to stderr, logs asked for or not
# (``GRAPHC_SLOW_COMPILE_SECONDS``; ``inf`` never does).
SLOW_COMPILE_SECONDS = float(os.environ.get("GRAPHC_SLOW_COMPILE_SECONDS", "5"))


class _GcPause:
    """Python's cyclic garbage collector is paused while any thread compiles: a large compile
    allocates hundreds of thousands of IR objects that stay alive, and every collection on the
    way walks all of them (a quarter of the time of a large compile). What became garbage is
    collected once the collector runs again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def paused(*args, **kwargs):
            with self.lock:
                if self.depth == 0:
                    self.was_enabled = gc.isenabled()
                    gc.disable()
                self.depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.depth -= 1
                    if self.depth == 0 and self.was_enabled:
                        gc.enable()
        return paused


_gc_paused = _GcPause()


class _Progress:
    """Times the stages of one compile into ``times`` (stage -> seconds) and says each one as it
    ends: ``GRAPHC_LOGS=compile`` prints every stage; past ``SLOW_COMPILE_SECONDS`` a stage is
    printed to stderr anyway, so a long compile says what it is doing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = self.last = time.perf_counter()
        self.times: dict[str, float] = {}

    def done(self, stage: str, detail: str = "") -> None:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        self.times[stage] = self.times.get(stage, 0.0) + seconds
        text = (f"{self.name}: {stage} took {seconds:.2f} s" + (f" ({detail})" if detail else "")
                + f"; {now - self.start:.1f} s since the compile started")
        if "compile" in _logs():
            _emit("compile", text)
        else:
            logging.getLogger("graphc.compile").debug(text)
            if now - self.start > SLOW_COMPILE_SECONDS:
                print(f"[graphc:compile] {text}", file=sys.stderr, flush=True)


# ---- flattening of argument / output structures ---------------------------------------------

def _flatten(obj, leaves: list) -> Any:
    """Replace tensors by leaf indices; returns a spec to rebuild the structure."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("T", len(leaves) - 1)
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return (type(obj).__name__, [_flatten(x, leaves) for x in obj])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("nt", type(obj), [_flatten(x, leaves) for x in obj])
    if isinstance(obj, dict):
        return ("dict", type(obj), [(k, _flatten(v, leaves)) for k, v in obj.items()])
    return ("C", obj)


# number of tensor arguments -> (spec, signature) of a call passing just those (see _guard)
_TENSORS_ONLY: dict[int, tuple] = {}


def _unflatten(spec, leaves: list) -> Any:
    kind = spec[0]
    if kind == "T":
        return leaves[spec[1]]
    if kind == "list":
        return [_unflatten(s, leaves) for s in spec[1]]
    if kind == "tuple":
        return tuple(_unflatten(s, leaves) for s in spec[1])
    if kind == "nt":
        return spec[1](*[_unflatten(s, leaves) for s in spec[2]])
    if kind == "dict":
        return spec[1]((k, _unflatten(s, leaves)) for k, s in spec[2])
    return spec[1]


def _signature(spec) -> Any:
    """The hashable guard part of a spec: constants by value (Python scalars) or type."""
    kind = spec[0]
    if kind == "T":
        return ("T",)
    if kind in ("list", "tuple"):
        return (kind, tuple(_signature(s) for s in spec[1]))
    if kind == "nt":
        return ("nt", spec[1], tuple(_signature(s) for s in spec[2]))
    if kind == "dict":
        return ("dict", tuple((k, _signature(s)) for k, s in spec[2]))
    c = spec[1]
    if isinstance(c, (bool, int, float, str, type(None))):
        return ("C", type(c).__name__, c)
    return ("C", type(c).__name__, id(c))


def _constant_change(old, new):
    """(old value, new value) of the first Python scalar that differs between two signatures
    of the same structure; None if the structure itself differs."""
    if not (isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new)):
        return None
    if len(old) == 3 and old[0] == new[0] == "C":
        if old[1] in _SCALARS and new[1] in _SCALARS and old != new:
            return old[2], new[2]
        return None
    for a, b in zip(old, new):
        if a != b:
            return _constant_change(a, b)
    return None


_SCALARS = ("bool", "int", "float", "str", "NoneType")


def _tensor_guard(t: Tensor) -> tuple:
    return (tuple(t.shape), t.dtype.name, t.requires_grad, str(t.device))


def _fast_guard(guard: tuple) -> tuple | None:
    """The guard of a call with tensors only, as ``_fast_hit`` compares it: (number of tensors,
    per tensor (shape, numpy dtype, requires_grad), grad mode, training flags). None for the
    guards it does not cover, which are always looked up: other arguments, a tensor passed
    twice, a device other than the CPU, autocast on."""
    signature, tensors, grad, training, aliases, autocast = guard
    n = len(tensors)
    known = _TENSORS_ONLY.get(n)
    if known is None or signature != known[1] or aliases != tuple(range(n)) or autocast \
            or any(device != "cpu" for _, _, _, device in tensors):
        return None
    return n, tuple((shape, dtypes.from_name(name).np, rg) for shape, name, rg, _ in tensors), grad, training


def _requires_grad(t: Tensor) -> bool:
    """``t.requires_grad``, read without its properties unless ``t`` is a view (whose grad_fn may
    need to be made again after an in-place write): a call checks it per tensor."""
    return t._requires_grad or (t._grad_fn is not None if t._view_ver is None else t.requires_grad)


def _fast_hit(entry: Entry, args: tuple, modules: list) -> bool:
    """Whether a call with ``args`` (tensors only, no keywords) has the guard of ``entry``,
    compared part by part with what the entry stored, no guard tuple built. Called only while no
    thread traces or autocasts (then autocast is off and the handler is eager). False means
    "look it up", never "recompile"; a dtype compares by identity (an equal numpy dtype that is
    another object is looked up)."""
    fast = entry.fast
    if fast is None:
        return False
    n, metas, grad, training = fast
    if len(args) != n:
        return False
    for t, (shape, dtype, rg) in zip(args, metas):
        if not isinstance(t, Tensor):
            return False
        a = getattr(t, "_data", None)  # a traced tensor, used outside its trace, has none
        if type(a) is not np.ndarray or a.shape != shape or a.dtype is not dtype:
            return False
        if _requires_grad(t) != rg:
            return False
    if n > 1 and (args[0] is args[1] if n == 2 else len({id(t) for t in args}) != n):
        return False  # a tensor passed twice
    if (_grad_state.enabled if _grad_altered.count else True) != grad:
        return False
    if training:
        if len(modules) != len(training):
            return False
        for m, flag in zip(modules, training):
            if m.training != flag:
                return False
    elif modules:
        return False
    return True


# ---- compiled entries -----------------------------------------------------------------------

@dataclass
class Entry:
    """One compiled specialization of a function."""
    guard: tuple
    out_spec: Any = None
    forward: CompiledGraph | None = None
    backward: CompiledGraph | None = None
    lifted: list = field(default_factory=list)       # concrete tensors read at every call, in order
    mutated: list = field(default_factory=list)      # tensors written back after the call
    mutated_inputs: list = field(default_factory=list)  # per mutated tensor: the graph input holding it, or None
    n_user_outputs: int = 0
    out_aliases: list = field(default_factory=list)  # per user output: None or what it is a view of
    keep: frozenset = frozenset()                    # outputs the generated code need not copy (aliases)
    out_requires_grad: list = field(default_factory=list)
    diff_outputs: list = field(default_factory=list)
    wrt: list = field(default_factory=list)          # input positions differentiated
    lifted_slots: list = field(default_factory=list) # per lifted tensor: (module, its dict, key) or None
    py_guards: list = field(default_factory=list)    # (label, dict, key, value): Python scalars read as constants
    stores: list = field(default_factory=list)       # (dict, key, spec over the user outputs): names set per call
    guards: list = field(default_factory=list)       # checks of other Python state (optimizer state, options)
    grad_guards: list = field(default_factory=list)  # (tensor, its .grad was None): .grad read by the function
    grad_writes: list = field(default_factory=list)  # (tensor, "none" | "new" | "inplace") per .grad set
    eager_reason: str | None = None
    stages: dict = field(default_factory=dict)
    backend: Any = None                              # the runtime backend its graphs run on
    # what a call needs, worked out once (``_prepare_calls``):
    fast: tuple | None = None     # the guard as ``_fast_hit`` compares it, or None: calls look it up
    lifted_meta: list = field(default_factory=list)  # (tensor, shape, numpy dtype, dtype name, requires_grad)
    lifted_readers: list = field(default_factory=list)  # the lifted Slots (read afresh at every call)
    xp: Any = None                # the backend's array module
    n_grads: int = 0              # .grad values among the forward's outputs
    plain: bool = False           # outputs are fresh arrays, nothing to write back or differentiate
    reads_state: bool = True      # it has lifted tensors or Python state to check at every call
    # the guards check every input's shape and dtype (a .grad read afresh is the one they don't),
    # so the runtime need not check them again
    inputs_guarded: bool = False


class CompiledBackward(Node):
    """grad_fn of a compiled function's outputs: runs the compiled backward graph."""

    def __init__(self, entry: Entry, saved: list, edges: tuple, out_meta: list, watched: list) -> None:
        super().__init__(edges)
        self.entry = entry
        self.saved = saved
        self.watched = watched  # (input tensor, its version when saved)
        self.out_meta = out_meta
        self._freed = False

    @property
    def num_outputs(self) -> int:
        return len(self.out_meta)

    def name(self) -> str:
        return "CompiledFunctionBackward"

    def apply(self, grads: list) -> tuple:
        from ..autograd.graph import FREED_MESSAGE
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        if grad_mode.is_grad_enabled():
            raise RuntimeError("double backward (create_graph=True) through a graphc.compile'd function is not "
                               "supported; run the function eagerly for higher-order gradients")
        for t, version in self.watched:
            if t._version != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{t.type()} {list(t.shape)}] was saved by a graphc.compile'd function at "
                    f"version {version} and is now at version {t._version}. Hint: run the optimizer step "
                    "(or other in-place updates) after backward(), or clone() the tensor first.")
        xp = self.entry.backend.xp()
        cts = [xp.zeros(shape, dtype) if g is None else xp.asarray(g._data, dtype=dtype, order="C")
               for g, (shape, dtype) in zip(grads, self.out_meta)]
        outs = self.entry.backward(cts + self.saved)
        return tuple(Tensor._make(o) for o in outs)  # generated code returns arrays it owns

    def release(self) -> None:
        self.saved = []
        self.watched = []
        self._freed = True


class CompiledFunction:
    def __init__(self, fn: Callable, backend: str, fullgraph: bool, dump_dir: str | None, name: str,
                 modules: list) -> None:
        self.fn = fn
        self.backend = backend
        self.fullgraph = fullgraph
        self.dump_dir = dump_dir
        self.name = name
        self.modules = modules
        self.cache: dict[tuple, Entry] = {}
        self.variants: dict[tuple, list[Entry]] = {}  # per guard, entries of other lifted states
        self.recompiles = 0
        self.gave_up = False
        self.history: list[str] = []   # recompile reasons and graph breaks, for explain()
        self._warned: set[str] = set()
        self._record = False           # keep every stage's text (explain() sets it)
        self._last: Entry | None = None  # the entry the last call ran, checked first (see __call__)
        functools.update_wrapper(self, fn, updated=())

    # ---- guards -----------------------------------------------------------------------------

    def _guard(self, args, kwargs) -> tuple[tuple, list, Any]:
        if not kwargs and all(isinstance(a, Tensor) for a in args):
            # the common call, tensors only: its spec depends on their number alone
            leaves = list(args)
            known = _TENSORS_ONLY.get(len(args))
            if known is None:
                spec = _flatten((args, kwargs), [])
                known = _TENSORS_ONLY[len(args)] = (spec, _signature(spec))
            spec, signature = known
        else:
            leaves = []
            spec = _flatten((args, kwargs), leaves)
            signature = _signature(spec)
        first: dict[int, int] = {}  # the same tensor passed twice is traced as one value
        aliases = tuple(first.setdefault(id(t), i) for i, t in enumerate(leaves))
        guard = (signature, tuple(_tensor_guard(t) for t in leaves), grad_mode.is_grad_enabled(),
                 tuple(m.training for m in self.modules), aliases, autocast_state())
        return guard, leaves, spec

    def _closest(self, guard: tuple) -> tuple:
        """The cached guard that differs from ``guard`` in the fewest parts (latest on ties): the
        recompile reason is reported against it."""
        def distance(old: tuple) -> int:
            d = sum(a != b for a, b in zip(old[:4:2], guard[:4:2])) + (old[3] != guard[3]) + (old[5] != guard[5])
            if len(old[1]) != len(guard[1]):
                return d + 1 + len(guard[1])
            return d + sum(a != b for x, y in zip(old[1], guard[1]) for a, b in zip(x, y))
        return min(reversed([e.guard for e in self.cache.values()]), key=distance)

    @staticmethod
    def _why(old: tuple, new: tuple) -> str:
        if old[2] != new[2]:
            return f"grad mode changed from {old[2]} to {new[2]}"
        if old[3] != new[3]:
            return "a module's training flag changed (train()/eval())"
        if old[5] != new[5]:
            return f"the autocast state changed from {old[5] or 'off'} to {new[5] or 'off'}"
        if old[0] != new[0]:
            change = _constant_change(old[0], new[0])
            if change is not None:
                return f"a Python argument changed from {change[0]!r} to {change[1]!r}"
            return "the Python (non-tensor) arguments or their structure changed"
        for i, (a, b) in enumerate(zip(old[1], new[1])):
            for what, x, y in (("shape", a[0], b[0]), ("dtype", a[1], b[1]), ("requires_grad", a[2], b[2]),
                               ("device", a[3], b[3])):
                if x != y:
                    return f"tensor argument {i} {what} changed from {x} to {y}"
        if len(old[1]) == len(new[1]) and old[4] != new[4]:
            return "which tensor arguments are the same tensor changed"
        return "the number of tensor arguments changed"

    # ---- calling ----------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        # The entry that ran last is checked first, without building the guard tuple: while no
        # thread traces or autocasts, this thread's handler is the eager one (which calls
        # call_compiled) and autocast is off. ``_last`` is read once: another thread may set it
        # at any time, and an entry is immutable once made, so a race can only miss.
        entry = self._last
        if entry is not None and not kwargs and not threads_dispatching() and _fast_hit(entry, args, self.modules) \
                and self._lifted_changed(entry) is None:
            return self._run(entry, args)
        return _dispatch().call_compiled(self, args, kwargs)

    def call_compiled(self, args: tuple, kwargs: dict):
        guard, leaves, spec = self._guard(args, kwargs)
        entry = self.cache.get(guard)
        stale = self._lifted_changed(entry) if entry is not None and entry.eager_reason is None else None
        if stale is not None:
            entry = self._fitting_variant(guard, entry)
        if entry is None:
            if self.gave_up:  # past the recompile limit: what is compiled still runs compiled
                return self.fn(*args, **kwargs)
            if self.cache:
                reason = stale or self._why(self._closest(guard), guard)
                if self.recompiles >= RECOMPILE_LIMIT:  # the limit counts recompiles done, not attempts
                    self.gave_up = True
                    self.history.append(f"recompile limit ({RECOMPILE_LIMIT}) reached, running eagerly: {reason}")
                    _emit("recompiles", f"{self.name}: not recompiling (the limit of {RECOMPILE_LIMIT} recompiles "
                                        f"is reached) although {reason}; running eagerly")
                    warnings.warn(
                        f"graphc.compile: {self.name} was recompiled {self.recompiles} times, the limit (last "
                        f"reason: {reason}); new input signatures run eagerly from now on, those already compiled "
                        "stay compiled. Keep input shapes and Python arguments stable to benefit from compilation.",
                        RuntimeWarning, stacklevel=_user_stacklevel())
                    return self.fn(*args, **kwargs)
                self.recompiles += 1
                self.history.append(f"recompile #{self.recompiles}: {reason}")
                _emit("recompiles", f"{self.name}: recompiling because {reason}")
            why = f"recompiled because {reason}" if self.cache else "the first compile"
            entry = self._compile(args, kwargs, guard, leaves, spec, why)
            old = self.cache.get(entry.guard)
            if old is not None and old.eager_reason is None:  # stale now, it may fit again later
                self.variants.setdefault(entry.guard, []).append(old)
            self.cache[entry.guard] = entry
        if entry.eager_reason is not None:
            return self.fn(*args, **kwargs)
        if entry.fast is not None:
            self._last = entry
        return self._run(entry, leaves)

    def _fitting_variant(self, guard: tuple, stale: Entry) -> Entry | None:
        """Another entry compiled for ``guard`` whose lifted state fits now (None: none does). The
        same arguments may meet several states of a module (a mask cache built for the training
        batch, then for the evaluation batch, and again): each compiled state is kept, as PyTorch
        keeps one cache entry per set of guards, so switching back does not recompile."""
        others = self.variants.get(guard)
        for i, e in enumerate(others or ()):
            if self._lifted_changed(e) is None:
                others[i] = stale  # the fitting one becomes current; lists only ever swap entries
                self.cache[guard] = e
                return e
        return None

    @staticmethod
    def _lifted_changed(entry: Entry) -> str | None:
        """Why the tensors the entry reads by identity are no longer right for it (None: they are):
        a module's parameter or buffer was replaced by another tensor, or one changed shape/dtype."""
        if not entry.reads_state:
            return None
        for t, slot in zip(entry.lifted, entry.lifted_slots):
            if slot is not None and slot[1].get(slot[2]) is not t:
                owner = slot[0] if isinstance(slot[0], str) else type(slot[0]).__name__
                return f"{owner}.{slot[2]} was replaced by another tensor"
        for label, d, key, value in entry.py_guards:
            now = d.get(key, _MISSING)
            if now is not value and (type(now) is not type(value) or now != value):
                return f"{label} changed from {_describe(value)} to {_describe(now)}"
        for t, was_none in entry.grad_guards:
            if (t._grad is None) != was_none:
                return f"a .grad the function reads is {'no longer' if was_none else 'now'} None"
        for check in entry.guards:
            reason = check()
            if reason is not None:
                return reason
        for slot in entry.lifted_readers:
            reason = slot.stale()
            if reason is not None:
                return reason
        for t, shape, dtype, name, _ in entry.lifted_meta:
            a = t._data
            # the dtype by identity first: numpy's dtypes of the same name compare equal
            if a.shape != shape or (a.dtype is not dtype and t.dtype.name != name):
                return "a parameter or buffer the function reads changed shape or dtype"
        for t, _, _, _, rg in entry.lifted_meta:
            if _requires_grad(t) != rg:  # requires_grad_(False): a frozen parameter
                return f"a parameter's requires_grad changed from {rg} to {not rg}"
        return None

    def _prepare_calls(self, entry: Entry) -> Entry:
        """Work out once what every call of a compiled ``entry`` needs: the checks of its lifted
        tensors, its fast guard (see ``_fast_hit``), and how its outputs are handled."""
        entry.lifted_readers = [t for t in entry.lifted if isinstance(t, Slot)]
        entry.lifted_meta = [(t, tuple(t.shape), t._data.dtype, t.dtype.name, t.requires_grad)
                             for t in entry.lifted if not isinstance(t, Slot)]
        entry.xp = entry.backend.xp()
        entry.n_grads = sum(how != "none" for _, how in entry.grad_writes)
        entry.plain = (entry.backward is None and not entry.mutated and not entry.grad_writes and not entry.stores
                       and all(a is None for a in entry.out_aliases))
        entry.inputs_guarded = not any(isinstance(t, GradSlot) for t in entry.lifted)
        entry.reads_state = bool(entry.lifted or entry.py_guards or entry.grad_guards or entry.guards)
        entry.fast = _fast_guard(entry.guard)
        return entry

    @_gc_paused
    def _compile(self, args, kwargs, guard, leaves, spec, why: str) -> Entry:
        entry = Entry(guard)
        entry.stages["why"] = why
        t0 = time.perf_counter()
        progress = _Progress(self.name)
        trace = Trace(self.name, _device_of(leaves, self.modules))
        try:
            with trace:
                # an input keeps requires_grad under no_grad (as eagerly); ops then don't propagate it
                syms = [trace.tensor_input(t, t.requires_grad) for t in leaves]
                trace.leaves.update((id(s._value), t) for s, t in zip(syms, leaves))
                syms = [syms[j] for j in guard[4]]  # aliased arguments share one symbolic tensor
                sym_args, sym_kwargs = _unflatten(spec, syms)
                fn_globals = getattr(self.fn, "__globals__", None)
                for m in list(self.modules) + _modules_reached(self.fn, fn_globals):
                    trace.py_state.watch(type(m).__name__, m.__dict__)
                if isinstance(fn_globals, dict):
                    trace.py_state.watch("global", fn_globals)
                out = self.fn(*sym_args, **sym_kwargs)
                if trace.needs_backward and not trace.backward_done:
                    raise GraphBreak(trace.needs_backward[0])
                out_leaves: list = []
                entry.out_spec = _flatten(out, out_leaves)
                stores = trace.py_state.stores()
                entry.stores = [(d, key, _lifted_store(label, key, now, out_leaves)) for label, d, key, _, now in stores]
                out_values = [trace.output_value(o) for o in out_leaves]
                out_rg = [isinstance(o, SymbolicTensor) and o.requires_grad for o in out_leaves]
                leaked = trace.adopt_buffer_assignments()
                if leaked:
                    raise GraphBreak(f"the function stores a traced tensor in {leaked} (Python state outside "
                                     "the graph); it would hold no values after the call")
            # the trace has put attributes and globals back; a traced tensor left elsewhere can't be lifted
            leaked = _leaked_symbolic(list(self.modules) + trace.modules, fn_globals)
            if leaked:
                raise GraphBreak(f"the function stores a traced tensor in {leaked} (Python state outside "
                                 "the graph); it would hold no values after the call")
        except GraphBreak as gb:
            return self._graph_break(entry, gb)
        # modules the function called are guarded too (their train/eval flag changes the graph)
        known = {id(m) for m in self.modules}
        found = [m for m in trace.modules if id(m) not in known]
        if found:
            self.modules.extend(found)
            entry.guard = self._guard(args, kwargs)[0]
        # user inputs changed in place are written back like mutated buffers
        for i, (t, sym, v) in enumerate(zip(leaves, syms, trace.graph.inputs)):
            if guard[4][i] == i and sym._value is not v:
                if t.requires_grad and grad_mode.is_grad_enabled():
                    reason = ("an input that requires grad is modified in place; graphc.compile does not "
                              "differentiate through input mutations")
                    return self._graph_break(entry, GraphBreak(reason))
                trace.mutations[id(t)] = (t, sym._value)
        g = trace.graph
        # a gradient read only to test it for None (zero_grad) is no input
        for k in [k for k, (v, _) in trace.lifted.items()
                  if v.role == "grad" and not v.users and all(o is not v for o in out_values)]:
            g.inputs.remove(trace.lifted.pop(k)[0])
        lifted = [t for v, t in (trace.lifted[k] for k in trace.lifted)]
        lifted = _guard_stores(entry, stores, lifted)
        entry.lifted = lifted
        # where modules hold the lifted tensors: replacing one (``m.weight = Parameter(...)``) recompiles
        slots: dict[int, tuple] = {}
        for m in list(self.modules) + trace.modules:
            for kind in ("_parameters", "_buffers"):
                for key, t in m.__dict__.get(kind, {}).items():
                    if t is not None:
                        slots.setdefault(id(t), (m, m.__dict__[kind], key))
        # plain tensor attributes of modules and globals of the function are read by identity too;
        # Python scalars there (module config, flags, global constants) are baked in: guard both
        seen: set[int] = set()
        for m in list(self.modules) + trace.modules:
            if id(m) in seen:
                continue
            seen.add(id(m))
            for key, v in m.__dict__.items():
                if isinstance(v, Tensor):
                    slots.setdefault(id(v), (m, m.__dict__, key))
                elif type(v) in _GUARDED_SCALARS and key != "training":
                    entry.py_guards.append((f"{type(m).__name__}.{key}", m.__dict__, key, v))
        fn_globals = getattr(self.fn, "__globals__", None)
        if isinstance(fn_globals, dict):
            for key in _global_names(getattr(self.fn, "__code__", None)):
                v = fn_globals.get(key, _MISSING)
                if isinstance(v, Tensor):
                    slots.setdefault(id(v), ("global", fn_globals, key))
                elif type(v) in _GUARDED_SCALARS:
                    entry.py_guards.append((f"global {key}", fn_globals, key, v))
        entry.lifted_slots = [slots.get(id(t)) for t in lifted]
        _read_plain_attributes_by_name(entry, trace)
        entry.mutated = [t for t, _ in trace.mutations.values()]
        position: dict[int, int] = {}
        for i, t in enumerate(leaves + lifted):
            position.setdefault(id(t), i)
        # per mutated tensor, the graph input that holds it: its new value may be computed in that
        # input's array (donation), and then there is nothing to copy back
        entry.mutated_inputs = [position.get(id(t)) for t, _ in trace.mutations.values()]
        grad_values = self._grads_set(entry, trace)
        entry.guards = trace.guards + entry.guards
        if trace.backward_done:  # backward() ran inside: its graph is used up, as eagerly
            out_rg = [False] * len(out_rg)
        g.set_outputs(out_values + [v for _, v in trace.mutations.values()] + grad_values)
        entry.n_user_outputs = len(out_values)
        entry.out_aliases = _made_while_tracing(_output_aliases(g, len(out_values)), len(leaves), entry, self.fn)
        entry.keep = frozenset(i for i, a in enumerate(entry.out_aliases) if a is not None)
        entry.out_requires_grad = out_rg
        g.rename()
        entry.stages["traced"] = print_graph(g)
        progress.done("tracing", f"{len(g.nodes)} nodes")
        _emit("graph", entry.stages["traced"])
        # inputs whose gradients are needed: user tensors and lifted tensors that require grad
        inputs_rg = [t.requires_grad for t in leaves] + [not isinstance(t, Slot) and t.requires_grad for t in lifted]
        wrt = [i for i, rg in enumerate(inputs_rg) if rg and g.inputs[i].dtype.is_inexact]
        diff_outputs = [i for i, rg in enumerate(out_rg) if rg]
        try:
            backend = self._backend(leaves, lifted)
        except ValueError as e:
            raise RuntimeError(f"graphc.compile: {e}") from None
        entry.backend = backend
        differentiated = grad_mode.is_grad_enabled() and bool(wrt) and bool(diff_outputs)
        entry.stages["contents"] = (
            "forward, backward (a backward() call inside) and what follows it, such as the optimizer "
            "update, in one graph" if trace.backward_done else
            "forward; autodiff derives the backward graph after the passes" if differentiated else
            "forward only (nothing to differentiate)")
        # the forward's outputs after the user's and the mutations are values saved for backward
        saved_from = len(out_values) + len(entry.mutated) + len(grad_values)
        folder, fmt = dump.target(self.dump_dir)
        record = self._record or bool(folder)  # stage texts: only for whoever shows them
        entry.stages["recorded"] = record
        key = None if entry_cache.disabled() else entry_cache.key(entry.stages["traced"], backend, {
            "grad_mode": grad_mode.is_grad_enabled(), "wrt": wrt, "diff_outputs": diff_outputs,
            "user_outputs": len(out_values), "mutations": entry.mutated_inputs, "grads": len(grad_values),
            "default_dtype": dtypes.get_default_dtype().name,  # autodiff's int -> float results
            "outline": outline.MIN_CALLS})  # whether or not the backend outlines (its target, not read on a hit)
        restorable = key is not None and backend.can_restore
        if restorable and not record and self._restore(entry, key, backend, differentiated, diff_outputs):
            progress.done("loading", "the compiled graphs from the cache: passes, autodiff and codegen skipped")
            entry.stages["compile_stages"] = progress.times
            entry.stages["compile_seconds"] = time.perf_counter() - t0
            return self._prepare_calls(entry)
        if backend.target.calls and trace.calls:
            made = outline.outline(g, trace.calls)
            if made:
                progress.done("outlining", f"{made} bodies for repeated module calls, {len(g.nodes)} nodes left")
        pm = PassManager(default_pipeline(), verify=PassManager.compile_verify(), record=record)
        g = pm.run(g)
        entry.stages["passes"] = pm.report
        if record:
            entry.stages["optimized"] = print_graph(g)
        _emit("passes", pm.summary())
        progress.done("passes", f"{len(g.nodes)} nodes")
        if differentiated:
            split = differentiate(g, wrt, diff_outputs)
            progress.done("autodiff", f"forward {len(split.forward.nodes)} nodes, backward {len(split.backward.nodes)}")
            if record:
                entry.stages["forward"] = print_graph(split.forward)
                entry.stages["backward"] = print_graph(split.backward)
            fwd, bwd, wrt = split.forward, split.backward, split.wrt
            del split
            entry.forward = self._lower(fwd, self.name + "_forward", entry, backend, progress, key, saved_from,
                                        donate=True)
            del fwd  # the forward's IR can go before the backward is lowered
            entry.backward = self._lower(bwd, self.name + "_backward", entry, backend, progress, key)
            entry.wrt, entry.diff_outputs = wrt, diff_outputs
            entry.stages["code"] = entry.forward.source + "\n" + entry.backward.source
        else:
            entry.forward = self._lower(g, self.name, entry, backend, progress, key, donate=True)
            entry.stages["code"] = entry.forward.source
        _emit("code", entry.stages["code"])
        graphs = [entry.forward] + ([entry.backward] if entry.backward is not None else [])
        if restorable and all(c.from_cache or c.not_stored is None for c in graphs):  # else: said above
            why = entry_cache.store(key, graphs, entry.wrt)
            _emit("cache", f"{self.name}: compiled entry " + (f"stored as {key}" if why is None else f"not stored: {why}"))
        entry.stages["compile_stages"] = progress.times
        entry.stages["compile_seconds"] = time.perf_counter() - t0
        if folder:
            # numbered by compile, not by cache size: a recompile may replace an entry (stale lifted state)
            dump.write_stages(folder, self.name, self.recompiles, entry.stages, g, fmt)
        return self._prepare_calls(entry)

    def _restore(self, entry: Entry, key: str, backend: backends.Backend, differentiated: bool,
                 diff_outputs: list) -> bool:
        """Fill ``entry`` from the compiled-entry cache; False on a miss (nothing changed)."""
        found = entry_cache.restore(key, backend)
        if found is None or len(found[0]) != 1 + differentiated:
            return False
        graphs, wrt = found
        entry.forward = graphs[0]
        if differentiated:
            entry.backward, entry.wrt, entry.diff_outputs = graphs[1], wrt, diff_outputs
        entry.stages["from_cache"] = key
        entry.stages["memory"] = [f"{c.name}: {c.plan_summary}" for c in graphs]
        entry.stages["code"] = "\n".join(c.source for c in graphs)
        _emit("passes", f"{self.name}: passes, autodiff and code generation skipped: compiled entry {key} "
                        "loaded from the cache")
        for c in graphs:
            _emit("cache", f"{c.name}: loaded generated code from the cache ({c.key})")
        _emit("code", entry.stages["code"])
        return True

    @staticmethod
    def _grads_set(entry: Entry, trace: Trace) -> list[Value]:
        """The ``.grad`` values the traced code leaves (a backward() or an optimizer ran inside):
        fills the entry's guards on them and how each is written back; returns the graph values
        to output for them."""
        values = []
        for t, value, was_none, fresh in trace.grads.values():
            entry.grad_guards.append((t, was_none))
            if value is None:
                if not was_none:
                    entry.grad_writes.append((t, "none"))
                continue
            v = value._value if isinstance(value, SymbolicTensor) else trace.value_of(value)
            if v.producer is None and v.role == "grad" and not fresh:
                continue  # read, never changed
            entry.grad_writes.append((t, "new" if fresh else "inplace"))
            values.append(v)
        return values

    def _graph_break(self, entry: Entry, gb: GraphBreak) -> Entry:
        """This signature runs eagerly: warn once per distinct break (or raise with fullgraph)."""
        msg = f"graph break in {self.name} at {gb.location}: {gb.reason}"
        self.history.append(msg)
        _emit("graph_breaks", msg)
        if self.fullgraph:
            raise GraphBreakError(msg + " (fullgraph=True requires one graph)")
        if msg not in self._warned:
            self._warned.add(msg)
            warnings.warn(f"graphc.compile: {msg}; this call runs eagerly.", UserWarning,
                          stacklevel=_user_stacklevel())
        entry.eager_reason = msg
        return entry

    def _backend(self, leaves: list, lifted: list) -> backends.Backend:
        """The backend asked for, on the device of the tensors the function reads."""
        # 0-dim CPU tensors may join tensors of another device, as in eager mode (moved there)
        devices = {t.device.type for t in list(leaves) + list(lifted)
                   if not isinstance(t, Slot) and not (t.ndim == 0 and t.device.type == "cpu")}
        if len(devices) > 1:
            raise RuntimeError(f"graphc.compile: {self.name} reads tensors on several devices ({sorted(devices)}); "
                               "move them to one device first")
        device = devices.pop() if devices else "cpu"
        if self.backend in backends.BUILTIN:
            return backends.get(self.backend, device)
        return backends.for_device(device)

    def _lower(self, g: Graph, name: str, entry: Entry, backend: backends.Backend, progress: _Progress,
               entry_key: str | None, saved_from: int | None = None, donate: bool = False) -> CompiledGraph:
        """Backend passes (after autodiff): CSE/DCE again and fusion grouping (with the backend's
        legality), then ``backend.compile``: schedule, memory plan, code, loading."""
        what = name[len(self.name) + 1:] if name.startswith(self.name + "_") else "graph"
        fusion_log: list[str] = []
        g = erase_custom_vjp(g)  # custom Functions' VJPs: only autodiff (done by now) reads them
        for body in call_bodies(g):
            erase_custom_vjp(body)
        pm = PassManager(lowering_pipeline(fusion_log, backend.in_kernels), verify=PassManager.compile_verify(),
                         record=bool(entry.stages.get("recorded")))
        g = pm.run(g)
        entry.stages.setdefault("lowering", []).extend(pm.report)
        # the dump's log says which graph each decision is about (a differentiated call lowers two)
        entry.stages.setdefault("fusion", []).append(f"## {what} graph ({name})" if what != "graph" else f"## {name}")
        entry.stages["fusion"].extend(fusion_log or ["(no fusion was refused)"])
        for line in fusion_log:
            _emit("fusion", f"{name}: {line}")
        progress.done(f"lowering {what}", f"{len(g.nodes)} nodes after fusion")
        code_key = None if entry_key is None else entry_cache.code_key(entry_key, name)
        # the forward's outputs: user outputs, then each mutated tensor's new value
        donations = {entry.n_user_outputs + j: i for j, i in enumerate(entry.mutated_inputs) if i is not None} \
            if donate else None
        compiled = backend.compile(g, name, saved_from, key=code_key, donate=donations)
        del g
        timings = getattr(compiled, "timings", {})
        progress.done(f"codegen {what}", ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
        entry.stages.setdefault("memory", []).append(f"{name}: {compiled.plan_summary}")
        _emit("passes", pm.summary() + f"\nmemory plan {name}: {compiled.plan_summary}")
        if compiled.from_cache:
            _emit("cache", f"{name}: loaded generated code from the cache ({compiled.key})")
        elif compiled.not_stored is None:
            _emit("cache", f"{name}: generated code (cache miss, stored as {compiled.key})")
        else:
            _emit("cache", f"{name}: generated code (cache miss, not stored: {compiled.not_stored})")
        compiled.release_ir()  # the entry keeps the code and the stages' text, not the IR
        return compiled

    def _run(self, entry: Entry, leaves):
        if entry.lifted_readers:
            inputs = [*leaves, *[t.read() if isinstance(t, Slot) else t for t in entry.lifted]]
        else:
            inputs = [*leaves, *entry.lifted]
        xp = entry.xp
        arrays = [t._data for t in inputs]
        host = xp is np
        for i, a in enumerate(arrays):
            if not host or type(a) is not np.ndarray or not a.flags.c_contiguous:
                arrays[i] = _input_array(a, xp)  # a 0-dim CPU tensor read by device code goes there
        outs = entry.forward(arrays, entry.keep, entry.inputs_guarded)
        if entry.plain:  # the outputs are the user's, each a fresh array
            if len(outs) == 1 and entry.out_spec[0] == "T":
                return Tensor._make(outs[0])
            return _unflatten(entry.out_spec, [Tensor._make(a) for a in outs])
        n = entry.n_user_outputs
        n_mut = len(entry.mutated)
        n_grad = entry.n_grads
        user, muts = outs[:n], outs[n:n + n_mut]
        grads, saved = outs[n + n_mut:n + n_mut + n_grad], list(outs[n + n_mut + n_grad:])
        # an updated graph input is this call's tensor (an argument, or a module attribute read by
        # name), not the one the trace saw: a later call with another tensor updates that one
        mutated = [t if i is None else inputs[i] for t, i in zip(entry.mutated, entry.mutated_inputs)]
        for t, new, i in zip(mutated, muts, entry.mutated_inputs):
            if i is None or new is not arrays[i] or arrays[i] is not t._data:  # else: computed in place
                # a 0-dim CPU buffer updated by device code (a numpy scalar, an optimizer group's
                # one step count written to each parameter's, is on the host already)
                if type(new) is not type(t._data) and not isinstance(new, np.generic):
                    new = array_to(new, t.device)
                t._data[...] = new.astype(t._data.dtype, copy=False)
            t._version_counter.value += 1  # (the counter itself: ._version makes an int view of it)
        new_grads = iter(grads)
        written = []  # the .grad tensors, one per gradient output (what a returned .grad aliases)
        for t, how in entry.grad_writes:
            if how == "none":
                t._grad = None
                continue
            if how == "inplace" and t._grad is not None:  # .grad updated in place keeps its tensor
                t._grad._data[...] = next(new_grads)
                t._grad._version_counter.value += 1
            else:
                # as eagerly, a gradient is laid out like its parameter (generated code may
                # return a transposed view)
                t._grad = Tensor._make(xp.ascontiguousarray(next(new_grads)))
            written.append(t._grad)
        results = _user_outputs(user, entry.out_aliases, inputs, mutated + written) if entry.keep else \
            [Tensor._make(a) for a in user]
        for d, key, store_spec in entry.stores:  # what the call stored on modules and globals, as eagerly
            d[key] = _unflatten(store_spec, results)
        if entry.backward is not None:
            edges = tuple([gradient_edge(inputs[i]) for i in entry.wrt])
            meta = [(user[i].shape, user[i].dtype) for i in entry.diff_outputs]
            # saved values that are the inputs' own arrays (or the returned outputs' arrays) are not
            # copied: check their versions at backward, as eager autograd does for saved tensors
            watched = []
            if saved:
                by_array = {id(a): t for a, t in zip(arrays, inputs)}
                by_array.update((id(a), t) for a, t in zip(user, results))
                for a in saved:
                    t = by_array.get(id(a))
                    if t is not None:
                        watched.append((t, t._version_counter.value))
            node = CompiledBackward(entry, saved, edges, meta, watched)
            for k, i in enumerate(entry.diff_outputs):
                if entry.out_aliases[i] is None:  # views of inputs have their eager views' grad_fn
                    results[i].grad_fn, results[i]._output_nr = node, k
        return _unflatten(entry.out_spec, results)


def _output_aliases(g: Graph, n_user: int) -> list:
    """Per user output of the traced graph ``g``: None, or ``(source, index, views)`` where eager
    mode returns it as a view of another tensor: of graph input ``index`` (source ``"input"``) or
    of the value of output ``index`` (``"output"``: an input's new value after an in-place update,
    or an earlier output), through the view ops traced (reshape/permute/expand/slice records).
    Decided on the traced graph, before passes, so an op the passes remove (``x + 0``) is no view."""
    position = {id(v): i for i, v in enumerate(g.inputs)}
    owner: dict[int, int] = {}  # value -> the output that returns it plainly, updated inputs first
    for j in [*range(n_user, len(g.outputs)), *range(n_user)]:
        owner.setdefault(id(g.outputs[j]), j)
    aliases: list = []
    for i, v in enumerate(g.outputs[:n_user]):
        views = []
        while v.producer is not None and v.producer.prim.is_view:
            views.append((v.producer.prim.name, dict(v.producer.attrs)))
            v = v.producer.inputs[0]
        views.reverse()
        if id(v) in position:
            aliases.append(("input", position[id(v)], views))
        elif owner.get(id(v), i) != i:
            aliases.append(("output", owner[id(v)], views))
        else:
            aliases.append(None)
    return aliases


def _made_while_tracing(aliases: list, n_leaves: int, entry: Entry, fn) -> list:
    """``aliases`` with each returned lifted tensor that no module, global or closure of ``fn``
    holds marked ``"fresh"``: a tensor the function made (``torch.ones(4)``, traced as a constant),
    which eager mode makes anew at every call, so each call returns a new copy (returning the
    constant itself would let a caller's in-place change reach every later call)."""
    cells = {id(c.cell_contents) for c in (getattr(fn, "__closure__", None) or ())
             if c.cell_contents is not None} if any(aliases) else set()
    out = []
    for a in aliases:
        if a is not None and a[0] == "input" and a[1] >= n_leaves:
            j = a[1] - n_leaves
            t = entry.lifted[j]
            if entry.lifted_slots[j] is None and not isinstance(t, Slot) and not getattr(t, "is_param", False) \
                    and id(t) not in cells:
                a = ("fresh", *a[1:])
        out.append(a)
    return out


def _user_outputs(user: tuple, aliases: list, inputs: list, mutated: list) -> list:
    """The user outputs as tensors: new tensors over the arrays the generated code returned, except
    aliases (see ``_output_aliases``), made with eager view ops from the tensor they alias, so they
    share its memory, version counter and ``_base`` as in eager mode (and as PyTorch's compiled
    functions return views of their inputs). ``mutated``: the tensors of the outputs after the
    user's, in order: the updated inputs, then the ``.grad`` tensors written (a returned ``.grad``)."""
    n = len(user)
    results: list = [Tensor._make(a) if alias is None else None for a, alias in zip(user, aliases)]
    for i, alias in enumerate(aliases):
        if alias is not None:
            source, k, views = alias
            t = inputs[k] if source != "output" else results[k] if k < n else mutated[k - n]
            for prim, attrs in views:
                t = PRIMITIVES[prim](t, **attrs)
            results[i] = Tensor._make(t._data.copy(), t.requires_grad) if source == "fresh" else t
    return results


_MISSING = py_state.MISSING
_GUARDED_SCALARS = (bool, int, float, str, type(None))


def _leaked_symbolic(modules: list, fn_globals) -> str | None:
    """Where a symbolic tensor was stored during tracing (a module attribute or a global), if anywhere."""
    from .tracing import SymbolicTensor
    for m in modules:
        for key, v in m.__dict__.items():
            if isinstance(v, SymbolicTensor):
                return f"{type(m).__name__}.{key}"
        for key, v in m.__dict__.get("_parameters", {}).items():
            if isinstance(v, SymbolicTensor):
                return f"{type(m).__name__}.{key}"
    if isinstance(fn_globals, dict):
        for key, v in fn_globals.items():
            if isinstance(v, SymbolicTensor):
                return f"global {key}"
    return None


def _describe(v) -> str:
    """A guarded Python value in a recompile reason: a scalar by its repr, anything else by its type."""
    if v is _MISSING:
        return "unset"
    return repr(v) if type(v) in _GUARDED_SCALARS else f"a {type(v).__name__}"


def _lifted_store(label: str, key: str, value, out_leaves: list):
    """A value the traced code bound to ``key`` (a module attribute or a global): its tensors join
    the graph's outputs (``out_leaves``); returns the spec that rebuilds it from them per call."""
    if value is py_state.MISSING:
        raise GraphBreak(f"the function deletes {label}.{key}; deleting attributes or globals is not traced")
    return _flatten(value, out_leaves)


def _guard_stores(entry: Entry, stores: list, lifted: list) -> list:
    """Guards on the values that names the traced code rebinds had before the call (the Python
    code may depend on them: ``if self.mask is None``), and the lifted list with a tensor such a
    name held read by name at each call (it is replaced by the write-back after every call, so
    reading it by identity would recompile each time)."""
    by_name: dict[int, Slot] = {}
    for label, d, key, old, _ in stores:
        where = f"{label}.{key}" if label != "global" else f"global {key}"
        if old is py_state.MISSING or type(old) in _GUARDED_SCALARS:
            entry.py_guards.append((where, d, key, old))
        elif isinstance(old, Tensor) and not old.requires_grad:
            by_name[id(old)] = AttrSlot(where, d, key, old)
            entry.guards.append(by_name[id(old)].stale)
        else:
            entry.guards.append(lambda d=d, key=key, old=old, where=where: None if d.get(key, _MISSING) is old
                                else f"{where} was rebound to another object")
    return [by_name.get(id(t), t) for t in lifted]


def _read_plain_attributes_by_name(entry: Entry, trace: Trace) -> None:
    """A tensor the function only reads from a plain module attribute or a global (not a parameter
    or buffer, not written in place, no gradient) is read by name at each call, guarded on its
    shape, dtype and device, instead of by identity. A module that builds such a tensor anew (the
    src_mask cache of PyTorch's Transformer example, rebuilt at each train()/eval() switch of
    sequence length) then finds the entry that fits it again, as PyTorch, which takes such
    tensors as graph inputs, does, instead of recompiling on each new object."""
    mutated = {id(t) for t, _ in trace.mutations.values()}
    for i, (t, slot) in enumerate(zip(entry.lifted, entry.lifted_slots)):
        if slot is None or isinstance(t, Slot) or t.requires_grad or id(t) in mutated:
            continue
        owner, d, key = slot
        if isinstance(owner, Module) and d is not owner.__dict__:  # its _parameters or _buffers
            continue
        where = f"global {key}" if isinstance(owner, str) else f"{type(owner).__name__}.{key}"
        entry.lifted[i] = AttrSlot(where, d, key, t)  # its stale() is checked with the lifted Slots
        entry.lifted_slots[i] = None


def _modules_reached(fn, fn_globals) -> list:
    """The modules a function reaches through its closure or the globals it names (a training step
    using ``model``), with their submodules: attributes it sets on them are watched while tracing."""
    found = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # a cell not yet assigned
            pass
    if isinstance(fn_globals, dict):
        found += [fn_globals.get(k) for k in _global_names(getattr(fn, "__code__", None))]
    return [sub for m in found if isinstance(m, Module) for sub in m.modules()]


def _global_names(code) -> set[str]:
    """Global names a function's code (and the lambdas/comprehensions inside it) may read."""
    names: set[str] = set()
    if code is not None:
        names.update(code.co_names)
        for c in code.co_consts:
            if hasattr(c, "co_names"):
                names |= _global_names(c)
    return names


def _user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning issued by the caller of this function to the
    innermost frame of user code (outside graphc), e.g. the line calling a compiled module."""
    from .tracing import _is_internal
    f, level = sys._getframe(2), 2  # level 1: the function calling warnings.warn
    while f is not None and _is_internal(f.f_code.co_filename):
        f, level = f.f_back, level + 1
    return level


def _input_array(arr, xp):
    """An input as the generated code takes it: C-contiguous, on the backend's device (a 0-dim
    CPU tensor read by device code is copied there)."""
    if not isinstance(arr, xp.ndarray):
        return xp.asarray(arr)
    return arr if arr.flags.c_contiguous else xp.ascontiguousarray(arr)


def _device_of(leaves: list, modules: list):
    """The device a function's traced tensors report: its tensor arguments' (a 0-dim CPU tensor
    only if nothing else decides), else its modules'."""
    for t in sorted(leaves, key=lambda t: t.ndim == 0 and t.device.type == "cpu"):
        return t.device
    for m in modules:
        for p in m.parameters():
            return p.device
    return None


def compile(model=None, *, backend: str = "inductor", fullgraph: bool = False, dump_dir: str | None = None,
            dynamic=None, mode=None, options=None, disable: bool = False):
    """Compile a function or an nn.Module's forward. Usable as ``@compile`` and ``@compile(...)``.

    ``backend``: ``"inductor"`` (PyTorch's default name) picks from the inputs' device: numpy
    code on cpu, Triton kernels on cuda; ``"numpy"`` or ``"triton"`` asks for one (``"triton"``
    on cpu tensors runs the kernels under Triton's interpreter, for debugging).

    ``dynamic``: ``None``/``False`` (shapes are specialized: each new input shape compiles its own
    graph, up to ``RECOMPILE_LIMIT`` recompiles); ``True`` (symbolic shapes) raises
    NotImplementedError. ``mode``: PyTorch's names are accepted ("default", "reduce-overhead",
    "max-autotune", "max-autotune-no-cudagraphs") and all compile the same way; ``options``: graphc
    has no inductor options, so any key raises (an empty dict is fine), as an unknown key does in
    PyTorch."""
    _check_settings(dynamic, mode, options)
    if model is None:
        return lambda m: compile(m, backend=backend, fullgraph=fullgraph, dump_dir=dump_dir, dynamic=dynamic,
                                 mode=mode, options=options, disable=disable)
    if backend not in ("numpy", "triton", "inductor", "eager"):
        raise ValueError(f"unknown backend {backend!r}; graphc has 'numpy' and 'triton'")
    if disable or backend == "eager":
        return model
    if isinstance(model, Module):
        return OptimizedModule(model, backend, fullgraph, dump_dir)
    name = getattr(model, "__name__", type(model).__name__)
    owner = getattr(model, "__self__", None)
    modules = list(owner.modules()) if isinstance(owner, Module) else []
    return compiled_for(model, backend, fullgraph, dump_dir, name, modules)


# Where a function or module keeps its CompiledFunctions, one per (backend, fullgraph, dump_dir):
# in its own __dict__, so that they live exactly as long as it does (Module.__getstate__ leaves it
# out of copies and pickles).
SHARED_ATTR = "_graphc_compiled"
_shared_lock = threading.Lock()


def compiled_for(target, backend: str, fullgraph: bool, dump_dir: str | None, name: str,
                 modules: list) -> CompiledFunction:
    """The CompiledFunction of ``target`` (a function or a Module) for these settings. As PyTorch
    keeps compiled code with the code it compiled, a second ``compile(model)`` (say, once per call
    of a train() function) reuses what the first one compiled instead of tracing again; every call
    still checks the entries' guards. Other callables (bound methods, callable objects) get their own."""
    if not isinstance(target, (Module, types.FunctionType)):
        return CompiledFunction(target, backend, fullgraph, dump_dir, name, modules)
    key = (backend, fullgraph, dump_dir)
    with _shared_lock:
        shared = target.__dict__.setdefault(SHARED_ATTR, {})
        cf = shared.get(key)
        if cf is None:
            cf = shared[key] = CompiledFunction(target, backend, fullgraph, dump_dir, name, modules)
        else:
            cf.modules = modules  # submodules added since: their training flags are guarded too
    return cf


MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _check_settings(dynamic, mode, options) -> None:
    """``compile``'s PyTorch settings graphc can't honour raise here, at the call, with PyTorch's
    errors where it has one; none is silently ignored."""
    if dynamic:
        raise NotImplementedError(
            "graphc.compile(dynamic=True) is not supported: graphc specializes every graph to its input "
            "shapes (no symbolic sizes). Use dynamic=None or dynamic=False: each new input shape then "
            f"compiles its own graph, up to {RECOMPILE_LIMIT} recompiles, after which new shapes run eagerly.")
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode is not None and mode not in MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(MODES)}")
    if options is not None:
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict, got {type(options).__name__}")
        if options:
            raise RuntimeError(f"Unexpected optimization option {next(iter(options))}, known options are []: "
                               "graphc.compile has no inductor options")


class OptimizedModule(Module):
    """What ``compile(module)`` returns (PyTorch's ``OptimizedModule``): a Module wrapping the
    original as ``_orig_mod``, so parameters, buffers and train()/eval() are the original's
    (``state_dict`` keys carry the ``_orig_mod.`` prefix, as in PyTorch); calls run the compiled
    forward, and other attributes are looked up on the original."""

    def __init__(self, module, backend: str, fullgraph: bool, dump_dir: str | None) -> None:
        super().__init__()
        self._orig_mod = module
        self.__dict__["_compiled"] = compiled_for(module, backend, fullgraph, dump_dir,
                                                  type(module).__name__, list(module.modules()))
        self.__dict__["training"] = module.training

    def forward(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["_orig_mod"], name)
