"""The ``Distribution`` base class (as torch.distributions.distribution): shapes, sampling
defaults, and argument validation against each subclass's ``arg_constraints`` and ``support``
(on by default, as PyTorch's; ``validate_args=False`` or
``Distribution.set_default_validate_args(False)`` turns it off)."""
from __future__ import annotations

import numbers

import numpy as np

import graphc

from . import constraints

__all__ = ["Distribution"]


def _as_tensor(x, like=None):
    if isinstance(x, graphc.Tensor):
        return x
    dtype = like.dtype if isinstance(like, graphc.Tensor) else graphc.get_default_dtype()
    return graphc.tensor(float(x), dtype=dtype, device=like.device if isinstance(like, graphc.Tensor) else None)


def _broadcast_all(*values):
    like = next((v for v in values if isinstance(v, graphc.Tensor)), None)
    ts = [_as_tensor(v, like) for v in values]
    return graphc.broadcast_tensors(*ts)


def _all_numbers(*values) -> bool:
    return all(isinstance(v, numbers.Number) for v in values)


def _size(sample_shape):
    return graphc.Size(tuple(sample_shape))


def _shown(value) -> str:
    """How PyTorch's validation messages show a tensor: 0-d as a number, else the tensor."""
    return str(value.item()) if isinstance(value, graphc.Tensor) and value.dim() == 0 else str(value)


class Distribution:
    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__
    arg_constraints: dict = {}
    # the instance's tensors ``expand`` broadcasts (a class whose state is just these names them);
    # empty: the class has its own ``expand``, or none
    _expand_params: tuple = ()

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = graphc.Size(tuple(batch_shape))
        self._event_shape = graphc.Size(tuple(event_shape))
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for param, constraint in self.arg_constraints.items():
                if constraints.is_dependent(constraint) or param not in self.__dict__:
                    continue  # not given (a lazily computed alternative, e.g. logits for probs)
                value = self.__dict__[param]
                if not bool(constraint.check(value).all()):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape {tuple(value.shape)}) "
                        f"of distribution {self!r} to satisfy the constraint {constraint!r}, but found "
                        f"invalid values:\n{_shown(value)}")

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        if value not in (True, False):
            raise ValueError
        Distribution._validate_args = value

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    @property
    def support(self):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError(f"{type(self)} does not implement mean")

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self)} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self)} does not implement variance")

    @property
    def stddev(self):
        return self.variance.sqrt()

    def _extended_shape(self, sample_shape=()):
        return graphc.Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def _validate_sample(self, value) -> None:
        """PyTorch's check of a ``log_prob`` argument: a tensor, in the support."""
        if not isinstance(value, graphc.Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        support = self.support
        if constraints.is_dependent(support):
            return
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within "
                f"the support ({support!r}) of the distribution {self!r}, but found invalid values:\n"
                f"{_shown(value)}")

    def _checked(self, value):
        """``value``, validated as a ``log_prob``/``cdf`` argument when validation is on."""
        if self._validate_args:
            self._validate_sample(value)
        return value

    def sample(self, sample_shape=()):
        with graphc.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} does not implement rsample")

    def sample_n(self, n):
        return self.sample((n,))

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def prob(self, value):
        return self.log_prob(value).exp()

    def perplexity(self):
        return self.entropy().exp()

    def expand(self, batch_shape, _instance=None):
        if not self._expand_params:
            raise NotImplementedError(f"{type(self).__name__}.expand is not implemented by graphc")
        return self._expanded(batch_shape, self._expand_params, _instance)

    def _expanded(self, batch_shape, params, _instance=None):
        """``expand``'s common part: a new instance (``_instance`` or a bare one of this type) with
        batch shape ``batch_shape`` and each of ``params`` this instance holds broadcast to it (its
        trailing, non-batch dims kept); validation as this instance's."""
        new = _instance if _instance is not None else type(self).__new__(type(self))
        batch = graphc.Size(tuple(batch_shape))
        for name in params:
            if name in self.__dict__:
                value = self.__dict__[name]
                new.__dict__[name] = value.expand(tuple(batch) + tuple(value.shape[len(self._batch_shape):]))
        Distribution.__init__(new, batch, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def __repr__(self) -> str:
        names = [k for k in (self.arg_constraints or getattr(self, "arg_names", ())) if k in self.__dict__]
        args = ", ".join(f"{k}: {self.__dict__[k] if self.__dict__[k].numel() == 1 else self.__dict__[k].size()}"
                         for k in names)
        return f"{type(self).__name__}({args})"


class _LocScale(Distribution):
    """A location-scale family: ``loc`` and ``scale`` broadcast together."""
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _expand_params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = _broadcast_all(loc, scale)
        super().__init__(() if _all_numbers(loc, scale) else self.loc.size(), validate_args=validate_args)



class _ProbsOrLogits(Distribution):
    """A distribution given ``probs`` or ``logits``: the other is computed on first use and kept
    (as PyTorch's ``lazy_property``), with ``utils``' conversions; binary unless ``_is_binary`` is
    False (a Categorical's)."""
    _is_binary = True

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        if "_param" in self.__dict__:  # the parameter given (probs or logits), for param_shape
            new._param = new.__dict__["probs" if self._param is self.__dict__.get("probs") else "logits"]
        return new

    def _set_param(self, probs, logits):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = _broadcast_all(probs)
            return self.probs
        (self.logits,) = _broadcast_all(logits)
        return self.logits

    def __getattr__(self, name):
        from .utils import logits_to_probs, probs_to_logits
        d = self.__dict__
        if name == "probs" and "logits" in d:
            value = logits_to_probs(d["logits"], is_binary=self._is_binary)
        elif name == "logits" and "probs" in d:
            value = probs_to_logits(d["probs"], is_binary=self._is_binary)
        else:
            raise AttributeError(name)
        d[name] = value
        return value


def _host_draw(like, shape, draw):
    """Numbers drawn on the host by ``draw(rng, params...)`` from graphc's generator, as a tensor
    with ``like``'s dtype and device (not differentiable)."""
    from graphc.random import gen
    from graphc.tensors import device_tensor
    rng = gen(None, like.device)
    return device_tensor(np.ascontiguousarray(draw(rng, tuple(shape))).astype(like.dtype.np), like)


def _uniform(like, shape, low=None):
    """Uniform draws in (0, 1), clamped to [``low``, 1 - eps] (``low``: the dtype's tiny unless
    given): both ends excluded, so logs and tangents stay finite."""
    finfo = graphc.finfo(like.dtype)
    return _host_draw(like, shape, lambda rng, s: rng.random(s)).clamp(
        min=finfo.tiny if low is None else low, max=1 - finfo.eps)


def _host(t, shape=None):
    """``t``'s values (detached) as a float64 numpy array, broadcast to ``shape``."""
    from graphc.tensors import host_array
    arr = host_array(t.detach()._data).astype(np.float64)
    return np.broadcast_to(arr, tuple(shape)) if shape is not None else arr


def _sum_rightmost(x, n: int):
    return x.reshape(tuple(x.shape[:x.dim() - n]) + (-1,)).sum(-1) if n > 0 else x


def _clamp_probs(probs):
    eps = graphc.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)
