"""graphc.compile's user-facing behaviour: guards and recompilation, the recompile limit, graph
breaks and fullgraph, decorator forms, mutations written back, explain(), logs, the dump CLI and
the on-disk code cache across processes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.compiler import api
from graphc.ir.printer import parse_graph, print_graph

THIS_FILE = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(THIS_FILE))


def _line_of(fn, text: str) -> int:
    """Line number (in this file) of the first source line of ``fn`` containing ``text``."""
    import inspect
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


# ---- recompilation: one reason per guard -----------------------------------------------------

def _recompile_log(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("[graphc:recompiles]")]


def test_recompile_reasons(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOGS", "recompiles")

    @graphc.compile
    def f(x, scale):
        return (x * scale).sum()

    x = graphc.ones(2, 3)
    f(x, 2.0)
    f(x, 2.0)                                        # cache hit
    assert f.recompiles == 0 and _recompile_log(capsys) == []
    f(graphc.ones(4, 3), 2.0)
    f(graphc.ones(4, 3, dtype=graphc.float64), 2.0)
    f(graphc.ones(4, 3, dtype=graphc.float64, requires_grad=True), 2.0)
    with graphc.no_grad():
        f(graphc.ones(4, 3, dtype=graphc.float64, requires_grad=True), 2.0)
    f(x, 3.0)
    assert f.recompiles == 5
    assert f.history == [
        "recompile #1: tensor argument 0 shape changed from (2, 3) to (4, 3)",
        "recompile #2: tensor argument 0 dtype changed from float32 to float64",
        "recompile #3: tensor argument 0 requires_grad changed from False to True",
        "recompile #4: grad mode changed from True to False",
        "recompile #5: a Python argument changed from 2.0 to 3.0",
    ]
    log = _recompile_log(capsys)
    assert len(log) == 5 and log[0] == ("[graphc:recompiles] f: recompiling because tensor argument 0 shape "
                                        "changed from (2, 3) to (4, 3)")
    # each specialization computes the right thing
    assert float(f(x, 3.0)) == 18.0 and float(f(x, 2.0)) == 12.0
    assert f.recompiles == 5  # both are cached now


def test_python_scalar_values_are_guarded():
    f = graphc.compile(lambda x, k, flag: x * k if flag else x - k)
    x = graphc.arange(3.0)
    assert f(x, 2, True).tolist() == [0.0, 2.0, 4.0]
    assert f(x, 3, True).tolist() == [0.0, 3.0, 6.0]
    assert f(x, 3, False).tolist() == [-3.0, -2.0, -1.0]
    assert f.recompiles == 2


def test_train_eval_recompiles_module_and_plain_function(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOGS", "recompiles")
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref.load_state_dict(model.state_dict())

    def plain(x):  # reaches the module through a global, not through compile's argument
        return model(x) * 2

    cf = graphc.compile(plain)
    x = graphc.randn(5, 3)
    with graphc.no_grad():
        for mode in ("train", "eval", "train"):
            getattr(model, mode)()
            getattr(ref, mode)()
            np.testing.assert_allclose(cf(x).numpy(), (ref(x) * 2).numpy(), rtol=1e-5, atol=1e-6)
    assert cf.recompiles == 1  # train -> eval; back to train hits the first entry
    assert cf.history == ["recompile #1: a module's training flag changed (train()/eval())"]
    assert "training flag changed" in _recompile_log(capsys)[0]


def test_replaced_or_reshaped_parameters_recompile():
    lin = nn.Linear(3, 2)
    f = graphc.compile(lambda x: lin(x))
    x = graphc.randn(4, 3)
    f(x)
    lin.weight = nn.Parameter(graphc.randn(2, 3))      # same shape, another tensor
    np.testing.assert_allclose(f(x).detach().numpy(), lin(x).detach().numpy(), rtol=1e-6)
    lin.weight = nn.Parameter(graphc.randn(5, 3))
    lin.bias = nn.Parameter(graphc.randn(5))
    assert tuple(f(x).shape) == (4, 5)
    np.testing.assert_allclose(f(x).detach().numpy(), lin(x).detach().numpy(), rtol=1e-6)
    assert f.history == ["recompile #1: Linear.weight was replaced by another tensor",
                         "recompile #2: Linear.weight was replaced by another tensor"]


def test_recompile_limit_falls_back_to_eager_with_one_warning():
    calls = []

    def f(x):
        calls.append(tuple(x.shape))
        return x * 2

    cf = graphc.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(1, api.RECOMPILE_LIMIT + 2):   # the first compile and 8 recompiles
            cf(graphc.ones(n))
    assert cf.recompiles == api.RECOMPILE_LIMIT and not cf.gave_up
    with pytest.warns(RuntimeWarning, match="recompiled 8 times") as rec:
        out = cf(graphc.ones(20))
    assert len(rec) == 1 and "shape changed" in str(rec[0].message)
    assert cf.gave_up and out.tolist() == [2.0] * 20
    n_traces = len(calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no second warning
        assert cf(graphc.ones(21)).tolist() == [2.0] * 21          # new shape: eager
        assert cf(graphc.ones(3)).tolist() == [2.0] * 3            # cached shape: still compiled
    assert calls[n_traces:] == [(21,)]   # only the eager call ran the Python function


# ---- graph breaks and fullgraph --------------------------------------------------------------

def _breaks_on_item(x):
    y = x * 2
    if y.sum().item() > 0:
        return y + 1
    return y - 1


def test_graph_break_warns_once_with_user_location_and_runs_eagerly():
    cf = graphc.compile(_breaks_on_item)
    line = _line_of(_breaks_on_item, ".item()")
    with pytest.warns(UserWarning) as rec:
        out = cf(graphc.ones(3))
    assert out.tolist() == [3.0, 3.0, 3.0]
    msgs = [str(w.message) for w in rec if "graph break" in str(w.message)]
    assert msgs == [f"graphc.compile: graph break in _breaks_on_item at {THIS_FILE}:{line}: "
                    ".item() reads a tensor value; this call runs eagerly."]
    assert rec[0].filename == THIS_FILE   # the warning points at the caller's code
    with warnings.catch_warnings():
        warnings.simplefilter("error")    # shown once: same signature, and a new one
        assert cf(-graphc.ones(3)).tolist() == [-3.0, -3.0, -3.0]
        assert cf(graphc.ones(5)).tolist() == [3.0] * 5
    assert len([h for h in cf.history if h.startswith("graph break")]) == 2


@pytest.mark.parametrize("body, reason", [
    ("if x.sum() > 0:\n        return x\n    return -x", "bool(tensor) (e.g. `if tensor:`) depends on tensor values"),
    ("return x * float(x[0])", "float(tensor) reads a tensor value"),
    ("return graphc.tensor(x.numpy())", ".numpy() reads tensor values"),
    ("return x[x > 0]", "_np_key (graphc/indexing.py) needs the tensor's values"),
    ("return graphc.nonzero(x)", "nonzero has a data-dependent output shape"),
])
def test_graph_break_reasons_and_fullgraph_error(tmp_path, body, reason):
    src = f"import graphc\n\ndef f(x):\n    {body}\n"
    path = tmp_path / "user_code.py"
    path.write_text(src)
    ns: dict = {}
    exec(compile(src, str(path), "exec"), ns)
    f = ns["f"]
    x = graphc.tensor([1.0, -2.0, 3.0])
    with pytest.warns(UserWarning, match="graph break") as rec:
        got = graphc.compile(f)(x)
    msg = next(str(w.message) for w in rec if "graph break" in str(w.message))
    assert f"at {path}:4: " in msg and reason in msg
    np.testing.assert_array_equal(got.numpy(), f(x).numpy())
    with pytest.raises(graphc.GraphBreakError) as e:
        graphc.compile(f, fullgraph=True)(x)
    assert msg.removeprefix("graphc.compile: ").removesuffix("; this call runs eagerly.") in str(e.value)


def test_fullgraph_decorator_raises_and_plain_decorators_work():
    @graphc.compile(fullgraph=True)
    def strict(x):
        return x.tolist()

    @graphc.compile
    def bare(x):
        return x + 1

    @graphc.compile()
    def called(x):
        return x - 1

    @graphc.compile(fullgraph=True)
    def fine(x):
        return x.exp()

    with pytest.raises(graphc.GraphBreakError, match=r"graph break in strict at .*test_compile_api.py:\d+: "
                                                      r"\.tolist\(\) reads tensor values"):
        strict(graphc.ones(2))
    x = graphc.tensor([0.0, 1.0])
    assert bare(x).tolist() == [1.0, 2.0] and called(x).tolist() == [-1.0, 0.0]
    np.testing.assert_allclose(fine(x).numpy(), np.exp([0.0, 1.0]), rtol=1e-6)
    assert isinstance(bare, api.CompiledFunction) and bare.__name__ == "bare"
    assert graphc.compile(disable=True)(bare.fn) is bare.fn


# ---- lifted tensors, mutations ---------------------------------------------------------------

def test_parameters_are_read_at_every_call_optimizer_updates_without_recompiling():
    graphc.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    ref = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    ref.load_state_dict(model.state_dict())
    step = graphc.compile(lambda x, y: ((model(x) - y) ** 2).mean())
    opt = graphc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ref_opt = graphc.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    x, y = graphc.randn(6, 4), graphc.randn(6, 2)
    losses = []
    for _ in range(5):
        for m, o, fn in ((model, opt, step), (ref, ref_opt, lambda a, b: ((ref(a) - b) ** 2).mean())):
            o.zero_grad()
            loss = fn(x, y)
            loss.backward()
            o.step()
            losses.append(float(loss))
    np.testing.assert_allclose(losses[0::2], losses[1::2], rtol=1e-5)
    assert losses[-2] < losses[0]                 # it trained
    assert step.recompiles == 0
    entry = next(iter(step.cache.values()))
    assert {id(t) for t in entry.lifted} == {id(p) for p in model.parameters()}
    assert "param" in entry.stages["traced"].splitlines()[0]
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_in_place_writes_to_inputs_and_buffers_are_written_back():
    counter = graphc.zeros(3)
    log = graphc.zeros(2, 3)

    def f(x, i):
        x.mul_(2)               # a user input, changed in place
        counter.add_(1)         # a global buffer
        log[i] = x.sum(0)       # an indexed write into a buffer
        return x + counter

    cf = graphc.compile(f)
    with graphc.no_grad():
        x = graphc.ones(4, 3)
        v0 = x._version
        out = cf(x, 1)
        np.testing.assert_array_equal(x.numpy(), np.full((4, 3), 2.0))
        assert x._version > v0
        np.testing.assert_array_equal(out.numpy(), np.full((4, 3), 3.0))
        cf(x, 0)
    np.testing.assert_array_equal(counter.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(log.numpy(), [[16.0] * 3, [8.0] * 3])
    assert cf.recompiles == 1   # the Python index changed


def test_in_place_write_to_an_input_that_requires_grad_is_a_graph_break():
    def f(x):
        x.add_(1)
        return x * 2

    x = graphc.ones(3, requires_grad=True)
    with pytest.raises(graphc.GraphBreakError, match="modified in place"):
        graphc.compile(f, fullgraph=True)(x)
    with pytest.warns(UserWarning, match="graph break"), pytest.raises(RuntimeError, match="leaf Variable"):
        graphc.compile(f)(x)  # eager raises PyTorch's error


def test_outputs_structure_and_non_tensor_values():
    from collections import namedtuple
    Pair = namedtuple("Pair", "a b")
    f = graphc.compile(lambda x: {"sum": x.sum(), "pair": Pair(x * 2, "tag"), "list": [x.shape[0], x - 1]})
    out = f(graphc.arange(3.0))
    assert float(out["sum"]) == 3.0 and out["pair"].b == "tag" and isinstance(out["pair"], Pair)
    assert out["list"][0] == 3 and out["list"][1].tolist() == [-1.0, 0.0, 1.0]


def test_non_contiguous_inputs_and_compiled_backward_errors():
    f = graphc.compile(lambda a: (a * a).sum())
    base = graphc.arange(6.0).reshape(2, 3).requires_grad_()
    a = base.t()
    assert not a.is_contiguous()
    loss = f(a)
    assert type(loss.grad_fn).__name__ == "CompiledBackward" and loss.grad_fn.name() == "CompiledFunctionBackward"
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(base.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()
    with pytest.raises(RuntimeError, match="double backward"):
        graphc.autograd.grad(f(a), [base], create_graph=True)


def test_saved_tensor_changed_in_place_before_backward_is_an_error():
    w = graphc.randn(3, requires_grad=True)
    f = graphc.compile(lambda x: (x * w).sin().sum())
    x = graphc.randn(3, requires_grad=True)
    loss = f(x)
    with graphc.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# ---- nn.Module compile: OptimizedModule ------------------------------------------------------

def test_optimized_module_is_a_module_wrapping_the_original():
    graphc.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    opt_mod = graphc.compile(model)
    assert isinstance(opt_mod, nn.Module) and isinstance(opt_mod, api.OptimizedModule)
    assert opt_mod._orig_mod is model
    assert [id(p) for p in opt_mod.parameters()] == [id(p) for p in model.parameters()]
    sd = opt_mod.state_dict()
    assert list(sd) == ["_orig_mod." + k for k in model.state_dict()]     # as PyTorch names them
    assert getattr(opt_mod, "0") is model[0] and opt_mod.training         # attribute passthrough
    opt_mod.eval()
    assert not model.training and not model[1].training
    x = graphc.randn(5, 3)
    np.testing.assert_allclose(opt_mod(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)
    other = graphc.compile(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()))
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other._orig_mod[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    assert "OptimizedModule(\n  (_orig_mod): Sequential(" in repr(opt_mod)
    assert opt_mod.forward.__self__ is opt_mod
    assert graphc.compile(model, backend="inductor")(x).shape == (5, 4)


# ---- inspection: explain, logs ---------------------------------------------------------------

def test_explain_shows_traced_graph_passes_fusion_memory_and_code():
    w = nn.Parameter(graphc.randn(4, 3))

    def f(x):
        return (x @ w).relu().sum()

    out = graphc.explain(f, graphc.randn(2, 4, requires_grad=True))
    assert out.traced_graph.startswith('graph f(%x0: f32[2,4], %p1: f32[4,3] param) {')
    parse_graph(out.traced_graph)
    names = [name for name, _, _ in out.passes]
    assert names[:5] == ["decompose", "simplify", "constant_fold", "cse", "dce"] and names.count("fusion") == 2
    assert "graph f_forward(" in out.forward_graph and "graph f_backward(" in out.backward_graph
    assert "def graphc_f_forward(" in out.code and "def graphc_f_backward(" in out.code and "np.matmul" in out.code
    assert any("f_forward:" in m for m in out.memory)
    text = str(out)
    for section in ("== traced graph ==", "== after simplify", "== after fusion", "== forward graph",
                    "== backward graph ==", "== fusion ==", "== memory plan ==", "== generated code ==",
                    "== graph breaks ==\nnone", "== recompiles ==\nnone", "compile time:"):
        assert section in text, section


def test_explain_reports_graph_breaks():
    with pytest.warns(UserWarning):
        out = graphc.explain(_breaks_on_item, graphc.ones(2))
    assert out.traced_graph == "" and len(out.graph_breaks) == 1 and ".item()" in out.graph_breaks[0]


def test_graphc_logs(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOGS", "graph,passes,code,fusion,graph_breaks,cache")

    def g(x):
        y = x.exp() * 2 + 1
        return y.sum(), y

    graphc.compile(g)(graphc.ones(3, requires_grad=True))[0].backward()
    out = capsys.readouterr().out
    kinds = {line.split("]")[0] + "]" for line in out.splitlines() if line.startswith("[graphc:")}
    assert kinds == {"[graphc:graph]", "[graphc:passes]", "[graphc:code]", "[graphc:cache]", "[graphc:fusion]"}
    # the backward's two pointwise groups (exp's derivative, then the sum's) merge into one
    assert "[graphc:fusion] g_backward: group of %0 merged into the group of %3" in out
    assert "[graphc:graph] graph g(%x0: f32[3]) {" in out and "def graphc_g_forward(" in out
    assert "memory plan g_backward:" in out
    assert "[graphc:cache] g_forward: generated code (cache miss" in out or \
        "[graphc:cache] g_forward: loaded generated code from the cache" in out
    with pytest.warns(UserWarning):
        # a new function with its code (one compiled before shares that compile and its warnings)
        fresh = types.FunctionType(_breaks_on_item.__code__, globals(), "_breaks_on_item")
        graphc.compile(fresh)(graphc.ones(2))
    assert "[graphc:graph_breaks] graph break in _breaks_on_item at " in capsys.readouterr().out


# ---- the dump CLI and dump_dir ---------------------------------------------------------------

SCRIPT = """
import graphc

@graphc.compile
def step(x, w):
    return ((x @ w).tanh() ** 2).sum()

w = graphc.ones(3, 2, requires_grad=True)
step(graphc.ones(4, 3), w).backward()
step(graphc.ones(5, 3), w).backward()
print("script ran", float(w.grad.sum()) != 0.0)
"""


def _run(args, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=120)


@pytest.mark.parametrize("fmt", ["text", "dot"])
def test_dump_cli_writes_every_stage(tmp_path, fmt):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "dump"
    r = _run(["-m", "graphc", "dump", str(script), "--out", str(out), "--format", fmt], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "script ran True" in r.stdout
    assert "graphc dump: wrote 2 compiled graph(s)" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["step_0", "step_1"]
    files = sorted(p.name for p in (out / "step_0").iterdir())
    expected = ["00_traced.ir", "00_why.txt", "01_after_decompose.ir", "02_after_simplify.ir", "03_after_constant_fold.ir",
                "04_after_cse.ir", "05_after_dce.ir", "06_forward_after_simplify.ir",
                "07_forward_after_lowered_rewrites.ir", "08_forward_after_cse.ir", "09_forward_after_dce.ir",
                "10_forward_after_fusion.ir", "11_backward_after_simplify.ir", "12_backward_after_lowered_rewrites.ir",
                "13_backward_after_cse.ir", "14_backward_after_dce.ir", "15_backward_after_fusion.ir",
                "50_forward.ir", "51_backward.ir", "60_fusion.log", "70_memory.txt", "90_code.py"]
    if fmt == "dot":
        expected += ["00_traced.dot", "50_forward.dot", "51_backward.dot", "graph.dot"]
    assert files == sorted(expected)
    assert (out / "step_0" / "70_memory.txt").read_text().startswith("step_forward: ")
    for f in files:
        if f.endswith(".ir"):
            label, text = (out / "step_0" / f).read_text().split("\n", 1)  # a comment names the graph
            assert label.startswith("# ") and print_graph(parse_graph(text)) == text, f
    assert "(%x0: f32[4,3], %x1: f32[3,2])" in (out / "step_0" / "00_traced.ir").read_text()
    assert "(%x0: f32[5,3], %x1: f32[3,2])" in (out / "step_1" / "00_traced.ir").read_text()
    code = (out / "step_0" / "90_code.py").read_text()
    assert "def graphc_step_forward(" in code and "def graphc_step_backward(" in code
    if fmt == "dot":
        dot = (out / "step_0" / "graph.dot").read_text()
        assert dot.startswith('digraph "step" {') and "->" in dot and dot.rstrip().endswith("}")


def test_dump_cli_errors_and_dump_dir_argument(tmp_path):
    r = _run(["-m", "graphc", "dump", str(tmp_path / "missing.py"), "--out", str(tmp_path / "d")])
    assert r.returncode == 2 and "no such script" in r.stderr
    f = graphc.compile(lambda x: x.sin() + 1, dump_dir=str(tmp_path / "mine"))
    f(graphc.ones(2))
    (sub,) = (tmp_path / "mine").iterdir()
    assert sub.name == "<lambda>_0" and (sub / "00_traced.ir").exists() and (sub / "90_code.py").exists()


# ---- the on-disk code cache across processes -------------------------------------------------

CACHE_SCRIPT = """
import json, sys
import graphc

@graphc.compile
def loss(x, w):
    return ((x @ w).sigmoid() * 3.0).sum()

w = graphc.full((3, 2), 0.5, requires_grad=True)
out = loss(graphc.ones(4, 3), w)
out.backward()
entry = next(iter(loss.cache.values()))
print(json.dumps({"value": float(out), "grad": w.grad.tolist(),
                  "from_cache": [entry.forward.from_cache, entry.backward.from_cache],
                  "keys": [entry.forward.key, entry.backward.key]}))
"""


def test_disk_cache_across_processes_and_corrupted_entries(tmp_path):
    import json
    script = tmp_path / "cached.py"
    script.write_text(CACHE_SCRIPT)
    env = {"GRAPHC_CACHE_DIR": str(tmp_path / "cache"), "GRAPHC_LOGS": "cache"}

    def run():
        r = _run([str(script)], env=env)
        assert r.returncode == 0, r.stderr
        logs = [line for line in r.stdout.splitlines() if line.startswith("[graphc:cache]")]
        return json.loads(r.stdout.splitlines()[-1]), logs

    first, logs1 = run()
    assert first["from_cache"] == [False, False]
    code_logs = [line for line in logs1 if "compiled entry" not in line]
    assert all("generated code (cache miss" in line for line in code_logs) and len(code_logs) == 2
    assert any("compiled entry stored as entry_" in line for line in logs1)
    entries = sorted((tmp_path / "cache").glob("*.py"))   # the code, and the entry naming it
    assert sorted(p.stem for p in entries if not p.stem.startswith("entry_")) == sorted(first["keys"])
    assert len(entries) == 3

    second, logs2 = run()   # a compiled-entry hit: both graphs' code loaded, nothing regenerated
    assert second["from_cache"] == [True, True] and second["keys"] == first["keys"]
    assert all("loaded generated code from the cache" in line for line in logs2) and len(logs2) == 2
    assert second["value"] == first["value"] and second["grad"] == first["grad"]

    fwd = tmp_path / "cache" / f"{first['keys'][0]}.py"
    bwd = tmp_path / "cache" / f"{first['keys'][1]}.py"
    good = fwd.read_text()
    fwd.write_text(good.replace("np.", "numpy_typo.", 1))          # edited: checksum mismatch
    bwd.write_text(bwd.read_text()[:40])                           # truncated
    third, _ = run()
    assert third["from_cache"] == [False, False]                   # detected and regenerated
    assert third["value"] == first["value"] and third["grad"] == first["grad"]
    assert fwd.read_text() == good                                  # rewritten
    fourth, _ = run()
    assert fourth["from_cache"] == [True, True]


def test_cache_entry_with_valid_checksum_but_broken_code_is_regenerated(tmp_path, monkeypatch):
    from graphc.runtime import backends, cache
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    g = parse_graph("graph k(%x: f32[2]) {\n  %0: f32[2] = exp(%x)\n  return %0\n}\n")
    numpy_backend = backends.get("numpy", "cpu")
    first = numpy_backend.compile(g, "k")
    assert not first.from_cache and numpy_backend.compile(g, "k").from_cache
    cache.store(first.key, "def graphc_k(x):\n    return (x +\n")   # stored properly, but not Python
    again = numpy_backend.compile(g, "k")
    assert not again.from_cache
    np.testing.assert_allclose(again([np.zeros(2, np.float32)])[0], [1.0, 1.0])
    assert numpy_backend.compile(g, "k").from_cache


def test_compiled_code_follows_ieee_silently_like_eager():
    f = graphc.compile(lambda x: (x / x, (x - 1).log(), x.exp() * 1e300))
    x = graphc.tensor([0.0, 1.0], dtype=graphc.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # numpy's RuntimeWarnings (invalid value, divide by zero, overflow)
        got = f(x)
        want = (x / x, (x - 1).log(), x.exp() * 1e300)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_graph_break_warning_points_at_the_line_calling_a_compiled_module():
    class Breaks(nn.Module):
        def forward(self, x):
            return x * float(x.sum())

    m = graphc.compile(Breaks())
    with pytest.warns(UserWarning, match="graph break in Breaks") as rec:
        m(graphc.ones(2)); line = sys._getframe().f_lineno  # noqa: E702
    assert (rec[0].filename, rec[0].lineno) == (THIS_FILE, line)


def test_in_place_writes_through_views_of_an_input():
    def f(x):
        x[0].add_(1)
        x[:, 1] *= 3
        x.t()[2].zero_()
        return x.sum(0)

    a, b = graphc.ones(2, 3), graphc.ones(2, 3)
    want = f(a)
    got = graphc.compile(f)(b)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(b.numpy(), a.numpy())


def test_compiled_function_called_from_threads_at_once():
    """Each call runs in its own workspace: 4 threads calling one compiled function (whose
    generated code writes planned intermediate buffers) all get their own right answers."""
    from threads import wrong_answers

    @graphc.compile
    def f(x):
        h = (x.exp() - 1.0).tanh() * x
        return (h * h).sum(1) + h.amax(1)

    rng = np.random.default_rng(0)
    xs = [graphc.tensor(rng.standard_normal((32, 64)).astype(np.float32)) for _ in range(4)]
    want = [f(x).numpy().copy() for x in xs]   # compiles once (same signature for all)
    assert f.cache and all(e.forward.plan.workspace_bytes > 0 for e in f.cache.values())
    assert wrong_answers(lambda i: np.allclose(f(xs[i]).numpy(), want[i], rtol=1e-6)) == []
