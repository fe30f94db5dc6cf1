"""Composite nodes: a call of a composite op (softmax, layer_norm, conv, cross_entropy, ...) kept
as one readable node in traced graphs until the decomposition pass expands it.

The expansion itself lives in ``graphc.passes`` (the one table of decompositions); it registers
itself here with ``set_expander`` so that this layer can type and run composite nodes without
importing the layer above it.
"""
from __future__ import annotations

from typing import Callable

from .graph import Graph, Value, building
from .interpret import interpret
from .primitive import Primitive, register

_expander: Callable | None = None


def set_expander(fn: Callable) -> None:
    """``fn(name, layout, operands)`` builds the composite from primitives on ``operands``."""
    global _expander
    _expander = fn


def expand(name: str, layout: tuple, operands: list):
    if _expander is None:
        raise RuntimeError("composite nodes need graphc.passes (the decomposition table) to be imported")
    return _expander(name, layout, operands)


def _scratch(operands: tuple, name: str, layout: tuple) -> tuple[Graph, Value]:
    g = Graph(f"composite_{name}")
    ins = [g.add_input(x.type if isinstance(x, Value) else _typeof(x)) for x in operands]
    with building(g):
        out = expand(name, layout, ins)
    if not isinstance(out, Value):
        raise TypeError(f"composite {name} does not produce one tensor")
    g.set_outputs([out])
    return g, out


def _typeof(x):
    from .primitive import TensorType
    return TensorType(tuple(x.shape), x.dtype)


def _infer(*operands, name: str, layout: tuple):
    return _scratch(operands, name, layout)[1].type


def _impl(*arrays, name: str, layout: tuple):
    g, _ = _scratch(tuple(_Typed(a) for a in arrays), name, layout)
    return interpret(g, list(arrays))[0]


class _Typed:
    """A numpy array seen as a typed operand."""

    def __init__(self, a) -> None:
        from . import dtypes
        self.shape, self.dtype = tuple(a.shape), dtypes.from_numpy_dtype(a.dtype)


composite = register(Primitive("composite", _infer, _impl, kind="composite",
                              complex_operands=True))  # its parts check their operands
