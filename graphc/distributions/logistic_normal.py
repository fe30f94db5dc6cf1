"""LogisticNormal(loc, scale): a Normal over K-1 coordinates pushed onto the K-simplex by
StickBreakingTransform: StickBreakingTransform().inv(X) ~ Normal(loc, scale). (PyTorch's docstring
says log(X / (1 - X.cumsum(-1)))[..., :-1]; that misses the transform's log(K - i) offsets.)"""
from __future__ import annotations

from . import constraints
from .structured_transforms import StickBreakingTransform
from .transformed_distribution import TransformedDistribution

__all__ = ["LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        from . import Normal
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand([1])
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale
