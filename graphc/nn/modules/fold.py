"""The names PyTorch keeps in torch.nn.modules.fold (graphc defines them in pooling.py)."""
from .pooling import Fold, Unfold

__all__ = ["Fold", "Unfold"]
