"""What a compile costs (issue #8, item 4): a warm cache skips the passes, a compile does no work
nobody asked for, and the pieces that were quadratic in the graph's size stay close to linear.

No timings are asserted (speed is measured by benchmarks/compile_time.py and
benchmarks/time_sequence_compile.py); these tests count the work instead.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.codegen import numpy_codegen
from graphc.ir.printer import parse_graph
from graphc.passes import manager
from graphc.passes.fusion import _Quotient, fuse

# ---- the compiled-entry cache across processes ------------------------------------------------

# Counts the work of every compile stage after tracing, runs one training-style step, prints JSON.
# argv: which tensors require grad ("w", "wx"), grad mode ("grad" / "nograd").
SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc
    import graphc.nn as nn
    from graphc.codegen import numpy_codegen
    from graphc.compiler import api
    from graphc.passes.manager import PassManager
    from graphc.runtime import backends

    counts = {"passes": 0, "autodiff": 0, "schedule": 0, "codegen": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    PassManager.run = counted("passes", PassManager.run)
    api.differentiate = counted("autodiff", api.differentiate)
    backends.build_schedule = counted("schedule", backends.build_schedule)
    numpy_codegen.generate = counted("codegen", numpy_codegen.generate)

    requires, mode = sys.argv[1], sys.argv[2]
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    x = graphc.from_numpy(np.linspace(-1, 1, 12).reshape(4, 3).astype(np.float32))
    y = graphc.from_numpy(np.linspace(0, 1, 8).reshape(4, 2).astype(np.float32))
    x.requires_grad_("x" in requires)
    for p in model.parameters():
        p.requires_grad_("w" in requires)

    @graphc.compile
    def step(x, y):
        return ((model(x) - y) ** 2).mean() + x.exp().sum() * 0.01

    if mode == "grad":
        loss = step(x, y)
        loss.backward()
    else:
        with graphc.no_grad():
            loss = step(x, y)
    entry = next(iter(step.cache.values()))
    grads = [p.grad.numpy().tolist() if p.grad is not None else None for p in [x, *model.parameters()]]
    print(json.dumps({"loss": float(loss.detach()), "grads": grads, "counts": counts,
                      "from_cache": entry.stages.get("from_cache"), "backward": entry.backward is not None,
                      "wrt": entry.wrt}))
""")


def _step(tmp_path, requires: str, mode: str, logs: str = "") -> tuple[dict, str]:
    script = tmp_path / "step.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache"), "GRAPHC_LOGS": logs}
    r = subprocess.run([sys.executable, str(script), requires, mode], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1]), r.stdout


def test_warm_cache_in_a_new_process_skips_passes_autodiff_and_codegen(tmp_path):
    cold, _ = _step(tmp_path, "w", "grad")
    assert cold["from_cache"] is None and cold["backward"]
    assert cold["counts"]["passes"] == 3 and cold["counts"]["autodiff"] == 1   # pipeline + forward/backward
    assert cold["counts"]["schedule"] == 2 and cold["counts"]["codegen"] == 2

    warm, out = _step(tmp_path, "w", "grad", logs="passes,cache")
    assert warm["counts"] == {"passes": 0, "autodiff": 0, "schedule": 0, "codegen": 0}
    assert warm["from_cache"].startswith("entry_") and warm["backward"]
    assert warm["loss"] == cold["loss"] and warm["grads"] == cold["grads"] and warm["wrt"] == cold["wrt"]
    assert "passes, autodiff and code generation skipped" in out
    assert out.count("loaded generated code from the cache") == 2

    # the same traced graph under other guards is another entry: a miss, compiled and correct
    more, _ = _step(tmp_path, "wx", "grad")                      # the input requires grad too
    assert more["from_cache"] is None and more["counts"]["autodiff"] == 1
    assert more["loss"] == cold["loss"] and more["grads"][1:] == cold["grads"][1:]
    assert more["grads"][0] is not None and len(more["wrt"]) == len(cold["wrt"]) + 1
    inference, _ = _step(tmp_path, "w", "nograd")                 # grad mode off: no backward
    assert inference["from_cache"] is None and inference["counts"]["passes"] == 2
    assert inference["counts"]["autodiff"] == 0 and not inference["backward"]
    assert inference["loss"] == cold["loss"]
    # each of them is a hit now, and the first one still is
    for requires, mode, first in (("wx", "grad", more), ("w", "nograd", inference), ("w", "grad", cold)):
        again, _ = _step(tmp_path, requires, mode)
        assert again["from_cache"] and sum(again["counts"].values()) == 0
        assert again["loss"] == first["loss"] and again["grads"] == first["grads"]


def test_damaged_entry_or_code_is_a_miss_and_is_stored_again(tmp_path):
    cold, _ = _step(tmp_path, "w", "grad")
    cache_dir = tmp_path / "cache"
    (manifest,) = cache_dir.glob("entry_*.py")
    good = manifest.read_text()
    manifest.write_text(good[:-20])                               # truncated: its checksum fails
    again, _ = _step(tmp_path, "w", "grad")
    assert again["from_cache"] is None and again["counts"]["autodiff"] == 1
    assert again["loss"] == cold["loss"] and again["grads"] == cold["grads"]
    assert manifest.read_text() == good                           # stored again
    for code in cache_dir.glob("[!e]*.py"):                       # a code entry of the manifest, damaged
        code.write_text(code.read_text().replace("np.", "np_typo.", 1))
        break
    again, _ = _step(tmp_path, "w", "grad")
    assert again["from_cache"] is None and again["loss"] == cold["loss"] and again["grads"] == cold["grads"]
    warm, _ = _step(tmp_path, "w", "grad")
    assert warm["from_cache"] and sum(warm["counts"].values()) == 0



# A whole training step (zero_grad, forward, loss, backward, AdamW) compiled as one graph, three
# steps (the first creates the optimizer state: two compiled entries); counts the work after
# tracing, including compile() of generated source; prints JSON.
STEP_SCRIPT = textwrap.dedent("""
    import json
    import sys
    import numpy as np
    import graphc
    import graphc.nn as nn
    import graphc.nn.functional as F
    from graphc.compiler import api
    from graphc.passes.manager import PassManager
    from graphc.runtime import numpy_backend

    counts = {"passes": 0, "autodiff": 0, "compile": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    PassManager.run = counted("passes", PassManager.run)
    api.differentiate = counted("autodiff", api.differentiate)
    numpy_backend._compile = counted("compile", numpy_backend._compile)

    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = graphc.optim.AdamW(model.parameters(), lr=1e-2)
    x = graphc.from_numpy(np.linspace(-1, 1, 48).reshape(8, 6).astype(np.float32))
    y = graphc.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    @graphc.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    losses = [float(step(x, y)) for _ in range(3)]
    state = [v.numpy().tolist() for s in opt.state.values() for v in s.values()]
    print(json.dumps({"losses": losses, "params": [p.detach().numpy().tolist() for p in model.parameters()],
                      "state": state, "counts": counts,
                      "from_cache": [bool(e.stages.get("from_cache")) for e in step.cache.values()],
                      "recompiles": step.recompiles,
                      "codegen_imported": "graphc.codegen.numpy_codegen" in sys.modules}))
""")


def _train(tmp_path) -> dict:
    script = tmp_path / "train.py"
    script.write_text(STEP_SCRIPT)
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GRAPHC_LOGS", None)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_warm_training_step_in_a_new_process_equals_the_cold_compile(tmp_path):
    cold = _train(tmp_path)
    assert cold["counts"]["autodiff"] == 0 and cold["counts"]["passes"] > 0   # backward() traced inside
    assert cold["counts"]["compile"] > 0 and not any(cold["from_cache"])
    warm = _train(tmp_path)
    # every compiled entry (before and after the optimizer state exists) from the cache, its
    # generated code loaded as compiled code objects: no pass, no compile() of source
    assert warm["counts"] == {"passes": 0, "autodiff": 0, "compile": 0}
    assert warm["from_cache"] and all(warm["from_cache"]) and warm["recompiles"] == cold["recompiles"]
    for k in ("losses", "params", "state"):
        assert warm[k] == cold[k], k
    assert warm["losses"][2] < warm["losses"][0]                                # it trains
    # loading cached code needs no code generator: a warm start never imports it
    assert cold["codegen_imported"] and not warm["codegen_imported"]
    for code in (tmp_path / "cache").glob("*.code"):                            # damaged code entries
        code.write_bytes(code.read_bytes()[:-7])
    again = _train(tmp_path)
    assert again["counts"]["passes"] == 0 and again["counts"]["compile"] > 0     # the sources compiled again
    for k in ("losses", "params", "state"):
        assert again[k] == cold[k], k


# ---- no work nobody asked for ----------------------------------------------------------------

def _count(monkeypatch, module, name: str) -> list:
    calls = []
    fn = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)
    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_LOGS", raising=False)
    monkeypatch.delenv("GRAPHC_DUMP_DIR", raising=False)


def _compile_step():
    lin = nn.Linear(4, 4)

    def cost_probe(x):
        return (lin(x).tanh() * x).sum()
    f = graphc.compile(cost_probe)
    loss = f(graphc.randn(3, 4, requires_grad=True))
    loss.backward()
    return f


def test_compile_prints_no_stage_and_verifies_once_per_pipeline(private_cache, monkeypatch):
    from graphc.compiler import api
    monkeypatch.setattr(manager, "CHECK_ROUNDTRIP", False)   # the suite's debug modes off: a user's compile
    monkeypatch.setattr(manager, "VERIFY_EACH_PASS", False)
    printed = _count(monkeypatch, manager, "print_graph")
    verified = _count(monkeypatch, manager, "verify")
    traced = _count(monkeypatch, api, "print_graph")
    runs = _count(monkeypatch, manager.PassManager, "run")
    f = _compile_step()
    entry = next(iter(f.cache.values()))
    assert len(runs) == 3 and entry.backward is not None
    assert printed == []                   # no pass's graph text: nobody shows it
    assert len(verified) == len(runs)      # each pipeline's result, once
    assert len(traced) == 1                # the traced graph: the cache key and its stage text
    assert not entry.stages["recorded"] and "forward" not in entry.stages and "optimized" not in entry.stages
    assert all(r.text == "" for r in entry.stages["passes"] + entry.stages["lowering"])

    # debug mode: every pass's result is verified (the suite runs so)
    monkeypatch.setattr(manager, "VERIFY_EACH_PASS", True)
    verified.clear()
    monkeypatch.setenv("GRAPHC_ENTRY_CACHE", "0")
    f = _compile_step()
    entry = next(iter(f.cache.values()))
    n_passes = len(entry.stages["passes"]) + len(entry.stages["lowering"])
    assert len(verified) == n_passes + 3   # before each pipeline and after each pass
    assert printed == []


def test_explain_shows_every_stage_of_a_function_compiled_before(private_cache):
    w = nn.Parameter(graphc.randn(4, 3))

    def explained_later(x):
        return (x @ w).relu().sum()
    f = graphc.compile(explained_later)
    x = graphc.randn(2, 4, requires_grad=True)
    f(x).backward()
    assert not next(iter(f.cache.values())).stages["recorded"]
    out = graphc.explain(f, x)
    assert f.recompiles == 0 and len(f.cache) == 1
    assert [name for name, _, _ in out.passes][:2] == ["decompose", "simplify"]
    assert all(text.startswith("graph ") for _, text, _ in out.passes)
    assert "graph explained_later_forward(" in out.forward_graph and "def graphc_explained_later_backward(" in out.code
    # the explained entry replaced the first and runs as it did
    f(x).backward()


def test_compile_logs_each_stage_with_its_seconds(private_cache, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOGS", "compile")
    _compile_step()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[graphc:compile]")]
    stages = [ln.split(": ", 1)[1].split(" took ")[0] for ln in lines]
    assert stages == ["tracing", "passes", "autodiff", "lowering forward", "codegen forward", "lowering backward",
                      "codegen backward"]
    assert all(" s since the compile started" in ln for ln in lines)
    _compile_step()   # the same graph again: loaded from the compiled-entry cache
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[graphc:compile]")]
    assert [ln.split(": ", 1)[1].split(" took ")[0] for ln in lines] == ["tracing", "loading"]


def test_a_slow_compile_says_what_it_does_without_logs(private_cache, monkeypatch, capsys):
    from graphc.compiler import api
    monkeypatch.setattr(api, "SLOW_COMPILE_SECONDS", 0.0)   # every compile counts as slow
    _compile_step()
    err = capsys.readouterr().err
    assert "[graphc:compile] cost_probe: tracing took" in err and "codegen backward took" in err


# ---- structures that were quadratic ----------------------------------------------------------

def test_quotient_order_answers_reachability_like_a_search():
    """Random DAG edges added in random order: ``reaches`` agrees with a plain search and the
    maintained order stays topological."""
    rng = random.Random(0)
    for _ in range(20):
        q, edges = _Quotient(), set()
        n = 30
        for v in range(n):
            q.add_vertex(v)
        perm = list(range(n))
        rng.shuffle(perm)                     # a hidden topological order the edges follow
        rank = {v: i for i, v in enumerate(perm)}
        for _ in range(60):
            a, b = rng.sample(range(n), 2)
            if rank[a] > rank[b]:
                a, b = b, a
            q.add_edge(a, b)
            edges.add((a, b))
            assert all(q.order[x] < q.order[y] for x, y in edges)

        def search(a, b):
            seen, stack = {a}, [a]
            while stack:
                v = stack.pop()
                if v == b:
                    return True
                for x, y in edges:
                    if x == v and y not in seen:
                        seen.add(y)
                        stack.append(y)
            return False
        for a in range(n):
            for b in range(n):
                assert q.reaches(a, b) == search(a, b), (a, b)


def _loop_graph(steps: int) -> str:
    """An RNN-like loop: each step reads the same bias, after a matmul of the previous state."""
    lines = ["graph rnn(%h: f32[4,8], %w: f32[8,8], %b: f32[4,8]) {"]
    prev = "%h"
    for t in range(steps):
        lines += [f"  %{3 * t}: f32[4,8] = matmul({prev}, %w)",
                  f"  %{3 * t + 1}: f32[4,8] = add(%{3 * t}, %b)",
                  f"  %{3 * t + 2}: f32[4,8] = tanh(%{3 * t + 1})"]
        prev = f"%{3 * t + 2}"
    lines += [f"  return {prev}", "}"]
    return "\n".join(lines) + "\n"


def test_fusion_of_a_loop_tries_no_earlier_step_as_a_sibling():
    """Each step's add reads the bias every earlier step's group reads too; those groups feed
    this step's matmul, so none could take it. Trying each (a reachability search per earlier
    step, and a rejection logged for it) made fusion quadratic in the number of steps."""
    for steps in (5, 40):
        log: list[str] = []
        g = fuse(parse_graph(_loop_graph(steps)), log, in_kernels=numpy_codegen.TARGET.kernel_ops.__contains__)
        assert log == []
        fused = [n for n in g.nodes if n.prim.name == "fused"]
        assert len(fused) == steps and all(len(n.attrs["body"].nodes) == 2 for n in fused)  # add + tanh


def test_many_fused_groups_keep_the_graph_valid_and_equal():
    """Fusion contracts every group in one sweep: the graph stays valid and computes the same."""
    from graphc.ir.interpret import interpret
    from graphc.ir.verify import verify
    text = _loop_graph(60)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in ((4, 8), (8, 8), (4, 8))]
    want = interpret(parse_graph(text), args)
    g = fuse(parse_graph(text), [], in_kernels=numpy_codegen.TARGET.kernel_ops.__contains__)
    verify(g)
    np.testing.assert_allclose(interpret(g, args)[0], want[0], rtol=1e-6)


def test_large_host_functions_are_written_in_parts_and_compute_the_same(private_cache, monkeypatch):
    """With parts of a few lines, every compiled function below is a chain of parts (values
    passed between them, workspace buffers taken in each) and still equals eager mode."""
    from graphc.codegen import parts
    monkeypatch.setattr(parts, "PART_LINES", 7)
    monkeypatch.setenv("GRAPHC_ENTRY_CACHE", "0")
    graphc.manual_seed(0)
    rnn = nn.LSTMCell(3, 5)
    head = nn.Linear(5, 2)

    def unrolled(x, h, c):
        outs = []
        for t in range(x.shape[1]):
            h, c = rnn(x[:, t], (h, c))
            outs.append(head(h).softmax(-1))
        y = graphc.stack(outs, 1)
        return (y * y.log()).sum() + c.abs().mean(), h

    x = graphc.randn(4, 6, 3, requires_grad=True)
    h0, c0 = graphc.zeros(4, 5), graphc.zeros(4, 5)
    compiled = graphc.compile(unrolled)
    (loss, h), (want_loss, want_h) = compiled(x, h0, c0), unrolled(x, h0, c0)
    loss.backward()
    got = [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in [*rnn.parameters(), *head.parameters()]]
    x.grad = None
    for p in [*rnn.parameters(), *head.parameters()]:
        p.grad = None
    want_loss.backward()
    want = [x.grad.numpy()] + [p.grad.numpy() for p in [*rnn.parameters(), *head.parameters()]]
    np.testing.assert_allclose(loss.item(), want_loss.item(), rtol=1e-5)
    np.testing.assert_allclose(h.detach().numpy(), want_h.detach().numpy(), rtol=1e-5, atol=1e-6)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    entry = next(iter(compiled.cache.values()))
    for c in (entry.forward, entry.backward):
        assert f"def _graphc_unrolled_{c.name.split('_')[-1]}_part1(" in c.source
        assert len(parts.top_level_chunks(c.source)) > 3


@pytest.mark.timeout(300)
def test_compile_benchmarks_run_and_their_warm_runs_hit(tmp_path):
    """benchmarks/compile_time.py and time_sequence_compile.py at small sizes: they run, the warm
    run loads from the cache and agrees with the cold one (no timing thresholds)."""
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    out = tmp_path / "ct.json"
    r = subprocess.run([sys.executable, str(bench / "compile_time.py"), "--sizes", "300", "--json", str(out)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(out.read_text())
    assert row["cold"]["stages"].keys() >= {"tracing", "passes", "autodiff", "codegen backward"}
    assert list(row["warm"]["stages"]) == ["tracing", "loading"] and row["warm"]["from_cache"]
    out = tmp_path / "ts.json"
    # ten steps: the LSTMCells' calls are outlined (passes/outline.py), and the warm run restores
    # the bodies their code calls from the cache too
    r = subprocess.run([sys.executable, str(bench / "time_sequence_compile.py"), "--T", "10", "--warm", "--json",
                        str(out)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    cold, warm = json.loads(out.read_text())
    assert cold["run"] == "cold" and warm["run"] == "warm" and cold["losses"] == warm["losses"]
    assert "outlining" in cold["stages"]
    assert list(warm["stages"]) == ["tracing", "loading"] and cold["compile_peak_rss_mib"] > 0
