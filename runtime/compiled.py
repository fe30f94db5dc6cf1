"""CompiledGraph: generated code for one graph, ready to run on numpy arrays."""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from graphc.codegen import numpy_codegen
from graphc.ir.graph import Graph
from graphc.ir.printer import print_graph

from . import cache

log = logging.getLogger("graphc.runtime")


class CompiledGraph:
    def __init__(self, graph: Graph, backend: str = "numpy", name: str = "kernel", plan=None,
                 labels: dict | None = None, saved_from: int | None = None) -> None:
        if backend != "numpy":
            raise NotImplementedError(f"backend {backend!r} is not available yet; use backend='numpy'")
        self.graph = graph
        self.backend = backend
        self.input_types = [v.type for v in graph.inputs]
        self.plan = plan
        buffers = plan.buffers if plan is not None else ()
        text = print_graph(graph)
        self.key = cache.structural_hash(f"{text}saved_from={saved_from}\n", backend, numpy_codegen.VERSION)
        fn_name = "graphc_" + "".join(c if c.isalnum() else "_" for c in name)
        src = cache.load(self.key)
        self.from_cache = src is not None
        if src is not None:
            try:
                self.fn = numpy_codegen.compile_source(src, fn_name, buffers)
            except Exception:  # a stale or damaged entry: regenerate
                src = None
                self.from_cache = False
        if src is None:
            src = numpy_codegen.generate(graph, fn_name, plan, labels, saved_from)
            self.fn = numpy_codegen.compile_source(src, fn_name, buffers)
            cache.store(self.key, src)
        self.source = src

    def check_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != len(self.input_types):
            raise ValueError(f"compiled graph {self.graph.name} takes {len(self.input_types)} inputs, "
                             f"got {len(arrays)}")
        for i, (a, t) in enumerate(zip(arrays, self.input_types)):
            if a.shape != t.shape or a.dtype != t.dtype.np:
                raise ValueError(f"compiled graph {self.graph.name}: input {i} is {a.dtype}{list(a.shape)}, "
                                 f"expected {t.dtype.np}{list(t.shape)}")

    def __call__(self, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        self.check_inputs(arrays)
        with np.errstate(all="ignore"):  # inf/nan follow IEEE rules silently, as in eager mode
            return self.fn(*arrays)
