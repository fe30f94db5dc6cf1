"""The IR: a Graph is an ordered (topological) list of Nodes in SSA form over typed Values.

Every Value is defined once (by a graph input or by one node), carries a static TensorType and
knows its users. Graph inputs have a role: a user input, a lifted parameter or buffer (read from
a live tensor at every call), or a constant.
"""
from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Any, Iterator

from .primitive import PRIMITIVES, Handler, Primitive, TensorType, pop_handler, push_handler

ROLES = ("input", "param", "buffer", "const", "rng", "grad", "hyper")


class Value:
    # ``shape`` and ``dtype`` are the type's, kept as attributes of their own: type rules, passes
    # and the printer read them for every node (a property call each), and setting ``type``
    # sets them too
    __slots__ = ("_type", "shape", "dtype", "producer", "users", "name", "role", "graph")

    def __init__(self, typ: TensorType, producer: "Node | None" = None, name: str = "",
                 role: str | None = None, graph: "Graph | None" = None) -> None:
        self._type = typ
        self.shape = typ.shape
        self.dtype = typ.dtype
        self.producer = producer
        self.users: list[Node] = []
        self.name = name
        self.role = role
        self.graph = graph

    @property
    def type(self) -> TensorType:
        return self._type

    @type.setter
    def type(self, typ: TensorType) -> None:
        self._type = typ
        self.shape = typ.shape
        self.dtype = typ.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"%{self.name}: {format_type(self.type)}"


@dataclass(eq=False, slots=True)  # slots: a large graph holds hundreds of thousands of nodes
class Node:
    prim: Primitive
    inputs: list  # Values or Python scalars (weakly typed, PyTorch's wrapped numbers)
    attrs: dict
    outputs: list = field(default_factory=list)
    loc: str = ""  # the user's file:line that produced it (passes pass it on to what they derive)

    @property
    def output(self) -> Value:
        return self.outputs[0]

    def value_inputs(self) -> list[Value]:
        return [v for v in self.inputs if isinstance(v, Value)]  # a list: cheaper than a generator here


class Graph:
    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self._counter = 0
        self.loc = ""  # the source location new nodes take (see ``located``)

    # ---- construction -----------------------------------------------------------------------

    def _fresh(self) -> str:
        n = str(self._counter)
        self._counter += 1
        return n

    def add_input(self, typ: TensorType, role: str = "input", name: str | None = None) -> Value:
        if role not in ROLES:
            raise ValueError(f"unknown input role {role!r}; expected one of {ROLES}")
        v = Value(typ, None, name or f"in{len(self.inputs)}", role, self)
        self.inputs.append(v)
        return v

    def add_node(self, prim: Primitive, inputs: list, attrs: dict, typ: TensorType | None = None,
                 loc: str | None = None) -> Value:
        if typ is None:
            typ = prim.infer(*inputs, **attrs)
        node = Node(prim, list(inputs), dict(attrs), loc=self.loc if loc is None else loc)
        out = Value(typ, node, str(self._counter), None, self)
        self._counter += 1
        node.outputs.append(out)
        for v in node.inputs:
            if isinstance(v, Value):
                v.users.append(node)
        self.nodes.append(node)
        return out

    def add_multi_node(self, prim: Primitive, inputs: list, attrs: dict, types: list[TensorType],
                       loc: str | None = None, at: int | None = None) -> Node:
        """A node with one output per type in ``types`` (fused kernels, outlined calls); put at
        position ``at`` of ``nodes`` (None: appended)."""
        node = Node(prim, list(inputs), dict(attrs), loc=self.loc if loc is None else loc)
        for t in types:
            node.outputs.append(Value(t, node, self._fresh(), None, self))
        for v in node.inputs:
            if isinstance(v, Value):
                v.users.append(node)
        if at is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(at, node)
        return node

    def copy_node(self, n: Node, inputs: list) -> list[Value]:
        """A copy of node ``n`` (of another graph) on ``inputs``; its outputs, in order."""
        if len(n.outputs) == 1:
            return [self.add_node(n.prim, inputs, n.attrs, n.output.type, n.loc)]
        return self.add_multi_node(n.prim, inputs, n.attrs, [o.type for o in n.outputs], n.loc).outputs

    def set_outputs(self, outputs: list[Value]) -> None:
        self.outputs = list(outputs)

    def replace_all_uses(self, old: Value, new: Any) -> None:
        for node in list(old.users):
            node.inputs = [new if x is old else x for x in node.inputs]
            if isinstance(new, Value):
                new.users.append(node)
        old.users = []
        self.outputs = [new if o is old else o for o in self.outputs]

    def remove_nodes(self, nodes: list[Node], replacements: dict[int, list[Node]] | None = None) -> None:
        """Remove ``nodes`` in one sweep (one sweep, not a list removal per node);
        ``replacements``: id(removed node) -> the nodes put in its place in the order."""
        gone = {id(n) for n in nodes}
        if not gone:
            return
        touched = {id(v): v for n in nodes for v in n.value_inputs()}
        for v in touched.values():
            v.users = [u for u in v.users if id(u) not in gone]
        replacements = replacements or {}
        self.nodes = [m for n in self.nodes for m in (replacements.get(id(n), ()) if id(n) in gone else (n,))]

    def dispose(self) -> None:
        """Break the reference cycles between this graph's nodes and values (producers, users),
        so its memory is freed as soon as nothing refers to it, without waiting for Python's
        cyclic garbage collector (paused while compiling). Leaves the graph empty: only for a
        graph nothing uses any more, none of whose values a live graph shares."""
        for v in self.inputs:
            v.users = []
        for n in self.nodes:
            for o in n.outputs:
                o.users = []
                o.producer = None
            n.inputs = []
            n.outputs = []
        self.inputs, self.nodes, self.outputs = [], [], []

    def toposort(self) -> None:
        """Restore topological order after nodes were rewired (stable: keeps the current order
        wherever dependencies allow)."""
        position = {id(n): i for i, n in enumerate(self.nodes)}
        # per node, the distinct produced values it reads (a set: a concat of a thousand values
        # must not rescan its operands for each of them)
        reads = {id(n): {id(x) for x in n.value_inputs() if x.producer is not None} for n in self.nodes}
        pending = {k: len(v) for k, v in reads.items()}
        ready = [(position[id(n)], id(n), n) for n in self.nodes if pending[id(n)] == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, _, n = heapq.heappop(ready)
            order.append(n)
            for o in n.outputs:
                for u in set(o.users):
                    if id(o) not in reads[id(u)]:
                        continue
                    pending[id(u)] -= 1
                    if pending[id(u)] == 0:
                        heapq.heappush(ready, (position[id(u)], id(u), u))
        if len(order) != len(self.nodes):
            raise RuntimeError(f"graph {self.name} has a cycle")
        self.nodes = order

    def structural_hash(self) -> str:
        """A stable hash of the graph's structure (its canonical text form)."""
        from .printer import print_graph
        return hashlib.sha256(print_graph(self).encode()).hexdigest()

    def values(self) -> Iterator[Value]:
        yield from self.inputs
        for n in self.nodes:
            yield from n.outputs

    def rename(self) -> None:
        """Number node outputs 0..n-1 in order (the canonical form the printer shows)."""
        for i, v in enumerate(v for n in self.nodes for v in n.outputs):
            v.name = str(i)
        self._counter = sum(len(n.outputs) for n in self.nodes)

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)

    def to_networkx(self):
        """A DiGraph of nodes (and graph inputs) with data-flow edges, for analyses."""
        import networkx as nx
        g = nx.DiGraph()
        for v in self.inputs:
            g.add_node(("input", v.name), kind="input", value=v)
        for i, n in enumerate(self.nodes):
            g.add_node(i, kind="node", op=n.prim.name, node=n)
        index = {id(n): i for i, n in enumerate(self.nodes)}
        for i, n in enumerate(self.nodes):
            for v in n.value_inputs():
                src = ("input", v.name) if v.producer is None else index[id(v.producer)]
                g.add_edge(src, i)
        return g


_TYPE_TEXTS: dict[TensorType, str] = {}  # a type's text, by type: printing a graph writes each value's


def format_type(t: TensorType) -> str:
    try:
        text = _TYPE_TEXTS.get(t)
    except TypeError:  # a type-like record with an unhashable shape (a list)
        text = None
    if text is None:
        text = f"{t.dtype.short}[{','.join(map(str, t.shape))}]"
        if len(_TYPE_TEXTS) < 4096 and type(t) is TensorType:  # bounded: shapes may vary without end
            _TYPE_TEXTS[t] = text
    return text


def primitive(name: str) -> Primitive:
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"unknown primitive {name!r}") from None


class GraphBuilder(Handler):
    """Binding a primitive on IR Values appends a node to their graph (how rules emit IR)."""

    level = 2

    def __init__(self, graph: Graph | None = None) -> None:
        self.graph = graph

    def apply(self, prim: Primitive, args: tuple, attrs: dict) -> Value:
        g = self.graph
        for a in args:
            if isinstance(a, Value):
                if g is None:
                    g = a.graph
                elif a.graph is not g:
                    raise ValueError(f"{prim.name}: operands come from different graphs")
        if g is None:
            raise TypeError(f"{prim.name}: no graph to add the node to")
        if prim.data_dependent:
            raise TypeError(f"{prim.name} has a data-dependent output shape and cannot be put in a graph")
        return g.add_node(prim, list(args), attrs)


Value._graphc_handler = GraphBuilder()


class building:
    """Within this context, creation primitives (no operands) add nodes to ``graph``."""

    def __init__(self, graph: Graph) -> None:
        self.handler = GraphBuilder(graph)

    def __enter__(self) -> Graph:
        push_handler(self.handler)
        return self.handler.graph

    def __exit__(self, *exc) -> None:
        pop_handler(self.handler)


class located:
    """Within this context, nodes added to ``graph`` carry ``loc``: a pass that rewrites or
    differentiates a node gives what it derives the node's source location."""

    def __init__(self, graph: Graph, loc: str) -> None:
        self.graph, self.loc = graph, loc

    def __enter__(self) -> None:
        self.saved, self.graph.loc = self.graph.loc, self.loc

    def __exit__(self, *exc) -> None:
        self.graph.loc = self.saved
