"""Every primitive is, for each backend, exactly one of: generated inside kernels, an extern
library call, or listed as unsupported with the reason (which is the compile-time error). No
primitive silently falls back to anything else."""
from __future__ import annotations

import pytest

import graphc  # noqa: F401
from graphc.codegen import numpy_codegen
from graphc.codegen.scheduler import UnsupportedOp, build_schedule
from graphc.ir import PRIMITIVES
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph
from graphc.ir.primitive import TensorType

TARGETS = {"numpy": numpy_codegen.TARGET}


@pytest.mark.parametrize("backend", sorted(TARGETS))
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_backend_runs_or_rejects_each_primitive(backend, name):
    t = TARGETS[backend]
    prim = PRIMITIVES[name]
    kinds = [prim in t.kernel_ops, prim in t.extern_ops, prim in t.unsupported]
    assert sum(kinds) == 1, f"{backend}: {name}: kernel op, extern, unsupported = {kinds}"
    if prim in t.unsupported:
        assert len(t.unsupported[prim]) > 20
    if prim in t.kernel_ops or prim in t.extern_ops:
        # the numpy generator has an expression for it (views are rendered as index maps)
        assert prim in numpy_codegen.LOWERINGS or prim.is_view


def test_unsupported_primitive_fails_at_scheduling_with_its_reason():
    from graphc.ir import prims as P
    g = Graph("g")
    x = g.add_input(TensorType((3,), dt.float32))
    node_out = g.add_node(P.nonzero, [x], {}, TensorType((3, 1), dt.int64))
    g.set_outputs([node_out])
    with pytest.raises(UnsupportedOp, match="numpy backend: nonzero: .*data-dependent"):
        build_schedule(g, numpy_codegen.TARGET)
