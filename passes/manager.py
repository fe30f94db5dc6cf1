"""The pass manager: runs named IR -> IR passes, times each, and on request verifies the graph
after each one and records its text (for explain() and dumps).

Verifying and printing cost time linear in the graph's size per pass, so ``graphc.compile`` asks
for them only when they serve someone: the text when a dump or ``explain`` wants it
(``record=True``), verification after every pass in debug mode (``VERIFY_EACH_PASS``, turned on by
``GRAPHC_VERIFY=1`` and by the test suite), else once, on the graph the pipeline returns."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from graphc.ir.call import bodies, rebind_bodies
from graphc.ir.graph import Graph
from graphc.ir.printer import parse_graph, print_graph
from graphc.ir.verify import verify

# Debug mode: every graph a pass manager sees (its input and the result of every pass) is printed,
# parsed back and printed again, and the two texts must be identical. The test suite turns this on
# for every graph it compiles; GRAPHC_CHECK_ROUNDTRIP=1 turns it on from the environment.
CHECK_ROUNDTRIP = os.environ.get("GRAPHC_CHECK_ROUNDTRIP", "") not in ("", "0")
roundtrip_checked = 0  # how many graph texts were checked (tests assert the check really ran)
# Debug mode: graphc.compile's pass managers verify the graph after every pass, not only the result.
VERIFY_EACH_PASS = os.environ.get("GRAPHC_VERIFY", "") not in ("", "0")


class RoundTripError(AssertionError):
    pass


def check_roundtrip(g: Graph, where: str = "") -> str:
    """print -> parse -> print must reproduce the text exactly; returns the text."""
    global roundtrip_checked
    text = print_graph(g)
    if text in _checked_texts:  # passes that change nothing give the same text again
        return text
    try:
        again = print_graph(parse_graph(text))
    except Exception as e:
        raise RoundTripError(f"IR text {where} does not parse back: {e}\n{text}") from None
    if again != text:
        import difflib
        diff = "\n".join(difflib.unified_diff(text.splitlines(), again.splitlines(), "printed", "reparsed",
                                               lineterm=""))
        raise RoundTripError(f"IR text {where} changes in a print/parse round trip:\n{diff}")
    roundtrip_checked += 1
    if len(_checked_texts) > 256:
        _checked_texts.clear()
    _checked_texts.add(text)
    return text


_checked_texts: set[str] = set()

Pass = Callable[[Graph], Graph]


@dataclass
class PassRecord:
    name: str
    seconds: float
    nodes_before: int
    nodes_after: int
    text: str
    graph: str = ""  # the name of the graph the pass ran on


class PassManager:
    """``verify``: True checks the graph before the passes and after each one, ``"end"`` only
    the result, False never. ``record``: keep each pass's resulting text in ``report`` (else
    the records have empty texts)."""

    def __init__(self, passes: list[tuple[str, Pass]], verify: bool | str = True, record: bool = True) -> None:
        self.passes = passes
        self.verify = verify
        self.record = record
        self.report: list[PassRecord] = []

    @staticmethod
    def compile_verify() -> bool | str:
        """What a compile verifies: after every pass in debug mode (``VERIFY_EACH_PASS``), else the
        pipeline's result."""
        return True if VERIFY_EACH_PASS else "end"

    def run(self, g: Graph) -> Graph:
        """The passes on ``g``, then on each distinct body its calls call (once per body)."""
        g = self._run(g)
        found = bodies(g)
        if found:
            rebind_bodies(g, {id(b): self._run(b) for b in found})
        return g

    def _run(self, g: Graph) -> Graph:
        if self.verify is True:
            verify(g)
        if CHECK_ROUNDTRIP:
            check_roundtrip(g, f"of {g.name} before the passes")
        for name, fn in self.passes:
            before = len(g.nodes)
            t0 = time.perf_counter()
            g = fn(g) or g
            dt = time.perf_counter() - t0
            g.rename()
            if self.verify is True:
                verify(g)
            if CHECK_ROUNDTRIP:
                text = check_roundtrip(g, f"of {g.name} after {name}")
            else:
                text = print_graph(g) if self.record else ""
            self.report.append(PassRecord(name, dt, before, len(g.nodes), text if self.record else "", g.name))
        if self.verify == "end":
            verify(g)
        return g

    def summary(self) -> str:
        return "\n".join(f"{r.name:<14} {r.seconds * 1e3:8.3f} ms  nodes {r.nodes_before} -> {r.nodes_after}"
                         for r in self.report)


def default_pipeline() -> list[tuple[str, Pass]]:
    from .cse import cse
    from .dce import dce
    from .decompose import decompose
    from .fold import constant_fold
    from .simplify import simplify
    return [("decompose", decompose), ("simplify", simplify), ("constant_fold", constant_fold),
            ("cse", cse), ("dce", dce)]


def lowering_pipeline(fusion_log: list | None = None, in_kernels=lambda prim: True) -> list[tuple[str, Pass]]:
    """Passes on the graphs handed to a backend (after the forward/backward split); the fusion
    pass appends its decisions (including rejected candidates and why) to ``fusion_log``, and
    groups only the primitives the backend generates inside kernels (``in_kernels``)."""
    from .cse import cse
    from .dce import dce
    from .fusion import fuse
    from .lowered_rewrites import lowered_rewrites
    from .simplify import simplify
    # autodiff leaves double transposes and same-shape reshapes behind: simplify again
    return [("simplify", simplify), ("lowered_rewrites", lowered_rewrites), ("cse", cse), ("dce", dce),
            ("fusion", lambda g: fuse(g, fusion_log, in_kernels))]
