"""``graphc.jit``: saved compiled programs (the role of TorchScript's ``torch.jit.trace``/``save``/``load``).

``trace(model, example_inputs)`` runs the model once on symbolic tensors (the tracer of
``graphc.compile``) and keeps the IR graph of the ops it ran, with the model's parameters and
buffers as named graph inputs: a :class:`Program`. ``save(program, path)`` writes one safetensors
file: the weights as its tensors (named as in ``state_dict``) and, in its string metadata, the IR
text, a small JSON description of the inputs and outputs, a format version and a SHA-256 over all
of it. ``load(path)`` checks the version and the digest, parses the IR text with the IR's own
parser (nothing from the file is executed, evaluated or unpickled) and compiles it with the numpy
backend, so the model's Python source is not needed. Generated code names its variables after
canonical names, never after names read from the file.

The digest detects a file changed after it was saved (corruption, an edit); like any checksum
stored with the data it does not stop someone who rewrites the digest too. What protects you
from a hostile file is that loading only parses: the worst it can do is compute wrong numbers.

A program is specialized like a compiled graph: the input shapes and dtypes of the example, the
model's train/eval mode, and the Python control flow the example took. It computes without
autograd (deployment); in training mode BatchNorm's running statistics are still updated in the
program's own buffers and dropout draws from graphc's default generator at every call.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Sequence

import numpy as np

from graphc.ir.graph import Graph
from graphc.ir.printer import ParseError, parse_graph, print_graph
from graphc.ir.verify import verify

from . import safetensors
from .autograd import grad_mode
from .serialization import CheckpointError
from .tensors import Tensor

__all__ = ["trace", "save", "load", "script", "ignore", "unused", "Program", "ProgramFileError",
           "TracingCheckError"]

FORMAT = "graphc.jit"
FORMAT_VERSION = 1  # a file of a higher version is refused: an older graphc can't know its meaning
_tracing = threading.local()  # is_tracing(): set while trace() runs the model in this thread
# weight names usable as IR value names as they are; ``0.weight`` (a Sequential's) becomes
# ``_0.weight``, so that it does not read as a field of node output ``%0``
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


class ProgramFileError(CheckpointError):
    """The file is not a valid graphc program (corrupted, tampered with, or from a newer graphc)."""


class TracingCheckError(RuntimeError):
    """``trace(..., check_trace=True)``: the traced program does not reproduce the model's outputs."""


# ---- the program --------------------------------------------------------------------------

class Program:
    """A traced program: an IR graph, its weights by name, and how calls map to graph inputs.

    ``program(*tensors)`` runs it (compiled by the numpy backend on the first call);
    ``program.graph`` is the IR graph (``print(program.graph)`` shows its text), ``program.code``
    the same text; ``state_dict()``, ``parameters()`` and ``buffers()`` give its weights."""

    def __init__(self, graph: Graph, weights: "OrderedDict[str, Tensor]", bindings: dict[str, str],
                 out_spec: Any, mutations: list[str], params: set[str]) -> None:
        self._graph = graph
        self._weights = weights          # state_dict name -> tensor (shared with the traced model)
        self._bindings = bindings        # IR input name -> state_dict name (params, buffers, constants)
        self._out_spec = out_spec        # output structure (JSON-able; see _spec_to_json)
        self._mutations = mutations      # state_dict names of buffers written back, in output order
        self._params = params
        self._user_inputs = [v for v in graph.inputs if v.role == "input"]
        self._compiled = None
        self._lock = threading.Lock()    # compiles once when first called from several threads
        self.training = False

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def code(self) -> str:
        return print_graph(self._graph)

    def state_dict(self) -> "OrderedDict[str, Tensor]":
        return OrderedDict(self._weights)

    def named_parameters(self):
        return ((k, t) for k, t in self._weights.items() if k in self._params)

    def parameters(self):
        return (t for _, t in self.named_parameters())

    def named_buffers(self):
        return ((k, t) for k, t in self._weights.items() if k not in self._params)

    def buffers(self):
        return (t for _, t in self.named_buffers())

    def eval(self) -> "Program":
        """Kept for PyTorch code that calls it after ``jit.load``: the mode the model was traced
        in is part of the graph and does not change."""
        return self

    def __repr__(self) -> str:
        ins = ", ".join(f"{v.dtype.short}{list(v.shape)}" for v in self._user_inputs)
        return f"graphc.jit.Program({self._graph.name}({ins}), {len(self._weights)} weights)"

    def forward(self, *args):
        return self(*args)

    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError(f"graphc.jit program {self._graph.name} takes positional tensors only, "
                            f"got keyword arguments {sorted(kwargs)}")
        if len(args) != len(self._user_inputs):
            raise TypeError(f"graphc.jit program {self._graph.name} takes {len(self._user_inputs)} tensor "
                            f"argument(s), got {len(args)}")
        for i, (a, v) in enumerate(zip(args, self._user_inputs)):
            if not isinstance(a, Tensor):
                raise TypeError(f"graphc.jit program {self._graph.name}: argument {i} must be a Tensor, "
                                f"got {type(a).__name__}")
            if tuple(a.shape) != v.shape or a.dtype is not v.dtype:
                raise RuntimeError(
                    f"graphc.jit program {self._graph.name}: argument {i} is {a.dtype.short}{list(a.shape)}, but the "
                    f"program was traced for {v.dtype.short}{list(v.shape)}; shapes are specialized: trace the "
                    "model again with an example of this shape")
            if a.device.type != "cpu":
                raise RuntimeError(f"graphc.jit program {self._graph.name}: argument {i} is on {a.device}; "
                                   "programs run on the cpu (numpy backend)")
        from .compiler.api import _input_array
        from .random import draw_key
        arrays = []
        user = iter(args)
        for v in self._graph.inputs:
            if v.role == "input":
                arrays.append(_input_array(next(user)._data, np))
            elif v.role == "rng":
                arrays.append(draw_key())
            else:
                arrays.append(_input_array(self._weights[self._bindings[v.name]]._data, np))
        outs = self._compiled_graph()(arrays)
        n_user = len(outs) - len(self._mutations)
        for name, new in zip(self._mutations, outs[n_user:]):
            t = self._weights[name]
            t._data[...] = new
            t._version.value += 1
        results = [Tensor._make(o) for o in outs[:n_user]]
        return _spec_build(self._out_spec, results)

    def _compiled_graph(self):
        with self._lock:
            if self._compiled is None:
                self._compiled = _compile(self._graph)
            return self._compiled


def _compile(graph: Graph):
    """Optimize and generate numpy code for (a copy of) ``graph``: the compile pipeline without
    autodiff (programs compute without autograd)."""
    from graphc.passes.manager import PassManager, default_pipeline, lowering_pipeline
    from graphc.runtime import backends
    g = parse_graph(print_graph(graph))  # passes rewrite their graph; the program keeps its own
    # generated code names its variables after IR values and the graph: use canonical names, not
    # the weights' (``features.0.weight`` is no Python identifier) or whatever a file holds
    g.name = "program"
    for i, v in enumerate(g.inputs):
        v.name = f"a{i}"
    backend = backends.get("numpy", "cpu")
    g = PassManager(default_pipeline(), verify="end", record=False).run(g)
    g = PassManager(lowering_pipeline([], backend.in_kernels), verify="end", record=False).run(g)
    return backend.compile(g, "jit_program")


# ---- trace --------------------------------------------------------------------------------

def trace(func: Callable, example_inputs=None, optimize=None, check_trace: bool = True, check_inputs=None,
          check_tolerance: float = 1e-5, strict: bool = True, *, example_kwarg_inputs=None) -> Program:
    """Run ``func`` (an ``nn.Module`` or a function) on ``example_inputs`` (a tensor or a tuple of
    tensors) and return the :class:`Program` of the ops it ran. ``check_trace``: run the program
    on the example too and raise :class:`TracingCheckError` if it differs from ``func`` (skipped
    for programs that draw random numbers or update buffers)."""
    from .compiler.api import _flatten
    from .compiler.tracing import GraphBreak, Trace
    from .nn.modules.module import Module
    if example_kwarg_inputs is not None:
        raise NotImplementedError("graphc.jit.trace: example_kwarg_inputs is not supported; pass the inputs "
                                  "positionally as example_inputs")
    if optimize is not None or check_inputs is not None:
        raise NotImplementedError("graphc.jit.trace: optimize= and check_inputs= are not supported")
    if example_inputs is None:
        raise RuntimeError("graphc.jit.trace: example_inputs is required (a tensor or a tuple of tensors)")
    args = (example_inputs,) if isinstance(example_inputs, Tensor) else example_inputs
    if not isinstance(args, (tuple, list)) or not all(isinstance(a, Tensor) for a in args):
        raise TypeError("graphc.jit.trace: example_inputs must be a tensor or a tuple of tensors, got "
                        f"{type(example_inputs).__name__}")
    if isinstance(func, Program):
        return func
    name = type(func).__name__ if isinstance(func, Module) else getattr(func, "__name__", "program")
    name = re.sub(r"\W", "_", name) or "program"
    tr = Trace(name, args[0].device if args else None)
    _tracing.active = True
    try:
        with grad_mode.no_grad(), tr:
            syms = [tr.tensor_input(t) for t in args]
            out = func(*syms)
            leaves: list = []
            spec = _flatten(out, leaves)
            out_values = [tr.output_value(o) for o in leaves]
            leaked = tr.adopt_buffer_assignments()
            if leaked:
                raise GraphBreak(f"the model stores a traced tensor in {leaked} with a new shape or dtype")
    except GraphBreak as gb:
        raise RuntimeError(f"graphc.jit.trace: the model can't be captured as one graph: {gb}. A traced "
                           "program records tensor operations only; data-dependent Python (.item(), "
                           "if on a tensor, .numpy()) has no graph form") from None
    finally:
        _tracing.active = False
    g = tr.graph
    if any(a.device.type != "cpu" for a in args):
        raise RuntimeError("graphc.jit.trace: programs run on the cpu (numpy backend); move the model and the "
                           "example inputs to the cpu first")
    if any(v.role in ("grad", "hyper") for v in g.inputs):
        raise RuntimeError("graphc.jit.trace: the function reads .grad or optimizer state; trace the model's "
                           "forward only")
    modules = [func] if isinstance(func, Module) else [m for m in tr.modules]
    bindings, weights, params = _name_weights(g, tr, modules)
    user_in = [v for v in g.inputs if v.role == "input"]
    for i, (v, sym) in enumerate(zip(user_in, syms)):
        if sym._value is not v:
            raise RuntimeError(f"graphc.jit.trace: the model modifies its input {i} in place; programs can't "
                               "write into their arguments (clone the input inside the model)")
    mutations = []
    for t, new in tr.mutations.values():
        mutations.append(next(k for k, w in weights.items() if w is t))
        out_values.append(new)
    g.set_outputs(out_values)
    g.rename()
    verify(g)
    program = Program(g, weights, bindings, _spec_to_json(spec), mutations, params)
    if check_trace and not mutations and not any(v.role == "rng" for v in g.inputs):
        _check(func, program, args, check_tolerance)
    return program


def _name_weights(g: Graph, tr, modules: list) -> tuple[dict, "OrderedDict[str, Tensor]", set]:
    """The program's weights: the traced modules' ``state_dict`` (its tensors shared), plus other
    tensors the graph reads (``constant<i>``). Each lifted graph input is renamed after its weight
    where the name is a valid IR name; returns (IR input name -> weight name, weights, parameters)."""
    from .nn.modules.module import Module
    weights: "OrderedDict[str, Tensor]" = OrderedDict()
    params: set[str] = set()
    for m in modules:
        if isinstance(m, Module):
            for k, t in m.state_dict(keep_vars=True).items():
                weights.setdefault(k, t)
            params.update(k for k, _ in m.named_parameters(remove_duplicate=False))
    keys: dict[int, str] = {}
    for k, t in weights.items():
        keys.setdefault(id(t), k)
    by_value = {id(v): t for v, t in tr.lifted.values()}
    taken = {v.name for v in g.inputs if v.role in ("input", "rng")}
    bindings: dict[str, str] = {}
    for v in g.inputs:
        if v.role in ("input", "rng"):
            continue
        t = by_value[id(v)]
        key = keys.get(id(t))
        if key is None:  # a tensor outside the module's state: a global, a non-persistent buffer
            key = f"constant{len(weights)}"
            while key in weights:
                key = "_" + key
            keys[id(t)] = key
            weights[key] = t
        ir_name = key if _NAME.fullmatch(key) else "_" + key
        if not _NAME.fullmatch(ir_name) or ir_name in taken:
            ir_name = f"w{len(bindings)}"
        taken.add(ir_name)
        v.name = ir_name
        bindings[ir_name] = key
    return bindings, weights, params


def _check(func: Callable, program: Program, args: Sequence[Tensor], tol: float) -> None:
    with grad_mode.no_grad():
        expected, got = func(*args), program(*args)
    from .compiler.api import _flatten
    e_leaves: list = []
    g_leaves: list = []
    _flatten(expected, e_leaves)
    _flatten(got, g_leaves)
    for i, (e, o) in enumerate(zip(e_leaves, g_leaves)):
        a, b = e.detach().numpy(), o.numpy()
        if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True):
            raise TracingCheckError(
                f"graphc.jit.trace: output {i} of the traced program differs from the model's (largest difference "
                f"{np.max(np.abs(a.astype(np.float64) - b)) if a.shape == b.shape else 'shape'}); the model may "
                "depend on something the trace can't see. Pass check_trace=False to skip this check")


# ---- output structure as JSON (saved in the file, rebuilt without executing anything) ------

def _spec_to_json(spec) -> Any:
    kind = spec[0]
    if kind == "T":
        return {"tensor": spec[1]}
    if kind in ("list", "tuple"):
        return {kind: [_spec_to_json(s) for s in spec[1]]}
    if kind == "nt":
        return {"tuple": [_spec_to_json(s) for s in spec[2]]}  # a namedtuple comes back as a tuple
    if kind == "dict":
        if not all(isinstance(k, str) for k, _ in spec[2]):
            raise TypeError("graphc.jit.trace: a dict returned by the model must have str keys")
        return {"dict": [[k, _spec_to_json(s)] for k, s in spec[2]]}
    c = spec[1]
    if c is None or isinstance(c, (bool, int, float, str)):
        return {"const": c}
    raise TypeError(f"graphc.jit.trace: the model returns a {type(c).__name__}; programs return tensors, "
                    "numbers, strings, None and tuples/lists/dicts of them")


def _spec_build(spec, leaves: list) -> Any:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ProgramFileError(f"bad output description {spec!r:.80}")
    (kind, v), = spec.items()
    if kind == "tensor":
        return leaves[v]
    if kind == "list":
        return [_spec_build(s, leaves) for s in v]
    if kind == "tuple":
        return tuple(_spec_build(s, leaves) for s in v)
    if kind == "dict":
        return {k: _spec_build(s, leaves) for k, s in v}
    if kind == "const":
        return v
    raise ProgramFileError(f"bad output description {spec!r:.80}")


def _check_spec(spec, n_outputs: int) -> None:
    """An output description read from a file: well formed, each tensor index in range."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ProgramFileError(f"bad output description {spec!r:.80}")
    (kind, v), = spec.items()
    if kind == "tensor":
        if type(v) is not int or not 0 <= v < n_outputs:
            raise ProgramFileError(f"the output description names tensor {v!r}, the graph has {n_outputs} outputs")
    elif kind in ("list", "tuple"):
        if not isinstance(v, list):
            raise ProgramFileError(f"bad output description {spec!r:.80}")
        for s in v:
            _check_spec(s, n_outputs)
    elif kind == "dict":
        if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in v):
            raise ProgramFileError(f"bad output description {spec!r:.80}")
        for _, s in v:
            _check_spec(s, n_outputs)
    elif kind != "const" or not (v is None or isinstance(v, (bool, int, float, str))):
        raise ProgramFileError(f"bad output description {spec!r:.80}")


# ---- save / load --------------------------------------------------------------------------

def _digest(ir: str, description: str, tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    for part in (FORMAT, str(FORMAT_VERSION), ir, description):
        data = part.encode()
        h.update(len(data).to_bytes(8, "little") + data)
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name]._data)
        head = json.dumps([name, arr.dtype.str, list(arr.shape)]).encode()
        h.update(len(head).to_bytes(8, "little") + head)
        h.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def save(m: Program, f, _extra_files=None) -> None:
    """Write ``m`` to ``f`` (a path or a binary file object) as one safetensors file."""
    if not isinstance(m, Program):
        raise TypeError(f"graphc.jit.save expects a program made by graphc.jit.trace, got {type(m).__name__}")
    if _extra_files:
        raise NotImplementedError("graphc.jit.save: _extra_files is not supported")
    ir = print_graph(m._graph)
    description = json.dumps({"bindings": m._bindings, "outputs": m._out_spec, "mutations": m._mutations,
                              "parameters": sorted(m._params), "state": list(m._weights)}, sort_keys=True)
    tensors = {k: t.detach() for k, t in m._weights.items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "ir": ir, "program": description,
                "sha256": _digest(ir, description, tensors)}
    data = safetensors.save(tensors, metadata)
    if hasattr(f, "write"):
        f.write(data)
    else:
        with open(f, "wb") as fh:
            fh.write(data)


def load(f, map_location=None, _extra_files=None) -> Program:
    """Read a program written by :func:`save` from ``f`` (a path or a binary file object). The file
    is checked (format, version, SHA-256 of the IR, the description and every weight) before its
    IR text is parsed; nothing in it is executed."""
    if map_location is not None and str(map_location) != "cpu":
        raise NotImplementedError("graphc.jit.load: programs run on the cpu; map_location must be None or 'cpu'")
    if _extra_files:
        raise NotImplementedError("graphc.jit.load: _extra_files is not supported")
    if hasattr(f, "read"):
        data, src = f.read(), "the file object"
    else:
        src = repr(os.fsdecode(f))
        with open(f, "rb") as fh:
            data = fh.read()
    try:
        tensors, meta = safetensors.load_with_metadata(data)
    except safetensors.SafetensorError as e:
        raise ProgramFileError(f"graphc.jit.load: {src} is not a graphc program file: {e}") from None
    meta = meta or {}
    if meta.get("format") != FORMAT:
        raise ProgramFileError(f"graphc.jit.load: {src} is a safetensors file but not a graphc program (no "
                               f"'format': '{FORMAT}' in its metadata); weights alone load with "
                               "graphc.safetensors.load_file")
    version = meta.get("format_version", "")
    if not version.isdigit():
        raise ProgramFileError(f"graphc.jit.load: {src} has an invalid format version {version!r}")
    if int(version) > FORMAT_VERSION:
        raise ProgramFileError(f"graphc.jit.load: {src} was written by a newer graphc (program format version "
                               f"{version}; this graphc reads up to {FORMAT_VERSION}); upgrade graphc to load it")
    ir, description = meta.get("ir", ""), meta.get("program", "")
    if meta.get("sha256") != _digest(ir, description, tensors):
        raise ProgramFileError(f"graphc.jit.load: {src} failed its integrity check (SHA-256 of the IR and the "
                               "weights): the file was modified or corrupted after it was saved")
    try:
        g = parse_graph(ir)
        verify(g)
    except (ParseError, RuntimeError) as e:
        raise ProgramFileError(f"graphc.jit.load: {src}: the IR does not parse: {e}") from None
    try:
        desc = json.loads(description)
        bindings, out_spec = dict(desc["bindings"]), desc["outputs"]
        mutations, params, order = list(desc["mutations"]), set(desc["parameters"]), list(desc["state"])
    except (ValueError, KeyError, TypeError) as e:
        raise ProgramFileError(f"graphc.jit.load: {src}: bad program description ({e})") from None
    for v in g.inputs:
        if v.role in ("input", "rng"):
            continue
        t = tensors.get(bindings.get(v.name, ""))
        if t is None:
            raise ProgramFileError(f"graphc.jit.load: {src}: graph input %{v.name} has no weight in the file")
        if tuple(t.shape) != v.shape or t.dtype is not v.dtype:
            raise ProgramFileError(f"graphc.jit.load: {src}: weight {bindings[v.name]!r} is "
                                   f"{t.dtype.short}{list(t.shape)}, the graph reads {v.dtype.short}{list(v.shape)}")
    if any(m not in tensors for m in mutations) or len(mutations) > len(g.outputs):
        raise ProgramFileError(f"graphc.jit.load: {src}: the buffers it updates are not all in the file")
    _check_spec(out_spec, len(g.outputs) - len(mutations))
    if sorted(order) != sorted(tensors):
        raise ProgramFileError(f"graphc.jit.load: {src}: the weights in the file are not the ones its description lists")
    program = Program(g, OrderedDict((k, tensors[k]) for k in order), bindings, out_spec, mutations,
                      params & set(tensors))
    try:  # compiled now, so a graph the compiler rejects is refused here rather than at the first call
        program._compiled_graph()
    except Exception as e:  # the compiler's own message names the op; the file is what is wrong
        raise ProgramFileError(f"graphc.jit.load: {src}: the program does not compile: {type(e).__name__}: {e}") from None
    return program


# ---- the rest of the torch.jit surface PyTorch code meets -----------------------------------

def script(obj=None, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """TorchScript compiles Python source; graphc has no script compiler."""
    raise NotImplementedError(
        "graphc.jit.script is not supported: graphc has no TorchScript compiler. Use graphc.jit.trace(model, "
        "example_inputs) to capture the model as a program (save it with graphc.jit.save), or graphc.compile "
        "to speed it up in Python")


def ignore(drop=False, **kwargs):
    """``@torch.jit.ignore`` (with or without arguments): the function is left as it is (graphc
    only traces, and a trace runs the Python it meets)."""
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    """``@torch.jit.unused``: left as it is (see :func:`ignore`)."""
    return fn


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    """True while :func:`trace` runs the model (in that thread)."""
    return getattr(_tracing, "active", False)
