"""Graph -> Schedule: kernels with explicit ranges and index maps, extern calls, buffers.

The scheduler is shared by every backend; what differs is declared by the backend's ``Target``:
which primitives run inside kernels, which are extern library calls, and whether kernel bodies
keep their intermediates in registers (Triton) or in arrays (numpy).
"""
from __future__ import annotations

from typing import Mapping, Protocol

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Node, Value, format_type
from graphc.ir.primitive import Primitive, TensorType
from graphc.ir.shapes import wrap_dims

from .schedule import PREFIX, Access, Buffer, CallStep, ExternCall, Kernel, KernelArg, KernelOut, Schedule
from .views import apply_view, broadcast_index, contiguous_strides, reshape_strides


class Target(Protocol):
    """What the scheduler needs to know about a backend."""
    name: str
    kernel_ops: frozenset            # primitives generated inside kernels
    extern_ops: Mapping              # primitive -> how the backend calls its library
    unsupported: Mapping             # primitive -> why this backend can't run it
    calls: frozenset                 # primitives run as calls of bodies compiled on their own
    materializes_intermediates: bool # body intermediates live in arrays (numpy) not registers
    donates: bool                    # its code writes an input's new value into the input's array
    keeps_layout: bool               # extern results keep their primitive's ``layout`` (not C order)

    def writes_into(self, prim: Primitive) -> bool: ...      # can write a planned buffer
    def extern_fresh(self, prim: Primitive) -> bool: ...     # extern result never views operands
    def scratch_buffers(self, s: Schedule) -> set[str]: ...  # piece scratch (see memory_plan)
    def statement_reads(self, s: Schedule) -> dict: ...      # reads moved between body nodes (see memory_plan)


class UnsupportedOp(NotImplementedError):
    pass


def _value_comment(v: Value) -> str:
    return f"%{v.name}: {format_type(v.type)}"


def node_text(n: Node) -> str:
    """One IR line, for comments in generated code."""
    from graphc.ir.printer import format_node
    return format_node(n, bodies=False)


class _Builder:
    def __init__(self, g: Graph, target: Target, saved_from: int | None, callees: Mapping | None = None) -> None:
        self.g = g
        self.t = target
        self.sched = Schedule(g.name, [], {}, [], [], saved_from)
        # id(body graph) -> (its name in generated code, its compiled graph)
        self.callees = callees or {}
        self.access: dict[int, Access] = {}
        # buffers that graph outputs reach (directly or through views) are the caller's: fresh
        self.pinned: set[int] = set()
        self._n = 0

    # ---- buffers ----------------------------------------------------------------------------

    def _buffer(self, v: Value, role: str, prefix: str = "v", order: tuple[int, ...] | None = None) -> str:
        # a Python identifier in generated code: IR names may be module paths (%fc1.weight)
        name = prefix + v.name
        if not name.isidentifier():
            name = prefix + "".join(c if c.isalnum() or c == "_" else "_" for c in v.name)
        if name in self.sched.buffers:
            name = f"{name}_{len(self.sched.buffers)}"
        self.sched.buffers[name] = Buffer(name, tuple(v.shape), v.dtype, role, _value_comment(v))
        shape = tuple(v.shape)
        strides = contiguous_strides(shape)
        if order is not None:  # the buffer is C order over the dims taken in ``order``
            inner = contiguous_strides(tuple(shape[d] for d in order))
            strides = tuple(inner[order.index(d)] for d in range(len(shape)))
        self.access[id(v)] = Access(name, (), shape, strides)
        return name

    def _result_role(self, v: Value, prim: Primitive | None, extern: bool) -> str:
        if id(v) in self.pinned:
            return "output"
        if extern and not self.t.writes_into(prim):
            return "extern"
        return "temp"

    def _arg(self, x: Value, domain: tuple, perm: tuple | None = None) -> KernelArg:
        a = self.access[id(x)]
        idx = broadcast_index(a.shape, a.strides, domain)
        if perm is not None:
            idx = tuple(idx[d] for d in perm)
        return KernelArg(a, idx)

    # ---- the walk ---------------------------------------------------------------------------

    def run(self) -> Schedule:
        g = self.g
        self._pin_outputs()
        for v in g.inputs:
            self.sched.inputs.append(self._buffer(v, "input", "in_"))
        for n in g.nodes:
            self._node(n)
        self.sched.outputs = [self.access[id(o)] for o in g.outputs]
        return self.sched

    def _pin_outputs(self) -> None:
        """Values whose memory a graph output is (or views): their buffers are returned."""
        todo = list(self.g.outputs)
        while todo:
            v = todo.pop()
            if id(v) in self.pinned:
                continue
            self.pinned.add(id(v))
            p = v.producer
            if p is not None and (p.prim.is_view or p.prim is P.stop_gradient):
                todo.append(p.inputs[0])
            elif p is not None and p.prim in self.t.extern_ops and not self.t.extern_fresh(p.prim):
                todo.extend(p.value_inputs())

    def _step_name(self, prefix: str) -> str:
        """``prefix_N``: steps are numbered in schedule order (kernels and extern calls alike)."""
        self._n += 1
        return f"{prefix}_{self._n - 1}"

    def _node(self, n: Node) -> None:
        prim = n.prim
        if prim.is_view:
            x = n.inputs[0]
            a = self.access[id(x)]
            r = apply_view(n, a.shape, a.strides, a.offset)
            if r is None:  # a reshape of a non-contiguous view: copy it first, then view the copy
                a = self._materialize(x)
                r = apply_view(n, a.shape, a.strides, a.offset)
            key = (prim.name, tuple(sorted((k, v) for k, v in n.attrs.items())))
            self.access[id(n.output)] = Access(a.buffer, a.views + (key,), r[0], r[1], r[2])
            return
        if prim is P.stop_gradient:  # an identity for values
            self.access[id(n.output)] = self.access[id(n.inputs[0])]
            return
        if prim.name == "fused":
            self._fused(n)
            return
        if prim is P.matmul and prim in self.t.kernel_ops:
            self._matmul(n)
            return
        if prim in self.t.unsupported:
            raise UnsupportedOp(f"{self.t.name} backend: {prim.name}: {self.t.unsupported[prim]}")
        if prim in self.t.calls:
            callee, compiled = self.callees[id(n.attrs["body"])]
            self.sched.callees[callee] = compiled
            outs = [self._buffer(o, "output" if id(o) in self.pinned else "extern") for o in n.outputs]
            self.sched.steps.append(CallStep(self._step_name("call"), callee,
                                             [self.access[id(x)] for x in n.inputs], outs, node_text(n)))
            return
        if prim in self.t.kernel_ops and (prim.elementwise or prim.reduction or not list(n.value_inputs())
                                          or prim is P.rand_uniform):
            body = Graph(f"{prim.name}_{n.output.name}")
            args = []
            for x in n.inputs:
                if isinstance(x, Value):
                    args.append(body.add_input(x.type, "input", f"a{len(args)}"))
                else:
                    args.append(x)
            body.set_outputs([body.add_node(prim, args, n.attrs, n.output.type)])
            operands = [x for x in n.inputs if isinstance(x, Value)]
            kind = "reduction" if prim.reduction else "pointwise"
            self._kernel(kind, body, operands, list(n.outputs), node_text(n))
            return
        if prim in self.t.extern_ops:
            args = [self.access[id(x)] if isinstance(x, Value) else x for x in n.inputs]
            role = self._result_role(n.output, prim, True)
            # a planned buffer is C order; a library result is laid out as its primitive declares
            order = prim.layout(n.output.ndim) if prim.layout and role != "temp" and self.t.keeps_layout else None
            out = self._buffer(n.output, role, order=order)
            self.sched.steps.append(ExternCall(f"{self._step_name('ext')}_{prim.name}", n, args, out, node_text(n)))
            return
        raise UnsupportedOp(f"{self.t.name} backend: {prim.name} is neither a kernel op nor an extern call "
                            "of this backend")

    def _materialize(self, x: Value) -> Access:
        """Copy a viewed value into a contiguous buffer of its own (a pointwise copy kernel)."""
        body = Graph(f"copy_{x.name}")
        a0 = body.add_input(x.type, "input", "a0")
        body.set_outputs([body.add_node(P.copy, [a0], {}, x.type)])
        tmp = Value(x.type, None, f"{x.name}_copy")
        if id(x) in self.pinned:  # a graph output views the copy: it is the caller's, not the workspace's
            self.pinned.add(id(tmp))
        self._kernel("pointwise", body, [x], [tmp], f"contiguous copy of %{x.name}")
        return self.access[id(tmp)]

    def _matmul(self, n: Node) -> None:
        """A matmul alone, as a matmul kernel. Vector operands are seen as matrices through a
        reshape index map (and so is the result), as numpy's matmul semantics define them."""
        a, b = n.inputs
        views = []
        for x, shape in ((a, (1,) + tuple(a.shape)), (b, tuple(b.shape) + (1,))):
            acc = self.access[id(x)]
            if x.ndim == 1:
                st = (0,) + acc.strides if shape[0] == 1 else acc.strides + (0,)
                acc = Access(acc.buffer, acc.views + (("reshape", (("shape", shape),)),), shape, st, acc.offset)
            views.append(acc)
        out_shape = P.matmul.infer(Value(TensorType(views[0].shape, a.dtype)),
                                   Value(TensorType(views[1].shape, b.dtype))).shape
        body = Graph(f"matmul_{n.output.name}")
        x0 = body.add_input(TensorType(views[0].shape, a.dtype), "input", "a0")
        x1 = body.add_input(TensorType(views[1].shape, b.dtype), "input", "a1")
        body.set_outputs([body.add_node(P.matmul, [x0, x1], {}, TensorType(out_shape, n.output.dtype))])
        result = n.output if out_shape == tuple(n.output.shape) else \
            Value(TensorType(out_shape, n.output.dtype), None, f"{n.output.name}_2d")
        if result is not n.output and id(n.output) in self.pinned:
            self.pinned.add(id(result))
        self._kernel("matmul", body, [], [result], node_text(n), matmul_args=views)
        if result is not n.output:  # squeeze the vector dimensions back out (a view)
            acc = self.access[id(result)]
            shape = tuple(n.output.shape)
            self.access[id(n.output)] = Access(acc.buffer, (("reshape", (("shape", shape),)),), shape,
                                               reshape_strides(acc.shape, acc.strides, shape), 0)

    def _fused(self, n: Node) -> None:
        body: Graph = n.attrs["body"]
        kind = n.attrs["kind"]
        first = body.nodes[0]
        if kind == "matmul_epilogue":
            a, b = first.inputs[:2]
            if a.ndim < 2 or b.ndim < 2 or P.matmul not in self.t.kernel_ops:
                self._unfuse(n)
                return
            kind = "matmul"
            body, operands = _own_matmul_inputs(body, list(n.inputs))
        else:
            operands = list(n.inputs)
        self._kernel(kind, body, operands, list(n.outputs),
                     "\n".join(node_text(bn) for bn in body.nodes))

    def _unfuse(self, n: Node) -> None:
        """Schedule a fused group's nodes one by one (a matmul this backend calls as a library
        routine, then its epilogue as one pointwise kernel)."""
        body: Graph = n.attrs["body"]
        outer = {id(bv): x for bv, x in zip(body.inputs, n.inputs)}
        outs = {id(bo): o for bo, o in zip(body.outputs, n.outputs)}
        mm = body.nodes[0]
        mm_out = outs.get(id(mm.output)) or Value(mm.output.type, None, f"{n.outputs[0].name}_mm")
        clone = Node(mm.prim, [outer[id(x)] if isinstance(x, Value) else x for x in mm.inputs], mm.attrs,
                     [mm_out])
        self._node(clone)
        rest = body.nodes[1:]
        if not rest:
            return
        epi = Graph(f"epilogue_{n.outputs[0].name}")
        env: dict[int, Value] = {}
        operands: list[Value] = []
        outer[id(mm.output)] = mm_out
        for bn in rest:
            args = []
            for x in bn.inputs:
                if isinstance(x, Value) and id(x) not in env:
                    operands.append(outer[id(x)])
                    env[id(x)] = epi.add_input(x.type, "input", f"a{len(operands) - 1}")
                args.append(env[id(x)] if isinstance(x, Value) else x)
            env[id(bn.output)] = epi.add_node(bn.prim, args, bn.attrs, bn.output.type)
        kept = [bo for bo in body.outputs if bo is not mm.output]
        epi.set_outputs([env[id(bo)] for bo in kept])
        self._kernel("pointwise", epi, operands, [outs[id(bo)] for bo in kept],
                     "\n".join(node_text(bn) for bn in rest))

    def _kernel(self, kind: str, body: Graph, operands: list[Value], results: list[Value], comment: str,
                matmul_args: list[Access] | None = None) -> None:
        """Append a Kernel computing ``body`` on ``operands`` (one per body input; a matmul's own
        operands may come as ``matmul_args`` accesses instead) into ``results``' buffers."""
        name = self._step_name(PREFIX[kind])
        red_node = next((bn for bn in body.nodes if bn.prim.reduction), None)
        if kind == "pointwise":
            domain = tuple(results[0].shape)
            ranges, rranges, perm = domain, (), None
        elif kind == "reduction":
            src = red_node.inputs[0]
            domain = tuple(src.shape)
            dims = _reduced_dims(red_node, len(domain))
            kept = tuple(d for d in range(len(domain)) if d not in dims)
            perm = kept + dims
            ranges, rranges = tuple(domain[d] for d in kept), tuple(domain[d] for d in dims)
        else:  # matmul
            mm = body.nodes[0]
            out_shape = tuple(mm.output.shape)
            k = mm.inputs[0].shape[-1]
            ranges, rranges, domain, perm = out_shape, (k,), out_shape, None
        args = []
        accesses = list(matmul_args or []) + [self.access[id(x)] for x in operands]
        for bv, acc, x in zip(body.inputs, accesses, [None] * len(matmul_args or []) + operands):
            if kind == "matmul" and bv in body.nodes[0].inputs[:2]:
                args.append(self._matmul_arg(acc, body.nodes[0].inputs.index(bv), ranges))
            elif kind == "matmul":
                arg = self._arg(x, domain)
                args.append(KernelArg(arg.access, arg.index + (0,)))
            elif kind == "reduction" and _reduced_space_only(bv, red_node, domain):
                # read only by ops after a reduction that dropped the reduced dims: the input
                # broadcasts against the kept dims (which lead the kernel's ranges)
                a = broadcast_index(acc.shape, acc.strides, tuple(red_node.output.shape))
                args.append(KernelArg(acc, a + (0,) * len(rranges)))
            else:
                args.append(self._arg(x, domain, perm))
        outs = []
        temps: dict[int, str] = {}
        for bo, r in zip(body.outputs, results):
            buf = self._buffer(r, self._result_role(r, bo.producer.prim if bo.producer else None, False))
            temps[id(bo)] = buf
            # a reduction kernel's value of the domain's shape is stored over the whole space
            # (ranges x reduction ranges), even where it is constant along the reduced axes
            if kind == "reduction" and tuple(bo.shape) == domain and not bo.producer.prim.reduction:
                st = contiguous_strides(domain)
                outs.append(KernelOut(buf, tuple(st[d] for d in perm), True))
            else:
                outs.append(KernelOut(buf, contiguous_strides(ranges)))
        if self.t.materializes_intermediates:
            for bn in body.nodes:
                for bo in bn.outputs:
                    if id(bo) not in temps and self.t.writes_into(bn.prim) and bo.shape:
                        temps[id(bo)] = self._buffer(bo, "temp", f"t{name}_")
        self.sched.steps.append(Kernel(name, kind, ranges, rranges, body, args, outs, temps, comment))

    @staticmethod
    def _matmul_arg(a: Access, which: int, ranges: tuple) -> KernelArg:
        """Index map of a matmul operand over (*batch, M, N, K)."""
        batch = ranges[:-2]
        lead = broadcast_index(a.shape[:-2], a.strides[:-2], batch)
        s_row, s_col = a.strides[-2], a.strides[-1]
        if which == 0:   # A[..., m, k]
            idx = lead + (s_row, 0, s_col)
        else:            # B[..., k, n]
            idx = lead + (0, s_col, s_row)
        return KernelArg(a, idx)


def _own_matmul_inputs(body: Graph, operands: list[Value]) -> tuple[Graph, list[Value]]:
    """A copy of a matmul group's body whose first two inputs feed only the matmul, one each:
    a kernel reads the matmul's operands as tiles over (M, K) and (K, N) and the epilogue's
    inputs per output element, so an operand read both ways (``x @ w + x``, ``x @ x``) is two
    kernel inputs with two index maps."""
    mm = body.nodes[0]
    new = Graph(body.name)
    outer = dict(zip(map(id, body.inputs), operands))
    env: dict[int, Value] = {}
    kept: list[Value] = []
    args = []
    for i, x in enumerate(mm.inputs[:2]):
        args.append(new.add_input(x.type, "input", f"a{i}"))
        kept.append(outer[id(x)])
    for bv in body.inputs:
        if any(u is not mm for u in bv.users):
            env[id(bv)] = new.add_input(bv.type, "input", f"a{len(kept)}")
            kept.append(outer[id(bv)])
    env[id(mm.output)] = new.add_node(mm.prim, args, mm.attrs, mm.output.type)
    for bn in body.nodes[1:]:
        ins = [env[id(x)] if isinstance(x, Value) else x for x in bn.inputs]
        env[id(bn.output)] = new.add_node(bn.prim, ins, bn.attrs, bn.output.type)
    new.set_outputs([env[id(o)] for o in body.outputs])
    return new, kept


def _reduced_dims(n: Node, ndim: int) -> tuple[int, ...]:
    """The axes a reduction node reduces (sum/amax...: ``dims``; argmax/argmin: ``dim``)."""
    return wrap_dims(n.attrs["dims"] if "dims" in n.attrs else n.attrs.get("dim"), ndim)


def _reduced_space_only(bv: Value, red: Node, domain: tuple) -> bool:
    """Whether body input ``bv`` is read only by pointwise ops over the reduced shape of a
    reduction without keepdim (whose rank differs from the domain's)."""
    shape = tuple(red.output.shape)
    return len(shape) != len(domain) and bool(bv.users) and all(
        not u.prim.reduction and tuple(u.output.shape) == shape for u in bv.users)


def build_schedule(g: Graph, target: Target, saved_from: int | None = None,
                   callees: Mapping | None = None) -> Schedule:
    """The schedule of ``g`` (after fusion) for ``target``; raises ``UnsupportedOp`` naming the
    primitive this backend can't run and why. ``callees``: id(body) -> (name, compiled body) of
    the bodies ``g``'s call nodes call."""
    return _Builder(g, target, saved_from, callees).run()
