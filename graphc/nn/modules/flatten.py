"""The names PyTorch keeps in torch.nn.modules.flatten (graphc defines them in linear.py)."""
from .linear import Flatten, Unflatten

__all__ = ["Flatten", "Unflatten"]
