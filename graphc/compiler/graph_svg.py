"""An IR graph drawn as SVG for the HTML dump: a layered layout computed here, in Python.

Layers follow the data flow (a node sits one layer below its deepest operand; graph inputs and
what depends on graph inputs only sit just above their first user, so parameters don't all
crowd the top row), and a few barycenter sweeps order each layer to reduce edge crossings.
Every string taken from the IR is escaped. Large graphs are drawn up to ``MAX_DRAWN`` nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from graphc.ir.graph import Graph, Node, Value, format_type

MAX_DRAWN = 400   # nodes drawn per graph; past it the page says so and links the whole text
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 170, 34, 18, 46, 20
SWEEPS = 4

# fill and stroke per primitive kind (the record's ``kind`` fact); fused groups get a hue each
_KIND_COLOURS = {
    "elementwise": ("#e8f5e9", "#43a047"), "reduction": ("#fff3e0", "#ef6c00"),
    "matmul": ("#e3f2fd", "#1e88e5"), "movement": ("#f5f5f5", "#9e9e9e"),
    "index": ("#fce4ec", "#d81b60"), "creation": ("#e0f7fa", "#00838f"),
    "random": ("#e0f7fa", "#00838f"),
}
_OTHER = ("#ede7f6", "#5e35b1")
_INPUT = ("#eceff1", "#546e7a")
_PARAM = ("#fffde7", "#9e9d24")
LEGEND = [("graph input", _INPUT), ("parameter / buffer / state", _PARAM)] + \
    [(k, c) for k, c in _KIND_COLOURS.items() if k not in ("random",)] + [("other", _OTHER)]


def fused_colour(group: int) -> tuple[str, str]:
    hue = (group * 137) % 360  # golden-angle steps: neighbouring groups get distant hues
    return f"hsl({hue},70%,86%)", f"hsl({hue},60%,38%)"


@dataclass
class Drawing:
    svg: str
    drawn: int                       # nodes drawn
    total: int                       # nodes in the graph
    keys: dict[int, str] = field(default_factory=dict)  # id(Value or Node) -> the key used in the SVG


def node_key(n: Node) -> str:
    """A node is named by its first output (unique in SSA form)."""
    return n.outputs[0].name if n.outputs else f"node{id(n)}"


def _short(s: str, width: int) -> str:
    return s if len(s) <= width else s[:width - 1] + "…"


def _layers(nodes: list[Node], inputs: list[Value]) -> dict[int, int]:
    """id(item) -> layer, for graph inputs and the drawn nodes: a node one layer below its
    deepest operand, except what depends on graph inputs only (a parameter's transpose, an
    RNN's input projection for step 40): that sits just above its first user, not at the top."""
    producer_drawn = {id(o): n for n in nodes for o in n.outputs}
    layer: dict[int, int] = {}
    from_inputs: set[int] = set()
    for n in nodes:
        preds = [producer_drawn[id(x)] for x in n.value_inputs() if id(x) in producer_drawn]
        layer[id(n)] = 1 + max((layer[id(p)] for p in preds), default=0)
        if all(id(p) in from_inputs for p in preds):
            from_inputs.add(id(n))
    users: dict[int, list[Node]] = {}
    for n in nodes:
        for x in n.value_inputs():
            users.setdefault(id(x), []).append(n)
    for n in reversed(nodes):  # users first, so a chain moves down as a whole
        below = [layer[id(u)] for o in n.outputs for u in users.get(id(o), ())]
        if id(n) in from_inputs and below:
            layer[id(n)] = min(below) - 1
    for v in inputs:
        below = [layer[id(u)] for u in users.get(id(v), ())]
        layer[id(v)] = min(below) - 1 if below else 0
    top = min(layer.values(), default=0)
    return {k: v - top for k, v in layer.items()}


def _order(rows: list[list[object]], preds: dict[int, list[object]], succs: dict[int, list[object]]) -> None:
    """Barycenter sweeps, down then up: each item moves towards the mean position of its
    neighbours in other layers (in place)."""
    pos: dict[int, float] = {}

    def place(row: list[object]) -> None:
        mid = (len(row) - 1) / 2
        for i, it in enumerate(row):
            pos[id(it)] = i - mid

    for row in rows:
        place(row)
    for _ in range(SWEEPS):
        for sweep, nbrs in ((rows, preds), (rows[::-1], succs)):
            for row in sweep:
                def bary(it, nbrs=nbrs):
                    ps = [pos[id(p)] for p in nbrs.get(id(it), ()) if id(p) in pos]
                    return sum(ps) / len(ps) if ps else pos[id(it)]
                row.sort(key=bary)
                place(row)


def draw(g: Graph, limit: int = MAX_DRAWN) -> Drawing:
    """The graph as an SVG element: nodes are ``<g class="n" data-k=KEY>`` groups (KEY: the
    value name), fused nodes coloured by group; its first ``limit`` nodes only."""
    nodes = g.nodes[:limit]
    drawn_values = {id(x) for n in nodes for x in n.value_inputs()}
    inputs = [v for v in g.inputs if id(v) in drawn_values or not g.nodes]
    layer = _layers(nodes, inputs)
    items: list[object] = list(inputs) + list(nodes)
    made_by = {id(o): n for n in nodes for o in n.outputs}
    preds: dict[int, list[object]] = {}
    succs: dict[int, list[object]] = {}
    edges: list[tuple[object, object]] = []
    for n in nodes:
        for x in dict.fromkeys(n.value_inputs()):
            src = made_by.get(id(x), x)
            edges.append((src, n))
            preds.setdefault(id(n), []).append(src)
            succs.setdefault(id(src), []).append(n)
    depth = max(layer.values(), default=0) + 1
    rows: list[list[object]] = [[] for _ in range(depth)]
    for it in items:
        rows[layer[id(it)]].append(it)
    _order(rows, preds, succs)
    widest = max((len(r) for r in rows), default=1) or 1
    width = widest * (NODE_W + GAP_X) - GAP_X + 2 * MARGIN
    height = depth * (NODE_H + GAP_Y) - GAP_Y + 2 * MARGIN
    xy: dict[int, tuple[float, float]] = {}
    for li, row in enumerate(rows):
        x0 = MARGIN + (widest - len(row)) * (NODE_W + GAP_X) / 2
        for i, it in enumerate(row):
            xy[id(it)] = (x0 + i * (NODE_W + GAP_X), MARGIN + li * (NODE_H + GAP_Y))
    out_index: dict[int, list[int]] = {}
    for k, o in enumerate(g.outputs):
        out_index.setdefault(id(o), []).append(k)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" data-w="{width:.0f}" data-h="{height:.0f}">',
             '<g class="edges">']
    for src, dst in edges:
        (x1, y1), (x2, y2) = xy[id(src)], xy[id(dst)]
        x1, y1, x2 = x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2
        bend = max(GAP_Y / 2, (y2 - y1) / 3)
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + bend:.0f} {x2:.0f},{y2 - bend:.0f} '
                     f'{x2:.0f},{y2:.0f}"/>')
    parts.append("</g>")
    keys: dict[int, str] = {}
    group = 0
    for it in items:
        x, y = xy[id(it)]
        if isinstance(it, Value):
            key, title = it.name, f"%{it.name}: {format_type(it.type)} {it.role}"
            line1, line2 = f"%{it.name}", f"{format_type(it.type)} {it.role}"
            fill, stroke = _INPUT if it.role == "input" else _PARAM
            shape = f'<rect width="{NODE_W}" height="{NODE_H}" rx="17"'
            outs = out_index.get(id(it), [])
        else:
            key = node_key(it)
            names = ", ".join(f"%{o.name}" for o in it.outputs)
            line1 = f"{names} = {it.prim.name}"
            line2 = " ".join(format_type(o.type) for o in it.outputs)
            title = f"{names} = {it.prim.name}"
            if it.prim.name == "fused":
                fill, stroke = fused_colour(group)
                group += 1
                ops = ", ".join(b.prim.name for b in it.attrs["body"].nodes)
                line1 = f"{names} = {it.attrs['kind']}"
                title += f" {it.attrs['kind']}: {ops}"
                line2 = ops
            else:
                fill, stroke = _KIND_COLOURS.get(it.prim.kind, _OTHER)
            if it.loc:
                title += f"  # {it.loc}"
            shape = f'<rect width="{NODE_W}" height="{NODE_H}" rx="4"'
            outs = [k for o in it.outputs for k in out_index.get(id(o), [])]
        keys[id(it)] = key
        dash = ' stroke-dasharray="4 3"' if not isinstance(it, Value) and it.prim.is_view else ""
        wide = "3" if outs else "1.2"
        parts.append(f'<g class="n" data-k="{escape(key)}" transform="translate({x:.0f},{y:.0f})">'
                     f'<title>{escape(title)}</title>'
                     f'{shape} fill="{fill}" stroke="{stroke}" stroke-width="{wide}"{dash}/>'
                     f'<text x="6" y="14">{escape(_short(line1, 26))}</text>'
                     f'<text x="6" y="28" class="t2">{escape(_short(line2, 28))}</text>'
                     + (f'<text x="{NODE_W - 4}" y="{NODE_H + 11}" class="out" text-anchor="end">'
                        f'output {escape(",".join(map(str, outs)))}</text>' if outs else "")
                     + "</g>")
    parts.append("</svg>")
    return Drawing("".join(parts), len(nodes), len(g.nodes), keys)
