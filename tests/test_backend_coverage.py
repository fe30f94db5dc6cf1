"""Every primitive has a lowering in each backend table, or is listed there as unsupported with
the reason (which is the compile-time error)."""
from __future__ import annotations

import pytest

import graphc  # noqa: F401
from graphc.codegen import numpy_codegen
from graphc.ir import PRIMITIVES
from graphc.ir.graph import Graph
from graphc.ir.primitive import TensorType
from graphc.ir import dtypes as dt


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_numpy_backend_lowers_or_rejects_each_primitive(name):
    prim = PRIMITIVES[name]
    lowered, rejected = prim in numpy_codegen.LOWERINGS, prim in numpy_codegen.UNSUPPORTED
    assert lowered != rejected, f"{name}: lowered={lowered}, unsupported={rejected}"
    if rejected:
        assert len(numpy_codegen.UNSUPPORTED[prim]) > 20


def test_unsupported_primitive_fails_at_codegen_with_its_reason():
    from graphc.ir import prims as P
    g = Graph("g")
    x = g.add_input(TensorType((3,), dt.float32))
    node_out = g.add_node(P.nonzero, [x], {}, TensorType((3, 1), dt.int64))
    g.set_outputs([node_out])
    with pytest.raises(NotImplementedError, match="data-dependent"):
        numpy_codegen.generate(g)
