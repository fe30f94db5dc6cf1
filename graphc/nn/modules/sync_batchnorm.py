"""``SyncBatchNorm``: batch normalization over the whole batch of a data-parallel job, every rank's
share together (``torch.nn.SyncBatchNorm``)."""
from __future__ import annotations

from typing import Any

from ...autograd.function import Function
from ...autograd.grad_mode import no_grad
from ... import creation
from ...shape_ops import cat
from .module import Module
from .normalization import _BatchNorm
from ... import distributed as distributed



def _summed(parts: list, group: Any):
    """The concatenation of ``parts`` (1-D tensors), summed over the ranks, split back (in a traced
    training step, the sum is a collective node of its graph)."""
    flat = cat(parts).contiguous()
    distributed.all_reduce(flat, group=group)
    sizes = [p.shape[0] for p in parts]
    return flat.split(sizes)


class _SyncBatchNormFunction(Function):
    """Normalizes with the mean and variance of every rank's batch; the backward pass sums the
    two per-channel reductions it needs over the ranks, so each rank's input gradient is what one
    process would compute on the concatenated batch."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum, group):
        c = x.shape[1]
        dims = [0] + list(range(2, x.ndim))
        shape = (1, c) + (1,) * (x.ndim - 2)
        local_count = creation.full((1,), x.numel() // c, dtype=x.dtype, device=x.device)
        total, n = _summed([x.sum(dims), local_count], group)  # n: the whole batch's count, a tensor
        mean = total / n
        centered = x - mean.reshape(shape)
        (squares,) = _summed([(centered * centered).sum(dims)], group)
        var = squares / n
        invstd = (var + eps).rsqrt()
        xhat = centered * invstd.reshape(shape)
        y = xhat if weight is None else xhat * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        if running_mean is not None:
            with no_grad():
                running_mean.mul_(1 - momentum).add_(mean * momentum)
                running_var.mul_(1 - momentum).add_(var * (n / (n - 1)) * momentum)
        ctx.save_for_backward(xhat, invstd, weight, n)
        ctx.group, ctx.has_bias = group, bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        xhat, invstd, weight, n = ctx.saved_tensors
        c = xhat.shape[1]
        dims = [0] + list(range(2, xhat.ndim))
        shape = (1, c) + (1,) * (xhat.ndim - 2)
        sum_dy = dy.sum(dims)
        sum_dy_xhat = (dy * xhat).sum(dims)
        # the affine parameters' gradients stay local: DistributedDataParallel averages them
        dweight = sum_dy_xhat if weight is not None else None
        dbias = sum_dy if ctx.has_bias else None
        all_dy, all_dy_xhat = _summed([sum_dy, sum_dy_xhat], ctx.group)
        scale = invstd if weight is None else invstd * weight
        dx = (scale / n).reshape(shape) * (dy * n - all_dy.reshape(shape) - xhat * all_dy_xhat.reshape(shape))
        return dx, dweight, dbias, None, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """BatchNorm whose training-mode statistics are those of the whole batch across the ranks of
    ``process_group`` (the default group), so a data-parallel job normalizes as one process would
    on the concatenated batch. Outside a job of several processes, or in eval mode, it is BatchNorm.
    Accepts input of any rank from 2 up (N, C, ...)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        use_batch_stats = self.training or not self.track_running_stats
        sync = (use_batch_stats and distributed.is_initialized()
                and distributed.get_world_size(self.process_group) > 1)
        if not sync:
            return super().forward(input)
        momentum = self._count_batch()
        track = self.training and self.track_running_stats
        return _SyncBatchNormFunction.apply(input, self.weight, self.bias, self.running_mean if track else None,
                                            self.running_var if track else None, self.eps, momentum,
                                            self.process_group)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """``module`` with every BatchNorm*D inside replaced by a SyncBatchNorm holding the same
        parameters and statistics (``module`` itself when it is one)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group)
            if module.affine:
                with no_grad():
                    out.weight = module.weight
                    out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
