"""Where a compiled training step's time goes: each top-level statement of its generated numpy
code, timed.

    python tools/stmtprof.py mlp [--steps 200] [--top 30]

Workloads are ``benchmarks/training_steps.py``'s (mlp, cnn, lstm, transformer). The step is
compiled with a fresh code cache (so the code is generated in this process), every top-level
statement of every generated function is wrapped in ``perf_counter`` reads (a kernel in pieces is
one statement: its ``_in_pieces`` call), and after a few warm-up steps the costliest statements
are printed with the kernel they belong to. The wrapping adds ~0.1 us a statement; one thread
(OpenBLAS and graphc's piece pool) unless the environment says otherwise.
"""
from __future__ import annotations

import argparse
import ast
import collections
import os
import sys
import tempfile
import time

os.environ.setdefault("GRAPHC_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp(prefix="stmtprof-")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))

_TIMES: dict[str, float] = collections.defaultdict(float)
_LABELS: dict[str, str] = {}


def _kernel_of(lines: list[str], st: ast.stmt, fn: ast.FunctionDef) -> str:
    """The ``# -- kernel: ...`` comment above statement ``st`` (generated code names each kernel so)."""
    for ln in range(st.lineno - 2, fn.lineno - 1, -1):
        if lines[ln].strip().startswith("# --"):
            return lines[ln].strip()[5:60]
    return ""


def instrument(src: str) -> str:
    """``src`` with every top-level statement of its functions (but returns) timed into ``_TIMES``."""
    tree, lines = ast.parse(src), src.splitlines()
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        body: list[ast.stmt] = []
        for st in fn.body:
            key = f"{fn.name}:{st.lineno}"
            _LABELS[key] = (_kernel_of(lines, st, fn) + " | " + ast.unparse(st).split("\n")[0])[:150]
            if isinstance(st, ast.Return):
                body.append(st)
                continue
            body += [ast.parse("_T0 = _pc()").body[0], st, ast.parse(f"_TIMES[{key!r}] += _pc() - _T0").body[0]]
        fn.body = body
    return ast.unparse(ast.fix_missing_locations(tree))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload", choices=["mlp", "cnn", "lstm", "transformer"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    import graphc
    from graphc.codegen import numpy_runtime
    from graphc.runtime import numpy_backend
    import training_steps

    compile_src, namespace = numpy_backend._compile, numpy_runtime.namespace
    numpy_backend._compile = lambda src, fn_name: compile_src(instrument(src), fn_name)

    def timed_namespace() -> dict:
        ns = namespace()
        ns["_TIMES"], ns["_pc"] = _TIMES, time.perf_counter
        return ns
    numpy_runtime.namespace = timed_namespace

    model, opt, batch = training_steps.build(graphc, args.workload)
    step = graphc.compile(training_steps.step_fn(graphc, model, opt), fullgraph=True)
    for _ in range(5):
        step(*batch)
    _TIMES.clear()
    t = time.perf_counter()
    for _ in range(args.steps):
        step(*batch)
    per_step = (time.perf_counter() - t) / args.steps * 1e6
    print(f"step {per_step:.0f} us, inside generated statements {sum(_TIMES.values()) / args.steps * 1e6:.0f} us")
    for key, total in sorted(_TIMES.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{total / args.steps * 1e6:8.1f} us  {_LABELS[key]}")


if __name__ == "__main__":
    main()
