"""Grad-mode switches: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each works as a context manager and as a decorator, like PyTorch's.
"""
from __future__ import annotations

import functools
import inspect
import threading

from graphc.ir.primitive import AlteredThreads


class _State(threading.local):
    """Per-thread switches. The defaults are class attributes, so reading a switch a thread never
    set finds them without raising (a missing attribute of a thread-local costs an exception)."""

    enabled = True
    inference = False


_state = _State()
# Threads whose switches are not the defaults (grad on, inference off). While ``altered.count``
# is 0, every eager op takes the defaults without reading this thread's switches.
altered = AlteredThreads()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set(enabled: bool, inference: bool) -> None:
    """Set this thread's switches (all writes go through here, to keep ``altered`` exact)."""
    state = _state
    was = not state.enabled or state.inference
    state.enabled, state.inference = enabled, inference
    altered.changed(was, not enabled or inference)


def _set_enabled(mode: bool) -> None:
    _set(bool(mode), _state.inference)


def is_inference_mode_enabled() -> bool:
    return _state.inference


class _DecoratorContextManager:
    """Base for context managers that also decorate functions (and generator functions)."""

    def clone(self):
        return self.__class__()

    def __call__(self, fn):
        if inspect.isclass(fn):
            raise TypeError(f"{type(self).__name__} cannot decorate a class")
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)
                with self.clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    with self.clone():
                        try:
                            response = gen.send(request)
                        except StopIteration as e:
                            return e.value
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return wrapper


class _NoParamDecoratorContextManager(_DecoratorContextManager):
    """Also usable as a bare decorator: ``@no_grad`` as well as ``@no_grad()``."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamDecoratorContextManager):
    def __init__(self) -> None:
        self.prev = True

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _set_enabled(False)

    def __exit__(self, *exc) -> None:
        _set_enabled(self.prev)


class enable_grad(_NoParamDecoratorContextManager):
    def __init__(self) -> None:
        self.prev = True

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _set_enabled(True)

    def __exit__(self, *exc) -> None:
        _set_enabled(self.prev)


class set_grad_enabled(_DecoratorContextManager):
    """Sets grad mode at construction (so it also works as a plain function call)."""

    def __init__(self, mode: bool) -> None:
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set_enabled(self.mode)

    def __call__(self, fn):
        _set_enabled(self.prev)
        return super().__call__(fn)

    def __enter__(self) -> None:
        _set_enabled(self.mode)

    def __exit__(self, *exc) -> None:
        _set_enabled(self.prev)

    def clone(self):
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """Like no_grad; tensors made inside report ``is_inference()`` and can't join autograd later."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode
        self.prev = (True, False)

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            return cls()(mode)  # used as a bare decorator: @inference_mode
        return super().__new__(cls)

    def __enter__(self) -> None:
        self.prev = (is_grad_enabled(), is_inference_mode_enabled())
        # like c10::InferenceMode: enabling it disables grad mode, disabling it enables grad mode
        _set(not self.mode, bool(self.mode))

    def __exit__(self, *exc) -> None:
        _set(bool(self.prev[0]), bool(self.prev[1]))

    def clone(self):
        return self.__class__(self.mode)
