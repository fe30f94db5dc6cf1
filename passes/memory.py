"""Memory planning: liveness-based buffer reuse.

Every node whose lowering can write into a given array (``out=``) gets a buffer; a buffer is
reused once every value stored in it (and every value that may be a view of it) is dead. An elementwise node may
reuse the buffer of an operand that dies at that very node, which gives in-place chains
(``np.add(buf, 1, out=buf)``). Graph outputs get no planned buffer: the caller keeps them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Value

# Ops that return a view of their first operand (no buffer of their own).
VIEW_OPS = frozenset({P.reshape, P.permute, P.expand, P.slice, P.stop_gradient})


@dataclass
class MemoryPlan:
    buffers: list[tuple[tuple[int, ...], object]] = field(default_factory=list)  # (shape, DType)
    assignment: dict[int, int] = field(default_factory=dict)  # id(value) -> buffer index
    inplace: int = 0  # how many nodes write over a dying operand
    inplace_over: dict[int, int] = field(default_factory=dict)  # id(value) -> id(operand it overwrites)

    def buffer_of(self, v: Value) -> int | None:
        return self.assignment.get(id(v))

    def describe(self, g: Graph) -> str:
        """One line per node: where its result lives (for tests, logs and dumps)."""
        from graphc.ir.graph import format_type
        names = {id(v): v.name for v in g.values()}
        lines = [self.summary()]
        for n in g.nodes:
            o = n.output
            b = self.assignment.get(id(o))
            if b is None:
                where = "output" if o in g.outputs else "own array"
            else:
                where = f"buffer {b}"
                if id(o) in self.inplace_over:
                    where += f" (in place over %{names[self.inplace_over[id(o)]]})"
            lines.append(f"%{o.name}: {format_type(o.type)} = {n.prim.name} -> {where}")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        total = sum(_nbytes(s, d) for s, d in self.buffers)
        return (f"{len(self.assignment)} values in {len(self.buffers)} buffers ({total / 1024:.1f} KiB), "
                f"{self.inplace} in place")


def _nbytes(shape, dtype) -> int:
    n = dtype.itemsize
    for s in shape:
        n *= s
    return n


def plan_memory(g: Graph, writes_into: set, fresh: frozenset = frozenset()) -> MemoryPlan:
    """``writes_into``: the primitives whose lowering in the target backend accepts ``out=``;
    ``fresh``: primitives whose lowering always returns a new array. The result of any other node
    may be a view of its operands (movement ops, or a reference implementation that returns a
    strided view), so it keeps every operand's memory alive for as long as it lives itself."""
    roots: dict[int, frozenset] = {}  # id(value) -> ids of the values owning memory it may alias

    def roots_of(x: Value) -> frozenset:
        return roots.get(id(x), frozenset((id(x),)))

    for n in g.nodes:
        o = n.output
        if n.prim in writes_into or n.prim in fresh:
            roots[id(o)] = frozenset((id(o),))
        else:
            roots[id(o)] = frozenset().union(*(roots_of(x) for x in n.value_inputs()))
    # a memory root lives until the last use of any value that may alias it
    last_use: dict[int, int] = {}
    for i, n in enumerate(g.nodes):
        for x in n.value_inputs():
            for r in roots_of(x):
                last_use[r] = i
    pinned = frozenset().union(*(roots_of(o) for o in g.outputs))  # outputs (and what they view) stay fresh
    plan = MemoryPlan()
    free: dict[tuple, list[int]] = {}
    owner: dict[int, int] = {}  # buffer index -> id(root value) currently stored
    for i, n in enumerate(g.nodes):
        o = n.output
        if n.prim in writes_into and id(o) not in pinned and o.shape:
            key = (tuple(o.shape), o.dtype)
            buf = None
            if n.prim.kind == "elementwise":
                # write over an operand whose memory dies here (same shape and dtype)
                for x in n.value_inputs():
                    b = plan.assignment.get(id(x))
                    if b is not None and last_use.get(id(x)) == i and plan.buffers[b] == key \
                            and sum(1 for y in n.value_inputs() if y is x) == 1:
                        buf = b
                        plan.inplace += 1
                        plan.inplace_over[id(o)] = id(x)
                        break
            if buf is None and free.get(key):
                buf = free[key].pop()
            if buf is None:
                plan.buffers.append(key)
                buf = len(plan.buffers) - 1
            plan.assignment[id(o)] = buf
            owner[buf] = id(o)
        # release buffers whose contents die at this node
        dying = frozenset().union(*(roots_of(x) for x in n.value_inputs()))
        for r in dying:
            if last_use.get(r) == i and r in plan.assignment and owner.get(plan.assignment[r]) == r:
                b = plan.assignment[r]
                if plan.assignment.get(id(o)) != b:
                    free.setdefault(plan.buffers[b], []).append(b)
                    owner.pop(b, None)
    return plan
