"""Smoke tests for benchmarks/eager_overhead.py and benchmarks/programs.py: they run, and their JSON is complete and sane.

No timing thresholds are asserted (timings depend on the machine); only that every
(op, size, framework) the run claims is either measured with positive finite times or listed as
skipped with a reason. PyTorch is optional: without it the torch columns are simply absent.
"""
from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "eager_overhead.py"

pytestmark = pytest.mark.timeout(180)  # enforced with pytest-timeout (in the `dev` extra)


def test_eager_overhead_quick_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "graphc/numpy" in proc.stdout  # the table was printed

    data = json.loads(out.read_text())
    ops, sizes, frameworks = data["ops"], data["sizes"], data["frameworks"]
    assert set(ops) == {"add", "mul", "matmul", "sum", "relu", "index", "fwd_bwd"}
    assert set(sizes) == {4, 256}
    assert {"numpy", "graphc", "graphc+grad"} <= set(frameworks)
    has_torch = data["meta"]["torch"] is not None
    assert ({"torch", "torch+grad"} <= set(frameworks)) == has_torch
    if not has_torch:
        assert "note: PyTorch comparison skipped" in proc.stdout
    else:  # graphc/torch per op and size, from the same run
        assert "graphc/torch 4x4: geomean" in proc.stdout
        assert set(data["graphc_over_torch"]) == {"4x4", "256x256"}
        for summary in data["graphc_over_torch"].values():
            assert summary["ratios"] and all(math.isfinite(r) and r > 0 for r in summary["ratios"].values())
    assert data["meta"]["command"].startswith("python benchmarks/eager_overhead.py")
    assert "threads:" in proc.stdout and "command:" in proc.stdout

    measured = {}
    for r in data["results"]:
        key = (r["op"], r["size"], r["framework"])
        assert key not in measured, f"duplicate result {key}"
        measured[key] = r
    skipped = {(s["op"], s["size"], s["framework"]): s for s in data["skipped"]}
    assert not set(measured) & set(skipped)

    for key in itertools.product(ops, sizes, frameworks):
        if key in skipped:
            assert skipped[key]["reason"]
            continue
        assert key in measured, f"no result for {key}"
        r = measured[key]
        times = [r["median_us"], r["best_us"], *r["samples_us"]]
        assert len(r["samples_us"]) == r["repeats"] >= 1
        assert r["number"] >= 1
        for t in times:
            assert isinstance(t, (int, float)) and math.isfinite(t) and t > 0, (key, t)
    assert set(measured) | set(skipped) == set(itertools.product(ops, sizes, frameworks))
    # Only the no-autograd variants may skip, and only the forward+backward op.
    assert all(op == "fwd_bwd" and not fw.endswith("+grad") and fw != "numpy"
               for op, _, fw in skipped)


def test_compile_vs_eager_quick_json(tmp_path):
    """compile_vs_eager.py runs (it checks compiled results against eager itself) and reports a
    positive time and compile latency for every workload. No thresholds on the times."""
    out = tmp_path / "cve.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compile_vs_eager.py"), "--quick", "--no-torch",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=170,
        env={**__import__("os").environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    data = json.loads(out.read_text())
    assert any(name.startswith("mlp fwd+bwd 64x784-512-256-10") for name in data)
    assert any(name.startswith("layernorm+gelu+softmax (64,256)") for name in data)
    assert "elementwise chain 1M" in data
    for name, row in data.items():
        for key in ("eager_s", "compiled_s", "compile_s"):
            assert math.isfinite(row[key]) and row[key] > 0, (name, key, row)


def test_programs_benchmark_quick_json(tmp_path):
    out = tmp_path / "programs.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "programs.py"), "--quick", "--steps", "1", "--no-torch",
         "--only", "regression,custom_function", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    data = json.loads(out.read_text())
    assert set(data["programs"]) == {"regression", "custom_function"}
    for row in data["programs"].values():
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("eager_ms", "compiled_ms", "speedup"))
        assert row["speedup"] == pytest.approx(row["eager_ms"] / row["compiled_ms"])
