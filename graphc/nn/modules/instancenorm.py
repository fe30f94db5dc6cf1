"""The names PyTorch keeps in torch.nn.modules.instancenorm (graphc defines them in normalization.py)."""
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]
