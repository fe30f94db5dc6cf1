"""Capture a model for ONNX export: trace it with graphc's tracer, run the decomposition passes,
and, for dynamic axes, trace it again at other sizes to learn which numbers follow them.

The result is the traced graph of the example inputs plus, per node, its attributes and scalar
operands with the size-dependent numbers replaced by ``Dim``/``Reciprocal`` fits (``dims.py``),
and every value's shape the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphc.ir.graph import Graph, Node, Value
from graphc.passes.decompose import decompose
from graphc.passes.manager import PassManager, default_pipeline

from ..autograd import grad_mode
from ..compiler.api import _flatten, _unflatten
from ..compiler.tracing import GraphBreak, Trace
from ..tensors import Tensor
from .dims import fit, fit_shape, trace_sizes
from .errors import OnnxExporterError
from .ops import keeps


@dataclass
class Traced:
    graph: Graph
    lifted: dict[int, Tensor]  # id(graph input) -> the tensor it reads (parameters, buffers, constants)
    paths: dict[int, str]      # id(graph input) -> the module path of the parameter or buffer it reads


def trace(model, leaves: list[Tensor], spec) -> Traced:
    """One trace of ``model(*args, **kwargs)`` (the call ``spec`` rebuilds from ``leaves``), decomposed
    into primitives, its outputs the tensors the call returns (nested structures flattened)."""
    tr = Trace(type(model).__name__ if not hasattr(model, "__name__") else model.__name__)
    try:
        with grad_mode.no_grad(), tr:
            syms = [tr.tensor_input(t) for t in leaves]
            args, kwargs = _unflatten(spec, syms)
            out = model(*args, **kwargs)
            outs: list = []
            _flatten(out, outs)
            tr.graph.set_outputs([tr.output_value(o) for o in outs])
    except GraphBreak as gb:
        raise OnnxExporterError(f"graphc.onnx.export: the model can't be traced into one graph: {gb.reason} (at "
                                f"{gb.location}). ONNX export needs the whole forward as one graph: compute that part "
                                "with tensor operations instead.") from None
    if not tr.graph.outputs:
        raise OnnxExporterError("graphc.onnx.export: the model returns no tensor")
    lifted = {id(v): t for v, t in tr.lifted.values() if isinstance(t, Tensor)}
    paths = {i: tr.paths[id(t)] for i, t in lifted.items() if id(t) in tr.paths}
    # the decomposition pass keeps the composites ONNX has an operator for (Conv, MaxPool ...)
    passes = [(name, (lambda h: decompose(h, keeps)) if name == "decompose" else fn)
              for name, fn in default_pipeline()]
    g = PassManager(passes, verify="end", record=False).run(tr.graph)
    return Traced(g, lifted, paths)


@dataclass
class Captured:
    graph: Graph
    lifted: dict[int, Tensor]
    paths: dict[int, str]
    attrs: dict[int, dict] = field(default_factory=dict)       # id(node) -> attributes, fitted
    operands: dict[int, list] = field(default_factory=dict)    # id(node) -> inputs (scalars fitted)
    shapes: dict[int, tuple] = field(default_factory=dict)     # id(value) -> shape, fitted
    # id(graph input) -> its values in each trace, for tensors the model makes during forward
    constants: dict[int, list[np.ndarray]] = field(default_factory=dict)
    symbols: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (input index, axis) holding it
    sizes: list[dict[str, int]] = field(default_factory=list)  # the axis sizes of each trace (dims.trace_sizes)

    def shape(self, v: Value) -> tuple:
        return self.shapes.get(id(v), v.shape)


def _resized(t: Tensor, axes: dict[int, str], sizes: dict[str, int]) -> Tensor:
    """``t`` with each dynamic axis grown to its symbol's size in ``sizes``, by repeating its
    elements (so integer inputs such as token ids stay valid)."""
    a = t.detach().cpu().numpy()
    for axis, name in axes.items():
        a = np.take(a, np.arange(sizes[name]) % a.shape[axis], axis=axis)
    return Tensor._make(np.ascontiguousarray(a)).to(t.device)


def capture(model, leaves: list[Tensor], spec, dynamic: dict[int, dict[int, str]]) -> Captured:
    """Trace ``model`` at the example inputs; with ``dynamic`` (leaf index -> {axis: symbol}) also at
    other sizes of each symbol, and fit the numbers that change (see ``dims.fit``)."""
    base: dict[str, int] = {}
    symbols: dict[str, tuple[int, int]] = {}
    for i, axes in dynamic.items():
        for axis, name in axes.items():
            size = leaves[i].shape[axis]
            if base.setdefault(name, size) != size:
                raise OnnxExporterError(f"graphc.onnx.export: the dynamic axis {name!r} has sizes {base[name]} and "
                                        f"{size} in the example inputs; one name must mean one size")
            if size == 0:
                raise OnnxExporterError(f"graphc.onnx.export: the dynamic axis {name!r} is empty in the example "
                                        "inputs; give an example with at least one element there")
            symbols.setdefault(name, (i, axis))
    first = trace(model, leaves, spec)
    captured = Captured(first.graph, first.lifted, first.paths, symbols=symbols)
    if not symbols:
        return captured
    sizes = captured.sizes = trace_sizes(base)
    traces = [first]
    for s in sizes[1:]:
        resized = [_resized(t, dynamic[i], s) if i in dynamic else t for i, t in enumerate(leaves)]
        try:
            traces.append(trace(model, resized, spec))
        except OnnxExporterError:
            raise
        except Exception as e:  # the model itself refuses another size (a hard-coded view(64, -1) ...)
            where = ", ".join(f"{k}={v}" for k, v in s.items())
            raise OnnxExporterError(
                f"graphc.onnx.export: the model fails with the dynamic axes at other sizes ({where}): "
                f"{type(e).__name__}: {e}. Mark only axes the model accepts at any size as dynamic.") from None
    _fit_graphs(captured, traces, sizes)
    return captured


def _fit_graphs(captured: Captured, traces: list[Traced], sizes: list[dict[str, int]]) -> None:
    graphs = [t.graph for t in traces]
    counts = [(len(h.nodes), [v.role for v in h.inputs], [v.name for v in h.outputs]) for h in graphs]
    if any(c != counts[0] for c in counts):
        raise OnnxExporterError(
            f"graphc.onnx.export: the traced graph changes with the size of a dynamic axis ({counts[0][0]} nodes, "
            f"{[c[0] for c in counts[1:]]} at other sizes, or other inputs or outputs); ONNX export needs one graph "
            "for every size. Export without dynamic_axes for that axis.")
    for vs in zip(*(h.inputs for h in graphs)):
        captured.shapes[id(vs[0])] = fit_shape([v.shape for v in vs], sizes, f"the shape of graph input {vs[0].name}")
        tensors = [t.lifted.get(id(v)) for t, v in zip(traces, vs)]
        if tensors[0] is not None and any(x is not tensors[0] for x in tensors):  # made anew by each trace
            captured.constants[id(vs[0])] = [x.detach().cpu().numpy() for x in tensors]
    for nodes in zip(*(h.nodes for h in graphs)):
        n: Node = nodes[0]
        what = f"{n.prim.name} node %{n.output.name}" + (f" (at {n.loc})" if n.loc else "")
        structure = [(m.prim, [x.name if isinstance(x, Value) else type(x) for x in m.inputs], len(m.outputs))
                     for m in nodes]
        if any(s != structure[0] for s in structure):
            raise OnnxExporterError(
                f"graphc.onnx.export: the traced graph changes with the size of a dynamic axis (at {what}); ONNX "
                "export needs one graph for every size. Export without dynamic_axes for that axis.")
        captured.attrs[id(n)] = fit([m.attrs for m in nodes], sizes, f"the attributes of {what}")
        captured.operands[id(n)] = [
            x if isinstance(x, Value) else fit([m.inputs[k] for m in nodes], sizes, f"operand {k} of {what}")
            for k, x in enumerate(n.inputs)]
        for outs in zip(*(m.outputs for m in nodes)):
            captured.shapes[id(outs[0])] = fit_shape([o.shape for o in outs], sizes, f"the shape of %{outs[0].name}")
