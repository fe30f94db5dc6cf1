"""The names PyTorch keeps in torch.nn.modules.batchnorm (graphc defines the plain ones in
normalization.py and sync_batchnorm.py) and the lazy BatchNorms, whose ``num_features`` comes from
the first input's ``shape[1]``."""
from __future__ import annotations

from ... import creation
from ...autograd.grad_mode import no_grad
from graphc.ir.dtypes import int64
from ..parameter import UninitializedBuffer, UninitializedParameter
from .lazy import LazyModuleMixin
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .sync_batchnorm import SyncBatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d", "LazyBatchNorm2d",
           "LazyBatchNorm3d"]


class _LazyNormBase(LazyModuleMixin):
    """Shared by the lazy BatchNorms and InstanceNorms (as PyTorch's): affine parameters and running
    statistics are uninitialized until the first forward."""

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__(0, eps, momentum, False, False, device, dtype, bias=False)
        self.affine, self.track_running_stats = affine, track_running_stats

        def placeholder(cls):
            return cls(creation.empty(0, dtype=dtype, device=device))
        if affine:
            self.weight = placeholder(UninitializedParameter)
            if bias:
                self.bias = placeholder(UninitializedParameter)
        if track_running_stats:
            self.running_mean = placeholder(UninitializedBuffer)
            self.running_var = placeholder(UninitializedBuffer)
            self.num_batches_tracked = creation.tensor(0, dtype=int64, device=device)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        if not self.has_uninitialized_params():
            return
        self.num_features = input.shape[1]  # also for unbatched input, as PyTorch
        with no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(self, name)
                if t is not None:
                    t.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    cls_to_become = BatchNorm3d
