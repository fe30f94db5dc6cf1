"""``graphc.explain(fn, *args)``: everything the compiler did for one call, as text."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ExplainOutput:
    traced_graph: str = ""
    passes: list = field(default_factory=list)      # (pass name, graph text after it, seconds)
    optimized_graph: str = ""
    forward_graph: str = ""
    backward_graph: str = ""
    code: str = ""
    graph_breaks: list = field(default_factory=list)
    recompiles: list = field(default_factory=list)
    compile_seconds: float = 0.0
    fusion: list = field(default_factory=list)      # fusion decisions, rejected candidates with reasons
    memory: list = field(default_factory=list)      # memory plan summaries

    def __str__(self) -> str:
        parts = [f"== traced graph ==\n{self.traced_graph}"]
        for name, text, secs in self.passes:
            parts.append(f"== after {name} ({secs * 1e3:.2f} ms) ==\n{text}")
        if self.forward_graph:
            parts.append(f"== forward graph (with saved values) ==\n{self.forward_graph}")
            parts.append(f"== backward graph ==\n{self.backward_graph}")
        parts.append("== fusion ==\n" + ("\n".join(self.fusion) or "no rejected candidates"))
        parts.append("== memory plan ==\n" + "\n".join(self.memory))
        parts.append(f"== generated code ==\n{self.code}")
        parts.append("== graph breaks ==\n" + ("\n".join(self.graph_breaks) or "none"))
        parts.append("== recompiles ==\n" + ("\n".join(self.recompiles) or "none"))
        parts.append(f"compile time: {self.compile_seconds * 1e3:.1f} ms")
        return "\n\n".join(parts)


def explain(fn, *args, **kwargs) -> ExplainOutput:
    from .api import CompiledFunction, OptimizedModule, compile
    if isinstance(fn, OptimizedModule):
        cf = fn._compiled
    elif isinstance(fn, CompiledFunction):
        cf = fn
    else:
        cf = compile(fn)
        cf = cf._compiled if isinstance(cf, OptimizedModule) else cf
        # a compile of its own, not the one compile(fn) shares: explain shows every stage and warning
        cf = CompiledFunction(cf.fn, cf.backend, cf.fullgraph, cf.dump_dir, cf.name, cf.modules)
    cf._record = True  # compiles keep every stage's text
    try:
        guard, leaves, spec = cf._guard(args, kwargs)
        entry = cf.cache.get(guard)
        if entry is not None and entry.eager_reason is None and not entry.stages.get("recorded"):
            # compiled without keeping the stages' texts (nothing showed them): compile it again
            entry = cf._compile(args, kwargs, guard, leaves, spec, "compiled again by explain() to keep every stage")
            cf.cache[entry.guard] = entry
        cf(*args, **kwargs)
    finally:
        cf._record = False
    guard = cf._guard(args, kwargs)[0]
    entry = cf.cache.get(guard)
    out = ExplainOutput(graph_breaks=[h for h in cf.history if h.startswith("graph break")],
                        recompiles=[h for h in cf.history if h.startswith("recompile")])
    if entry is None or entry.eager_reason is not None:
        return out
    st = entry.stages
    out.traced_graph = st["traced"]
    out.passes = [(r.name, r.text, r.seconds) for r in st.get("passes", []) + st.get("lowering", [])]
    out.fusion = list(st.get("fusion", []))
    out.memory = list(st.get("memory", []))
    out.optimized_graph = st.get("optimized", "")
    out.forward_graph = st.get("forward", "")
    out.backward_graph = st.get("backward", "")
    out.code = st.get("code", "")
    out.compile_seconds = st.get("compile_seconds", 0.0)
    return out
