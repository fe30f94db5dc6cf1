"""The decomposition pass: expand every composite node (softmax, layer_norm, conv, ...) into
primitives, using the one table of decompositions, so later passes and fusion see through them."""
from __future__ import annotations

from graphc.ir.composite import composite, expand
from graphc.ir.graph import Graph, Value, building


def decompose(g: Graph) -> Graph:
    for n in [n for n in g.nodes if n.prim is composite]:
        at = g.nodes.index(n)
        before = len(g.nodes)
        with building(g):
            new = expand(n.attrs["name"], n.attrs["layout"], list(n.inputs))
        # the builder appended the expansion at the end: move it to where the composite was
        added = g.nodes[before:]
        del g.nodes[before:]
        g.nodes[at:at] = added
        if not isinstance(new, Value) or new.type != n.output.type:
            raise RuntimeError(f"decomposition of {n.attrs['name']} gave {getattr(new, 'type', new)}, "
                               f"the node was typed {n.output.type}")
        g.replace_all_uses(n.output, new)
        g.remove_node(n)
    g.toposort()
    return g
