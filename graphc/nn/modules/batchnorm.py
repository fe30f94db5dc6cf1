"""The names PyTorch keeps in torch.nn.modules.batchnorm (graphc defines them in normalization.py)."""
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
