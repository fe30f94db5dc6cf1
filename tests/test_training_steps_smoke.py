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
