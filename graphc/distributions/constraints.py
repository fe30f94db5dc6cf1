"""Constraints on distribution parameters and supports (as torch.distributions.constraints):
``check(value)`` gives a bool tensor, True where ``value`` satisfies the constraint (one entry per
event: the rightmost ``event_dim`` dimensions are checked together)."""
from __future__ import annotations

import graphc

__all__ = ["Constraint", "MixtureSameFamilyConstraint", "boolean", "cat", "corr_cholesky", "dependent",
           "dependent_property", "greater_than", "greater_than_eq", "half_open_interval", "independent",
           "integer_interval", "interval", "is_dependent", "less_than", "lower_cholesky", "lower_triangular",
           "multinomial", "nonnegative", "nonnegative_integer", "one_hot", "positive", "positive_definite",
           "positive_integer", "positive_semidefinite", "real", "real_vector", "simplex", "square", "stack",
           "symmetric", "unit_interval"]


class Constraint:
    is_discrete = False
    event_dim = 0

    def check(self, value):
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """A placeholder whose support depends on other parameters; it cannot be checked."""

    def __init__(self, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, *, is_discrete: bool = False, event_dim: int = 0) -> "_Dependent":
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """``@constraints.dependent_property`` on a distribution's ``support``: a property on instances,
    a dependent constraint on the class."""

    def __init__(self, fn=None, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


class _IndependentConstraint(Constraint):
    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint, self.reinterpreted_batch_ndims = base_constraint, reinterpreted_batch_ndims
        self.is_discrete = base_constraint.is_discrete
        self.event_dim = base_constraint.event_dim + reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        n = self.reinterpreted_batch_ndims
        return result.reshape(tuple(result.shape[:result.dim() - n]) + (-1,)).all(-1) if n else result

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)


class _Real(Constraint):
    def check(self, value):
        return value == value  # False for NaN only


class _Bounded(Constraint):
    """A bound (or two) compared with the subclass's operators; the repr names the bounds. Each
    kind of bound is its own class, as PyTorch's, so registries (``biject_to``) key on the type."""
    _lower_op = _upper_op = None
    _integer = False

    def __init__(self, lower_bound=None, upper_bound=None) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound
        self.is_discrete = self._integer

    def check(self, value):
        ok = value == value
        if self._lower_op is not None:
            ok = ok & self._lower_op(value, self.lower_bound)
        if self._upper_op is not None:
            ok = ok & self._upper_op(value, self.upper_bound)
        if self._integer:
            ok = ok & (value % 1 == 0)
        return ok

    def __repr__(self) -> str:
        bounds = [f"{side}={b}" for side, b in (("lower_bound", self.lower_bound), ("upper_bound", self.upper_bound))
                  if b is not None]
        return f"{type(self).__name__.lstrip('_')}({', '.join(bounds)})"


class _GreaterThan(_Bounded):
    _lower_op = staticmethod(graphc.gt)

    def __init__(self, lower_bound) -> None:
        super().__init__(lower_bound)


class _GreaterThanEq(_GreaterThan):
    _lower_op = staticmethod(graphc.ge)


class _IntegerGreaterThan(_GreaterThanEq):
    _integer = True


class _LessThan(_Bounded):
    _upper_op = staticmethod(graphc.lt)

    def __init__(self, upper_bound) -> None:
        super().__init__(None, upper_bound)


class _Interval(_Bounded):
    _lower_op, _upper_op = staticmethod(graphc.ge), staticmethod(graphc.le)

    def __init__(self, lower_bound, upper_bound) -> None:
        super().__init__(lower_bound, upper_bound)


class _HalfOpenInterval(_Interval):
    _upper_op = staticmethod(graphc.lt)


class _IntegerInterval(_Interval):
    _integer = True


greater_than, greater_than_eq, less_than = _GreaterThan, _GreaterThanEq, _LessThan
interval, half_open_interval, integer_interval = _Interval, _HalfOpenInterval, _IntegerInterval
independent = _IndependentConstraint


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        return (value >= 0).all(-1) & ((value.sum(-1) - 1).abs() < 1e-6)


class _Square(Constraint):
    event_dim = 2

    def check(self, value):
        return graphc.full(tuple(value.shape[:-2]), value.shape[-2] == value.shape[-1], dtype=graphc.bool)


class _Symmetric(_Square):
    def check(self, value):
        sq = super().check(value)
        return sq & graphc.isclose(value, value.mT, atol=1e-6).all(-1).all(-1) if bool(sq.all()) else sq


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        return (value.tril() == value).reshape(tuple(value.shape[:-2]) + (-1,)).all(-1)


class _LowerCholesky(_LowerTriangular):
    def check(self, value):
        return super().check(value) & (value.diagonal(dim1=-2, dim2=-1) > 0).all(-1)


class _PositiveSemidefinite(_Symmetric):
    def check(self, value):
        sym = super().check(value)
        return sym & (graphc.linalg.eigvalsh(value) >= 0).all(-1) if bool(sym.all()) else sym


class _PositiveDefinite(_Symmetric):
    def check(self, value):
        sym = super().check(value)
        return sym & (graphc.linalg.cholesky_ex(value).info == 0) if bool(sym.all()) else sym


class _CorrCholesky(_LowerCholesky):
    """Cholesky factors of correlation matrices: lower Cholesky with unit-norm rows."""

    def check(self, value):
        tol = graphc.finfo(value.dtype).eps * value.size(-1) * 10  # PyTorch's fudge factor
        row_norm = graphc.linalg.norm(value.detach(), dim=-1)
        return super().check(value) & (row_norm - 1.0).abs().le(tol).all(dim=-1)


class _Cat(Constraint):
    """``cseq[i]`` on the i-th slice of length ``lengths[i]`` along ``dim`` (as ``torch.cat``)."""

    def __init__(self, cseq, dim: int = 0, lengths=None) -> None:
        if not all(isinstance(c, Constraint) for c in cseq):
            raise AssertionError("All elements of cseq must be Constraint instances")
        self.cseq = list(cseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)
        if len(self.lengths) != len(self.cseq):
            raise AssertionError(f"lengths ({len(self.lengths)}) must match cseq ({len(self.cseq)})")
        self.dim = dim

    is_discrete = property(lambda self: any(c.is_discrete for c in self.cseq))
    event_dim = property(lambda self: max(c.event_dim for c in self.cseq))

    def check(self, value):
        _check_dim(self.dim, value, "value")
        checks, start = [], 0
        for constr, length in zip(self.cseq, self.lengths):
            checks.append(constr.check(value.narrow(self.dim, start, length)))
            start += length
        return graphc.cat(checks, self.dim)


class _Stack(Constraint):
    """``cseq[i]`` on the i-th slice along ``dim`` (as ``torch.stack``)."""

    def __init__(self, cseq, dim: int = 0) -> None:
        if not all(isinstance(c, Constraint) for c in cseq):
            raise AssertionError("All elements of cseq must be Constraint instances")
        self.cseq, self.dim = list(cseq), dim

    is_discrete = property(lambda self: any(c.is_discrete for c in self.cseq))

    @property
    def event_dim(self) -> int:
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value):
        _check_dim(self.dim, value, "value")
        return graphc.stack([c.check(value.select(self.dim, i)) for i, c in enumerate(self.cseq)], self.dim)


class _OneHot(Constraint):
    is_discrete, event_dim = True, 1

    def check(self, value):
        return ((value == 0) | (value == 1)).all(-1) & value.sum(-1).eq(1)


class _Multinomial(Constraint):
    """Nonnegative counts summing to at most ``upper_bound`` (PyTorch's weaker-than-equal check)."""
    is_discrete, event_dim = True, 1

    def __init__(self, upper_bound) -> None:
        self.upper_bound = upper_bound

    def check(self, x):
        return (x >= 0).all(dim=-1) & (x.sum(dim=-1) <= self.upper_bound)


class MixtureSameFamilyConstraint(Constraint):
    """A mixture's support: the component's, checked with the mixture dimension added back."""

    def __init__(self, base_constraint: Constraint) -> None:
        if not isinstance(base_constraint, Constraint):
            raise AssertionError(f"base_constraint must be a Constraint, got {type(base_constraint).__name__}")
        self.base_constraint = base_constraint

    is_discrete = property(lambda self: self.base_constraint.is_discrete)
    event_dim = property(lambda self: self.base_constraint.event_dim)

    def check(self, value):
        if value.dim() < self.event_dim:
            raise ValueError(f"Expected value.dim() >= {self.event_dim} but got {value.dim()}")
        result = self.base_constraint.check(value.unsqueeze(-1 - self.event_dim))
        keep = value.dim() - self.event_dim
        return result.reshape(tuple(result.shape[:keep]) + (-1,)).all(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_constraint!r})"


def _check_dim(dim: int, value, name: str) -> None:
    if not -value.dim() <= dim < value.dim():
        raise AssertionError(f"dim {dim} out of range for {name} with {value.dim()} dimensions")


dependent = _Dependent()
dependent_property = _DependentProperty
boolean = _Boolean()
real = _Real()
real_vector = independent(real, 1)
positive = greater_than(0.0)
nonnegative = greater_than_eq(0.0)
unit_interval = interval(0.0, 1.0)
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
simplex = _Simplex()
square = _Square()
symmetric = _Symmetric()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
corr_cholesky = _CorrCholesky()
cat, stack = _Cat, _Stack
one_hot = _OneHot()
multinomial = _Multinomial
