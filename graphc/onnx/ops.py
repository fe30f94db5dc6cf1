"""ONNX export's table keyed by primitive: ``ONNX_OPS[prim]`` writes the ONNX nodes that compute
one IR node, or ``UNSUPPORTED[prim]`` says why ONNX can't (the export error). Every primitive is
in exactly one of them (``tests/test_onnx_export.py`` checks it).

A builder gets the emitter and a ``Call`` (the node's operands as ONNX tensor names or numbers,
its attributes, the shapes of its operands; numbers that follow a dynamic axis are ``Dim``s) and
returns the name of the result and its dtype; the driver casts that to the node's dtype.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir import special_prims
from graphc.ir.call import call
from graphc.ir.composite import composite
from graphc.ir.dtypes import DType
from graphc.ir.fused import fused
from graphc.ir.graph import Node, Value
from graphc.ir.primitive import PRIMITIVES, Primitive

from .dims import Dim
from .emitter import INT64_MAX, INT64_MIN, Emitter, onnx_dtype


@dataclass
class Call:
    node: Node
    args: list     # per operand: the ONNX name of an IR value, or a number (maybe a Dim)
    attrs: dict
    shapes: list   # per operand: its shape (entries maybe Dims); None for a number
    out_shape: tuple

    @property
    def out(self) -> Value:
        return self.node.output

    def dtype(self, i: int) -> DType:
        x = self.node.inputs[i]
        return x.dtype if isinstance(x, Value) else dt.scalar_dtype(x)


Builder = Callable[[Emitter, Call], tuple[str, DType]]


def _compute_dtype(c: Call) -> DType | None:
    prim = c.node.prim
    return None if prim.operand_dtype is None else prim.operand_dtype(*c.node.inputs, **c.node.attrs)


def _operand(e: Emitter, c: Call, i: int, d: DType | None = None) -> str:
    """Operand ``i`` as an ONNX tensor of dtype ``d`` (default: its own)."""
    x, src = c.args[i], c.dtype(i)
    d = d or src
    if isinstance(x, str):
        return e.cast(x, src, d)
    return e.scalar(x, d)


def _promoted(e: Emitter, c: Call) -> tuple[list[str], DType]:
    """The operands cast as the primitive computes (index operands keep theirs)."""
    d = _compute_dtype(c)
    nondiff = c.node.prim.nondiff_operands
    names = [_operand(e, c, i, None if i in nondiff else d) for i in range(len(c.args))]
    return names, d or c.dtype(0)


def _pointwise(op_type: str, bool_op: str | None = None, int_identity: bool = False) -> Builder:
    """An elementwise op that is one ONNX operator (``bool_op`` on bool operands; integer operands
    returned as they are with ``int_identity``: floor/ceil/round keep integers)."""
    def build(e: Emitter, c: Call):
        xs, d = _promoted(e, c)
        if int_identity and not d.is_floating_point:
            return e.op("Identity", xs), d
        op = bool_op if bool_op is not None and d is dt.bool_ else op_type
        out = e.op(op, xs)
        return out, (dt.bool_ if op in _BOOL_RESULTS else d)
    return build


_BOOL_RESULTS = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "IsNaN", "IsInf", "Not", "And", "Or",
                 "Xor"}


def _chain(*steps: str, const: float | None = None, first_const: bool = False) -> Builder:
    """x -> op1 -> op2 ...; a step written ``Op:k`` takes the constant ``const`` as second operand
    (``first_const``: as first operand)."""
    def build(e: Emitter, c: Call):
        (x,), d = _promoted(e, c)
        for step in steps:
            if step.endswith(":k"):
                k = e.scalar(const, d)
                x = e.op(step[:-2], [k, x] if first_const else [x, k])
            else:
                x = e.op(step, [x])
        return x, d
    return build


def _like(e: Emitter, x: str, value, d: DType) -> str:
    """A tensor of x's shape filled with ``value``."""
    return e.op("Expand", [e.scalar(value, d), e.op("Shape", [x])])


def _float_test(op: str | None, integer_value: bool) -> Builder:
    """isnan/isinf/isfinite: integers are never nan or inf."""
    def build(e: Emitter, c: Call):
        x = _operand(e, c, 0)
        if not c.dtype(0).is_floating_point:
            return _like(e, x, integer_value, dt.bool_), dt.bool_
        if op is not None:
            return e.op(op, [x]), dt.bool_
        return e.op("Not", [e.op("Or", [e.op("IsNaN", [x]), e.op("IsInf", [x])])]), dt.bool_
    return build


def _logical(op: str) -> Builder:
    def build(e: Emitter, c: Call):
        return e.op(op, [_operand(e, c, i, dt.bool_) for i in range(len(c.args))]), dt.bool_
    return build


def _bitwise(op: str, bool_op: str) -> Builder:
    def build(e: Emitter, c: Call):
        xs, d = _promoted(e, c)
        if d is dt.bool_:
            return e.op(bool_op, xs), d
        e.need(18, f"ONNX {op}")
        return e.op(op, xs), d
    return build


def _floor_divide(e: Emitter, c: Call):
    (a, b), d = _promoted(e, c)
    if d.is_floating_point:
        return e.op("Floor", [e.op("Div", [a, b])]), d
    # integers: a - (a mod b) is an exact multiple of b, so ONNX's truncating Div floors it
    return e.op("Div", [e.op("Sub", [a, e.op("Mod", [a, b], fmod=0)]), b]), d


def _remainder(e: Emitter, c: Call):
    (a, b), d = _promoted(e, c)
    if d.is_floating_point:  # Python's mod (sign of the divisor); ONNX's float Mod is C's fmod
        return e.op("Sub", [a, e.op("Mul", [e.op("Floor", [e.op("Div", [a, b])]), b])]), d
    return e.op("Mod", [a, b], fmod=0), d


def _relu(e: Emitter, c: Call):
    (x,), d = _promoted(e, c)
    if not d.is_floating_point:  # ONNX Runtime has no integer Relu (ONNX has one from opset 14 on)
        return e.op("Max", [x, e.scalar(0, d)]), d
    return e.op("Relu", [x]), d


def _trunc(e: Emitter, c: Call):
    (x,), d = _promoted(e, c)
    if not d.is_floating_point:
        return e.op("Identity", [x]), d
    neg = e.op("Less", [x, e.scalar(0, d)])
    return e.op("Where", [neg, e.op("Ceil", [x]), e.op("Floor", [x])]), d


def _not_equal(e: Emitter, c: Call):
    xs, _ = _promoted(e, c)
    return e.op("Not", [e.op("Equal", xs)]), dt.bool_


def _atan2(e: Emitter, c: Call):
    (y, x), d = _promoted(e, c)
    zero = e.scalar(0, d)
    base = e.op("Atan", [e.op("Div", [y, x])])
    # x < 0: shift by +-pi toward y's side; x == 0: +-pi/2 by y's sign (0 for y == 0)
    pi = e.op("Where", [e.op("Less", [y, zero]), e.scalar(-math.pi, d), e.scalar(math.pi, d)])
    out = e.op("Where", [e.op("Less", [x, zero]), e.op("Add", [base, pi]), base])
    axis = e.op("Mul", [e.op("Sign", [y]), e.scalar(math.pi / 2, d)])
    return e.op("Where", [e.op("Equal", [x, zero]), axis, out]), d


def _xlogy(e: Emitter, c: Call):
    (x, y), d = _promoted(e, c)
    prod = e.op("Mul", [x, e.op("Log", [y])])
    zero_x = e.op("And", [e.op("Equal", [x, e.scalar(0, d)]), e.op("Not", [e.op("IsNaN", [y])])])
    return e.op("Where", [zero_x, e.scalar(0, d), prod]), d


def _where(e: Emitter, c: Call):
    d = c.out.dtype
    return e.op("Where", [_operand(e, c, 0, dt.bool_), _operand(e, c, 1, d), _operand(e, c, 2, d)]), d


def _cast(e: Emitter, c: Call):
    d = c.attrs["dtype"]
    return e.cast(_operand(e, c, 0), c.dtype(0), d), d


def _identity(e: Emitter, c: Call):
    return e.op("Identity", [_operand(e, c, 0)]), c.dtype(0)


# ---- reductions and scans ------------------------------------------------------------------

def _axes_op(e: Emitter, op_type: str, x: str, axes, since: int, **attrs) -> str:
    """An ONNX reduction: axes as an input from opset ``since`` on, as an attribute before."""
    if e.opset >= since:
        return e.op(op_type, [x, e.ints(axes)], **attrs)
    return e.op(op_type, [x], axes=list(axes), **attrs)


def _reduce(op_type: str, since: int) -> Builder:
    def build(e: Emitter, c: Call):
        (x,), d = _promoted(e, c)
        dims = c.attrs["dims"]
        if not dims:  # numpy reduces over no axis: the operand itself (ONNX would reduce all)
            return e.op("Identity", [x]), d
        return _axes_op(e, op_type, x, dims, since, keepdims=int(c.attrs["keepdim"])), d
    return build


def _arg_reduce(op_type: str) -> Builder:
    def build(e: Emitter, c: Call):
        x, dim, keep = _operand(e, c, 0), c.attrs["dim"], c.attrs["keepdim"]
        if dim is None:  # over all elements, flattened
            flat = e.op("Reshape", [x, e.const(np.array([-1], np.int64))])
            i = e.op(op_type, [flat], axis=0, keepdims=0)
            return e.op("Reshape", [i, e.ints([1] * len(c.shapes[0]) if keep else [])]), dt.int64
        if not c.shapes[0]:
            return _like(e, x, 0, dt.int64), dt.int64
        return e.op(op_type, [x], axis=dim, keepdims=int(keep)), dt.int64
    return build


def _argsort(e: Emitter, c: Call):
    """TopK over the whole axis: ONNX breaks ties by the lower index, as graphc's stable sort does."""
    x, dim = _operand(e, c, 0, dt.int64 if c.dtype(0) is dt.bool_ else None), c.attrs["dim"]
    if not c.shapes[0]:
        return _like(e, x, 0, dt.int64), dt.int64
    if e.opset >= 15:
        k = e.op("Shape", [x], start=dim, end=dim + 1)
    else:
        k = e.op("Gather", [e.op("Shape", [x]), e.const(np.array([dim], np.int64))])
    _, idx = e.op("TopK", [x, k], n_out=2, axis=dim, largest=int(c.attrs["descending"]), sorted=1)
    return idx, dt.int64


def _cumsum(e: Emitter, c: Call):
    (x,), d = _promoted(e, c)
    if not c.shapes[0]:
        return e.op("Identity", [x]), d
    return e.op("CumSum", [x, e.const(np.array(c.attrs["dim"], np.int64))]), d


# ---- movement ------------------------------------------------------------------------------

def _reshape(e: Emitter, c: Call):
    return e.op("Reshape", [_operand(e, c, 0), e.shape_of(c.attrs["shape"])]), c.dtype(0)


def _permute(e: Emitter, c: Call):
    return e.op("Transpose", [_operand(e, c, 0)], perm=list(c.attrs["dims"])), c.dtype(0)


def _expand(e: Emitter, c: Call):
    return e.op("Expand", [_operand(e, c, 0), e.ints(c.attrs["shape"])]), c.dtype(0)


def _slice_inputs(e: Emitter, index, shape) -> list[str] | None:
    """Slice's starts, ends, axes, steps for the ranges that are not a whole dimension (None: none)."""
    starts, ends, axes, steps = [], [], [], []
    for axis, ((start, stop, step), size) in enumerate(zip(index, shape)):
        if (start, stop, step) == (0, size, 1):
            continue
        step = e.static(step, "a slice step")
        if step < 0 and isinstance(stop, int) and stop < 0:
            stop = INT64_MIN  # the IR writes "down to and including element 0" as stop -1
        starts.append(start)
        ends.append(stop)
        axes.append(axis)
        steps.append(step)
    if not axes:
        return None
    return [e.ints(starts), e.ints(ends), e.ints(axes), e.ints(steps)]


def _slice(e: Emitter, c: Call):
    x = _operand(e, c, 0)
    sl = _slice_inputs(e, c.attrs["index"], c.shapes[0])
    return (e.op("Identity", [x]) if sl is None else e.op("Slice", [x] + sl)), c.dtype(0)


def _select(e: Emitter, c: Call):
    # Gather with a 0-d index drops the axis, as select does; the index may follow a dynamic axis (x[:, -1])
    axis = e.static(c.attrs["dim"], "select's dimension")
    return e.op("Gather", [_operand(e, c, 0), e.scalar(c.attrs["index"], dt.int64)], axis=axis), c.dtype(0)


def _pad_amounts(e: Emitter, x: str, pads, value, d: DType) -> str:
    """Pad ``x`` by (lo, hi) per dim with ``value``; negative amounts crop (as a Slice)."""
    crop = [(max(0, -lo) if isinstance(lo, int) else 0, max(0, -hi) if isinstance(hi, int) else 0) for lo, hi in pads]
    if any(lo or hi for lo, hi in crop):
        axes = [i for i, (lo, hi) in enumerate(crop) if lo or hi]
        x = e.op("Slice", [x, e.ints([crop[i][0] for i in axes]), e.ints([-crop[i][1] if crop[i][1] else INT64_MAX
                                                                           for i in axes]), e.ints(axes)])
    grow = [(lo if not isinstance(lo, int) or lo > 0 else 0, hi if not isinstance(hi, int) or hi > 0 else 0)
            for lo, hi in pads]
    if not any(isinstance(v, Dim) or v for p in grow for v in p):
        return x
    amounts = e.ints([lo for lo, _ in grow] + [hi for _, hi in grow])
    return e.op("Pad", [x, amounts, e.scalar(value, d)], mode="constant")


def _pad(e: Emitter, c: Call):
    d = c.dtype(0)
    x = _pad_amounts(e, _operand(e, c, 0), c.attrs["pads"], c.attrs.get("value", 0.0), d)
    return (x if x != c.args[0] else e.op("Identity", [x])), d


def _concat(e: Emitter, c: Call):
    xs, d = _promoted(e, c)
    return e.op("Concat", xs, axis=c.attrs["axis"]), d


def _slice_scatter(e: Emitter, c: Call):
    """x with ``src`` written over the slice: step-1 ranges pad src and its mask into place, other
    steps scatter to the slice's element positions. (Autodiff makes these, forward code doesn't:
    the sizes are static.)"""
    d = c.out.dtype
    x, src = _operand(e, c, 0, d), _operand(e, c, 1, d)
    index = [tuple(e.static(v, "slice_scatter's range") for v in r) for r in c.attrs["index"]]
    shape = [e.static(s, "slice_scatter's shape") for s in c.shapes[0]]
    if any(step != 1 for _, _, step in index):
        positions = np.stack(np.meshgrid(*(np.arange(*r) for r in index), indexing="ij"), axis=-1)
        return e.op("ScatterND", [x, e.const(positions.astype(np.int64)), src]), d
    pads = [(start, size - stop) for (start, stop, _), size in zip(index, shape)]
    placed = _pad_amounts(e, src, pads, 0, d)
    mask = _pad_amounts(e, _like(e, src, True, dt.bool_), pads, False, dt.bool_)
    return e.op("Where", [mask, placed, x]), d


# ---- indexing ------------------------------------------------------------------------------

def _take(e: Emitter, c: Call):
    return e.op("Gather", [_operand(e, c, 0), _operand(e, c, 1)], axis=c.attrs["axis"]), c.dtype(0)


def _index_check(e: Emitter, c: Call):
    """Negative indices count from the end where the mode allows them; ONNX has no way to raise,
    so an out-of-range index is not reported (ONNX Runtime's Gather refuses it)."""
    idx = _operand(e, c, 0, dt.int64)
    if c.attrs["mode"] == "embedding":
        return idx, dt.int64
    size = e.scalar(c.attrs["size"], dt.int64)
    neg = e.op("Less", [idx, e.scalar(0, dt.int64)])
    return e.op("Where", [neg, e.op("Add", [idx, size]), idx]), dt.int64


def _cut_to(e: Emitter, x: str, shape, want, axis: int) -> str:
    """x cut down to ``want`` in every dim but ``axis`` (gather/scatter may use a smaller index)."""
    axes = [i for i, (a, b) in enumerate(zip(shape, want)) if i != axis and a != b]
    if not axes:
        return x
    return e.op("Slice", [x, e.ints([0] * len(axes)), e.ints([want[i] for i in axes]), e.ints(axes)])


def _gather(e: Emitter, c: Call):
    axis = c.attrs["axis"]
    x = _cut_to(e, _operand(e, c, 0), c.shapes[0], c.shapes[1], axis)
    return e.op("GatherElements", [x, _operand(e, c, 1, dt.int64)], axis=axis), c.dtype(0)


def _scatter(reduction: str | None) -> Builder:
    def build(e: Emitter, c: Call):
        d, axis = c.out.dtype, c.attrs["axis"]
        if reduction is not None:
            e.need(16, f"ScatterElements with reduction={reduction!r}")
        idx = _operand(e, c, 1, dt.int64)
        if c.shapes[2] is None:  # a number scattered everywhere the index points
            src = _like(e, idx, c.args[2], d)
        else:
            src = _cut_to(e, _operand(e, c, 2, d), c.shapes[2], c.shapes[1], -1)
        return e.op("ScatterElements", [_operand(e, c, 0, d), idx, src], axis=axis, reduction=reduction), d
    return build


def _index_add(e: Emitter, c: Call):
    e.need(16, "ScatterElements with reduction='add'")
    d, axis = c.out.dtype, c.attrs["axis"]
    src = _operand(e, c, 2, d)
    rank = len(c.shapes[0])
    column = e.op("Reshape", [_operand(e, c, 1, dt.int64), e.ints([-1 if i == axis else 1 for i in range(rank)])])
    idx = e.op("Expand", [column, e.op("Shape", [src])])
    return e.op("ScatterElements", [_operand(e, c, 0, d), idx, src], axis=axis, reduction="add"), d


def _searchsorted(e: Emitter, c: Call):
    """The count of boundaries below each value (at or below it with ``right``)."""
    d = dt.result_type(c.node.inputs[0], c.node.inputs[1])  # boundaries and values compared in one dtype
    seq, values = _operand(e, c, 0, d), _operand(e, c, 1, d)
    if len(c.shapes[0]) > 1:
        seq = e.op("Unsqueeze", [seq, e.const(np.array([-2], np.int64))])
    values = e.op("Unsqueeze", [values, e.const(np.array([-1], np.int64))])
    below = e.op("LessOrEqual" if c.attrs["right"] else "Less", [seq, values])
    count = _axes_op(e, "ReduceSum", e.op("Cast", [below], to=onnx_dtype(dt.int64)), [-1], 13, keepdims=0)
    return count, dt.int64


# ---- matmul, creation, windows, random, linear algebra -------------------------------------

def _matmul(e: Emitter, c: Call):
    return e.op("MatMul", [_operand(e, c, 0), _operand(e, c, 1)]), c.dtype(0)


def _full(e: Emitter, c: Call):
    shape, value, d = c.attrs["shape"], c.attrs["value"], c.attrs["dtype"]
    if not isinstance(value, (int, float, bool)):  # a number that follows a dynamic axis
        return e.op("Expand", [e.scalar(value, d), e.ints(shape)]), d
    fill = e.helper.make_tensor("value", onnx_dtype(d), [1], np.array([value], d.np).reshape(1))
    return e.op("ConstantOfShape", [e.ints(shape)], value=fill), d


def _arange(e: Emitter, c: Call):
    start, end, step, d = (c.attrs[k] for k in ("start", "end", "step", "dtype"))
    if not any(isinstance(v, Dim) for v in (start, end, step)):
        return e.const(P.arange.impl(start=start, end=end, step=step, dtype=d)), d
    return e.op("Range", [e.scalar(start, d), e.scalar(end, d), e.scalar(e.static(step, "arange's step"), d)]), d


def _unfold(e: Emitter, c: Call):
    """Windows (N, C, *out, *kernel): the padded input sliced once per kernel offset, stacked last."""
    kernel, stride, dilation = (tuple(e.static(v, f"unfold's {k}") for v in c.attrs[k])
                                for k in ("kernel", "stride", "dilation"))
    d = c.dtype(0)
    x = _pad_amounts(e, _operand(e, c, 0), ((0, 0), (0, 0)) + tuple(c.attrs["padding"]), c.attrs.get("value", 0.0), d)
    nsp = len(kernel)
    axes = e.ints(range(2, 2 + nsp))
    steps = e.ints(stride)
    last = e.const(np.array([-1], np.int64))
    pieces = []
    for offs in np.ndindex(*kernel):
        starts = [o * dl for o, dl in zip(offs, dilation)]
        # ends counted from the end of each padded dim: the slices have the output's length for
        # any input size, so image sizes may be dynamic too
        ends = [-(k - 1 - o) * dl or INT64_MAX for k, o, dl in zip(kernel, offs, dilation)]
        window = e.op("Slice", [x, e.ints(starts), e.ints(ends), axes, steps])
        pieces.append(e.op("Unsqueeze", [window, last]))
    stacked = pieces[0] if len(pieces) == 1 else e.op("Concat", pieces, axis=-1)
    # (N, C, *out, K) -> (N, C, *out, *kernel); 0 keeps a dimension as it is (the batch may be dynamic)
    return e.op("Reshape", [stacked, e.ints([0] * (2 + nsp) + list(kernel))]), d


def _fold(e: Emitter, c: Call):
    """The adjoint of unfold is ONNX's Col2Im on (N, C * K, L) columns."""
    e.need(18, "Col2Im (fold, the adjoint of unfold: conv_transpose)")
    kernel, stride, dilation, size = (tuple(e.static(v, f"fold's {k}") for v in c.attrs[k])
                                      for k in ("kernel", "stride", "dilation", "size"))
    nsp = len(kernel)
    c_out = e.static(c.shapes[0][1], "fold's channels")
    cols = e.op("Transpose", [_operand(e, c, 0)],
                perm=[0, 1] + list(range(2 + nsp, 2 + 2 * nsp)) + list(range(2, 2 + nsp)))
    cols = e.op("Reshape", [cols, e.ints([0, c_out * int(np.prod(kernel)), -1])])
    pads = [p[0] for p in c.attrs["padding"]] + [p[1] for p in c.attrs["padding"]]
    return e.op("Col2Im", [cols, e.ints(size), e.ints(kernel)], dilations=list(dilation), pads=pads,
                strides=list(stride)), c.dtype(0)


def _rand_uniform(e: Emitter, c: Call):
    """ONNX Runtime draws its own numbers: the key operand (graphc's generator state) has no ONNX form."""
    d = c.attrs["dtype"]
    zeros = e.op("ConstantOfShape", [e.ints(c.attrs["shape"])])
    return e.op("RandomUniformLike", [zeros], dtype=onnx_dtype(d), low=0.0, high=1.0), d


# ---- composites with an ONNX operator of their own --------------------------------------------
# The decomposition pass keeps these composite nodes whole for export (``keeps``): ONNX Runtime
# runs a Conv or a pooling operator far faster than the windows-and-matmul they decompose into.

def _composite_args(c: Call) -> list:
    """The composite call's arguments: ONNX tensor names for its tensors, the values otherwise."""
    return [c.args[entry[1]] if entry[0] == "t" else entry[1] for entry in c.attrs["layout"]]


def _pads(e: Emitter, padding) -> list[int]:
    return [e.static(lo, "a padding") for lo, _ in padding] + [e.static(hi, "a padding") for _, hi in padding]


def _ints(e: Emitter, values, what: str) -> list[int]:
    return [e.static(v, what) for v in values]


def _conv(e: Emitter, c: Call):
    x, w, b, stride, padding, dilation, groups = _composite_args(c)
    return e.op("Conv", [x, w] + ([b] if b is not None else []), strides=_ints(e, stride, "a stride"),
                pads=_pads(e, padding), dilations=_ints(e, dilation, "a dilation"), group=groups), c.dtype(0)


def _max_pool(e: Emitter, c: Call):
    """``padding`` holds ceil_mode's overhang too; MaxPool never picks a padded element, as the
    decomposition's -inf padding never wins."""
    x, kernel, stride, padding, dilation = _composite_args(c)
    return e.op("MaxPool", [x], kernel_shape=_ints(e, kernel, "a kernel size"), strides=_ints(e, stride, "a stride"),
                pads=_pads(e, padding), dilations=_ints(e, dilation, "a dilation")), c.dtype(0)


def _avg_pool(e: Emitter, c: Call):
    x, kernel, stride, padding, count_include_pad, _, _ = _composite_args(c)
    return e.op("AveragePool", [x], kernel_shape=_ints(e, kernel, "a kernel size"),
                strides=_ints(e, stride, "a stride"), pads=_pads(e, padding),
                count_include_pad=int(bool(count_include_pad))), c.dtype(0)


def _avg_pool_fits(args: list) -> bool:
    """AveragePool has no divisor override, and counts ceil_mode's overhang with the padding."""
    _, _, _, padding, _, divisor_override, real_padding = args
    return not divisor_override and tuple(padding) == tuple((p, p) for p in real_padding)


# composite name -> (builder, whether it takes the call's arguments; else it is decomposed)
COMPOSITE_OPS: dict[str, tuple[Builder, Callable[[list], bool]]] = {
    "conv": (_conv, lambda args: len(args) == 7),
    "max_pool": (_max_pool, lambda args: len(args) == 5),
    "avg_pool": (_avg_pool, lambda args: len(args) == 7 and _avg_pool_fits(args)),
}


def keeps(node: Node) -> bool:
    """Whether the decomposition pass leaves this composite node whole for export."""
    entry = COMPOSITE_OPS.get(node.attrs["name"])
    layout = node.attrs["layout"]
    if entry is None or any(e[0] == "k" for e in layout) or not node.output.dtype.is_floating_point:
        return False
    return entry[1]([e[1] for e in layout])


def _composite(e: Emitter, c: Call):
    return COMPOSITE_OPS[c.attrs["name"]][0](e, c)


def _det_then(*steps: str) -> Builder:
    def build(e: Emitter, c: Call):
        x = e.op("Det", [_operand(e, c, 0)])
        for s in steps:
            x = e.op(s, [x])
        return x, c.dtype(0)
    return build


_LINALG_WHY = "ONNX's standard operators have no {}; only det (Det) is exported among the linear-algebra primitives"

ONNX_OPS: dict[Primitive, Builder] = {
    P.neg: _pointwise("Neg"), P.abs: _pointwise("Abs"), P.sign: _pointwise("Sign"),
    P.floor: _pointwise("Floor", int_identity=True), P.ceil: _pointwise("Ceil", int_identity=True),
    P.round: _pointwise("Round", int_identity=True), P.trunc: _trunc,
    P.exp: _pointwise("Exp"), P.exp2: _chain("Pow:k", const=2.0, first_const=True),
    P.expm1: _chain("Exp", "Sub:k", const=1.0),
    P.log: _pointwise("Log"), P.log2: _chain("Log", "Mul:k", const=1 / math.log(2)),
    P.log10: _chain("Log", "Mul:k", const=1 / math.log(10)), P.log1p: _chain("Add:k", "Log", const=1.0),
    P.sin: _pointwise("Sin"), P.cos: _pointwise("Cos"), P.tan: _pointwise("Tan"), P.asin: _pointwise("Asin"),
    P.acos: _pointwise("Acos"), P.atan: _pointwise("Atan"), P.sinh: _pointwise("Sinh"), P.cosh: _pointwise("Cosh"),
    P.tanh: _pointwise("Tanh"), P.sigmoid: _pointwise("Sigmoid"), P.sqrt: _pointwise("Sqrt"),
    P.rsqrt: _chain("Sqrt", "Reciprocal"), P.reciprocal: _pointwise("Reciprocal"), P.erf: _pointwise("Erf"),
    P.relu: _relu,
    P.isnan: _float_test("IsNaN", False), P.isinf: _float_test("IsInf", False), P.isfinite: _float_test(None, True),
    P.logical_not: _logical("Not"), P.bitwise_not: _bitwise("BitwiseNot", "Not"),
    P.add: _pointwise("Add", "Or"), P.sub: _pointwise("Sub"), P.mul: _pointwise("Mul", "And"),
    P.div: _pointwise("Div"), P.floor_divide: _floor_divide, P.remainder: _remainder, P.pow: _pointwise("Pow"),
    P.maximum: _pointwise("Max", "Or"), P.minimum: _pointwise("Min", "And"), P.atan2: _atan2,
    P.eq: _pointwise("Equal"), P.ne: _not_equal, P.lt: _pointwise("Less"),
    P.le: _pointwise("LessOrEqual"), P.gt: _pointwise("Greater"), P.ge: _pointwise("GreaterOrEqual"),
    P.logical_and: _logical("And"), P.logical_or: _logical("Or"), P.logical_xor: _logical("Xor"),
    P.bitwise_and: _bitwise("BitwiseAnd", "And"), P.bitwise_or: _bitwise("BitwiseOr", "Or"),
    P.bitwise_xor: _bitwise("BitwiseXor", "Xor"),
    P.where: _where, P.cast: _cast, P.copy: _identity, P.stop_gradient: _identity, P.xlogy: _xlogy,
    P.custom_vjp: _identity,  # a custom Function's forward value (operand 0); export never differentiates
    P.sum: _reduce("ReduceSum", 13), P.prod: _reduce("ReduceProd", 18), P.amax: _reduce("ReduceMax", 18),
    P.amin: _reduce("ReduceMin", 18), P.argmax: _arg_reduce("ArgMax"), P.argmin: _arg_reduce("ArgMin"),
    P.cumsum: _cumsum, P.argsort: _argsort,
    P.reshape: _reshape, P.permute: _permute, P.expand: _expand, P.slice: _slice, P.select: _select,
    P.slice_scatter: _slice_scatter, P.pad: _pad, P.concat: _concat,
    P.take: _take, P.index_check: _index_check, P.gather: _gather, P.scatter: _scatter(None),
    P.scatter_add: _scatter("add"), P.index_add: _index_add, P.searchsorted: _searchsorted,
    P.matmul: _matmul, P.full: _full, P.arange: _arange, P.unfold: _unfold, P.fold: _fold,
    P.rand_uniform: _rand_uniform, composite: _composite,
    P.det: _det_then(), P.logabsdet: _det_then("Abs", "Log"), P.det_sign: _det_then("Sign"),
}

UNSUPPORTED: dict[Primitive, str] = {
    **{p: "ONNX has no complex tensor type for these operators (complex parts, conjugation, FFTs)"
       for p in PRIMITIVES.values() if p.complex_only},
    P.lgamma: "ONNX has no log-gamma operator (lgamma)",
    P.erfinv: "ONNX has no inverse error function operator (erfinv)",
    P.polygamma: "ONNX has no digamma/polygamma operator",
    **{p: f"ONNX has no operator for this special function ({p.name})" for p in special_prims.ALL},
    P.cumargmax: "ONNX has no running arg-max operator (cummax's indices)",
    P.collective: "a collective across processes (DistributedDataParallel) has no ONNX form: export the module "
                  "it wraps (ddp.module)",
    P.cumargmin: "ONNX has no running arg-min operator (cummin's indices)",
    P.nonzero: "its output shape depends on the data (nonzero, boolean-mask indexing), which graphc's tracer can't "
               "put in a graph",
    P.inv: _LINALG_WHY.format("matrix inverse (linalg.inv)"),
    P.solve: _LINALG_WHY.format("linear solver (linalg.solve)"),
    P.cholesky: _LINALG_WHY.format("Cholesky decomposition (linalg.cholesky)"),
    P.qr_q: _LINALG_WHY.format("QR decomposition (linalg.qr)"),
    P.qr_r: _LINALG_WHY.format("QR decomposition (linalg.qr)"),
    P.svd_u: _LINALG_WHY.format("singular value decomposition (linalg.svd)"),
    P.svdvals: _LINALG_WHY.format("singular value decomposition (linalg.svdvals)"),
    P.svd_vh: _LINALG_WHY.format("singular value decomposition (linalg.svd)"),
    P.eigvalsh: _LINALG_WHY.format("symmetric eigendecomposition (linalg.eigvalsh)"),
    P.eigh_vectors: _LINALG_WHY.format("symmetric eigendecomposition (linalg.eigh)"),
    P.pinv: _LINALG_WHY.format("pseudo-inverse (linalg.pinv)"),
    **{p: _LINALG_WHY.format("LU factorization (linalg.lu_factor, lu_solve, lu_unpack)")
       for p in (P.lu_factor, P.lu_pivots, P.lu_permutation, P.lu_solve)},
    **{p: _LINALG_WHY.format("LDL factorization (linalg.ldl_factor, ldl_solve)")
       for p in (P.ldl_factor, P.ldl_pivots, P.ldl_info, P.ldl_solve)},
    **{p: _LINALG_WHY.format("least-squares solver (linalg.lstsq)") for p in (P.lstsq, P.lstsq_rank)},
    fused: "fusion groups are made by the backend passes, which export does not run",
    call: "outlined calls are made by graphc.compile's outline pass, which export does not run",
}
