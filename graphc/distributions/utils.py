"""Helpers distributions share (as torch.distributions.utils)."""
from __future__ import annotations

import functools

import graphc

from .distribution import _broadcast_all, _clamp_probs

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits"]

broadcast_all, clamp_probs = _broadcast_all, _clamp_probs


def logits_to_probs(logits, is_binary: bool = False):
    return graphc.sigmoid(logits) if is_binary else graphc.softmax(logits, dim=-1)


def probs_to_logits(probs, is_binary: bool = False):
    ps = _clamp_probs(probs)
    return graphc.log(ps) - graphc.log1p(-ps) if is_binary else graphc.log(ps)


class lazy_property:  # noqa: N801  (PyTorch's name)
    """A property computed on first access and then stored on the instance."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        functools.update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value
