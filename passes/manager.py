"""The pass manager: runs named IR -> IR passes, times each, verifies and records the graph after
each one (for GRAPHC_LOGS=passes, explain() and dumps)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from graphc.ir.graph import Graph
from graphc.ir.printer import print_graph
from graphc.ir.verify import verify

Pass = Callable[[Graph], Graph]


@dataclass
class PassRecord:
    name: str
    seconds: float
    nodes_before: int
    nodes_after: int
    text: str


class PassManager:
    def __init__(self, passes: list[tuple[str, Pass]], verify: bool = True) -> None:
        self.passes = passes
        self.verify = verify
        self.report: list[PassRecord] = []

    def run(self, g: Graph) -> Graph:
        if self.verify:
            verify(g)
        for name, fn in self.passes:
            before = len(g.nodes)
            t0 = time.perf_counter()
            g = fn(g) or g
            dt = time.perf_counter() - t0
            g.rename()
            if self.verify:
                verify(g)
            self.report.append(PassRecord(name, dt, before, len(g.nodes), print_graph(g)))
        return g

    def summary(self) -> str:
        return "\n".join(f"{r.name:<14} {r.seconds * 1e3:8.3f} ms  nodes {r.nodes_before} -> {r.nodes_after}"
                         for r in self.report)


def default_pipeline() -> list[tuple[str, Pass]]:
    from .cse import cse
    from .dce import dce
    from .fold import constant_fold
    from .simplify import simplify
    return [("simplify", simplify), ("constant_fold", constant_fold), ("cse", cse), ("dce", dce)]


def lowering_pipeline(fusion_log: list | None = None) -> list[tuple[str, Pass]]:
    """Passes on the graphs handed to a backend (after the forward/backward split); the fusion
    pass appends its decisions (including rejected candidates and why) to ``fusion_log``."""
    from .cse import cse
    from .dce import dce
    from .fusion import fuse
    return [("cse", cse), ("dce", dce), ("fusion", lambda g: fuse(g, fusion_log))]
