"""Autodiff: the VJP rule table (shared by eager autograd and the graph transformation)."""
from .rules import UNSUPPORTED, VJP, NoDerivative, VJPRule, sum_to

__all__ = ["UNSUPPORTED", "VJP", "NoDerivative", "VJPRule", "sum_to"]
