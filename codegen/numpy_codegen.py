"""numpy code generation: one readable Python function per graph, one statement per node.

Each primitive has an entry in ``LOWERINGS``: a function from (node, operand expressions) to a
numpy expression. Primitives without a hand-written expression lower to a call of their numpy
reference semantics (``ir.prims``), which is what they mean by definition.
"""
from __future__ import annotations

import keyword
from typing import Callable

import numpy as np

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Node, Value
from graphc.ir.primitive import PRIMITIVES, Primitive

Lowering = Callable[[Node, list[str]], str]

# Generated code is cached on disk; any change to this generator must invalidate those entries.
with open(__file__, "rb") as _f:
    VERSION = __import__("hashlib").sha256(_f.read()).hexdigest()[:16]
LOWERINGS: dict[Primitive, Lowering] = {}


def _ufunc(name: str) -> Lowering:
    return lambda node, a: f"np.{name}({', '.join(a)})"


def _impl_call(node: Node, a: list[str]) -> str:
    args = ", ".join(list(a) + [f"{k}={_literal(v)}" for k, v in node.attrs.items()])
    return f"_fix(_impl[{node.prim.name!r}]({args}), {node.output.dtype.np.name!r})"


def _literal(v) -> str:
    from graphc.ir.dtypes import DType
    if isinstance(v, DType):
        return f"_dtypes[{v.name!r}]"
    if isinstance(v, float):
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return f"float('{v}')"
    if isinstance(v, tuple):
        return "(" + "".join(_literal(x) + ", " for x in v) + ")"
    return repr(v)


_OUT_CAPABLE: list[Primitive] = []
_UFUNCS: dict[Primitive, np.ufunc] = {}  # lowerings that are one numpy ufunc call on the operands
for _p, _name in [
    (P.neg, "negative"), (P.abs, "abs"), (P.exp, "exp"), (P.exp2, "exp2"), (P.expm1, "expm1"),
    (P.log, "log"), (P.log2, "log2"), (P.log10, "log10"), (P.log1p, "log1p"), (P.sin, "sin"),
    (P.cos, "cos"), (P.tan, "tan"), (P.asin, "arcsin"), (P.acos, "arccos"), (P.atan, "arctan"),
    (P.sinh, "sinh"), (P.cosh, "cosh"), (P.tanh, "tanh"), (P.sqrt, "sqrt"), (P.isnan, "isnan"),
    (P.isinf, "isinf"), (P.isfinite, "isfinite"), (P.logical_not, "logical_not"),
    (P.bitwise_not, "invert"), (P.add, "add"), (P.sub, "subtract"), (P.mul, "multiply"),
    (P.div, "true_divide"), (P.floor_divide, "floor_divide"), (P.remainder, "remainder"),
    (P.pow, "power"), (P.maximum, "maximum"), (P.minimum, "minimum"), (P.atan2, "arctan2"),
    (P.eq, "equal"), (P.ne, "not_equal"), (P.lt, "less"), (P.le, "less_equal"), (P.gt, "greater"),
    (P.ge, "greater_equal"), (P.logical_and, "logical_and"), (P.logical_or, "logical_or"),
    (P.logical_xor, "logical_xor"), (P.bitwise_and, "bitwise_and"), (P.bitwise_or, "bitwise_or"),
    (P.bitwise_xor, "bitwise_xor"), (P.matmul, "matmul"), (P.sign, "sign"),
]:
    LOWERINGS[_p] = _ufunc(_name)
    _OUT_CAPABLE.append(_p)
    _UFUNCS[_p] = getattr(np, _name)

LOWERINGS[P.where] = lambda n, a: f"_fix(np.where({', '.join(a)}), {n.output.dtype.np.name!r})"
LOWERINGS[P.reshape] = lambda n, a: f"np.reshape({a[0]}, {n.attrs['shape']!r})"
LOWERINGS[P.permute] = lambda n, a: f"np.transpose({a[0]}, {n.attrs['dims']!r})"
LOWERINGS[P.expand] = lambda n, a: f"np.broadcast_to({a[0]}, {n.attrs['shape']!r})"
LOWERINGS[P.cast] = lambda n, a: f"np.asarray({a[0]}).astype(np.{n.attrs['dtype'].np.name})"
LOWERINGS[P.copy] = lambda n, a: f"np.array({a[0]})"
LOWERINGS[P.stop_gradient] = lambda n, a: a[0]
LOWERINGS[P.relu] = lambda n, a: f"np.maximum({a[0]}, 0)"
# scipy's ufuncs run in one pass and accept out= (scipy is imported only if a graph uses them)
LOWERINGS[P.sigmoid] = lambda n, a: f"_special().expit({a[0]})"
LOWERINGS[P.erf] = lambda n, a: f"_special().erf({a[0]})"
_OUT_CAPABLE += [P.relu, P.sigmoid, P.erf]
LOWERINGS[P.full] = lambda n, a: f"np.full({n.attrs['shape']!r}, {_literal(n.attrs['value'])}, np.{n.output.dtype.np.name})"
LOWERINGS[P.concat] = lambda n, a: f"np.concatenate(({', '.join(a)},), axis={n.attrs['axis']})"
for _p, _name in [(P.sum, "sum"), (P.prod, "prod"), (P.amax, "max"), (P.amin, "min")]:
    LOWERINGS[_p] = (lambda name: lambda n, a: (
        f"np.{name}({a[0]}, axis={n.attrs['dims']!r}, keepdims={n.attrs['keepdim']})"))(_name)
for _p in PRIMITIVES.values():
    LOWERINGS.setdefault(_p, _impl_call)

# Lowerings that are a single numpy call accepting ``out=`` (the memory planner's targets).
WRITES_INTO = frozenset(_OUT_CAPABLE) | {P.sum, P.prod, P.amax, P.amin}
# Lowerings that always return a new array. Any other result may be a view of an operand
# (movement ops, reference implementations built on strided views such as unfold).
FRESH = WRITES_INTO | {P.where, P.cast, P.copy, P.full, P.concat}

# Primitives numpy code cannot express (their output shape depends on data).
UNSUPPORTED = {P.nonzero: "nonzero has a data-dependent output shape",
               PRIMITIVES["fused"]: "fused nodes are inlined before numpy codegen (graphc.ir.fused.inline)",
               PRIMITIVES["composite"]: "composite nodes are expanded by the decompose pass before codegen"}
for _p in UNSUPPORTED:
    LOWERINGS.pop(_p, None)


def _numpy_dtype_differs(n: Node, casts: list) -> bool:
    """Whether numpy's own result dtype for a ufunc lowering differs from the graph's type."""
    uf = _UFUNCS.get(n.prim)
    if uf is None:
        return False
    types = []
    for x, c in zip(n.inputs, casts):
        if isinstance(x, Value):
            types.append(np.dtype((c or x.dtype).np))
        elif isinstance(x, bool):
            types.append(np.dtype(np.bool_))
        else:
            types.append(type(x))  # Python int/float: weak scalars (NEP 50)
    try:
        res = uf.resolve_dtypes(tuple(types) + (None,) * uf.nout)
    except Exception:  # no numpy loop for these dtypes: let the cast decide
        return True
    return res[-1] != np.dtype(n.output.dtype.np)


def _ident(v: Value) -> str:
    name = "".join(c if c.isalnum() else "_" for c in v.name)
    if not name or name[0].isdigit():
        name = "v" + name
    return name + "_" if keyword.iskeyword(name) else name


def generate(g: Graph, fn_name: str = "kernel", plan=None, labels: dict | None = None,
             saved_from: int | None = None) -> str:
    """Python source of ``def fn_name(inputs...): ... return (outputs...)``. With a memory plan,
    planned values are written into the preallocated buffers ``_buf[i]`` with ``out=``. Outputs
    from index ``saved_from`` on are values saved for backward: returned as they are (they may be
    graph inputs; the runtime checks those for in-place changes instead of copying them)."""
    from graphc.ir.printer import format_attr
    from graphc.ir.graph import format_type
    names: dict[int, str] = {}
    for v in g.inputs:
        names[id(v)] = _ident(v)
    lines = [f"def {fn_name}({', '.join(names[id(v)] for v in g.inputs)}):"]
    current_label = None
    for n in g.nodes:
        if n.prim in UNSUPPORTED:
            raise NotImplementedError(f"numpy backend: {UNSUPPORTED[n.prim]}")
        args = [names[id(x)] if isinstance(x, Value) else _literal(x) for x in n.inputs]
        casts = n.prim.operand_casts(tuple(n.inputs), n.attrs)
        args = [f"{a}.astype(np.{c.np.name})" if c is not None else a for a, c in zip(args, casts)]
        out = n.output
        names[id(out)] = _ident(out)
        label = (labels or {}).get(id(n))
        if label is not None and label != current_label:
            lines.append(f"    # -- {label}")
        current_label = label
        attrs = "".join(f" {k}={format_attr(v)}" for k, v in n.attrs.items())
        lines.append(f"    # %{out.name}: {format_type(out.type)} = {n.prim.name}{attrs}")
        expr = LOWERINGS[n.prim](n, args)
        buf = plan.buffer_of(out) if plan is not None else None
        if _numpy_dtype_differs(n, casts):  # e.g. bool // bool is int8 in numpy: cast, no out=
            expr, buf = f"_fix({expr}, {out.dtype.np.name!r})", None
        if buf is not None:
            expr = f"{expr[:-1]}, out=_buf[{buf}])"
        lines.append(f"    {names[id(out)]} = {expr}")
    # The caller owns the outputs: one that may alias a graph input, a reused buffer or another
    # output, or that is a read-only broadcast, is copied.
    roots: set[int] = set()
    outs = []
    for i, o in enumerate(g.outputs):
        if saved_from is not None and i >= saved_from:
            outs.append(f"np.asarray({names[id(o)]})")
            continue
        root = _owned_root(o, plan)
        copy = root is None or id(root) in roots
        if root is not None:
            roots.add(id(root))
        outs.append(f"np.{'array' if copy else 'asarray'}({names[id(o)]})")
    outs = ", ".join(outs)
    lines.append(f"    return ({outs}{',' if len(g.outputs) == 1 else ''})")
    return "\n".join(lines) + "\n"


_VIEWS = frozenset({P.reshape, P.permute, P.slice, P.stop_gradient})  # writable views, no copy


def _owned_root(v: Value, plan) -> Value | None:
    """The value whose new array ``v`` is (a view of), if the generated code creates that array
    and keeps no other reference to it; None when ``v`` may share memory with something else."""
    while v.producer is not None and v.producer.prim in _VIEWS and isinstance(v.producer.inputs[0], Value):
        v = v.producer.inputs[0]
    if v.producer is None or v.producer.prim not in FRESH:
        return None
    if plan is not None and plan.buffer_of(v) is not None:
        return None
    return v


def _fix(out, dtype_name: str) -> np.ndarray:
    out = np.asarray(out)
    return out if out.dtype.name == dtype_name else out.astype(dtype_name)


def _special():
    import scipy.special
    return scipy.special


def namespace() -> dict:
    from graphc.ir import dtypes
    return {"np": np, "_impl": {name: p.impl for name, p in PRIMITIVES.items()}, "_fix": _fix,
            "_special": _special, "_dtypes": {d.name: d for d in dtypes.ALL_DTYPES}}


def compile_source(src: str, fn_name: str = "kernel", buffers=()):
    ns = namespace()
    ns["_buf"] = [np.empty(shape, dtype.np) for shape, dtype in buffers]
    exec(compile(src, f"<graphc:{fn_name}>", "exec"), ns)
    return ns[fn_name]
