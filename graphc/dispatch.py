"""Per-thread dispatch of the frontend events that are not primitives.

``bind`` (``graphc.ir.primitive``) hands each op to this thread's innermost handler: the eager
handler, or the trace handler while this thread runs ``graphc.compile``'s tracer. A few frontend
events are not primitives: a module is called, Python reads a tensor's values, ``.grad`` is
read or set, a tensor is written in place, random numbers are drawn, a composite op runs, a custom
autograd.Function is applied, a compiled function is called. The same handler decides them, through the methods below: the eager handler
gives them their plain meaning, the trace handler records them or breaks the graph. Frontend code
asks ``current()`` what to do; it never asks whether a trace is active, and nothing patches shared
classes, so a thread tracing never changes what another thread computes.
"""
from __future__ import annotations

from typing import Any

from graphc.ir.primitive import Handler, current_handler


class FrontendHandler(Handler):
    """The eager meaning of each event; ``TraceHandler`` overrides them."""

    # In-place writes become new values of the written tensor (as in the IR) instead of writes
    # into its memory.
    functional = False

    def module_called(self, module: Any) -> Any:
        """``module(...)`` is about to run its forward. A handler that wants to see its result
        returns a mark, handed back to ``module_returned``; None: it does not."""

    def module_returned(self, mark: Any, out: Any) -> None:
        """The module call that ``module_called`` marked returned ``out``."""

    def reading_values(self, tensor: Any, what: str) -> None:
        """Python is about to read ``tensor``'s values (``what``: ``.item()``, ``bool(tensor)``, …)."""

    def get_grad(self, tensor: Any) -> Any:
        """``tensor.grad``."""
        return tensor._read_grad()

    def set_grad(self, tensor: Any, value: Any) -> None:
        """``tensor.grad = value`` (None: ``del tensor.grad`` too)."""
        tensor._write_grad(value)

    def write(self, tensor: Any, result: Any) -> Any:
        """A functional handler's in-place write of ``result`` into ``tensor`` (returns ``tensor``)."""
        raise NotImplementedError(f"{type(self).__name__} writes into memory")

    def hyperparameter(self, read: Any, name: str, key: tuple) -> Any:
        """A functional handler's view of a number ``read()`` gives (an optimizer hyperparameter
        named ``name``, told apart by ``key``): a tensor read at every call."""
        raise NotImplementedError(f"{type(self).__name__} reads hyperparameters as numbers")

    def guard(self, check: Any) -> None:
        """Python state the traced code depends on: ``check()`` says why it no longer holds (a
        string) or None. Eagerly nothing is traced, so nothing needs guarding."""

    def eager_only(self, reason: str) -> None:
        """Code that must run eagerly (it computes on tensors' values in Python) is about to run."""

    def collective(self, name: str, run: Any, traced: Any) -> Any:
        """A torch.distributed collective: eagerly ``run()``; a trace records ``traced()`` (its
        graph form), or breaks the graph where it has none (``traced`` None)."""
        return run()

    def needs_backward_inside(self, reason: str) -> None:
        """What is being traced only works if the same traced function also runs backward()
        (else: ``reason``, a graph break). Eagerly there is nothing to check."""

    def random(self, kind: str, shape: tuple, dtype: Any) -> Any:
        """Random numbers made as ops (a tensor), or None: draw them from a generator now."""
        return None

    def drawing_random(self) -> None:
        """Numbers are about to be drawn from a generator on the host."""

    def composite(self, name: str, args: tuple, kwargs: dict) -> Any:
        """A composite op as one node (a tensor), or None: run its decomposition now."""
        return None

    def custom_function(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        """``cls.apply(*args, **kwargs)`` of a custom ``autograd.Function``."""
        from .autograd.function import apply_eagerly
        return apply_eagerly(cls, args, kwargs)

    def call_compiled(self, compiled: Any, args: tuple, kwargs: dict) -> Any:
        """Call a ``graphc.compile``d function."""
        return compiled.call_compiled(args, kwargs)


def current() -> FrontendHandler:
    """This thread's innermost frontend handler (eager when it is not tracing)."""
    h = current_handler()
    if not isinstance(h, FrontendHandler):  # a graph being built (ir.graph.building) is not one
        raise RuntimeError(f"frontend operation inside {type(h).__name__}; use primitives there")
    return h
