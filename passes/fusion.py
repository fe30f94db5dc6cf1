"""Fusion: group chains of pointwise ops (plus at most one trailing reduction) and matmuls with a
pointwise epilogue into ``fused`` nodes that own their subgraph.

Legality is checked on the graph of groups (networkx reachability): a node may join a group only if
none of its other operands depends on the group, directly or through another group, otherwise the
fused nodes would depend on each other. Every
rejected candidate is logged with its reason (``GRAPHC_LOGS=fusion``).
"""
from __future__ import annotations

import logging

import networkx as nx

from typing import Callable

from graphc.ir import prims as P
from graphc.ir.fused import add_fused_node
from graphc.ir.graph import Graph, Node, Value
from graphc.ir.primitive import Primitive
from graphc.ir.shapes import wrap_dims

log = logging.getLogger("graphc.fusion")


def _pointwise(n: Node) -> bool:
    return n.prim.elementwise and n.prim is not P.copy and bool(list(n.value_inputs()))


def _reduce_key(n: Node) -> tuple:
    """What reductions sharing a group must agree on: the reduced axes and keepdim."""
    return wrap_dims(n.attrs["dims"], n.inputs[0].ndim), bool(n.attrs["keepdim"])


class _Group:
    def __init__(self, first: Node, kind: str, domain: tuple) -> None:
        self.nodes = [first]
        self.kind = kind
        self.domain = domain
        self.reduce: tuple | None = None      # (dims, keepdim) shared by the group's reductions
        self.reduced: tuple | None = None     # the shape of its reduced values
        # outside values read by the group -> whether over the reduced shape (True) or not
        self.reads: dict[int, bool] = {}
        self._note_reads(first)
        if first.prim.reduction:
            self._note_reduction(first)

    def _note_reduction(self, n: Node) -> None:
        self.kind = "reduction"
        self.reduce = _reduce_key(n)
        self.reduced = tuple(n.output.shape)

    def _over_reduced(self, n: Node) -> bool:
        return not n.prim.reduction and self.reduced is not None and tuple(n.output.shape) == self.reduced

    def _outside(self, n: Node) -> list[Value]:
        members = {id(m.output) for m in self.nodes}
        return [x for x in n.value_inputs() if id(x) not in members]

    def _note_reads(self, n: Node) -> None:
        for x in self._outside(n):
            self.reads.setdefault(id(x), self._over_reduced(n))

    def add(self, n: Node) -> None:
        self._note_reads(n)
        self.nodes.append(n)
        if n.prim.reduction:
            self._note_reduction(n)

    def refuses(self, n: Node) -> str | None:
        """Why ``n`` can't join this group by its shape alone (None: it can)."""
        if n.prim.reduction:
            if self.kind == "matmul_epilogue":
                return "a matmul epilogue is pointwise per output element; it can't reduce"
            src = tuple(n.inputs[0].shape)
            if src != self.domain:
                return f"iteration domain {list(src)} differs from the group's {list(self.domain)}"
            if self.reduce is not None and _reduce_key(n) != self.reduce:
                return "it reduces other dimensions than the group's reductions"
            return None
        out = tuple(n.output.shape)
        if out != self.domain and (self.reduced is None or out != self.reduced):
            return f"iteration domain {list(out)} differs from the group's {list(self.domain)}"
        if self.reduced is not None and len(self.reduced) != len(self.domain):
            # without keepdim, an operand broadcasts differently against the reduced shape than
            # against the domain: a kernel reads each outside value one way only, and a reduced
            # value broadcast over the domain aligns with the trailing dimensions, not the kept
            over = self._over_reduced(n)
            for x in self._outside(n):
                if self.reads.get(id(x), over) != over:
                    return f"%{x.name} is read both over the reduced shape and over the domain"
            if not over:
                members = {id(m.output): m for m in self.nodes}
                for x in n.value_inputs():
                    m = members.get(id(x))
                    if m is not None and (m.prim.reduction or self._over_reduced(m)):
                        return f"it broadcasts the reduced value %{x.name} over the domain"
        return None


def fuse(g: Graph, report: list | None = None, in_kernels: Callable[[Primitive], bool] = lambda p: True) -> Graph:
    """Group ``g``'s nodes into fused nodes. ``in_kernels``: the backend's answer to whether it
    generates a primitive inside kernels (ops it calls as library routines stay alone).

    The contract, for every backend: a pointwise group spans one iteration domain; a reduction
    group spans the domain of its reductions' input: reductions over the same dimensions, and
    pointwise ops over that domain or over the reduced shape, before and after the reductions
    (softmax, layer norm and mean+variance are one group each); a matmul group is a matmul
    followed by pointwise ops over its output (an epilogue computes each output element where
    it is stored, so it can never reduce across the matmul's rows)."""
    report = report if report is not None else []
    # The quotient DAG: one vertex per group (keyed by the group's first node) or ungrouped node.
    # Nodes are visited in topological order, so a new node has no users yet: letting it join a
    # group only adds edges from its operands' vertices to the group's vertex, which closes a
    # cycle exactly when the group's vertex already reaches one of those operand vertices
    # (possibly through another group: pairwise node checks miss such cycles).
    quotient = nx.DiGraph()
    vertex: dict[int, int] = {}  # id(node) -> its vertex

    def operand_vertices(n: Node) -> set[int]:
        return {vertex[id(x.producer)] for x in n.value_inputs() if x.producer is not None}

    def place(n: Node, v: int) -> None:
        vertex[id(n)] = v
        quotient.add_node(v)
        for u in operand_vertices(n):
            if u != v:
                quotient.add_edge(u, v)

    group_of: dict[int, _Group] = {}
    groups: list[_Group] = []

    def reject(n: Node, why: str) -> None:
        msg = f"%{n.output.name} ({n.prim.name}) not fused: {why}"
        report.append(msg)
        log.debug(msg)

    def legal(grp: _Group, n: Node) -> bool:
        gv = vertex[id(grp.nodes[0])]
        for x in n.value_inputs():
            p = x.producer
            if p is None or vertex[id(p)] == gv:
                continue
            if nx.has_path(quotient, gv, vertex[id(p)]):
                reject(n, f"operand %{x.name} depends on the group, fusing would create a cycle")
                return False
        return True

    for n in g.nodes:
        joined = None
        is_pw = _pointwise(n) and in_kernels(n.prim)
        is_red = n.prim.reduction and "dims" in n.attrs and in_kernels(n.prim)
        if is_pw or is_red:
            domain = tuple(n.output.shape) if is_pw else tuple(n.inputs[0].shape)
            for x in n.value_inputs():
                grp = group_of.get(id(x.producer)) if x.producer is not None else None
                if grp is None or (is_red and x is not n.inputs[0]):
                    continue
                why = grp.refuses(n)
                if why is not None:
                    reject(n, why)
                    continue
                if legal(grp, n):
                    joined = grp
                    break
            if joined is None:
                # no producer's group takes it: a group that already reads one of its operands
                # may (siblings: mean and variance read x once, in one kernel)
                joined = _sibling_group(n, group_of, lambda grp: grp.refuses(n) is None and legal(grp, n))
            if joined is not None:
                joined.add(n)
                place(n, vertex[id(joined.nodes[0])])
            else:
                joined = _Group(n, "pointwise", domain)
                groups.append(joined)
                place(n, id(n))
            group_of[id(n)] = joined if joined is not None else None
        else:
            if n.prim is P.matmul and in_kernels(P.matmul):
                grp = _Group(n, "matmul_epilogue", tuple(n.output.shape))
                groups.append(grp)
                group_of[id(n)] = grp
            place(n, id(n))
    for grp in groups:
        if len(grp.nodes) > 1:
            _contract(g, grp)
    g.toposort()  # once for all contractions (legality guarantees the result is acyclic)
    return g


def _sibling_group(n: Node, group_of: dict, fits) -> "_Group | None":
    """The group of an already placed user of one of ``n``'s operands that ``fits``; matmul
    epilogues excluded (their loads are the matmul's tiles)."""
    for x in n.value_inputs():
        for u in x.users:
            grp = group_of.get(id(u))  # None for users not placed yet
            if grp is not None and grp.kind != "matmul_epilogue" and fits(grp):
                return grp
    return None


def _contract(g: Graph, grp: _Group) -> None:
    """Replace the group's nodes by one fused node owning them as its body."""
    members = {id(n) for n in grp.nodes}
    body = Graph(f"fused_{grp.nodes[0].output.name}")
    inputs: list[Value] = []
    env: dict[int, Value] = {}
    for n in grp.nodes:
        args = []
        for x in n.inputs:
            if isinstance(x, Value) and (x.producer is None or id(x.producer) not in members):
                if id(x) not in env:
                    inputs.append(x)
                    env[id(x)] = body.add_input(x.type, "input", f"a{len(inputs) - 1}")
            args.append(env[id(x)] if isinstance(x, Value) else x)
        env[id(n.output)] = body.add_node(n.prim, args, n.attrs, n.output.type)
    # outputs: member values used outside the group or returned by the graph
    outs = [n.output for n in grp.nodes
            if any(id(u) not in members for u in n.output.users) or n.output in g.outputs]
    body.set_outputs([env[id(o)] for o in outs])
    at = min(g.nodes.index(n) for n in grp.nodes)
    for n in grp.nodes:
        g.remove_node(n)
    node = add_fused_node(g, inputs, body, grp.kind, grp.domain, at)
    for old, new in zip(outs, node.outputs):
        g.replace_all_uses(old, new)
