"""The IR verifier: SSA, topological order, dangling uses, and every node's type rule."""
from __future__ import annotations

from .graph import Graph, Value, format_type


class VerificationError(RuntimeError):
    pass


def verify(g: Graph) -> None:
    defined: set[int] = set()
    names: set[str] = set()
    # per value, the ids of the nodes it lists as users: a set built once per value, since a
    # value read by every step of a long loop (a parameter) has thousands of users
    listed: dict[int, set[int]] = {}

    def define(v: Value, where: str) -> None:
        if id(v) in defined:
            raise VerificationError(f"{where}: %{v.name} is defined twice (SSA)")
        if v.name in names:
            raise VerificationError(f"{where}: the name %{v.name} is used for two values")
        defined.add(id(v))
        names.add(v.name)

    for v in g.inputs:
        if v.producer is not None:
            raise VerificationError(f"graph input %{v.name} has a producer node")
        define(v, f"input %{v.name}")
    for i, n in enumerate(g.nodes):
        where = f"node {i} ({n.prim.name})"
        for x in n.value_inputs():
            if id(x) not in defined:
                raise VerificationError(f"{where}: uses %{x.name} before it is defined (dangling use or "
                                        "nodes out of topological order)")
            users = listed.get(id(x))
            if users is None:
                users = listed[id(x)] = {id(u) for u in x.users}
            if id(n) not in users:
                raise VerificationError(f"{where}: %{x.name} does not list this node among its users")
        if n.prim.data_dependent:
            raise VerificationError(f"{where}: {n.prim.name} has a data-dependent shape and cannot be in a graph")
        try:
            want = n.prim.infer(*n.inputs, **n.attrs)
        except Exception as e:  # the type rule's own message names the problem
            raise VerificationError(f"{where}: type rule failed: {e}") from None
        wants = want if isinstance(want, list) else [want]
        if len(wants) != len(n.outputs):
            raise VerificationError(f"{where}: {len(n.outputs)} outputs, the type rule gives {len(wants)}")
        for out, want in zip(n.outputs, wants):
            if out.producer is not n:
                raise VerificationError(f"{where}: output %{out.name} does not point back to its node")
            if tuple(out.type.shape) != tuple(want.shape) or out.type.dtype is not want.dtype:
                raise VerificationError(
                    f"{where}: %{out.name} is declared {format_type(out.type)} but the type rule gives "
                    f"{format_type(want)}")
            define(out, where)
    for o in g.outputs:
        if id(o) not in defined:
            raise VerificationError(f"graph output %{o.name} is not defined in the graph")
