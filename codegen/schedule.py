"""The schedule: what sits between an optimized graph and a backend's code.

A backend turns the graph (after fusion) into a ``Schedule``, a straight-line list of steps over
named buffers:

- ``Kernel``: generated code over an explicit iteration space. ``ranges`` is the output space and
  ``reduction_ranges`` the reduced extents (innermost). Every body input is read through an
  ``Access``: a buffer plus the view chain that reaches it (reshape/permute/expand/slice), and the
  affine index map that chain amounts to (``KernelArg.index``: element strides over
  ``ranges + reduction_ranges``, 0 where the input is broadcast). So views fuse as indexing: no
  view op appears in a kernel body, and no view is ever materialized for a kernel.
- ``ExternCall``: a library routine (BLAS/cuBLAS matmul, LAPACK linalg, sort, gather, ...) the
  backend declares it calls instead of generating code.
- ``CallStep``: a call of a body graph compiled on its own (an outlined, repeated module call).

Buffers have a role: ``input`` (graph input), ``temp`` (lives in the per-call workspace, at the
offset the memory plan gives it), ``output`` (a fresh array the caller keeps) or ``extern`` (an
array a library call returned, which may view its operands). The memory plan (``memory_plan.py``)
is computed on the schedule, in bytes, and is device-neutral.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from graphc.ir.dtypes import DType
from graphc.ir.graph import Graph, Node
from graphc.ir.primitive import Primitive

KERNEL_KINDS = ("pointwise", "reduction", "matmul")
PREFIX = {"pointwise": "poi", "reduction": "red", "matmul": "mm"}


@dataclass(frozen=True)
class Buffer:
    name: str                  # identifier in generated code
    shape: tuple[int, ...]
    dtype: DType
    role: str                  # "input" | "temp" | "output" | "extern"
    value: str = ""            # the IR value it holds, for comments ("%12")

    @property
    def nbytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape)


@dataclass(frozen=True)
class Access:
    """A buffer seen through views. ``views`` is the chain of (primitive name, attrs) applied to
    the buffer (backends that materialize views, like numpy's, render it); ``shape``/``strides``/
    ``offset`` (in elements, over a contiguous buffer) are what the chain amounts to."""
    buffer: str
    views: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0

    @property
    def is_plain(self) -> bool:
        """The buffer itself (no view)."""
        return not self.views


@dataclass(frozen=True)
class KernelArg:
    access: Access
    # element strides over the kernel's ranges + reduction_ranges (0: broadcast)
    index: tuple[int, ...]

    @property
    def offset(self) -> int:
        """Where element 0 of the kernel's space is read, in elements from the buffer's start."""
        return self.access.offset


@dataclass(frozen=True)
class KernelOut:
    buffer: str
    # element strides over the space this output covers: ``ranges`` for values computed after
    # the reduction (or in a pointwise/matmul kernel), ``ranges + reduction_ranges`` for values
    # computed before it (``full`` is True then)
    index: tuple[int, ...]
    full: bool = False


@dataclass
class Kernel:
    name: str                              # poi_3, red_4, mm_5: kind prefix + step number
    kind: str                              # one of KERNEL_KINDS
    ranges: tuple[int, ...]                # the output iteration space
    reduction_ranges: tuple[int, ...]      # reduced extents (reduction: the reduced axes of its
                                           # input, in order; matmul: (K,)); () for pointwise
    body: Graph                            # fused group (or single op): inputs <-> args, outputs <-> outs
    args: list[KernelArg]
    outs: list[KernelOut]
    # numpy-style backends compute body intermediates into arrays: id(body value) -> buffer name
    temps: dict[int, str] = field(default_factory=dict)
    comment: str = ""                      # the IR values it computes, for the generated code

    @property
    def numel(self) -> int:
        return math.prod(self.ranges)

    @property
    def reduction_numel(self) -> int:
        return math.prod(self.reduction_ranges)


@dataclass
class ExternCall:
    name: str
    node: Node                             # the IR node (operand and result types, attributes)
    args: list                             # Access or a Python scalar, per operand
    out: str                               # the result buffer
    comment: str = ""

    @property
    def prim(self) -> Primitive:
        return self.node.prim


@dataclass
class CallStep:
    """A call of another compiled graph (an outlined body, ``graphc.ir.call``): its outputs
    are new arrays it returns."""
    name: str
    callee: str                            # the compiled body's name in the generated code
    args: list                             # Access per operand
    outs: list[str]                        # the result buffers, one per output
    comment: str = ""


@dataclass
class Schedule:
    name: str
    inputs: list[str]                      # buffer names of the graph inputs, in order
    buffers: dict[str, Buffer]
    steps: list                            # Kernel | ExternCall, in execution order
    outputs: list[Access]                  # graph outputs (may be views of buffers)
    saved_from: int | None = None          # outputs from here on are saved for backward
    plan: Any = None                       # memory_plan.MemoryPlan, set by plan_memory
    callees: dict = field(default_factory=dict)  # CallStep.callee -> the compiled body it calls

    def kernels(self) -> list[Kernel]:
        return [s for s in self.steps if isinstance(s, Kernel)]
