"""Autodiff: the VJP rule table (shared by eager autograd and the graph transformation)."""
from .rules import UNSUPPORTED, VJP, VJPRule, sum_to

__all__ = ["UNSUPPORTED", "VJP", "VJPRule", "sum_to"]
