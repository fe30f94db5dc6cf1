"""The Triton backend's code: one ``@triton.jit`` kernel per schedule ``Kernel``
(``triton_kernels.render``) and a host function that allocates outputs, launches the kernels in
order on the device's arrays and makes the extern library calls (the same lines as numpy's, which
dispatch to CuPy on cuda arrays, with results moved onto the device)."""
from __future__ import annotations

from graphc.ir import prims as P
from graphc.ir.graph import Value
from graphc.ir.primitive import Primitive

from . import numpy_codegen, triton_kernels
from .host import HostWriter
from .schedule import Kernel, Schedule

# Views are index maps; everything the kernel renderer has a lowering for runs inside kernels.
KERNEL_OPS = frozenset(triton_kernels.TRITON_OPS) | frozenset(p for p in triton_kernels.EXTERN if p.is_view) \
    | {P.matmul}


class TritonTarget:
    """What the scheduler needs to know about the Triton backend."""
    name = "triton"
    kernel_ops = KERNEL_OPS
    extern_ops = {p: how for p, how in triton_kernels.EXTERN.items() if p not in KERNEL_OPS}
    unsupported = triton_kernels.UNSUPPORTED
    calls: frozenset = frozenset()
    materializes_intermediates = False  # a kernel's intermediates live in registers
    donates = False  # kernels write fresh output buffers; the frontend copies new values back
    keeps_layout = False  # library results are copied onto the device in C order (``_dev``)

    @staticmethod
    def writes_into(prim: Primitive | None) -> bool:
        # kernels write every result into a buffer; library calls only where numpy's form has out=
        return prim is None or prim in KERNEL_OPS or prim in numpy_codegen.WRITES_INTO

    @staticmethod
    def extern_fresh(prim: Primitive) -> bool:
        return prim in numpy_codegen.FRESH

    @staticmethod
    def scratch_buffers(s) -> set[str]:
        return set()  # kernels never run in row pieces

    @staticmethod
    def statement_reads(s) -> dict:
        return {}  # a kernel's body reads its operands in registers: no buffers to keep alive


TARGET = TritonTarget()


def render_kernels(s: Schedule, input_precision: str) -> dict[str, triton_kernels.RenderedKernel]:
    dtypes = {name: b.dtype for name, b in s.buffers.items()}
    return {k.name: triton_kernels.render(k, dtypes, input_precision=input_precision) for k in s.kernels()}


def generate(s: Schedule, fn_name: str) -> str:
    """``def fn_name(inputs..., _ws)``: ``_launch(name, args, outs)`` runs kernel ``name``;
    ``_empty`` allocates on the device; ``_dev`` moves a library result onto the device."""
    w = HostWriter(s, "xp", fresh=lambda prim: prim in numpy_codegen.FRESH)
    w.begin(fn_name)
    for step in s.steps:
        if isinstance(step, Kernel):
            w.comment_block(f"{step.name}: {step.kind} over {list(step.ranges)}"
                            + (f", reducing {list(step.reduction_ranges)}" if step.reduction_ranges else ""),
                            step.comment)
            for o in step.outs:
                b = s.buffers[o.buffer]
                if b.role != "temp":
                    w.line(f"{o.buffer} = _empty({b.shape!r}, {b.dtype.np.name!r})")
            _divisor_checks(w, step)
            args = "".join(f"{a.access.buffer}, " for a in step.args)
            outs = "".join(f"{o.buffer}, " for o in step.outs)
            w.line(f"_launch({step.name!r}, ({args}), ({outs}))")
        else:
            numpy_codegen.extern_call(w, step, s, wrap="_dev")
    w.end()
    return w.source()


def _divisor_checks(w: HostWriter, k: Kernel) -> None:
    """Integer ``//`` and ``%`` by zero raise before the launch, as in eager mode: the host checks
    each divisor the kernel reads from memory, and a literal 0. A divisor the kernel computes
    itself (fused, in registers) is not checked: the GPU's result is then undefined."""
    reads = {id(bv): w.view(a.access) for bv, a in zip(k.body.inputs, k.args)}
    for bn in k.body.nodes:
        if len(bn.inputs) != 2:
            continue
        d = bn.inputs[1]
        divisor = reads.get(id(d)) if isinstance(d, Value) else repr(d)
        check = numpy_codegen.divisor_check(bn, [None, divisor]) if divisor is not None else None
        if check:
            w.line(check)
