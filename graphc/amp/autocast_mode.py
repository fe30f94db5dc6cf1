"""``autocast``: ops run in a lower-precision dtype or in float32 as PyTorch's autocast lists say.

The state is per thread, as in PyTorch: each thread has, per device type, whether autocast is on
and its dtype, whether the weight-cast cache is on, how deep the contexts are nested, and the
cache. While autocast is on for some device, this thread's operand policy (``ir.primitive``'s
``set_operand_policy``) is ``_cast_operands``: the one dispatch point, ``bind``, and the call of
a composite hand it every op's operands, and it casts them by the op's rule in
``graphc.amp.rules``. The casts are bound like any op, so eagerly they compute (and autograd casts
the gradients back to the operands' dtypes), and while tracing they become ``cast`` nodes.

An op's own parts (a composite's decomposition, autograd's backward rules, graph passes) are not
autocast: autocast applies to the op as the user called it, and gradients flow back in the
dtypes the forward used.
"""
from __future__ import annotations

import functools
import threading
import warnings
from typing import Any, Callable

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.primitive import operand_policy, set_operand_policy

from ..autograd import grad_mode
from ..dispatch import FrontendHandler
from ..tensors import EAGER, Tensor
from .rules import AUTOCAST_RULES, FP32, LOWER, PROMOTE, UNSAFE

DEVICE_TYPES = ("cpu", "cuda")


def _lower_dtypes() -> tuple:
    """The dtypes autocast may run ops in."""
    return (dt.float16, dt.bfloat16)


def _default_dtype(device_type: str):
    # PyTorch's defaults: bfloat16 on the CPU, float16 on cuda
    return dt.bfloat16 if device_type == "cpu" else dt.float16


class _State(threading.local):
    """This thread's autocast state (a new thread starts with autocast off and the defaults)."""

    def __init__(self) -> None:
        self.enabled = {d: False for d in DEVICE_TYPES}
        self.dtype = {d: _default_dtype(d) for d in DEVICE_TYPES}
        self.cache_enabled = True
        self.nesting = 0
        # (id(leaf), dtype, grad mode) -> (leaf, its version when cast, the cast): a leaf
        # parameter is cast once per autocast region, not once per use
        self.cache: dict[tuple, tuple] = {}


_state = _State()


def _check_device_type(device_type: str) -> None:
    if device_type not in DEVICE_TYPES:
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """``torch.is_autocast_enabled``: without an argument, whether cuda autocast is on."""
    if device_type is None:
        device_type = "cuda"
    _check_device_type(device_type)
    return _state.enabled[device_type]


def set_autocast_enabled(device_type: str, enabled: bool) -> None:
    _check_device_type(device_type)
    _state.enabled[device_type] = bool(enabled)
    _install()


def get_autocast_dtype(device_type: str):
    _check_device_type(device_type)
    return _state.dtype[device_type]


def set_autocast_dtype(device_type: str, dtype) -> None:
    _check_device_type(device_type)
    _state.dtype[device_type] = dtype


def is_autocast_available(device_type: str) -> bool:
    """Whether graphc's autocast runs on ``device_type`` ("cpu" and "cuda"); a string that names no
    device type raises, as in PyTorch."""
    from ..device import device
    device(device_type)  # PyTorch's error for an unknown device type
    return device_type in DEVICE_TYPES


def autocast_increment_nesting() -> int:
    """One autocast region more on this thread; the new depth (PyTorch's low-level counter that
    ``autocast.__enter__`` keeps; the weight-cast cache lives until the outermost region ends)."""
    _state.nesting += 1
    return _state.nesting


def autocast_decrement_nesting() -> int:
    _state.nesting -= 1
    return _state.nesting


def is_autocast_cache_enabled() -> bool:
    return _state.cache_enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    _state.cache_enabled = bool(enabled)


def clear_autocast_cache() -> None:
    _state.cache.clear()


def autocast_state() -> tuple:
    """This thread's autocast state as compiled code depends on it (a guard of
    ``graphc.compile``): per enabled device type, its dtype; () when autocast is off."""
    if operand_policy() is not _cast_operands:
        return ()
    return tuple((d, _state.dtype[d].name) for d in DEVICE_TYPES if _state.enabled[d])


def _install() -> None:
    """The operand policy follows the state: autocast on for some device type or not."""
    on = any(_state.enabled.values())
    current = operand_policy()
    if on and current is None:
        set_operand_policy(_cast_operands)
    elif not on and current is _cast_operands:
        set_operand_policy(None)


# ---- the policy ---------------------------------------------------------------------------------

def _eligible(a) -> bool:
    return isinstance(a, Tensor) and a.dtype.is_floating_point and a.dtype is not dt.float64


def _cast_operands(op: str, args: tuple, handler) -> tuple:
    """``args`` of ``op`` as autocast runs it (see the module docstring)."""
    rule = AUTOCAST_RULES.get(op)
    if rule is None or not isinstance(handler, FrontendHandler):
        return args  # graphs being built by passes are not user ops
    first = next((a for a in args if isinstance(a, Tensor)), None)
    if first is None:
        return args
    device_type = first.device.type
    if not _state.enabled.get(device_type, False):
        return args
    kind = rule[DEVICE_TYPES.index(device_type)]
    if callable(kind):
        kind = kind(args)
    if kind is None:
        return args
    if kind is UNSAFE:
        raise RuntimeError(
            "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
            "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
            "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
            "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
            "safe to autocast.")
    if kind is LOWER:
        to = _state.dtype[device_type]
    elif kind is FP32:
        to = dt.float32
    else:
        assert kind is PROMOTE, kind
        to = None
        for a in args:
            if _eligible(a):
                to = a.dtype if to is None else dt.promote_types(to, a.dtype)
    if to is None:
        return args
    return tuple(_cast(a, to, handler) if _eligible(a) and a.dtype is not to else a for a in args)


def _cast(a: Tensor, to, handler) -> Tensor:
    """``a`` cast to ``to``, through ``handler`` (a traced cast is a node). Eagerly, a leaf that
    requires grad (a parameter) cast to the lower dtype is cast once per autocast region."""
    cacheable = (handler is EAGER and _state.cache_enabled and a.dtype is dt.float32 and to is not dt.float32
                 and a.requires_grad and a.is_leaf and a._base is None)
    if not cacheable:
        return handler.apply(P.cast, (a,), {"dtype": to})
    key = (id(a), to, grad_mode.is_grad_enabled())
    hit = _state.cache.get(key)
    version = a._version_counter.value
    if hit is not None and hit[0] is a and hit[1] == version:
        return hit[2]
    out = handler.apply(P.cast, (a,), {"dtype": to})
    _state.cache[key] = (a, version, out)
    return out


# ---- the context manager ------------------------------------------------------------------------

class autocast:
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``: a context
    manager (or decorator) in which ops follow PyTorch's autocast lists for ``device_type``."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        _check_device_type(device_type)
        self.device = device_type
        self.fast_dtype = get_autocast_dtype(device_type) if dtype is None else dtype
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else bool(cache_enabled)
        self._args = (device_type, dtype, enabled, cache_enabled)
        enabled = bool(enabled)
        if enabled and device_type == "cuda":
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.", stacklevel=2)
                enabled = False
        if enabled and self.fast_dtype not in _lower_dtypes():
            if device_type == "cpu":
                warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                              "CPU Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.",
                              stacklevel=2)
            else:
                warnings.warn("In CUDA autocast, but the target dtype is not supported. Disabling autocast.\n"
                              "CUDA Autocast only supports dtypes of torch.float16 and torch.bfloat16 currently.",
                              stacklevel=2)
            enabled = False
        self._enabled = enabled
        self._saved: list[tuple] = []  # one entry per active __enter__ (a context may be re-entered)

    def __enter__(self) -> "autocast":
        s = _state
        self._saved.append((s.enabled[self.device], s.dtype[self.device], s.cache_enabled, operand_policy()))
        s.enabled[self.device] = self._enabled
        s.dtype[self.device] = self.fast_dtype
        s.cache_enabled = self._cache_enabled
        s.nesting += 1
        _install()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> bool:
        s = _state
        s.nesting -= 1
        if s.nesting == 0:
            s.cache.clear()  # the weight casts live as long as the outermost region
        # the policy as it was (not recomputed: a region inside one that suspends autocast, such
        # as backward, must leave it suspended)
        s.enabled[self.device], s.dtype[self.device], s.cache_enabled, policy = self._saved.pop()
        set_operand_policy(policy)
        return False

    def __call__(self, func: Callable) -> Callable:
        args = self._args

        @functools.wraps(func)
        def decorate_autocast(*a: Any, **k: Any) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the decorator's construction warned already
                ctx = autocast(*args)
            with ctx:
                return func(*a, **k)
        return decorate_autocast

    def __repr__(self) -> str:
        return (f"graphc.autocast(device_type={self.device!r}, dtype={self.fast_dtype}, enabled={self._enabled}, "
                f"cache_enabled={self._cache_enabled})")


# ---- custom autograd functions ------------------------------------------------------------------

def _cast_inputs(value: Any, to) -> Any:
    """``value`` with its eligible tensors (also inside lists, tuples and dicts) cast to ``to``."""
    if _eligible(value):
        return value.to(to)
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_inputs(v, to) for v in value)
    if isinstance(value, dict):
        return {k: _cast_inputs(v, to) for k, v in value.items()}
    return value


def custom_fwd(fwd: Callable | None = None, *, device_type: str, cast_inputs=None) -> Callable:
    """``torch.amp.custom_fwd``: decorates a custom ``autograd.Function``'s ``forward``. With
    ``cast_inputs``, inside an autocast region its floating-point tensor inputs are cast to that
    dtype and it runs with autocast off; the matching ``custom_bwd`` then runs ``backward`` with
    the autocast state ``forward`` ran in."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args: Any, **kwargs: Any) -> Any:
        ctx = args[0]
        ctx._dtype = get_autocast_dtype(device_type)
        enabled = is_autocast_enabled(device_type) and operand_policy() is _cast_operands
        if cast_inputs is None:
            ctx._fwd_used_autocast = enabled
            return fwd(*args, **kwargs)
        ctx._fwd_used_autocast = False
        if not enabled:
            return fwd(*args, **kwargs)
        with autocast(device_type, enabled=False):
            return fwd(*_cast_inputs(args, cast_inputs), **_cast_inputs(kwargs, cast_inputs))
    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Callable:
    """``torch.amp.custom_bwd``: ``backward`` runs in the autocast state its ``custom_fwd``
    forward ran in."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args: Any, **kwargs: Any) -> Any:
        ctx = args[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (cuda's "not available" warning was given in forward)
            ctx_autocast = autocast(device_type, dtype=ctx._dtype, enabled=ctx._fwd_used_autocast)
        with ctx_autocast:
            return bwd(*args, **kwargs)
    return decorate_bwd
