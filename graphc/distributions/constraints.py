"""Constraints on distribution parameters and supports (as torch.distributions.constraints):
``check(value)`` gives a bool tensor, True where ``value`` satisfies the constraint (one entry per
event: the rightmost ``event_dim`` dimensions are checked together)."""
from __future__ import annotations

import graphc

__all__ = ["Constraint", "boolean", "dependent", "dependent_property", "greater_than", "greater_than_eq",
           "half_open_interval", "independent", "integer_interval", "interval", "is_dependent", "less_than",
           "lower_cholesky", "lower_triangular", "nonnegative", "nonnegative_integer", "positive",
           "positive_definite", "positive_integer", "positive_semidefinite", "real", "real_vector", "simplex",
           "square", "symmetric", "unit_interval"]


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
    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint, self.reinterpreted_batch_ndims = base, reinterpreted_batch_ndims
        self.is_discrete, self.event_dim = base.is_discrete, base.event_dim + reinterpreted_batch_ndims

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
    """A bound (or two) compared with the given operators; the repr names the bounds."""

    def __init__(self, lower=None, upper=None, lower_op=None, upper_op=None, integer: bool = False) -> None:
        self.lower_bound, self.upper_bound, self._ops, self.is_discrete = lower, upper, (lower_op, upper_op), integer

    def check(self, value):
        ok = value == value
        if self._ops[0] is not None:
            ok = ok & self._ops[0](value, self.lower_bound)
        if self._ops[1] is not None:
            ok = ok & self._ops[1](value, self.upper_bound)
        if self.is_discrete:
            ok = ok & (value % 1 == 0)
        return ok


class _Interval(_Bounded):
    def __init__(self, lower, upper, upper_open: bool = False, integer: bool = False, name: str = "Interval"):
        super().__init__(lower, upper, graphc.ge, graphc.lt if upper_open else graphc.le, integer)
        self._name = name

    def __repr__(self) -> str:
        return f"{self._name}(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _OneSided(_Bounded):
    def __init__(self, bound, op, name: str, integer: bool = False, lower: bool = True) -> None:
        super().__init__(bound if lower else None, None if lower else bound,
                         op if lower else None, None if lower else op, integer)
        self._name, self._bound = name, bound

    def __repr__(self) -> str:
        side = "lower_bound" if self.lower_bound is not None else "upper_bound"
        return f"{self._name}({side}={self._bound})"


def greater_than(lower_bound) -> Constraint:
    return _OneSided(lower_bound, graphc.gt, "GreaterThan")


def greater_than_eq(lower_bound) -> Constraint:
    return _OneSided(lower_bound, graphc.ge, "GreaterThanEq")


def less_than(upper_bound) -> Constraint:
    return _OneSided(upper_bound, graphc.lt, "LessThan", lower=False)


def interval(lower_bound, upper_bound) -> Constraint:
    return _Interval(lower_bound, upper_bound)


def half_open_interval(lower_bound, upper_bound) -> Constraint:
    return _Interval(lower_bound, upper_bound, upper_open=True, name="HalfOpenInterval")


def integer_interval(lower_bound, upper_bound) -> Constraint:
    return _Interval(lower_bound, upper_bound, integer=True, name="IntegerInterval")


def independent(base_constraint: Constraint, reinterpreted_batch_ndims: int) -> Constraint:
    return _IndependentConstraint(base_constraint, reinterpreted_batch_ndims)


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


dependent = _Dependent()
dependent_property = _DependentProperty
boolean = _Boolean()
real = _Real()
real_vector = independent(real, 1)
positive = greater_than(0.0)
nonnegative = greater_than_eq(0.0)
unit_interval = interval(0.0, 1.0)
nonnegative_integer = _OneSided(0, graphc.ge, "IntegerGreaterThan", integer=True)
positive_integer = _OneSided(1, graphc.ge, "IntegerGreaterThan", integer=True)
simplex = _Simplex()
square = _Square()
symmetric = _Symmetric()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
