"""Smoke test for benchmarks/gpu_check.py without a GPU: ``--device cpu --quick`` runs every
section's code path on tiny shapes (graphc's Triton kernels under the interpreter) and writes a
complete report. No timing thresholds, and no demand that each benchmark pass: a benchmark
either has figures or records why not (failed with its error, or skipped with the reason)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="gpu_check's cpu mode runs graphc's Triton kernels (Linux)")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
TRAINING = [f"{w}.{v}" for w in ("mlp", "transformer") for v in ("graphc_eager", "graphc_compiled", "torch_eager")]
BENCHMARKS = ["copy", "pointwise.graphc", "pointwise.unfused", "sum_last.graphc", "softmax_last.graphc",
              "sum_first.graphc", "matmul_fp32.library", "matmul_fp32.graphc", "matmul_fp16.library",
              "matmul_fp16.graphc", *TRAINING, "mlp.torch_compile", "transformer.torch_compile"]

pytestmark = [pytest.mark.triton, pytest.mark.timeout(150)]


def test_gpu_check_cpu_quick_report(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "== gpu_check ==" in proc.stdout  # the table was printed

    report = json.loads(out.read_text())
    assert report["meta"]["device"] == "cpu" and report["meta"]["quick"]
    sections = report["sections"]
    assert list(sections) == ["environment", "install", "tests", "benchmarks"]
    for name, section in sections.items():
        assert section["status"] in ("ok", "failed", "skipped"), name
        if section["status"] != "ok":
            assert section["reason"], name
    assert sections["environment"]["status"] == "ok"
    assert sections["environment"]["numpy"]
    assert sections["install"]["status"] == sections["tests"]["status"] == "skipped"

    bench = sections["benchmarks"]
    assert bench["status"] == "ok", bench.get("reason")
    results = bench["results"]
    assert list(results) == BENCHMARKS
    for key, entry in results.items():
        status = entry["status"]
        if status in ("failed", "skipped"):
            assert entry["reason"], key
            continue
        assert status in ("ok", "mismatch"), (key, status)
        assert math.isfinite(entry["ms"]) and entry["ms"] > 0, (key, entry)
        assert entry["repeats"] >= 1
        assert "max_rel_err" in entry and entry["check"] in ("ok", "mismatch"), key
        if status == "mismatch":
            assert entry["reason"]
        if key.split(".")[0] not in ("mlp", "transformer"):  # kernels report a throughput
            assert math.isfinite(entry.get("gbps", entry.get("tflops", math.nan))), (key, entry)
    # PyTorch is never used in cpu mode; the copy (plain numpy) always measures.
    assert all(results[f"{w}.{v}"]["status"] == "skipped"
               for w in ("mlp", "transformer") for v in ("torch_eager", "torch_compile"))
    assert results["copy"]["status"] == "ok" and results["copy"]["gbps"] > 0
    for label, ratio in bench["ratios"].items():
        assert math.isfinite(ratio) and ratio > 0, label
