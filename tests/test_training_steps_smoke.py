"""Smoke test for benchmarks/training_steps.py: it runs and its JSON is complete (no timing thresholds)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_training_steps_quick_json(tmp_path):
    out = tmp_path / "steps.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "training_steps.py"), "--quick", "--no-torch",
                           "--only", "mlp,lstm", "--json", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data["workloads"]) == {"mlp", "lstm"} and data["threads"] == 1
    for name, r in data["workloads"].items():
        floor = {"numpy matmuls alone"} if name == "mlp" else set()  # the MLP's BLAS floor column
        assert set(r["ms"]) == {"graphc eager", "graphc compiled"} | floor
        assert all(math.isfinite(v) and v > 0 for v in r["ms"].values())
        assert r["recompiles"] == 1  # the first step creates the optimizer state, then one graph


def test_warm_start_json(tmp_path):
    out = tmp_path / "warm.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "training_steps.py"), "--warm-start",
                           "--warm-repeats", "1", "--no-torch", "--json", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["workloads"] == {}  # --warm-start alone measures only the new-process start
    ws = data["warm_start_mlp"]
    assert ws["repeats"] == 1 and ws["warm"]["from_cache"] == [True, True] and ws["cold"]["from_cache"] == [False, False]
    w = ws["warm"]
    assert list(w["first_stages"]) == ["tracing", "loading"]  # passes, autodiff and codegen skipped
    for k in ("first_step_s", "first_compile_s", "second_step_s", "uncompiled_step_s", "two_first_steps_s"):
        assert math.isfinite(w[k]) and w[k] > 0, k
    assert w["first_compile_s"] < w["first_step_s"]
    assert "warm cache (median of 1): first step" in proc.stdout


def test_step_cpu_time_prints_a_ratio(capsys):
    """benchmarks/step_cpu_time.py (in this process: torch is optional, and already loaded when
    another test imported it): one round of the MLP step against PyTorch's, a positive ratio."""
    import importlib.util

    import pytest
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("step_cpu_time", REPO / "benchmarks" / "step_cpu_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["mlp", "--rounds", "1"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("mlp: graphc compiled ") and "torch eager" in line, line
    assert 0 < float(line.rsplit(" ", 1)[1].rstrip("x")) < 100
