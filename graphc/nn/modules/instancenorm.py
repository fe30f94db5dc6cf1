"""The names PyTorch keeps in torch.nn.modules.instancenorm (graphc defines the plain ones in
normalization.py) and the lazy InstanceNorms (``affine`` and ``track_running_stats`` default to
True, unlike InstanceNorm's: PyTorch's lazy ones share LazyBatchNorm's signature)."""
from .batchnorm import _LazyNormBase
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d"]


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    cls_to_become = InstanceNorm3d
