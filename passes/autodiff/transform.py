"""Autodiff as a graph transformation: forward graph -> (forward-with-saved, backward) graphs.

The joint graph is built by walking the forward nodes in reverse and applying the same VJP
rules eager autograd uses (binding primitives on IR values emits nodes; ``backprop``). It is then split: the
backward graph holds every node that depends on an output cotangent; values it needs from the
forward pass are saved. Cheap pointwise values are recomputed in backward instead of saved.
"""
from __future__ import annotations

from dataclasses import dataclass

from graphc.ir import prims as P
from graphc.ir.call import add_call, call
from graphc.ir.graph import Graph, Node, Value

from .backprop import backprop


@dataclass
class SplitGraphs:
    forward: Graph      # inputs as the original; outputs: original outputs + saved values
    backward: Graph     # inputs: one cotangent per differentiable output, then saved values
    n_outputs: int      # how many of forward's outputs are the user's
    diff_outputs: list[int]  # indices of outputs that receive a cotangent
    wrt: list[int]      # forward input indices whose gradients backward returns, in order


def _clone(g: Graph) -> tuple[Graph, dict[int, Value]]:
    """A structural copy; returns it and a map from id(old value) to new value."""
    new = Graph(g.name)
    m: dict[int, Value] = {}
    for v in g.inputs:
        m[id(v)] = new.add_input(v.type, v.role, v.name)
    for n in g.nodes:
        args = [m[id(x)] if isinstance(x, Value) else x for x in n.inputs]
        for o, out in zip(n.outputs, new.copy_node(n, args)):
            out.name = o.name
            m[id(o)] = out
    new.set_outputs([m[id(o)] for o in g.outputs])
    new._counter = g._counter
    return new, m


def build_joint(fwd: Graph, wrt: list[int], diff_outputs: list[int]) -> tuple[Graph, int, list[int]]:
    """The forward graph plus cotangent inputs and gradient outputs. Returns it, the index of the
    first cotangent input, and the inputs of ``wrt`` a gradient actually reaches (in order):
    an input used only through non-differentiable ops gets no gradient (its .grad stays None,
    as in eager mode)."""
    g, _ = _clone(fwd)
    first_ct = len(g.inputs)
    seeds = [(g.outputs[k], g.add_input(g.outputs[k].type, "input", f"grad{k}")) for k in diff_outputs]
    ct = backprop(g, seeds, {id(g.inputs[i]) for i in wrt})
    reached = [i for i in wrt if id(g.inputs[i]) in ct]
    g.set_outputs(list(g.outputs) + [ct[id(g.inputs[i])] for i in reached])
    return g, first_ct, reached


def split(joint: Graph, first_ct: int, n_outputs: int, diff_outputs: list[int], wrt: list[int],
          recompute: bool = True) -> SplitGraphs:
    """Partition the joint graph into forward and backward graphs."""
    ct_inputs = {id(v) for v in joint.inputs[first_ct:]}
    in_backward: set[int] = set()
    for n in joint.nodes:
        if any(id(x) in ct_inputs or id(x) in in_backward for x in n.value_inputs()):
            in_backward.update(id(o) for o in n.outputs)
    # operand-free constants (zeros for gradients) used only by backward nodes belong there
    for n in joint.nodes:
        if not list(n.value_inputs()) and n.output.users and all(
                id(u.output) in in_backward for u in n.output.users) and n.output not in joint.outputs[:n_outputs]:
            in_backward.add(id(n.output))
    fwd_nodes = [n for n in joint.nodes if id(n.output) not in in_backward]
    bwd_nodes = [n for n in joint.nodes if id(n.output) in in_backward]
    # forward values the backward nodes read, and graph inputs they read
    fwd_ids = {id(o) for n in fwd_nodes for o in n.outputs} | {id(v) for v in joint.inputs[:first_ct]}
    producer = {id(o): n for n in fwd_nodes for o in n.outputs}

    def needed(nodes) -> list[Value]:
        seen, out = set(), []
        for n in nodes:
            for x in n.value_inputs():
                if id(x) in fwd_ids and id(x) not in seen:
                    seen.add(id(x))
                    out.append(x)
        return out

    recomputed: list[Node] = []
    if recompute:
        # the user's outputs are returned anyway: saving one costs nothing, recomputing does.
        # A cheap producer of a value backward reads is recomputed there, and so, transitively,
        # are the cheap producers of its operands (a worklist: each node is looked at once)
        returned = {id(o) for o in joint.outputs[:n_outputs]}
        chosen: set[int] = set()
        work = needed(bwd_nodes)
        while work:
            v = work.pop()
            n = producer.get(id(v))
            if n is None or id(n) in chosen or not n.prim.cheap or id(v) in returned:
                continue
            chosen.add(id(n))
            recomputed.append(n)
            work.extend(x for x in n.value_inputs() if id(x) in fwd_ids)
        order = {id(n): i for i, n in enumerate(joint.nodes)}
        recomputed.sort(key=lambda n: order[id(n)])
    rec_ids = {id(o) for n in recomputed for o in n.outputs}
    saved = [v for v in needed(recomputed + bwd_nodes) if id(v) not in rec_ids]

    # forward graph: the original outputs plus saved values
    fwd = Graph(joint.name + "_forward")
    m: dict[int, Value] = {}
    for v in joint.inputs[:first_ct]:
        m[id(v)] = fwd.add_input(v.type, v.role, v.name)
    for n in fwd_nodes:
        args = [m[id(x)] if isinstance(x, Value) else x for x in n.inputs]
        m.update(zip(map(id, n.outputs), _copy(fwd, n, args)))
    fwd.set_outputs([m[id(o)] for o in joint.outputs[:n_outputs]] + [m[id(v)] for v in saved])

    bwd = Graph(joint.name + "_backward")
    b: dict[int, Value] = {}
    for v in joint.inputs[first_ct:]:
        b[id(v)] = bwd.add_input(v.type, "input", v.name)
    taken = {v.name for v in bwd.inputs} | {f"saved{i}" for i in range(len(saved))}
    for i, v in enumerate(saved):  # a saved graph input keeps its name (%fc1.weight) where it is free
        keep = v.producer is None and v.name not in taken
        b[id(v)] = bwd.add_input(v.type, "input", v.name if keep else f"saved{i}")
        taken.add(v.name)
    for n in recomputed + bwd_nodes:
        args = [b[id(x)] if isinstance(x, Value) else x for x in n.inputs]
        b.update(zip(map(id, n.outputs), _copy(bwd, n, args)))
    grad_outs = joint.outputs[n_outputs:]
    bwd.set_outputs([b[id(o)] if id(o) in b else _materialize(bwd, b, o) for o in grad_outs])
    from ..dce import dce
    dce(bwd, keep_inputs=True)
    # values saved for backward that the simplified backward never reads are not saved at all
    first_saved = len(joint.inputs) - first_ct
    unread = {i for i, v in enumerate(bwd.inputs[first_saved:]) if not v.users and v not in bwd.outputs}
    if unread:
        bwd.inputs = bwd.inputs[:first_saved] + [v for i, v in enumerate(bwd.inputs[first_saved:])
                                                  if i not in unread]
        fwd.set_outputs(fwd.outputs[:n_outputs] + [o for i, o in enumerate(fwd.outputs[n_outputs:])
                                                   if i not in unread])
    dce(fwd, keep_inputs=True)
    fwd.rename()
    bwd.rename()
    return SplitGraphs(fwd, bwd, n_outputs, diff_outputs, wrt)


def _copy(g: Graph, n: Node, args: list) -> list[Value]:
    """Node ``n`` of the joint graph copied into ``g``; a call keeps only its body (its
    backward graph is called by the backward graph's own calls)."""
    if n.prim is call:
        return add_call(g, n.attrs["body"], args, loc=n.loc).outputs
    return g.copy_node(n, args)


def _materialize(bwd: Graph, b: dict, o: Value) -> Value:
    """A gradient output that is a forward value (e.g. zeros computed without cotangents)."""
    if o.producer is not None and o.producer.prim is P.full:
        return bwd.add_node(P.full, [], o.producer.attrs, o.type, o.producer.loc)
    raise ValueError(f"gradient output %{o.name} does not depend on any cotangent")


def differentiate(fwd: Graph, wrt: list[int], diff_outputs: list[int]) -> SplitGraphs:
    joint, first_ct, reached = build_joint(fwd, wrt, diff_outputs)
    result = split(joint, first_ct, len(fwd.outputs), diff_outputs, reached)
    joint.dispose()  # the split graphs are copies: the joint graph's memory can go now
    return result

