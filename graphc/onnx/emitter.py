"""The ONNX graph being written: nodes, initializers, constants, and numbers that follow the
dynamic axes (computed from the inputs' shapes at run time). The per-primitive builders in
``ops.py`` write through it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir.dtypes import DType

from .dims import Dim, Reciprocal, Unfit
from .errors import OnnxExporterError

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def onnx_dtype(d: DType) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(d.np)


class Emitter:
    def __init__(self, opset: int, symbols: dict[str, tuple[str, int]]) -> None:
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.symbols = symbols  # symbol -> (ONNX input name, axis) whose size it is
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = set()
        self._consts: dict[tuple, str] = {}
        self._dims: dict[Dim, str] = {}
        self.where = "the model"  # the IR node being written, for errors
        self.loc = ""  # the user's file:line that made it: each ONNX node's doc_string

    # ---- names, nodes, constants -------------------------------------------------------------

    def fresh(self, hint: str) -> str:
        name, k = hint, 0
        while name in self.names:
            k += 1
            name = f"{hint}_{k}"
        self.names.add(name)
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any):
        """Append an ONNX node; returns its output name (a list of them for ``n_out > 1``)."""
        outs = [self.fresh(f"{op_type}_{len(self.nodes)}") for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, doc_string=self.loc or None, **attrs))
        return outs[0] if n_out == 1 else outs

    def initializer(self, array: np.ndarray, name: str) -> str:
        name = self.fresh(name)
        # asarray, not ascontiguousarray, which makes a 0-d array 1-d
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def const(self, array) -> str:
        """A constant tensor (an initializer; small ones shared)."""
        array = np.asarray(array)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.initializer(array, "const")
        if key is not None:
            self._consts[key] = name
        return name

    def need(self, version: int, what: str) -> None:
        if self.opset < version:
            raise OnnxExporterError(f"graphc.onnx.export: {self.where} needs {what}, which ONNX has from opset "
                                    f"{version} on; this export targets opset {self.opset}: pass "
                                    f"opset_version={version} or higher")

    def static(self, x, what: str) -> int:
        """A number that must be the same for every size of the dynamic axes."""
        if isinstance(x, Unfit):
            raise OnnxExporterError(x.error)
        if isinstance(x, (Dim, Reciprocal)):
            raise OnnxExporterError(f"graphc.onnx.export: {self.where}: {what} depends on a dynamic axis ({x}), which "
                                    "this ONNX operator can't take at run time. Export without dynamic_axes for that "
                                    "axis.")
        return x

    # ---- numbers that may follow the dynamic axes -------------------------------------------

    def dim(self, d: Dim) -> str:
        """A 1-d int64 tensor [d] computed from the inputs' shapes."""
        if d in self._dims:
            return self._dims[d]
        total = None
        for names, p in d.terms:
            term = None
            for name in names:
                size = self._size(name)
                term = size if term is None else self.op("Mul", [term, size])
            if p != 1:
                term = self.op("Mul", [term, self.const(np.array([p], np.int64))])
            total = term if total is None else self.op("Add", [total, term])
        if d.const:
            total = self.op("Add", [total, self.const(np.array([d.const], np.int64))])
        self._dims[d] = total
        return total

    def _size(self, symbol: str) -> str:
        """A 1-d int64 tensor [size of the symbol's axis]."""
        key = Dim(0, (((symbol,), 1),))
        if key not in self._dims:
            src, axis = self.symbols[symbol]
            if self.opset >= 15:
                self._dims[key] = self.op("Shape", [src], start=axis, end=axis + 1)
            else:
                self._dims[key] = self.op("Gather", [self.op("Shape", [src]), self.const(np.array([axis], np.int64))])
        return self._dims[key]

    def ints(self, values: Sequence) -> str:
        """A 1-d int64 tensor of ``values`` (numbers or ``Dim``s)."""
        values = [self.static(v, "a size") if isinstance(v, Unfit) else v for v in values]
        if not any(isinstance(v, Dim) for v in values):
            return self.const(np.array(values, np.int64).reshape(len(values)))
        pieces, run = [], []
        for v in values:
            if isinstance(v, Dim):
                if run:
                    pieces.append(self.const(np.array(run, np.int64)))
                    run = []
                pieces.append(self.dim(v))
            else:
                run.append(self.static(v, "a shape"))
        if run:
            pieces.append(self.const(np.array(run, np.int64)))
        return pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)

    def shape_of(self, values: Sequence) -> str:
        """``ints`` where at most one entry is a ``Dim``: that one becomes -1 (a Reshape target)."""
        values = list(values)
        if sum(isinstance(v, Dim) for v in values) == 1:
            return self.ints([-1 if isinstance(v, Dim) else v for v in values])
        return self.ints(values)

    def scalar(self, value, d: DType) -> str:
        """A 0-d tensor of dtype ``d`` holding ``value`` (a number, ``Dim`` or ``Reciprocal``)."""
        if isinstance(value, Unfit):
            self.static(value, "a number")
        if isinstance(value, Reciprocal):
            x = self.scalar(value.dim, d if d.is_floating_point else dt.float32)
            return self.op("Reciprocal", [x])
        if isinstance(value, Dim):
            x = self.op("Reshape", [self.dim(value), self.const(np.zeros(0, np.int64))])
            return x if d is dt.int64 else self.op("Cast", [x], to=onnx_dtype(d))
        try:
            return self.const(np.array(value, d.np))
        except OverflowError:  # a Python int outside an integer tensor's range wraps around, as in PyTorch
            return self.const(np.array(value).astype(d.np))

    def cast(self, name: str, src: DType, dst: DType) -> str:
        return name if src is dst else self.op("Cast", [name], to=onnx_dtype(dst))
