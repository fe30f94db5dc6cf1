"""Fusion: group chains of pointwise ops (plus at most one trailing reduction) and matmuls with a
pointwise epilogue into ``fused`` nodes that own their subgraph.

Legality is checked on the graph (networkx reachability): a node may join a group only if none of
its other operands depends on the group, otherwise the fused node would depend on itself. Every
rejected candidate is logged with its reason (``GRAPHC_LOGS=fusion``).
"""
from __future__ import annotations

import logging

import networkx as nx

from graphc.ir import prims as P
from graphc.ir.fused import add_fused_node
from graphc.ir.graph import Graph, Node, Value

log = logging.getLogger("graphc.fusion")
REDUCTIONS = frozenset({P.sum, P.prod, P.amax, P.amin})


def _pointwise(n: Node) -> bool:
    return n.prim.kind == "elementwise" and n.prim is not P.copy and bool(list(n.value_inputs()))


class _Group:
    def __init__(self, first: Node, kind: str, domain: tuple) -> None:
        self.nodes = [first]
        self.kind = kind
        self.domain = domain
        self.closed = kind == "reduction"


def fuse(g: Graph, report: list | None = None) -> Graph:
    report = report if report is not None else []
    dag = nx.DiGraph()
    for n in g.nodes:
        dag.add_node(id(n))
        for x in n.value_inputs():
            if x.producer is not None:
                dag.add_edge(id(x.producer), id(n))
    desc: dict[int, set] = {}

    def reaches(a: Node, b: Node) -> bool:
        if id(a) not in desc:
            desc[id(a)] = nx.descendants(dag, id(a))
        return id(b) in desc[id(a)]

    group_of: dict[int, _Group] = {}
    groups: list[_Group] = []

    def reject(n: Node, why: str) -> None:
        msg = f"%{n.output.name} ({n.prim.name}) not fused: {why}"
        report.append(msg)
        log.debug(msg)

    def legal(grp: _Group, n: Node) -> bool:
        for x in n.value_inputs():
            p = x.producer
            if p is None or group_of.get(id(p)) is grp:
                continue
            if any(reaches(m, p) for m in grp.nodes):
                reject(n, f"operand %{x.name} depends on the group, fusing would create a cycle")
                return False
        return True

    for n in g.nodes:
        joined = None
        is_pw, is_red = _pointwise(n), n.prim in REDUCTIONS
        if is_pw or is_red:
            domain = tuple(n.output.shape) if is_pw else tuple(n.inputs[0].shape)
            for x in n.value_inputs():
                grp = group_of.get(id(x.producer)) if x.producer is not None else None
                if grp is None:
                    continue
                if grp.closed:
                    reject(n, f"the group of %{x.name} already ends in a reduction")
                    continue
                if grp.domain != domain:
                    reject(n, f"iteration domain {list(domain)} differs from the group's {list(grp.domain)}")
                    continue
                if is_red and x is not n.inputs[0]:
                    continue
                if legal(grp, n):
                    joined = grp
                    break
            if joined is not None:
                joined.nodes.append(n)
                if is_red:
                    joined.closed = True
                    joined.kind = "reduction" if joined.kind == "pointwise" else joined.kind
            elif is_pw:
                joined = _Group(n, "pointwise", domain)
                groups.append(joined)
            group_of[id(n)] = joined if joined is not None else None
        elif n.prim is P.matmul:
            grp = _Group(n, "matmul_epilogue", tuple(n.output.shape))
            groups.append(grp)
            group_of[id(n)] = grp
    for grp in groups:
        if len(grp.nodes) > 1:
            _contract(g, grp)
    return g


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
    # the fused node must come after every operand's producer
    last_dep = max((g.nodes.index(x.producer) for x in inputs if x.producer is not None), default=-1)
    if last_dep > g.nodes.index(node):
        g.nodes.remove(node)
        g.nodes.insert(last_dep + 1, node)
    for old, new in zip(outs, node.outputs):
        g.replace_all_uses(old, new)
