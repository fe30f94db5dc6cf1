"""Autodiff: the VJP rule table (shared by eager autograd and the graph transformation)."""
from .rules import VJP, VJPRule, sum_to

__all__ = ["VJP", "VJPRule", "sum_to"]
