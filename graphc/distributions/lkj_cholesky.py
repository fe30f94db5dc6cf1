"""LKJCholesky(dim, concentration): Cholesky factors of correlation matrices, with density of the
correlation matrix proportional to det(C)^(concentration - 1) (Lewandowski, Kurowicka & Joe, 2009).
Samples by the onion method, as PyTorch's (Beta-distributed squared row norms, uniform
directions); not reparameterized."""
from __future__ import annotations

import math

import graphc

from . import constraints
from .dirichlet import Beta
from .distribution import Distribution, _broadcast_all

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None):
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = _broadcast_all(concentration)
        offset = graphc.arange(dim - 1, dtype=self.concentration.dtype, device=self.concentration.device)
        offset = graphc.cat([offset.new_zeros((1,)), offset])
        marginal_conc = self.concentration + 0.5 * (dim - 2)
        # row i's squared norm (of its off-diagonal part) is Beta(i/2, marginal - (i-1)/2)
        # (validated as this distribution is: valid when concentration is; no check when it is off)
        self._beta = Beta(offset + 0.5, marginal_conc.unsqueeze(-1) - 0.5 * offset, validate_args=validate_args)
        super().__init__(self.concentration.size(), (dim, dim), validate_args)

    def expand(self, batch_shape, _instance=None):
        new = LKJCholesky(self.dim, self.concentration.expand(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()):
        with graphc.no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            u_normal = graphc.randn(self._extended_shape(sample_shape), dtype=y.dtype, device=y.device).tril(-1)
            norm = u_normal.norm(dim=-1, keepdim=True)
            first_row = graphc.arange(self.dim, device=y.device).reshape(self.dim, 1) == 0
            # row 0 has no off-diagonal entries (its norm is 0): left at zero, not 0/0
            u_hypersphere = graphc.where(first_row, 0.0, u_normal / graphc.where(first_row, 1.0, norm))
            w = graphc.sqrt(y) * u_hypersphere
            diag = graphc.clamp(1 - graphc.sum(w ** 2, dim=-1), min=graphc.finfo(w.dtype).tiny).sqrt()
            return w + graphc.diag_embed(diag)

    def log_prob(self, value):
        self._checked(value)
        diag = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = graphc.arange(2, self.dim + 1, device=self.concentration.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized = graphc.sum(order * diag.log(), dim=-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        normalize = 0.5 * dm1 * math.log(math.pi) + graphc.mvlgamma(alpha - 0.5, dm1) - graphc.lgamma(alpha) * dm1
        return unnormalized - normalize
