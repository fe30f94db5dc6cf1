"""The Primitive record, the registry of all primitives, and ``bind``, the single dispatch point.

A primitive is declared once (in ``ir/prims.py``) with its type rule and numpy reference
semantics. Calling a primitive (``prims.mul(a, b)``) binds it: the operand with the highest
handler level decides what happens. Eager tensors compute now; IR values (while tracing) emit a
node. Rules written with primitives therefore work for eager autograd and for graph transforms.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from .dtypes import COMPLEX, INT, DType, float32, is_python_scalar

_PLAIN_NUMBERS = frozenset({bool, int, float})  # operands that are never complex


class TensorType(NamedTuple):
    shape: tuple[int, ...]
    dtype: DType

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Handler:
    """What a family of operand types does with a bound primitive. Higher level wins."""

    level = 0

    def apply(self, prim: "Primitive", args: tuple, attrs: dict) -> Any:  # pragma: no cover
        raise NotImplementedError


@dataclass(eq=False)
class Primitive:
    name: str
    infer: Callable[..., TensorType]
    impl: Callable[..., Any]
    # None: operands keep their dtypes; else a function of the operands giving the dtype every
    # tensor operand is cast to before ``impl`` runs (elementwise promotion).
    operand_dtype: Callable[..., DType | None] | None = None
    # Eager only: the numpy result may alias operand 0 (a view), so it shares its version counter.
    view: bool = False
    # Output depends on data values in a way no graph can express statically (e.g. nonzero).
    data_dependent: bool = False
    # Indices of operands that are never differentiated (integer indices, masks).
    nondiff_operands: tuple[int, ...] = ()
    # elementwise | reduction | movement | matmul | index | creation | window | random | scan |
    # linalg | fused | composite | other. Passes and backends read the facts below, not name sets.
    kind: str = "other"
    # False: the output is integer/bool-valued or piecewise constant, so no gradient flows.
    differentiable: bool = True
    # Cheap enough to recompute in backward instead of saving its result (None: elementwise and
    # movement ops are, others are not).
    cheap: bool | None = None
    # Its result is not a function of its operands alone (it communicates with other processes):
    # never evaluated at compile time, never merged with an identical node.
    effectful: bool = False
    # Accumulates (sums products, adds along an axis): float16/bfloat16 operands are computed in
    # float32 and the result rounded once to its declared dtype, as PyTorch's CPU kernels do
    # (numpy would round after every addition: a float16 sum of 4096 ones stops at 2048).
    accumulates: bool = False
    # A Python number operand meets float16/bfloat16 tensors in float32, the result rounded once:
    # PyTorch's CPU mul and div kernels read the scalar at float precision (``x * 1.7`` is not
    # ``x * bfloat16(1.7)``), while add, sub and comparisons round it to the tensor's type first.
    scalar_in_float32: bool = False
    # Takes complex operands (None: movement ops do, as they only move elements). Any other
    # primitive given one raises PyTorch's "not implemented for 'ComplexFloat'" from its type rule.
    complex_operands: bool | None = None
    # PyTorch's own error for a complex operand where it words it differently (exception class,
    # message); None: NotImplementedError('"<name>_cpu" not implemented for 'ComplexFloat'').
    complex_error: tuple[type, str] | None = None
    # Reads or makes a complex value whatever it is given (real/imag, make_complex, the FFTs):
    # backends and formats without a complex type (Triton, ONNX) refuse it.
    complex_only: bool = False
    # ``impl``'s result is not laid out in C order: given the result's rank, its dims from the
    # outermost to the innermost in memory (None: C order). The schedule then knows which views of
    # the result need no copy (unfold returns windows laid out as conv's matmul reads them).
    layout: Callable[[int], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if self.cheap is None:
            self.cheap = self.kind in ("elementwise", "movement")
        if self.complex_operands is None:
            self.complex_operands = self.kind == "movement"
        infer = self.infer

        def checked_infer(*args, **attrs):
            if not self.complex_operands:
                for a in args:
                    if type(a) in _PLAIN_NUMBERS:
                        continue
                    d = getattr(a, "dtype", None)
                    # a graphc dtype's category read directly (its is_complex is a property call)
                    if (d.category == COMPLEX if type(d) is DType else getattr(d, "is_complex", False)) \
                            or type(a) is complex:
                        if self.complex_error is not None:
                            raise self.complex_error[0](self.complex_error[1])
                        raise NotImplementedError(
                            f'"{self.name}_cpu" not implemented for '
                            f"'{d.scalar_name if d is not None else 'ComplexFloat'}'")
            return infer(*args, **attrs)
        self.infer = checked_infer

    @property
    def elementwise(self) -> bool:
        """Each output element depends only on the operand elements at the same (broadcast)
        position: fusible into pointwise kernels, and may write over a dying operand."""
        return self.kind == "elementwise"

    @property
    def reduction(self) -> bool:
        return self.kind == "reduction"

    @property
    def is_view(self) -> bool:
        """A movement op whose result is its first operand's memory seen another way (reshape,
        permute, expand, slice): backends turn it into indexing, never into a copy."""
        return self.view and self.kind == "movement"

    # __call__ is ``bind`` itself (set below): calling a primitive binds it

    def operand_casts(self, args: tuple, attrs: dict) -> list:
        """Per operand, the dtype it is cast to before ``impl`` runs (None: unchanged). Index
        operands keep their integer dtype. Eager mode, the interpreter and codegen all use this."""
        if self.operand_dtype is None:
            if not self.accumulates:
                return [None] * len(args)
            to = None
        else:
            to = self.operand_dtype(*args, **attrs)
            if to is None:
                return [None] * len(args)
        wide = self.accumulates or (self.scalar_in_float32 and any(is_python_scalar(a) for a in args))
        casts = []
        for i, a in enumerate(args):
            c = None
            if i not in self.nondiff_operands and hasattr(a, "dtype"):
                c = to or a.dtype
                if wide and c.is_low_precision:
                    c = float32
                if c is a.dtype:
                    c = None
            casts.append(c)
        return casts

    def result_requires_grad(self, operands_require_grad, out_dtype: DType) -> bool:
        """Whether the result carries a gradient, given which operands do (grad mode aside):
        through a differentiable primitive, to a floating-point result, from an operand that is
        not an index. Eager autograd, tracing and the autodiff pass all ask this."""
        return (self.differentiable and out_dtype.is_inexact
                and any(r and i not in self.nondiff_operands for i, r in enumerate(operands_require_grad)))

    def run(self, arrays: list, attrs: dict, casts: list | None, out_dtype):
        """Compute the primitive on arrays (numpy's or a device's): cast the operands as
        ``operand_casts`` says (None: no operand is cast), run ``impl``, and give the result its
        declared dtype (a list of results for a list of dtypes: a multi-output node). Eager mode
        and the reference interpreter compute through here; generated code fixes dtypes with
        ``as_dtype``."""
        if casts is not None:
            arrays = [a if c is None else a.astype(c.np, copy=False) for a, c in zip(arrays, casts)]
        try:
            out = self.impl(*arrays, **attrs)
        except OverflowError:
            # A Python int outside an integer tensor's range wraps around to it, as in PyTorch
            # (``int8_tensor + 1000``); numpy refuses it instead. A numpy scalar, so that device
            # libraries take it too.
            if isinstance(out_dtype, list) or out_dtype.category != INT:
                raise
            arrays = [np.asarray(a).astype(out_dtype.np)[()] if type(a) is int else a for a in arrays]
            out = self.impl(*arrays, **attrs)
        if isinstance(out_dtype, list):
            return [as_dtype(o, d.np) for o, d in zip(out, out_dtype)]
        if type(out) is np.ndarray and out.dtype is out_dtype.np:
            return out  # the common case, without as_dtype's checks
        return as_dtype(out, out_dtype.np)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def as_dtype(out, dtype: np.dtype):
    """A primitive's result as an array of ``dtype``: Python and numpy scalars (from reductions)
    become host arrays; device arrays stay on their device."""
    if isinstance(out, np.generic) or not hasattr(out, "__array_function__"):
        out = np.asarray(out)
    return out if out.dtype is dtype or out.dtype == dtype else out.astype(dtype, copy=False)


PRIMITIVES: dict[str, Primitive] = {}


def register(prim: Primitive) -> Primitive:
    if prim.name in PRIMITIVES:
        raise ValueError(f"primitive {prim.name!r} declared twice")
    PRIMITIVES[prim.name] = prim
    return prim


# Dispatch state. The base handler (eager mode) is process-wide and set once at import; handlers
# pushed on top of it (a trace, a graph being built) belong to the thread that pushed them, so one
# thread tracing never changes what ops do in another.
_base_handler: Handler | None = None


class AlteredThreads:
    """How many threads have per-thread state that differs from its defaults, kept exact under a
    lock: each change of the calling thread's state reports ``changed(was_altered, is_altered)``.
    While the count is 0 no thread is altered, the calling one included, so a hot path (every
    eager op) may take the defaults without reading its thread-local state, which costs a few
    hundred instructions a read: a tenth of a small op's whole dispatch. A thread that ends
    altered keeps the count up, which only costs those reads again."""

    __slots__ = ("count", "_lock")

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def changed(self, was: bool, now: bool) -> None:
        if was != now:
            with self._lock:
                self.count += 1 if now else -1


class _ThreadState(threading.local):
    """This thread's pushed handlers, innermost last (each thread starts with none), and its
    operand policy (see ``set_operand_policy``)."""

    def __init__(self) -> None:
        self.stack: list[Handler] = []
        self.policy: Callable | None = None


_local = _ThreadState()
# threads that have pushed a handler or set an operand policy: while none has, bind uses the base
# handler as it is
_dispatching_threads = AlteredThreads()

# Operand types that never outrank the handler bind starts from: Python numbers and None (they
# have no handler). bind skips asking them for one.
_NO_HANDLER_TYPES: frozenset[type] = frozenset({int, float, bool, complex, type(None)})
# Types registered with ``base_level_operand_type`` (eager tensors): their handler is the base
# handler unless an instance carries its own in its ``__dict__`` (a forward-AD dual tensor), which
# a dict lookup answers (cheaper than getattr's search of the class for a missing attribute)
_BASE_LEVEL_TYPES: set[type] = set()
# The operand types bind need not ask for a handler: those above, and the base-level types for as
# long as no instance of one has carried its own handler (``instances_carry_handlers``), which
# saves a dict lookup per tensor operand of every op.
_SKIP_TYPES: frozenset[type] = _NO_HANDLER_TYPES


def base_level_operand_type(cls: type) -> None:
    """Instances of exactly ``cls`` (not subclasses) have the base handler as ``_graphc_handler``,
    unless one sets its own in its ``__dict__`` (it calls ``instances_carry_handlers`` first)."""
    global _SKIP_TYPES
    _BASE_LEVEL_TYPES.add(cls)
    if not _instance_handlers:
        _SKIP_TYPES = _NO_HANDLER_TYPES | _BASE_LEVEL_TYPES


_instance_handlers = False  # some instance of a base-level type has carried its own handler


def instances_carry_handlers() -> None:
    """An instance of a base-level type is about to carry its own handler: from now on bind asks
    every such instance (process-wide and for good: the instance may reach any thread)."""
    global _SKIP_TYPES, _instance_handlers
    _instance_handlers = True
    _SKIP_TYPES = _NO_HANDLER_TYPES


def set_base_handler(h: Handler) -> None:
    """The handler used when this thread has pushed none (eager mode)."""
    global _base_handler
    _base_handler = h


def _altered(state: _ThreadState) -> bool:
    return bool(state.stack) or state.policy is not None


def push_handler(h: Handler) -> None:
    """Make ``h`` this thread's innermost handler: it sees every op bound in this thread, also
    operand-free ones (creation ops like ``full``)."""
    state = _local
    was = _altered(state)
    state.stack.append(h)
    _dispatching_threads.changed(was, True)


def pop_handler(h: Handler) -> None:
    state = _local
    stack = state.stack
    if not stack or stack[-1] is not h:
        raise RuntimeError("dispatch handlers must be popped in the order they were pushed")
    stack.pop()
    _dispatching_threads.changed(True, _altered(state))


def set_operand_policy(policy: Callable | None) -> Callable | None:
    """Make ``policy(op_name, args, handler)`` rewrite the operands of every op this thread binds
    (autocast casts them; see ``graphc.amp``) before ``handler`` runs it; None: no rewriting.
    Returns the policy it replaces, for the caller to restore."""
    state = _local
    was = _altered(state)
    old, state.policy = state.policy, policy
    _dispatching_threads.changed(was, _altered(state))
    return old


def threads_dispatching() -> bool:
    """Whether some thread has pushed a handler or set an operand policy. While none has, every
    thread's handler is the base handler and no thread autocasts (``graphc.compile``'s call fast
    path relies on it)."""
    return _dispatching_threads.count != 0


def operand_policy() -> Callable | None:
    """This thread's operand policy (None: operands are bound as they are)."""
    return _local.policy


@contextlib.contextmanager
def no_operand_policy() -> Iterator[None]:
    """Operands are bound as they are inside (an op's own parts, backward rules)."""
    old = set_operand_policy(None)
    try:
        yield
    finally:
        set_operand_policy(old)


def current_handler() -> Handler | None:
    """This thread's innermost handler (the base handler when it pushed none)."""
    stack = _local.stack
    if stack:
        return stack[-1]
    return _base_handler


def only_base_handler(t) -> bool:
    """Whether ``bind(prim, t, **attrs)`` (``t`` the only operand that may carry a handler) goes
    to the base handler: no thread has pushed a handler or set an operand policy, and ``t`` is
    of a type that carries none. A hot path that checked it may call the base handler's
    ``apply`` itself (``x[i]``, ``x.sum()``; operators and unary functions check it inline, for
    two operands too, saving a call)."""
    return not _dispatching_threads.count and type(t) in _SKIP_TYPES


def bind(prim: Primitive, *args, **attrs):
    # The innermost active handler (e.g. a trace) sees every op, even on concrete tensors, so
    # that what they compute is recorded rather than frozen; operands may outrank it.
    if _dispatching_threads.count:  # this thread may have pushed a handler or set a policy
        state = _local
        stack = state.stack
        best = stack[-1] if stack else _base_handler
        policy = state.policy
    else:
        best, policy = _base_handler, None
    for a in args:
        t = type(a)
        if t in _SKIP_TYPES:
            continue
        h = a.__dict__.get("_graphc_handler") if t in _BASE_LEVEL_TYPES else getattr(a, "_graphc_handler", None)
        if h is not None and h is not best and (best is None or h.level > best.level):
            best = h
    if best is None:
        raise TypeError(f"{prim.name}: no tensor operand and no active handler")
    if policy is not None:
        args = policy(prim.name, args, best)
    return best.apply(prim, args, attrs)


Primitive.__call__ = bind
