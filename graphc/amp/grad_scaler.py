"""``GradScaler``: loss scaling for float16 training, as ``torch.amp.GradScaler`` does it.

The loss is multiplied by a scale before ``backward()`` so that small gradients do not flush to
zero in float16; ``unscale_`` divides the gradients by it again and records whether any of them
holds inf/NaN; ``step`` skips the optimizer step when one does; ``update`` halves the scale after
such a step (``backoff_factor``) and doubles it (``growth_factor``) after ``growth_interval``
steps without one. The scale and the growth tracker are tensors, updated in place without
reading their values on the host, as PyTorch's are. Eagerly ``step`` reads one number (whether
to skip); inside ``graphc.compile`` it branches on nothing: the optimizer's writes keep their old
values where a gradient held inf/NaN (``writes_skipped_if``), so a whole scaled training step
(scale, backward, unscale_, step, update) is one graph.
"""
from __future__ import annotations

import warnings
from collections import abc, defaultdict
from enum import Enum
from typing import Any

import numpy as np

from graphc.ir import dtypes as dt

from ..autograd import grad_mode
from ..device import array_to
from ..dispatch import current as _dispatch
from ..optim._transaction import writes_skipped_if
from ..tensors import Tensor


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state() -> dict:
    return {"stage": OptState.READY, "found_inf": None, "handler": None}


_FIX = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."


class GradScaler:
    """``torch.amp.GradScaler(device="cuda", init_scale=2.**16, growth_factor=2.0,
    backoff_factor=0.5, growth_interval=2000, enabled=True)``."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = device
        self._enabled = enabled
        if device == "cuda" and enabled:
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                self._enabled = False
        if self._enabled:
            if not growth_factor > 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if not backoff_factor < 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale: Tensor | None = None          # made on the device of the first scaled output
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker: Tensor | None = None  # steps since the last inf/NaN
            self._per_optimizer_states: defaultdict = defaultdict(_refresh_per_optimizer_state)

    # ---- scaling --------------------------------------------------------------------------------

    def _check_scale_growth_tracker(self, funcname: str) -> tuple:
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + _FIX)
        if self._growth_tracker is None:
            raise AssertionError(f"Attempted {funcname} but _growth_tracker is None.  " + _FIX)
        return self._scale, self._growth_tracker

    def _lazy_init_scale_growth_tracker(self, device) -> None:
        # concrete tensors even inside a compiled function: they outlive the call (the trace
        # lifts them as inputs and writes their updates back)
        self._scale = Tensor._make(array_to(np.full((), self._init_scale, dtype=np.float32), device))
        self._growth_tracker = Tensor._make(array_to(np.full((), self._init_growth_tracker, dtype=np.int32), device))

    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or nested lists/tuples/maps of them) multiplied by the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init_scale_growth_tracker(outputs.device)
            return outputs * self._scale.to(device=outputs.device)

        def apply_scale(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init_scale_growth_tracker(val.device)
                return val * self._scale.to(device=val.device)
            if isinstance(val, abc.Iterable):
                scaled = map(apply_scale, val)
                return type(val)(scaled) if isinstance(val, (list, tuple)) else scaled
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")
        return apply_scale(outputs)

    def _unscale_grads_(self, optimizer, inv_scale: Tensor, found_inf: Tensor, allow_fp16: bool) -> Tensor:
        """Every gradient of ``optimizer`` multiplied by ``inv_scale`` in place; ``found_inf``
        becomes 1 if any of them holds inf or NaN (PyTorch's
        ``_amp_foreach_non_finite_check_and_unscale_``)."""
        from ..math_ops import isfinite
        with grad_mode.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    grad = param.grad
                    if grad is None:
                        continue
                    if not allow_fp16 and grad.dtype is dt.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    bad = (~isfinite(grad)).any().to(dt.float32)
                    found_inf = found_inf.maximum(bad.to(device=found_inf.device))
                    grad.mul_(inv_scale.to(device=grad.device))
        return found_inf

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale (in place), e.g. before clipping them."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        state = self._optimizer_state(optimizer)
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        from ..creation import zeros
        # the reciprocal in float64, rounded once, as PyTorch does
        inv_scale = self._scale.double().reciprocal().float()
        found_inf = zeros((), dtype=dt.float32, device=self._scale.device)
        state["found_inf"] = self._unscale_grads_(optimizer, inv_scale, found_inf, False)
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args: Any, **kwargs: Any) -> Any:
        """``optimizer.step(*args, **kwargs)`` unless a gradient holds inf/NaN (then the step is
        skipped: parameters and optimizer state stay as they are). Unscales first if
        ``unscale_`` was not called."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._optimizer_state(optimizer)
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if state["found_inf"] is None:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        retval = None
        if _dispatch().functional:
            # compiled: no branch on values; the step's writes keep the old values on inf/NaN
            with writes_skipped_if(state["found_inf"] > 0):
                retval = optimizer.step(*args, **kwargs)
        elif not state["found_inf"].item():
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Back the scale off if a step of this iteration found inf/NaN, else grow it every
        ``growth_interval`` steps; or set it to ``new_scale``."""
        if not self._enabled:
            return
        _scale, _growth_tracker = self._check_scale_growth_tracker("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                _scale.fill_(new_scale)
            else:
                reason = ("new_scale should be a float or a 1-element torch.cuda.FloatTensor or torch.FloatTensor "
                          "with requires_grad=False.")
                if not isinstance(new_scale, Tensor) or new_scale.numel() != 1 or new_scale.requires_grad \
                        or new_scale.device.type != _scale.device.type:
                    raise AssertionError(reason)
                _scale.copy_(new_scale.reshape(()))
        else:
            handler = _dispatch()
            found = [s["found_inf"] for s in self._per_optimizer_states.values()
                     if s["found_inf"] is not None and s["handler"] is handler]
            if not found:
                if any(s["found_inf"] is not None for s in self._per_optimizer_states.values()):
                    raise AssertionError("No inf checks were recorded prior to update(): unscale_/step ran inside "
                                         "a compiled function and update() outside it; call update() in the same "
                                         "function")
                raise AssertionError("No inf checks were recorded prior to update.")
            found_inf = found[0]
            for f in found[1:]:
                found_inf = found_inf + f.to(device=found_inf.device)
            self._update_scale(found_inf)
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def _optimizer_state(self, optimizer) -> dict:
        """This iteration's stage and inf check for ``optimizer``. An entry made by another
        handler (a compiled function's trace, which holds traced tensors) is not this one's."""
        state = self._per_optimizer_states[id(optimizer)]
        handler = _dispatch()
        if state["handler"] is not handler:
            state.update(_refresh_per_optimizer_state(), handler=handler)
        return state

    def _update_scale(self, found_inf: Tensor) -> None:
        """PyTorch's ``_amp_update_scale_``, without reading values on the host."""
        from ..math_ops import isfinite, where
        scale, tracker = self._scale, self._growth_tracker
        factors = (self._growth_factor, self._backoff_factor, self._growth_interval)
        # a compiled update has the factors in its code
        _dispatch().guard(lambda: None if (self._growth_factor, self._backoff_factor, self._growth_interval) == factors
                          else "the GradScaler's growth_factor, backoff_factor or growth_interval changed")
        with grad_mode.no_grad():
            inf = found_inf > 0
            grown = tracker + 1
            due = grown == self._growth_interval  # (PyTorch compares for equality too)
            larger = scale * self._growth_factor
            new_scale = where(inf, scale * self._backoff_factor,
                              where(due & isfinite(larger), larger, scale))
            new_tracker = where(inf | due, 0, grown).to(dt.int32)
            scale.copy_(new_scale)
            tracker.copy_(new_tracker)

    # ---- accessors --------------------------------------------------------------------------------

    def get_scale(self) -> float:
        if self._enabled:
            return float(self._init_scale) if self._scale is None else float(self._scale.item())
        return 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if self._enabled:
            return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker.item())
        return 0

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        if self._enabled:
            return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                    "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                    "_growth_tracker": self._get_growth_tracker()}
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale.fill_(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(state_dict["_growth_tracker"])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self._enabled:
            if len(self._per_optimizer_states) != 0:
                raise AssertionError("A GradScaler instance may only be pickled at the beginning of an iteration, "
                                     "or at the end after scaler.update().")
            # the scale and tracker travel as numbers (a pickled tensor would carry its device)
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale"] = None
            state["_growth_tracker"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
