"""The decomposition pass: expand every composite node (softmax, layer_norm, conv, ...) into
primitives, using the one table of decompositions, so later passes and fusion see through them."""
from __future__ import annotations

from typing import Callable

from graphc.ir.composite import composite, expand
from graphc.ir.graph import Graph, Node, Value, building, located


def decompose(g: Graph, keep: Callable[[Node], bool] | None = None) -> Graph:
    """``keep``: composite nodes it accepts stay whole (ONNX export writes a convolution as one
    Conv operator)."""
    composites = [n for n in g.nodes if n.prim is composite and not (keep is not None and keep(n))]
    if not composites:
        return g
    expansions: dict[int, list] = {}  # id(composite) -> the nodes that replace it, in order
    for n in composites:
        before = len(g.nodes)
        with building(g), located(g, n.loc):
            new = expand(n.attrs["name"], n.attrs["layout"], list(n.inputs))
        # the builder appended the expansion at the end: it goes where the composite was
        expansions[id(n)] = g.nodes[before:]
        del g.nodes[before:]
        if not isinstance(new, Value) or new.type != n.output.type:
            raise RuntimeError(f"decomposition of {n.attrs['name']} gave {getattr(new, 'type', new)}, "
                               f"the node was typed {n.output.type}")
        g.replace_all_uses(n.output, new)
    # one sweep puts each expansion in its composite's place (no list insert per composite)
    g.nodes = [m for n in g.nodes for m in expansions.get(id(n), (n,))]
    g.remove_nodes(composites)  # unlinks them from their operands' users
    g.toposort()
    return g
