"""Every primitive is, for each backend, exactly one of: generated inside kernels, an extern
library call, a call of a body the backend compiles on its own (an outlined call), or listed as
unsupported with the reason (which is the compile-time error). No primitive silently falls back
to anything else."""
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
try:  # the Triton backend's tables need the triton package only to run kernels, not to import
    from graphc.codegen import triton_codegen, triton_kernels
    TARGETS["triton"] = triton_codegen.TARGET
except ImportError:  # pragma: no cover - non-Linux machines without triton
    triton_kernels = None


@pytest.mark.parametrize("backend", sorted(TARGETS))
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_backend_runs_or_rejects_each_primitive(backend, name):
    t = TARGETS[backend]
    prim = PRIMITIVES[name]
    kinds = [prim in t.kernel_ops, prim in t.extern_ops, prim in t.calls, prim in t.unsupported]
    assert sum(kinds) == 1, f"{backend}: {name}: kernel op, extern, call, unsupported = {kinds}"
    if prim in t.unsupported:
        assert len(t.unsupported[prim]) > 20
    if prim in t.extern_ops:
        # extern calls are rendered by numpy's lowering table, on the device's array module
        assert prim in numpy_codegen.LOWERINGS, name
    if prim in t.kernel_ops and not prim.is_view:   # views become index maps
        table = numpy_codegen.LOWERINGS if backend == "numpy" else triton_kernels.TRITON_OPS
        assert prim in table, f"{backend}: kernel op {name} has no lowering"


def test_unsupported_primitive_fails_at_scheduling_with_its_reason():
    from graphc.ir import prims as P
    g = Graph("g")
    x = g.add_input(TensorType((3,), dt.float32))
    node_out = g.add_node(P.nonzero, [x], {}, TensorType((3, 1), dt.int64))
    g.set_outputs([node_out])
    with pytest.raises(UnsupportedOp, match="numpy backend: nonzero: .*data-dependent"):
        build_schedule(g, numpy_codegen.TARGET)


@pytest.mark.skipif(triton_kernels is None, reason="the triton package is not installed")
@pytest.mark.parametrize("d", [d for d in dt.ALL_DTYPES if not d.is_complex], ids=lambda d: d.name)
def test_triton_dtype_tables_know_every_dtype(d):
    """Every real graphc dtype has a Triton type and an ahead-of-time signature type; float16 and
    bfloat16 are computed in float32 inside kernels and rounded once at the store. (Triton has no
    complex type: the backend refuses complex graphs, tests/test_complex_fft.py.)"""
    assert d.name in triton_kernels._TL and d.name in triton_kernels.SIGNATURE_TYPES
    compute = triton_kernels.compute_dtype(d)
    assert compute is (dt.float32 if d.is_low_precision else d)
    if d.is_low_precision:
        assert triton_kernels.convert("v", dt.float32, d) == f"v.to({triton_kernels._TL[d.name]}).to(tl.float32)"
