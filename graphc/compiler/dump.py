"""Writing every stage of a compiled function to a folder (``dump_dir`` and ``graphc dump``)."""
from __future__ import annotations

import os
from pathlib import Path

from graphc.ir.graph import Graph


def to_dot(g: Graph) -> str:
    """Graphviz DOT text of the graph's data flow."""
    lines = [f'digraph "{g.name}" {{', "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    for v in g.inputs:
        lines.append(f'  "in_{v.name}" [label="%{v.name}\\n{v.dtype.short}{list(v.shape)} {v.role}", shape=ellipse];')
    for n in g.nodes:
        o = n.output
        lines.append(f'  "n_{o.name}" [label="%{o.name} = {n.prim.name}\\n{o.dtype.short}{list(o.shape)}"];')
        for x in n.value_inputs():
            src = f"in_{x.name}" if x.producer is None else f"n_{x.name}"
            lines.append(f'  "{src}" -> "n_{o.name}";')
    for i, o in enumerate(g.outputs):
        src = f"in_{o.name}" if o.producer is None else f"n_{o.name}"
        lines.append(f'  "out{i}" [shape=plaintext]; "{src}" -> "out{i}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_stages(folder: str, name: str, index: int, stages: dict, graph: Graph, fmt: str = "text") -> Path:
    """One subfolder per compiled specialization: traced graph, graph after each pass, the
    forward/backward split, generated code, and (fmt='dot') DOT pictures."""
    base = Path(folder) / f"{name}_{index}"
    base.mkdir(parents=True, exist_ok=True)
    (base / "00_traced.ir").write_text(stages["traced"])
    for i, rec in enumerate(stages.get("passes", []) + stages.get("lowering", []), 1):
        (base / f"{i:02d}_after_{rec.name}.ir").write_text(rec.text)
    if stages.get("fusion"):
        (base / "60_fusion.log").write_text("\n".join(stages["fusion"]) + "\n")
    if "forward" in stages:
        (base / "50_forward.ir").write_text(stages["forward"])
        (base / "51_backward.ir").write_text(stages["backward"])
    (base / "90_code.py").write_text(stages["code"])
    if fmt == "dot":
        (base / "graph.dot").write_text(to_dot(graph))
    _config["written"].append(str(base))
    return base


_config = {"dir": None, "format": "text", "written": []}


def configure(folder: str | None, fmt: str = "text") -> None:
    """Make every compiled function dump its stages (used by the ``graphc dump`` command)."""
    _config.update(dir=folder, format=fmt, written=[])


def target(explicit: str | None) -> tuple[str | None, str]:
    """Where a compiled function dumps: its own dump_dir, else the configured or env folder."""
    folder = explicit or _config["dir"] or os.environ.get("GRAPHC_DUMP_DIR")
    return folder, _config["format"] if not explicit else os.environ.get("GRAPHC_DUMP_FORMAT", "text")


def written() -> list[str]:
    return list(_config["written"])
