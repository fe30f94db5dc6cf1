"""Memory planning: liveness-based buffer reuse.

Every node whose lowering can write into a given array (``out=``) gets a buffer; a buffer is
reused once every value stored in it (and every view of it) is dead. An elementwise node may
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

    def buffer_of(self, v: Value) -> int | None:
        return self.assignment.get(id(v))

    def summary(self) -> str:
        total = sum(_nbytes(s, d) for s, d in self.buffers)
        return (f"{len(self.assignment)} values in {len(self.buffers)} buffers ({total / 1024:.1f} KiB), "
                f"{self.inplace} in place")


def _nbytes(shape, dtype) -> int:
    n = dtype.itemsize
    for s in shape:
        n *= s
    return n


def plan_memory(g: Graph, writes_into: set) -> MemoryPlan:
    """``writes_into``: the primitives whose lowering in the target backend accepts ``out=``."""
    root: dict[int, int] = {}  # id(value) -> id(value owning the memory)
    for n in g.nodes:
        o = n.output
        if n.prim in VIEW_OPS and isinstance(n.inputs[0], Value):
            root[id(o)] = root.get(id(n.inputs[0]), id(n.inputs[0]))
        else:
            root[id(o)] = id(o)
    # a memory root lives until the last use of any value aliasing it
    last_use: dict[int, int] = {}
    for i, n in enumerate(g.nodes):
        for x in n.value_inputs():
            r = root.get(id(x), id(x))
            last_use[r] = max(last_use.get(r, -1), i)
    pinned = {root.get(id(o), id(o)) for o in g.outputs}  # outputs (and what they view) stay fresh
    plan = MemoryPlan()
    free: dict[tuple, list[int]] = {}
    owner: dict[int, int] = {}  # buffer index -> id(root value) currently stored
    for i, n in enumerate(g.nodes):
        o = n.output
        if n.prim in writes_into and root[id(o)] == id(o) and id(o) not in pinned and o.shape:
            key = (tuple(o.shape), o.dtype)
            buf = None
            if n.prim.kind == "elementwise":
                # write over an operand whose memory dies here (same shape and dtype)
                for x in n.value_inputs():
                    r = root.get(id(x), id(x))
                    b = plan.assignment.get(r)
                    if b is not None and r == id(x) and last_use.get(r) == i and plan.buffers[b] == key \
                            and sum(1 for y in n.value_inputs() if y is x) == 1:
                        buf = b
                        plan.inplace += 1
                        break
            if buf is None and free.get(key):
                buf = free[key].pop()
            if buf is None:
                plan.buffers.append(key)
                buf = len(plan.buffers) - 1
            plan.assignment[id(o)] = buf
            owner[buf] = id(o)
        # release buffers whose contents die at this node
        for x in n.value_inputs():
            r = root.get(id(x), id(x))
            if last_use.get(r) == i and r in plan.assignment and owner.get(plan.assignment[r]) == r:
                b = plan.assignment[r]
                if plan.assignment.get(id(o)) != b:
                    free.setdefault(plan.buffers[b], []).append(b)
                    owner.pop(b, None)
    return plan
