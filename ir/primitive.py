"""The Primitive record, the registry of all primitives, and ``bind``, the single dispatch point.

A primitive is declared once (in ``ir/prims.py``) with its type rule and numpy reference
semantics. Calling a primitive (``prims.mul(a, b)``) binds it: the operand with the highest
handler level decides what happens. Eager tensors compute now; IR values (while tracing) emit a
node. Rules written with primitives therefore work for eager autograd and for graph transforms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from .dtypes import DType


class TensorType(NamedTuple):
    shape: tuple[int, ...]
    dtype: DType

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Handler:
    """What a family of operand types does with a bound primitive. Higher level wins."""

    level = 0

    def apply(self, prim: "Primitive", args: tuple, attrs: dict) -> Any:  # pragma: no cover
        raise NotImplementedError


@dataclass(eq=False)
class Primitive:
    name: str
    infer: Callable[..., TensorType]
    impl: Callable[..., Any]
    # None: operands keep their dtypes; else a function of the operands giving the dtype every
    # tensor operand is cast to before ``impl`` runs (elementwise promotion).
    operand_dtype: Callable[..., DType | None] | None = None
    # Eager only: the numpy result may alias operand 0 (a view), so it shares its version counter.
    view: bool = False
    # Output depends on data values in a way no graph can express statically (e.g. nonzero).
    data_dependent: bool = False
    # Indices of operands that are never differentiated (integer indices, masks).
    nondiff_operands: tuple[int, ...] = ()
    # elementwise | reduction | movement | matmul | index | creation | window | random | scan |
    # linalg | fused | composite | other. Passes and backends read the facts below, not name sets.
    kind: str = "other"
    # False: the output is integer/bool-valued or piecewise constant, so no gradient flows.
    differentiable: bool = True
    # Cheap enough to recompute in backward instead of saving its result (None: elementwise and
    # movement ops are, others are not).
    cheap: bool | None = None

    def __post_init__(self) -> None:
        if self.cheap is None:
            self.cheap = self.kind in ("elementwise", "movement")

    @property
    def elementwise(self) -> bool:
        """Each output element depends only on the operand elements at the same (broadcast)
        position: fusible into pointwise kernels, and may write over a dying operand."""
        return self.kind == "elementwise"

    @property
    def reduction(self) -> bool:
        return self.kind == "reduction"

    @property
    def is_view(self) -> bool:
        """A movement op whose result is its first operand's memory seen another way (reshape,
        permute, expand, slice): backends turn it into indexing, never into a copy."""
        return self.view and self.kind == "movement"

    def __call__(self, *args, **attrs):
        return bind(self, *args, **attrs)

    def operand_casts(self, args: tuple, attrs: dict) -> list:
        """Per operand, the dtype it is cast to before ``impl`` runs (None: unchanged). Index
        operands keep their integer dtype. Eager mode, the interpreter and codegen all use this."""
        if self.operand_dtype is None:
            return [None] * len(args)
        to = self.operand_dtype(*args, **attrs)
        return [to if to is not None and i not in self.nondiff_operands and hasattr(a, "dtype")
                and a.dtype is not to else None for i, a in enumerate(args)]

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}

_default_handlers: list[Handler] = []


def register(prim: Primitive) -> Primitive:
    if prim.name in PRIMITIVES:
        raise ValueError(f"primitive {prim.name!r} declared twice")
    PRIMITIVES[prim.name] = prim
    return prim


def push_default_handler(h: Handler) -> None:
    """The handler used when no operand carries one (creation ops like ``full``)."""
    _default_handlers.append(h)


def pop_default_handler() -> Handler:
    return _default_handlers.pop()


def bind(prim: Primitive, *args, **attrs):
    # The innermost active handler (e.g. a trace) sees every op, even on concrete tensors, so
    # that what they compute is recorded rather than frozen; operands may outrank it.
    best = _default_handlers[-1] if _default_handlers else None
    for a in args:
        h = getattr(a, "_graphc_handler", None)
        if h is not None and (best is None or h.level > best.level):
            best = h
    if best is None:
        raise TypeError(f"{prim.name}: no tensor operand and no active handler")
    return best.apply(prim, args, attrs)
