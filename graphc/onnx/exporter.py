"""``graphc.onnx.export``: trace, decompose, and write the graph as an ONNX model."""
from __future__ import annotations

import inspect
import os
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from graphc.ir.graph import Value

from ..compiler.api import OptimizedModule, _flatten
from ..nn.modules.module import Module
from ..tensors import Tensor
from .capture import Captured, capture
from .constants import rebuild
from .dims import Dim
from .emitter import Emitter, onnx_dtype
from .errors import OnnxExporterError, UnsupportedOperatorError
from .ops import ONNX_OPS, UNSUPPORTED, Call

DEFAULT_OPSET = 18
MIN_OPSET = 13  # Unsqueeze, Squeeze, Slice and ReduceSum take their axes as inputs from 13 on


def require_onnx():
    """The ``onnx`` package, or an error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ModuleNotFoundError("graphc.onnx.export needs the onnx package: pip install 'graphc[onnx]' "
                                  "(onnx, and onnxruntime to run the exported models)") from None
    return onnx


class ONNXProgram:
    """An exported model (PyTorch's ``torch.onnx.ONNXProgram``): ``model_proto`` is the ONNX
    ``ModelProto``; ``save`` writes it; calling it runs it in ONNX Runtime."""

    def __init__(self, model_proto) -> None:
        self.model_proto = model_proto
        self._session = None
        self._lock = threading.Lock()  # one session, made by the first call (sessions run in parallel)

    def save(self, destination) -> None:
        """Write the model to a path or a binary file object."""
        data = self.model_proto.SerializeToString()
        if hasattr(destination, "write"):
            destination.write(data)
            return
        with open(os.fspath(destination), "wb") as fh:
            fh.write(data)

    def __call__(self, *args) -> list[Tensor]:
        """Run the model in ONNX Runtime (CPU) on graphc tensors; returns graphc tensors."""
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime
                except ImportError:
                    raise ModuleNotFoundError("running an exported model needs onnxruntime: pip install "
                                              "'graphc[onnx]'") from None
                self._session = onnxruntime.InferenceSession(self.model_proto.SerializeToString(),
                                                             providers=["CPUExecutionProvider"])
        leaves: list = []
        _flatten(args, leaves)
        names = [i.name for i in self._session.get_inputs()]
        if len(leaves) != len(names):
            raise TypeError(f"ONNXProgram: the model takes {len(names)} tensors ({', '.join(names)}), got {len(leaves)}")
        feeds = {n: np.asarray(t.detach().cpu().numpy()) for n, t in zip(names, leaves)}
        return [Tensor._make(np.asarray(o)) for o in self._session.run(None, feeds)]

    def __repr__(self) -> str:
        g = self.model_proto.graph
        return (f"ONNXProgram(inputs={[i.name for i in g.input]}, outputs={[o.name for o in g.output]}, "
                f"{len(g.node)} nodes, opset {self.model_proto.opset_import[0].version})")


def export(model, args: Any = (), f=None, *, kwargs: dict | None = None, verbose: bool | None = None,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           opset_version: int | None = None, dynamo: bool = True, external_data: bool = True,
           dynamic_shapes=None, custom_translation_table=None, report: bool = False, optimize: bool = True,
           verify: bool = False, profile: bool = False, dump_exported_program: bool = False,
           artifacts_dir: str | os.PathLike = ".", export_params: bool = True,
           keep_initializers_as_inputs: bool = False,
           dynamic_axes: Mapping[str, Mapping[int, str] | Sequence[int]] | None = None, training=None,
           operator_export_type=None, do_constant_folding: bool = True, custom_opsets=None,
           export_modules_as_functions: bool = False, autograd_inlining: bool = True) -> ONNXProgram:
    """Export ``model`` (an ``nn.Module`` or a function of tensors), called on ``args`` (a tensor or
    a tuple; ``kwargs`` too), as an ONNX model written to ``f`` (a path or a binary file object;
    None: only returned). PyTorch's signature; see README's "ONNX export" section.

    The model runs in its current mode (``train()``/``eval()``), traced by graphc's tracer, and is
    decomposed into primitives; parameters and buffers become initializers named by their module
    path. ``dynamic_axes`` (``{"x": {0: "batch"}}`` or ``{"x": [0]}``) makes input and output
    dimensions symbolic. ``verify=True`` runs the exported model in ONNX Runtime on ``args`` and
    compares with graphc eager. Accepted with no effect, as graphc has one tracer and writes one
    file: ``dynamo``, ``external_data``, ``report``, ``optimize``, ``profile``,
    ``dump_exported_program``, ``artifacts_dir``, ``do_constant_folding`` (constants are always
    folded), ``autograd_inlining``."""
    onnx = require_onnx()
    _check_options(model, dynamic_shapes=dynamic_shapes, custom_translation_table=custom_translation_table,
                   training=training, operator_export_type=operator_export_type, custom_opsets=custom_opsets,
                   export_modules_as_functions=export_modules_as_functions)
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"graphc.onnx.export: opset_version must be an int from {MIN_OPSET} to {newest} (the "
                         f"installed onnx package's newest), got {opset_version!r}")
    if isinstance(model, OptimizedModule):  # graphc.compile(module): export the module itself
        model = model._orig_mod
    if isinstance(args, Tensor):
        args = (args,)
    elif not isinstance(args, tuple):
        raise TypeError(f"graphc.onnx.export: args must be a tensor or a tuple of arguments, got "
                        f"{type(args).__name__}")
    kwargs = dict(kwargs or {})
    leaves: list = []
    spec = _flatten((args, kwargs), leaves)
    if not leaves:
        raise OnnxExporterError("graphc.onnx.export: the arguments hold no tensor; an ONNX model needs an input")
    in_names = _input_names(model, args, kwargs, len(leaves), input_names)
    dyn_in, dyn_out = _dynamic_axes(dynamic_axes, in_names, leaves)
    captured = capture(model, leaves, spec, dyn_in)
    out_names = _output_names(output_names, len(captured.graph.outputs))
    for key in dyn_out:
        if key not in out_names:
            raise ValueError(f"graphc.onnx.export: dynamic_axes names {key!r}, which is no input or output name "
                             f"(inputs: {in_names}, outputs: {out_names})")
    proto = _to_onnx(onnx, captured, in_names, out_names, dyn_in, dyn_out, opset, export_params,
                     keep_initializers_as_inputs)
    program = ONNXProgram(proto)
    if verbose:
        print(onnx.printer.to_text(proto.graph))
    if verify:
        _verify(program, model, args, kwargs, leaves)
    if f is not None:
        program.save(f)
    return program


def _check_options(model, *, dynamic_shapes, custom_translation_table, training, operator_export_type, custom_opsets,
                   export_modules_as_functions) -> None:
    """PyTorch's options that graphc can't honour are refused, never silently ignored."""
    from . import OperatorExportTypes, TrainingMode
    if dynamic_shapes is not None:
        raise NotImplementedError("graphc.onnx.export: dynamic_shapes is not supported; name the dynamic dimensions "
                                  "with dynamic_axes={'input_name': {0: 'batch'}}")
    for name, value in (("custom_translation_table", custom_translation_table), ("custom_opsets", custom_opsets),
                        ("export_modules_as_functions", export_modules_as_functions)):
        if value:
            raise NotImplementedError(f"graphc.onnx.export: {name} is not supported (graphc writes standard ONNX "
                                      "operators only)")
    if operator_export_type not in (None, OperatorExportTypes.ONNX):
        raise NotImplementedError(f"graphc.onnx.export: operator_export_type={operator_export_type!r} is not "
                                  "supported; graphc writes standard ONNX operators only (OperatorExportTypes.ONNX)")
    if training is not None:
        mode = TrainingMode(training)
        in_training = _model_training(model)
        if (mode is TrainingMode.EVAL and in_training) or (mode is TrainingMode.TRAINING and not in_training):
            want = "model.eval()" if mode is TrainingMode.EVAL else "model.train()"
            raise ValueError(f"graphc.onnx.export: training={mode!r}, but the model is in "
                             f"{'training' if in_training else 'eval'} mode; graphc exports the model in its current "
                             f"mode: call {want} before exporting (or pass training=TrainingMode.PRESERVE)")


def _verify(program: ONNXProgram, model, args: tuple, kwargs: dict, leaves: list) -> None:
    """``verify=True``: ONNX Runtime's outputs on the example equal graphc eager's. The eager run
    leaves the model's buffers as they were (BatchNorm's statistics in training mode)."""
    from ..autograd import grad_mode
    buffers = [(b, b.detach().clone()) for b in model.buffers()] if isinstance(model, Module) else []
    try:
        with grad_mode.no_grad():
            want: list = []
            _flatten(model(*args, **kwargs), want)
    finally:
        for b, saved in buffers:
            b._data[...] = saved._data
    for i, (g, w) in enumerate(zip(program(*leaves), want)):
        g, w = g.numpy(), w.detach().cpu().numpy()
        if g.shape != w.shape or not np.allclose(g, w, rtol=1e-3, atol=1e-5, equal_nan=True):
            why = " (in training mode, dropout draws other numbers in ONNX Runtime)" if _model_training(model) else ""
            raise OnnxExporterError(f"graphc.onnx.export: verify=True: output {i} of the exported model differs "
                                    f"from graphc eager's{why}")


def _model_training(model) -> bool:
    return bool(getattr(model, "training", False))


def _input_names(model, args: tuple, kwargs: dict, n: int, given: Sequence[str] | None) -> list[str]:
    """The forward's parameter names (``x``; ``x_0, x_1`` for tensors nested in one argument),
    overridden in order by ``input_names``."""
    fn = model.forward if isinstance(model, Module) else model
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = []
    for i, a in enumerate(list(args) + list(kwargs.values())):
        base = params[i] if i < len(args) and i < len(params) else (
            list(kwargs)[i - len(args)] if i >= len(args) else f"input_{i}")
        inner: list = []
        _flatten(a, inner)
        names += [base] if isinstance(a, Tensor) else [f"{base}_{k}" for k in range(len(inner))]
    given = list(given or [])
    if len(given) > n:
        raise ValueError(f"graphc.onnx.export: {len(given)} input_names for {n} input tensors")
    names = given + names[len(given):]
    if len(set(names)) != len(names):
        raise ValueError(f"graphc.onnx.export: input names must be unique, got {names}")
    return names


def _dynamic_axes(dynamic_axes, in_names: list[str], leaves: list) -> tuple[dict, dict]:
    """{leaf index: {axis: name}} for inputs, {other name (an output's): {axis: name}}."""
    dyn_in: dict[int, dict[int, str]] = {}
    dyn_out: dict[str, dict[int, str]] = {}
    for key, axes in (dynamic_axes or {}).items():
        if isinstance(axes, Mapping):
            named = {int(a): str(s) for a, s in axes.items()}
        else:
            named = {int(a): f"{key}_dynamic_axes_{k + 1}" for k, a in enumerate(axes)}
        if key in in_names:
            i = in_names.index(key)
            rank = leaves[i].ndim
            for a in named:
                if not -rank <= a < rank:
                    raise IndexError(f"graphc.onnx.export: dynamic axis {a} of input {key!r} is out of range for "
                                     f"its {rank} dimensions")
            dyn_in[i] = {a % rank: s for a, s in named.items()}
        else:
            dyn_out[key] = named
    return dyn_in, dyn_out


def _to_onnx(onnx, captured: Captured, in_names: list[str], out_names: list[str], dyn_in: dict, dyn_out: dict,
             opset: int, export_params: bool, keep_initializers_as_inputs: bool):
    helper = onnx.helper
    g = captured.graph
    symbols = {s: (in_names[i], axis) for s, (i, axis) in captured.symbols.items()}
    e = Emitter(opset, symbols)
    for n in in_names:
        e.names.add(n)
    names: dict[int, str] = {}
    inputs = []
    user = [v for v in g.inputs if v.role == "input"]
    for i, v in enumerate(user):
        names[id(v)] = in_names[i]
        dims = [dyn_in.get(i, {}).get(a, s) for a, s in enumerate(v.shape)]
        inputs.append(helper.make_tensor_value_info(in_names[i], onnx_dtype(v.dtype), dims))
    _state_inputs(e, captured, names, inputs, export_params, keep_initializers_as_inputs)
    for node in g.nodes:
        prim = node.prim
        at = f" (at {node.loc})" if node.loc else ""  # the user's line that made it
        e.where, e.loc = f"the {prim.name} node %{node.output.name}{at}", node.loc
        build = ONNX_OPS.get(prim)
        if build is None:
            why = UNSUPPORTED.get(prim, "no ONNX builder is registered for it")
            raise UnsupportedOperatorError(f"graphc.onnx.export: the model uses {prim.name!r}{at}, which can't be "
                                           f"exported to ONNX: {why}")
        args = [names[id(x)] if isinstance(x, Value) else x for x in captured.operands.get(id(node), node.inputs)]
        call = Call(node, args, captured.attrs.get(id(node), node.attrs),
                    [captured.shape(x) if isinstance(x, Value) else None for x in node.inputs],
                    captured.shape(node.output))
        out, have = build(e, call)
        names[id(node.output)] = e.cast(out, have, node.output.dtype)
    return _finish(onnx, e, g, captured, names, inputs, out_names, dyn_out, opset)


def _state_inputs(e: Emitter, captured: Captured, names: dict, inputs: list, export_params: bool,
                  keep_initializers_as_inputs: bool) -> None:
    """The graph inputs that read tensors (parameters, buffers, tensors made during forward): ONNX
    initializers (or graph inputs, without ``export_params``), or rebuilt at run time when their
    size follows a dynamic axis. Fills ``names`` (id(value) -> ONNX name) and ``inputs``."""
    helper = e.helper
    g = captured.graph
    outputs_used = {id(o) for o in g.outputs}
    for v in g.inputs:
        if v.role == "input" or (not v.users and id(v) not in outputs_used):
            continue
        if v.role == "rng":  # the key of a random op: ONNX Runtime draws its own numbers
            names[id(v)] = ""
            continue
        if v.role not in ("param", "buffer"):
            raise OnnxExporterError(f"graphc.onnx.export: the model reads {v.role} state during forward (a .grad or "
                                    "an optimizer's hyperparameter), which an ONNX model can't hold")
        t = captured.lifted[id(v)]
        data = np.asarray(t.detach().cpu().numpy())
        shape = captured.shape(v)
        if any(not isinstance(s, int) for s in shape):  # made in forward at a dynamic size: zeros(n, batch, h)
            names[id(v)] = rebuild(e, captured.constants[id(v)], captured.sizes, shape, v.dtype)
            continue
        datas = captured.constants.get(id(v), [data])
        if any(not np.array_equal(x, data, equal_nan=True) for x in datas):
            raise OnnxExporterError(
                "graphc.onnx.export: the model makes a tensor from data during forward whose values depend on the size "
                f"of a dynamic axis (a {list(data.shape)} {v.dtype.name} tensor); export can't compute it at run time. "
                "Build it from the input with tensor operations, or export without dynamic_axes for that axis.")
        path = captured.paths.get(id(v))  # fc1.weight (the tracer knows it)
        name = path or "const"
        if export_params or path is None:
            names[id(v)] = e.initializer(data, name)
            if keep_initializers_as_inputs:
                inputs.append(helper.make_tensor_value_info(names[id(v)], onnx_dtype(v.dtype), list(data.shape)))
        else:
            names[id(v)] = e.fresh(name)
            inputs.append(helper.make_tensor_value_info(names[id(v)], onnx_dtype(v.dtype), list(data.shape)))


def _output_names(given, n: int) -> list[str]:
    given = list(given or [])
    if len(given) > n:
        raise ValueError(f"graphc.onnx.export: {len(given)} output_names for {n} outputs")
    names = given + (["output"] if n == 1 else [f"output_{i}" for i in range(n)])[len(given):]
    if len(set(names)) != len(names):
        raise ValueError(f"graphc.onnx.export: output names must be unique, got {names}")
    return names


def _finish(onnx, e: Emitter, g, captured: Captured, names: dict, inputs: list, out_names: list[str],
            dyn_out: dict, opset: int):
    """Name the outputs, describe them, and wrap everything into a checked-in-shape ModelProto."""
    helper = onnx.helper
    produced = {o for n in e.nodes for o in n.output}
    rename: dict[str, str] = {}
    outputs = []
    for v, want in zip(g.outputs, out_names):
        have = names[id(v)]
        if have in produced and have not in rename and want not in e.names:
            rename[have] = want
            e.names.add(want)
        else:  # an input, an initializer, or a tensor returned twice: an Identity gives it its name
            want = want if want not in e.names else e.fresh(want)
            e.names.add(want)
            e.nodes.append(helper.make_node("Identity", [have], [want]))
        named = dyn_out.get(want, {})
        dims = [named.get(a, str(s) if isinstance(s, Dim) else s if isinstance(s, int) else None)  # None: unknown
                for a, s in enumerate(captured.shape(v))]
        outputs.append(helper.make_tensor_value_info(want, onnx_dtype(v.dtype), dims))
    for n in e.nodes:
        for k, x in enumerate(n.input):
            if x in rename:
                n.input[k] = rename[x]
        for k, x in enumerate(n.output):
            if x in rename:
                n.output[k] = rename[x]
    graph = helper.make_graph(e.nodes, g.name, inputs, outputs, initializer=e.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="graphc")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model
