"""Writing every stage of a compiled function to a folder (``dump_dir`` and ``graphc dump``)."""
from __future__ import annotations

import os
from pathlib import Path

from graphc.ir.graph import Graph, format_type


def to_dot(g: Graph) -> str:
    """Graphviz DOT text of the graph's data flow (a fused node is one box listing its body)."""
    import json
    q = json.dumps  # DOT's quoted strings use the same escapes as JSON for what we print
    where: dict[int, str] = {}
    lines = [f"digraph {q(g.name)} {{", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    for i, v in enumerate(g.inputs):
        where[id(v)] = f"in{i}"
        lines.append(f"  in{i} [label={q(f'%{v.name}' + chr(10) + f'{format_type(v.type)} {v.role}')}, "
                     "shape=ellipse];")
    for i, n in enumerate(g.nodes):
        outs = ", ".join(f"%{o.name}: {format_type(o.type)}" for o in n.outputs)
        label = f"{outs}{chr(10)}= {n.prim.name}"
        if n.prim.name == "fused":
            label += f" {n.attrs['kind']}: " + ", ".join(b.prim.name for b in n.attrs["body"].nodes)
        lines.append(f"  n{i} [label={q(label)}];")
        for x in dict.fromkeys(n.value_inputs()):
            lines.append(f"  {where[id(x)]} -> n{i};")
        for o in n.outputs:
            where[id(o)] = f"n{i}"
    for i, o in enumerate(g.outputs):
        lines.append(f"  out{i} [label={q(f'output {i}')}, shape=plaintext]; {where[id(o)]} -> out{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class DumpError(OSError):
    """The stages could not be written (the folder can't be created, or written)."""


def write_stages(folder: str, name: str, index: int, stages: dict, graph: Graph, fmt: str = "text") -> Path:
    """One subfolder per compiled specialization: traced graph, graph after each pass (the passes
    on the forward and backward graphs are labelled so), the forward/backward split, fusion
    decisions, memory plans, generated code, and (fmt='dot') DOT pictures or (fmt='html') a
    page drawing it all (``index.html``, see dump_html). Raises DumpError if
    they can't be written."""
    base = Path(folder) / f"{name}_{index}"
    try:
        return _write_stages(base, name, stages, graph, fmt)
    except OSError as e:
        raise DumpError(f"cannot write the stages of {name} to {base}: {e.strerror or e}") from e


def _labelled(what: str, text: str) -> str:
    """IR text under a comment line saying which graph it is (comments parse back as nothing)."""
    return f"# {what}\n{text}"


def _write_stages(base: Path, name: str, stages: dict, graph: Graph, fmt: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    contents = stages.get("contents", "")
    why = f"{name}, specialization {base.name}: {stages.get('why', 'compiled')}"
    (base / "00_why.txt").write_text(f"{why}\nthe traced graph holds: {contents}\n")
    # (file, what it holds, text, whether the code was generated from it), in pipeline order
    passes = [(rec, "", contents) for rec in stages.get("passes", [])]
    lowering = []
    for rec in stages.get("lowering", []):
        label = rec.graph[len(name) + 1:] if rec.graph.startswith(name + "_") else "lowered"
        what = f"{label} graph" if label != "lowered" else f"lowered graph: {contents}"
        lowering.append((rec, label + "_", what))
    numbered = [(f"{i:02d}_{label}after_{rec.name}.ir", f"{what}; after {rec.name}", rec.text, rec.graph)
                for i, (rec, label, what) in enumerate(passes + lowering, 1)]
    split = [("50_forward.ir", "forward graph (autodiff's split)", stages["forward"], False),
             ("51_backward.ir", "backward graph (autodiff's split)", stages["backward"], False)] \
        if "forward" in stages else []
    lowered = [(f, what, text, all(g != graph_name for *_, g in numbered[i + 1:]))  # its graph's last stage
               for i, (f, what, text, graph_name) in enumerate(numbered) if i >= len(passes)]
    ir_files = [("00_traced.ir", f"traced graph: {contents}", stages["traced"], False)] + \
        [(f, what, text, False) for f, what, text, _ in numbered[:len(passes)]] + split + lowered
    for file, what, text, _ in ir_files:
        (base / file).write_text(_labelled(what, text))
    if stages.get("fusion"):
        (base / "60_fusion.log").write_text("\n".join(stages["fusion"]) + "\n")
    if stages.get("memory"):
        (base / "70_memory.txt").write_text("\n".join(stages["memory"]) + "\n")
    (base / "90_code.py").write_text(stages["code"])
    if fmt == "dot":
        from graphc.ir.printer import parse_graph
        (base / "00_traced.dot").write_text(to_dot(parse_graph(stages["traced"])))
        (base / "graph.dot").write_text(to_dot(graph))
        if "forward" in stages:
            (base / "50_forward.dot").write_text(to_dot(parse_graph(stages["forward"])))
            (base / "51_backward.dot").write_text(to_dot(parse_graph(stages["backward"])))
    if fmt == "html":
        from .dump_html import Stage, write_page
        write_page(base, name, [Stage(f, what, text, last) for f, what, text, last in ir_files],
                   {"why": why, "contents": contents, "code": stages["code"],
                    "fusion": stages.get("fusion", []), "memory": stages.get("memory", [])})
    _config["written"].append(str(base))
    return base


_config = {"dir": None, "format": "text", "written": []}


def configure(folder: str | None, fmt: str = "text") -> None:
    """Make every compiled function dump its stages (used by the ``graphc dump`` command)."""
    _config.update(dir=folder, format=fmt, written=[])


FORMATS = ("text", "dot", "html")


def target(explicit: str | None) -> tuple[str | None, str]:
    """Where a compiled function dumps: its own dump_dir, else the configured or env folder; and
    in which format (``graphc dump --format``, else GRAPHC_DUMP_FORMAT)."""
    folder = explicit or _config["dir"] or os.environ.get("GRAPHC_DUMP_DIR")
    fmt = _config["format"] if not explicit else os.environ.get("GRAPHC_DUMP_FORMAT", "text")
    if folder and fmt not in FORMATS:
        raise ValueError(f"GRAPHC_DUMP_FORMAT={fmt!r} is not a dump format; use one of {', '.join(FORMATS)}")
    return folder, fmt


def written() -> list[str]:
    return list(_config["written"])
