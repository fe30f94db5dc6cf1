"""Outlining: module calls that repeat with the same structure become calls of one shared body.

A Python loop over time steps (PyTorch's ``time_sequence_prediction``: two ``LSTMCell``s and a
``Linear`` unrolled over 999 steps) traces into one node per op per step. Every pass, autodiff and
code generation would then work through each step's copy of the same few dozen nodes. The trace
marks each module call (its nodes and the tensors it returned); calls whose nodes are the same
operations on operands of the same types, wired the same way, are one function of their
external operands (the step's input, the carried state, the module's parameters). When at least
``MIN_CALLS`` calls share a structure, each becomes a ``call`` node of one body graph, which the
passes, autodiff and the backend then handle once (``graphc.ir.call``).

A call is only outlined when that changes nothing observable: it holds no effectful op (a
collective) and no node with several outputs, nothing outside it reads its intermediate values
(a buffer update, a value saved by a hook), and what it returns is computed inside it (not one of
its operands or a view of one, which the caller may expect to alias).
"""
from __future__ import annotations

from graphc.ir.call import add_call, call
from graphc.ir.graph import Graph, Node, Value

from .cse import hashable

# calls sharing one structure before they share a body: a handful of repeats gains little
# compile time and costs each call a Python function call at run time
MIN_CALLS = 8


def outline(g: Graph, calls: list[tuple[int, int, list[Value]]], min_calls: int | None = None) -> int:
    """Replace repeated module calls of ``g`` (``(first node, end node, returned values)`` in
    trace order, as ``Trace.calls`` records them) by calls of shared bodies; returns how many
    bodies were made."""
    min_calls = MIN_CALLS if min_calls is None else min_calls
    nodes = g.nodes
    position = {id(n): i for i, n in enumerate(nodes)}
    returned = {id(o) for o in g.outputs}
    groups: dict[tuple, list[tuple[int, int, list[Value], list[Value]]]] = {}
    longest = len(nodes) // min_calls  # a longer call can't repeat min_calls times (the whole model's)
    for start, end, outs in calls:
        if end - start < 2 or end - start > longest or end > len(nodes):
            continue
        found = _signature(nodes, start, end, outs, position, returned)
        if found is not None:
            key, externals = found
            groups.setdefault(key, []).append((start, end, outs, externals))
    taken = bytearray(len(nodes))
    chosen = []
    # the largest repeated structures first: a repeated call's own repeated calls stay inside it
    for key, regions in sorted(groups.items(), key=lambda kv: -(kv[1][0][1] - kv[1][0][0])):
        free = [r for r in regions if not any(taken[r[0]:r[1]])]
        if len(free) < min_calls:
            continue
        for start, end, _, _ in free:
            taken[start:end] = b"\x01" * (end - start)
        chosen.append(free)
    if not chosen:
        return 0
    n_before = len(nodes)
    removed: list[Node] = []
    replacements: dict[int, list[Node]] = {}
    renamed: dict[int, Value] = {}  # a returned value already replaced by a call's output
    # every body before any call replaces its region: a replacement rewires the operands of
    # the nodes after it, which other groups' first regions may hold
    made = [_body(nodes, regions[0], f"{g.name}_body{k}") for k, regions in enumerate(chosen)]
    for body, regions in zip(made, chosen):
        for start, end, outs, externals in regions:
            node = add_call(g, body, [renamed.get(id(x), x) for x in externals], loc=nodes[start].loc)
            for o, new in zip(outs, node.outputs):
                if id(o) not in renamed:  # a call may return one value twice
                    g.replace_all_uses(o, new)
                    renamed[id(o)] = new
            removed.extend(nodes[start:end])
            replacements[id(nodes[start])] = [node]
    del g.nodes[n_before:]  # the calls take their regions' places
    g.remove_nodes(removed, replacements)
    return len(chosen)


def _signature(nodes: list[Node], start: int, end: int, outs: list[Value], position: dict[int, int],
               returned: set[int]) -> tuple[tuple, list[Value]] | None:
    """The structure of the call ``nodes[start:end]`` (hashable: equal for calls that compute
    the same function of their external operands) and its external operands in the order the
    body takes them; None when the call can't be outlined."""
    local: dict[int, int] = {}
    external: dict[int, int] = {}
    externals: list[Value] = []
    parts = []
    for k in range(start, end):
        n = nodes[k]
        if n.prim.effectful or n.prim is call or len(n.outputs) != 1:
            return None
        ins = []
        for x in n.inputs:
            if not isinstance(x, Value):
                ins.append(hashable(x))
            elif id(x) in local:
                ins.append(local[id(x)])
            else:
                j = external.get(id(x))
                if j is None:
                    j = external[id(x)] = len(externals)
                    externals.append(x)
                ins.append(("x", j, x.type))
        local[id(n.output)] = k - start
        parts.append((n.prim.name, tuple(ins), tuple(sorted((a, hashable(v)) for a, v in n.attrs.items())),
                      n.output.type))
    out_ids = {id(o) for o in outs}
    for o in outs:
        if id(o) not in local or _views_external(o, local):
            return None
    for k in range(start, end):
        v = nodes[k].output
        if id(v) in out_ids:
            continue
        if id(v) in returned or any(not start <= position.get(id(u), -1) < end for u in v.users):
            return None  # read outside the call (a buffer update, a value a hook kept)
    key = (tuple(parts), tuple(local[id(o)] for o in outs))
    try:
        hash(key)
    except TypeError:  # an attribute without a hashable form (an array): not shared
        return None
    return key, externals


def _views_external(v: Value, local: dict[int, int]) -> bool:
    """Whether ``v`` is an external operand seen through views (the caller may expect an alias)."""
    while v.producer is not None and (v.producer.prim.is_view or v.producer.prim.name == "stop_gradient") \
            and id(v) in local:
        v = v.producer.inputs[0]
    return id(v) not in local


def _body(nodes: list[Node], region: tuple, name: str) -> Graph:
    """The body graph of one outlined call: its external operands as inputs, its nodes, and its
    returned values as outputs."""
    start, end, outs, externals = region
    body = Graph(name)
    env = {id(v): body.add_input(v.type, "input", f"a{i}") for i, v in enumerate(externals)}
    for n in nodes[start:end]:
        args = [env[id(x)] if isinstance(x, Value) else x for x in n.inputs]
        env[id(n.output)] = body.add_node(n.prim, args, n.attrs, n.output.type, n.loc)
    body.set_outputs([env[id(o)] for o in outs])
    body.rename()
    return body
