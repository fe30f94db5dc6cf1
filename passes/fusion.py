"""Fusion: group chains of pointwise ops (plus at most one trailing reduction) and matmuls with a
pointwise epilogue into ``fused`` nodes that own their subgraph.

Legality is checked on the graph of groups (reachability in the quotient DAG): a node may join a
group only if none of its other operands depends on the group, directly or through another group,
otherwise the fused nodes would depend on each other. The quotient keeps a topological order as
edges are added (Pearce and Kelly's dynamic topological ordering), so most reachability questions
are answered by comparing two numbers and the others search only the vertices ordered between
the two: fusion stays close to linear in the graph's size. Every rejected candidate is logged
with its reason (``GRAPHC_LOGS=fusion``).
"""
from __future__ import annotations

import logging

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


class _Quotient:
    """A DAG kept with a topological order (``order``: vertex -> number, edges go from lower to
    higher numbers), updated as edges are added (D. J. Pearce and P. H. J. Kelly, "A dynamic
    topological sort algorithm for directed acyclic graphs", 2006)."""

    def __init__(self) -> None:
        self.succ: dict[int, set[int]] = {}
        self.pred: dict[int, set[int]] = {}
        self.order: dict[int, int] = {}

    def add_vertex(self, v: int) -> None:
        """A new vertex comes after every other one."""
        if v not in self.order:
            self.order[v] = len(self.order)
            self.succ[v], self.pred[v] = set(), set()

    def reaches(self, a: int, b: int) -> bool:
        """Whether there is a path from ``a`` to ``b``: none if ``a`` comes after ``b`` in the
        order, else a search through the vertices ordered between them."""
        if a == b:
            return True
        order, limit = self.order, self.order[b]
        if order[a] > limit:
            return False
        stack, seen = [a], {a}
        while stack:
            for w in self.succ[stack.pop()]:
                if w == b:
                    return True
                if w not in seen and order[w] < limit:
                    seen.add(w)
                    stack.append(w)
        return False

    def add_edge(self, a: int, b: int) -> None:
        """Add ``a -> b``; the caller made sure that ``b`` does not reach ``a``."""
        if a == b or b in self.succ[a]:
            return
        self.succ[a].add(b)
        self.pred[b].add(a)
        lo, hi = self.order[b], self.order[a]
        if lo > hi:
            return
        # reorder the affected region: what b reaches (ordered before a) must follow what reaches a
        # (ordered after b); both keep their relative order and share their old numbers
        order = self.order
        forward = self._region(b, self.succ, lambda o: o < hi)
        backward = self._region(a, self.pred, lambda o: o > lo)
        forward.sort(key=order.__getitem__)
        backward.sort(key=order.__getitem__)
        moved = backward + forward
        for v, o in zip(moved, sorted(order[v] for v in moved)):
            order[v] = o

    def merge_into(self, b: int, a: int) -> None:
        """Contract the edge ``a -> b`` into ``b``, when every other successor of ``a`` comes
        after ``b`` in the order (the caller's check): ``a``'s predecessors come before ``a``,
        so the order stays topological as it is."""
        for u in self.pred.pop(a):
            self.succ[u].discard(a)
            self.succ[u].add(b)
            self.pred[b].add(u)
        for w in self.succ.pop(a):
            self.pred[w].discard(a)
            if w != b:
                self.succ[b].add(w)
                self.pred[w].add(b)
        del self.order[a]

    def _region(self, start: int, edges: dict, inside) -> list[int]:
        found, stack = {start}, [start]
        while stack:
            for w in edges[stack.pop()]:
                if w not in found and inside(self.order[w]):
                    found.add(w)
                    stack.append(w)
        return list(found)


class _Group:
    def __init__(self, first: Node, kind: str, domain: tuple) -> None:
        self.nodes = [first]
        self.members = {id(first.output)}    # ids of the member nodes' outputs
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
        return [x for x in n.value_inputs() if id(x) not in self.members]

    def _note_reads(self, n: Node) -> None:
        for x in self._outside(n):
            self.reads.setdefault(id(x), self._over_reduced(n))

    def add(self, n: Node) -> None:
        self._note_reads(n)
        self.nodes.append(n)
        self.members.add(id(n.output))
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
                for x in n.value_inputs():
                    m = x.producer if id(x) in self.members else None
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
    quotient = _Quotient()
    vertex: dict[int, int] = {}  # id(node) -> its vertex

    def operand_vertices(n: Node) -> list[int]:
        # in operand order: the order the quotient's edges are added in decides its numbering,
        # which decides sibling fusion, so it must not depend on ids (memory addresses)
        return list(dict.fromkeys(vertex[id(x.producer)] for x in n.value_inputs() if x.producer is not None))

    def place(n: Node, v: int) -> None:
        vertex[id(n)] = v
        quotient.add_vertex(v)
        for u in operand_vertices(n):
            quotient.add_edge(u, v)

    group_of: dict[int, _Group] = {}
    groups: list[_Group] = []
    readers: dict[int, list[_Group]] = {}  # id(value) -> groups of its placed users, in placing order

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
            if quotient.reaches(gv, vertex[id(p)]):
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
                # may (siblings: mean and variance read x once, in one kernel). Only a group that
                # comes after every operand's vertex in the order, which proves it legal: an
                # earlier group reading the same value (a loop's previous step reading the same
                # parameter) usually feeds an operand, and proving it does not costs a search
                latest = max((quotient.order[u] for u in operand_vertices(n)), default=-1)
                joined = _sibling_group(n, readers, lambda grp: quotient.order[vertex[id(grp.nodes[0])]] > latest,
                                        lambda grp: grp.refuses(n) is None)
            if joined is not None:
                joined.add(n)
                place(n, vertex[id(joined.nodes[0])])
            else:
                joined = _Group(n, "pointwise", domain)
                groups.append(joined)
                place(n, id(n))
            group_of[id(n)] = joined
            for x in dict.fromkeys(n.value_inputs()):
                readers.setdefault(id(x), []).append(joined)
        else:
            if n.prim is P.matmul and in_kernels(P.matmul):
                grp = _Group(n, "matmul_epilogue", tuple(n.output.shape))
                groups.append(grp)
                group_of[id(n)] = grp
            place(n, id(n))
    groups = _merge_pointwise(groups, quotient, vertex, {id(n): i for i, n in enumerate(g.nodes)}, report)
    _contract(g, [grp for grp in groups if len(grp.nodes) > 1])
    g.toposort()  # once for all contractions (legality guarantees the result is acyclic)
    return g


# the most nodes a merge may make a group of: chains of pointwise work that run through every
# step of an unrolled loop (an RNN's gradient sums) would otherwise merge into one kernel over the
# whole loop, with a kernel argument per step (past what a GPU kernel should take)
MERGED_NODES = 64


def _merge_pointwise(groups: list[_Group], quotient: _Quotient, vertex: dict[int, int], position: dict[int, int],
                     report: list) -> list[_Group]:
    """Merge a pointwise group into the pointwise group over the same domain it feeds, when its
    other successors all come after that group in the quotient's order: then no other path joins
    the two (merging never closes a cycle), and the merged group keeps the later vertex's place
    in the order, with no search and no reordering (a merge costs the two groups' degrees, so
    long unrolled graphs stay linear). Nodes join groups greedily in graph order, so one chain of
    work can end up in several groups: an optimizer's update of one parameter (its two moment
    updates and the step read the same gradient, with scalar factors computed in between) became
    three kernels, each a pass over the parameter's memory."""
    by_vertex = {vertex[id(grp.nodes[0])]: grp for grp in groups}
    order = quotient.order
    gone: set[int] = set()  # ids of the groups merged into another

    def mergeable(grp: _Group) -> bool:
        return grp.kind == "pointwise" and grp.reduce is None

    for va in sorted(by_vertex, key=order.__getitem__):  # a merged group is visited again at its new vertex
        a = by_vertex[va]
        if not mergeable(a) or not quotient.succ[va]:
            continue
        vb = min(quotient.succ[va], key=order.__getitem__)  # the only one the others may all follow
        b = by_vertex.get(vb)
        if b is None or not mergeable(b) or b.domain != a.domain or len(a.nodes) + len(b.nodes) > MERGED_NODES:
            continue
        report.append(f"group of %{a.nodes[0].output.name} merged into the group of %{b.nodes[0].output.name}")
        quotient.merge_into(vb, va)
        b.nodes = sorted(a.nodes + b.nodes, key=lambda n: position[id(n)])
        for n in a.nodes:
            vertex[id(n)] = vb
        del by_vertex[va]
        by_vertex[vb] = b
        gone.add(id(a))
    return [grp for grp in groups if id(grp) not in gone]


def _sibling_group(n: Node, readers: dict, recent, fits) -> "_Group | None":
    """The group of an already placed user of one of ``n``'s operands (``readers``) that is
    ``recent`` and ``fits``; matmul epilogues excluded (their loads are the matmul's tiles).
    Groups are looked at latest first, up to the first one that is not recent: a value read in
    every step of a long loop is not searched through all the steps for each one."""
    for x in n.value_inputs():
        for grp in reversed(readers.get(id(x), ())):
            if grp.kind == "matmul_epilogue":
                continue
            if not recent(grp):
                break
            if fits(grp):
                return grp
    return None


def _contract(g: Graph, groups: list[_Group]) -> None:
    """Replace each group's nodes by one fused node owning them as its body, placed where the
    group's first node was. One sweep over the graph for all groups (no per-node list removal:
    that made fusion quadratic in the graph size)."""
    if not groups:
        return
    graph_outputs = {id(o) for o in g.outputs}
    position = {id(n): i for i, n in enumerate(g.nodes)}
    placed: dict[int, Node] = {}       # id(the group's first node) -> its fused node
    removed: set[int] = set()
    renamed: dict[int, Value] = {}     # id(old member value returned by the graph) -> new value
    for grp in groups:
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
            env[id(n.output)] = body.add_node(n.prim, args, n.attrs, n.output.type, n.loc)
        # outputs: member values used outside the group or returned by the graph
        outs = [n.output for n in grp.nodes
                if any(id(u) not in members for u in n.output.users) or id(n.output) in graph_outputs]
        body.set_outputs([env[id(o)] for o in outs])
        removed |= members
        node = add_fused_node(g, inputs, body, grp.kind, grp.domain, at=None)
        placed[id(min(grp.nodes, key=lambda n: position[id(n)]))] = node
        for old, new in zip(outs, node.outputs):
            for user in old.users:  # users outside the group now read the fused node's output
                user.inputs = [new if x is old else x for x in user.inputs]
                new.users.append(user)
            old.users = []
            if id(old) in graph_outputs:
                renamed[id(old)] = new
    g.nodes = [placed.get(id(n), n) for n in g.nodes if id(n) not in removed or id(n) in placed]
    if renamed:
        g.outputs = [renamed.get(id(o), o) for o in g.outputs]
    # the removed nodes leave every user list at once (per group, a value read in every step of
    # a loop would be filtered once per step). Until here they may sit in user lists, where they
    # only count as outside users (each was replaced by its group's fused node) and get rewired
    for v in [*g.inputs, *(o for n in g.nodes for o in n.outputs)]:
        if any(id(u) in removed for u in v.users):
            v.users = [u for u in v.users if id(u) not in removed]
