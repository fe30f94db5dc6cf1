"""The names PyTorch keeps in torch.nn.modules.batchnorm (graphc defines them in normalization.py
and sync_batchnorm.py)."""
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .sync_batchnorm import SyncBatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"]
