"""ExponentialFamily (as torch.distributions.exp_family): densities exp(<t(x), theta> - F(theta) + k(x)).
A subclass gives its natural parameters theta, log normalizer F and mean carrier measure E[k(x)];
the entropy then follows from autograd (F minus <theta, grad F> minus E[k]), and so does the KL
divergence between two members of one family (a Bregman divergence of F, in ``kl``)."""
from __future__ import annotations

import graphc

from .distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    @property
    def _natural_params(self) -> tuple:
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError

    def entropy(self):
        nparams = [p.detach().requires_grad_() for p in self._natural_params]
        with graphc.enable_grad():
            lg_normal = self._log_normalizer(*nparams)
            gradients = graphc.autograd.grad(lg_normal.sum(), nparams, create_graph=True)
        result = lg_normal - self._mean_carrier_measure
        for p, g in zip(nparams, gradients):
            result = result - (p * g).reshape(tuple(self._batch_shape) + (-1,)).sum(-1)
        return result
