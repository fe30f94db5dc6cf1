"""Whole training steps: graphc eager, graphc compiled (one graph for zero_grad, forward,
backward and the optimizer), PyTorch eager and, with ``--torch-compile``, ``torch.compile``.

The same model code runs on both frameworks (only the module differs), with the same weights and
data. Threads are equal: ``--threads N`` (default 1) sets OpenBLAS/OpenMP threads before numpy
loads, graphc's kernel-piece pool (GRAPHC_NUM_THREADS) and ``torch.set_num_threads(N)``. Frameworks are timed in alternating rounds in one
process, so the ratios hold on a noisy machine; each figure is the median time per step.

Workloads (issue #9):
  mlp          batch 64, 784-512-256-10, ReLU, cross-entropy, AdamW
  cnn          digits-sized images: batch 64 of 1x8x8, conv16-BN-ReLU-conv32-BN-ReLU-maxpool-dropout-linear, Adam
  lstm         batch 16, 20 steps of 32 features, LSTM(64) + linear head, Adam
  transformer  batch 16, 32 tokens of width 64, one encoder layer (4 heads, ff 128), AdamW

Also the first-call compile time of the MLP step, and the start of the compiled MLP step in new
processes with a warm compile cache (median of ``--warm-repeats``): its first call, how much of it
is trace and cache load, and the first two steps (``--warm-start`` alone measures only that).

    python benchmarks/training_steps.py [--quick] [--threads N] [--only mlp,cnn] [--torch-compile] [--json PATH]
    python benchmarks/training_steps.py --warm-start [--warm-repeats 9]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few steps: a smoke run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default="", help="comma-separated workloads")
    p.add_argument("--torch-compile", action="store_true", help="also time torch.compile (slow to compile)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default="")
    p.add_argument("--warm-start", action="store_true",
                   help="measure the new-process start of the compiled MLP step (with --quick too; alone, only that)")
    p.add_argument("--warm-repeats", type=int, default=5, help="warm new processes to take the median of")
    return p.parse_args(argv)


def build(lib, name: str, seed: int = 0):
    """(model, optimizer, batch) for workload ``name`` on framework ``lib`` (graphc or torch)."""
    import numpy as np
    nn = lib.nn
    lib.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
        x, y = rng.standard_normal((64, 784)), rng.integers(0, 10, 64)
        opt = lib.optim.AdamW(model.parameters(), lr=1e-3)
    elif name == "cnn":
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                              nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, 10))
        x, y = rng.standard_normal((64, 1, 8, 8)), rng.integers(0, 10, 64)
        opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    elif name == "lstm":
        class Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(32, 64, batch_first=True)
                self.head = nn.Linear(64, 10)

            def forward(self, x):
                return self.head(self.lstm(x)[0][:, -1])
        model = Seq()
        x, y = rng.standard_normal((16, 20, 32)), rng.integers(0, 10, 16)
        opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    elif name == "transformer":
        class Enc(nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.1, batch_first=True)
                self.head = nn.Linear(64, 10)

            def forward(self, x):
                return self.head(self.layer(x).mean(1))
        model = Enc()
        x, y = rng.standard_normal((16, 32, 64)), rng.integers(0, 10, 16)
        opt = lib.optim.AdamW(model.parameters(), lr=1e-3)
    else:
        raise ValueError(name)
    batch = (lib.from_numpy(x.astype(np.float32)), lib.from_numpy(y.astype(np.int64)))
    return model, opt, batch


def step_fn(lib, model, opt):
    F = lib.nn.functional

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def _same_weights(src, dst) -> None:
    """Copy graphc model weights into the torch model (same architecture, same order)."""
    import torch
    with torch.no_grad():
        for (_, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
            b.copy_(torch.from_numpy(a.numpy().copy()).reshape(b.shape))


def _mlp_matmuls(model):
    """The eight matrix products of an MLP training step (forward, weight and input gradients;
    no input gradient for the first layer) in plain numpy, on arrays of the step's shapes."""
    import numpy as np
    ws = [m.weight.detach().numpy() for m in model if hasattr(m, "weight")]
    rng = np.random.default_rng(0)
    acts = [rng.standard_normal((64, w.shape[1])).astype(np.float32) for w in ws]
    grads = [rng.standard_normal((64, w.shape[0])).astype(np.float32) for w in ws]

    def matmuls(x, y):
        for i, w in enumerate(ws):
            np.matmul(acts[i], w.T)
            np.matmul(grads[i].T, acts[i])
            if i:
                np.matmul(grads[i], w)
    return matmuls


def _time(fns: dict, batch_of: dict, steps: int, rounds: int) -> dict:
    """Median ms per step of each fn, timed in alternating rounds."""
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            x, y = batch_of[k]
            t = time.perf_counter()
            for _ in range(steps):
                fn(x, y)
            samples[k].append((time.perf_counter() - t) / steps * 1e3)
    return {k: statistics.median(v) for k, v in samples.items()}


def run_workload(name: str, args, torch) -> dict:
    import graphc
    model, opt, batch = build(graphc, name)
    eager = step_fn(graphc, model, opt)
    c_model, c_opt, _ = build(graphc, name)
    compiled = graphc.compile(step_fn(graphc, c_model, c_opt), fullgraph=True)
    t0 = time.perf_counter()
    compiled(*batch)
    first = time.perf_counter() - t0
    compiled(*batch)  # the second call compiles once more: the first step created the optimizer state
    fns = {"graphc eager": eager, "graphc compiled": compiled}
    batches = {"graphc eager": batch, "graphc compiled": batch}
    if torch is not None:
        t_model, t_opt, t_batch = build(torch, name)
        _same_weights(model, t_model)
        fns["torch eager"] = step_fn(torch, t_model, t_opt)
        batches["torch eager"] = t_batch
        if args.torch_compile:
            tc_model, tc_opt, _ = build(torch, name)
            _same_weights(model, tc_model)
            tc = torch.compile(step_fn(torch, tc_model, tc_opt))
            tc(*t_batch)
            fns["torch.compile"] = tc
            batches["torch.compile"] = t_batch
    if name == "mlp":  # the floor numpy's BLAS sets: the step's matrix products alone
        fns["numpy matmuls alone"] = _mlp_matmuls(model)
        batches["numpy matmuls alone"] = batch
    for k, fn in fns.items():  # warm-up
        fn(*batches[k])
    steps, rounds = (3, 3) if args.quick else (10, 7)
    ms = _time(fns, batches, steps, rounds)
    result = {"ms": ms, "first_compile_s": first, "recompiles": compiled.recompiles}
    ref = ms.get("torch eager")
    if ref:
        result["ratio_to_torch_eager"] = {k: v / ref for k, v in ms.items()}
    result["compiled_speedup_over_graphc_eager"] = ms["graphc eager"] / ms["graphc compiled"]
    return result


_WARM_START = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
t0 = time.perf_counter()
import graphc
from training_steps import build, step_fn
model, opt, batch = build(graphc, "mlp")
step = graphc.compile(step_fn(graphc, model, opt), fullgraph=True)
t1 = time.perf_counter()
calls, stages = [], []
for _ in range(3):  # the first step creates the optimizer state: the second compiles again
    t = time.perf_counter()
    step(*batch)
    calls.append(time.perf_counter() - t)
    entry = next(iter(step.cache.values()))
    stages.append(entry.stages)
print(json.dumps({{"import_and_build_s": t1 - t0, "first_step_s": calls[0], "second_step_s": calls[1],
                  "uncompiled_step_s": calls[2], "first_compile_s": stages[0]["compile_seconds"],
                  "second_compile_s": stages[1]["compile_seconds"],
                  "first_stages": stages[0]["compile_stages"],
                  "from_cache": [bool(s.get("from_cache")) for s in stages[:2]]}}))
"""


def warm_start(threads: int, repeats: int = 5) -> dict:
    """The compiled MLP step started in a new process (``import graphc`` and building the model
    not counted, as for torch): with an empty cache once, then ``repeats`` times with the cache the
    first run filled; each figure is the median over the warm runs. ``first_step_s``: the first
    call (trace, cache lookup and load, and the step's own run); ``first_compile_s``: that call
    less the run (trace and load); ``second_step_s``: the call after the optimizer state exists,
    which compiles (loads) once more; ``uncompiled_step_s``: the third call, no compile at all."""
    env = dict(os.environ, GRAPHC_CACHE_DIR=tempfile.mkdtemp(prefix="graphc-bench-cache-"))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GRAPHC_NUM_THREADS"):
        env[var] = str(threads)
    env.pop("GRAPHC_LOGS", None)
    code = _WARM_START.format(bench=os.path.dirname(os.path.abspath(__file__)))

    def run() -> dict:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return json.loads(r.stdout.splitlines()[-1])
    cold = run()
    warm = [run() for _ in range(max(1, repeats))]
    if not all(all(w["from_cache"]) for w in warm):
        raise RuntimeError("a warm start missed the compile cache")
    keys = [k for k, v in warm[0].items() if isinstance(v, float)]
    out = {"cold": cold, "repeats": len(warm), "warm": {k: statistics.median(w[k] for w in warm) for k in keys}}
    out["warm"]["two_first_steps_s"] = statistics.median(w["first_step_s"] + w["second_step_s"] for w in warm)
    out["warm"]["first_stages"] = {k: statistics.median(w["first_stages"].get(k, 0.0) for w in warm)
                                   for k in warm[0]["first_stages"]}
    out["warm"]["from_cache"] = warm[0]["from_cache"]
    out["cold"]["two_first_steps_s"] = cold["first_step_s"] + cold["second_step_s"]
    return out


def _print_warm_start(ws: dict) -> None:
    w, c = ws["warm"], ws["cold"]
    print(f"mlp compiled, new process, warm cache (median of {ws['repeats']}): first step "
          f"{w['first_step_s'] * 1e3:.1f} ms (trace and load {w['first_compile_s'] * 1e3:.1f} ms: "
          + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in w["first_stages"].items())
          + f"; a step that compiles nothing: {w['uncompiled_step_s'] * 1e3:.1f} ms), first two steps "
          f"{w['two_first_steps_s'] * 1e3:.1f} ms; cold cache: first step {c['first_step_s'] * 1e3:.1f} ms, "
          f"first two {c['two_first_steps_s'] * 1e3:.1f} ms")


def setup(threads: int, no_torch: bool):
    """Equal threads for numpy's BLAS, graphc's kernel pieces and PyTorch (before numpy loads: BLAS
    reads its count then) and a compile cache of this run's own, so that first compiles are
    measured as first compiles. Returns torch, or None when it is not installed or not wanted."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GRAPHC_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-bench-cache-"))
    if no_torch:
        return None
    try:
        import torch
    except ImportError:
        print("(torch not installed: graphc columns only)")
        return None
    torch.set_num_threads(threads)
    return torch


def main(argv=None) -> dict:
    args = _args(argv)
    torch = setup(args.threads, args.no_torch)
    names = [n for n in ("mlp", "cnn", "lstm", "transformer") if not args.only or n in args.only.split(",")]
    if args.warm_start and not args.only:
        names = []  # --warm-start alone: only the new-process start
    report = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "threads": args.threads,
              "workloads": {}}
    for name in names:
        r = run_workload(name, args, torch)
        report["workloads"][name] = r
        cols = "  ".join(f"{k} {v:7.2f} ms" for k, v in r["ms"].items())
        ratio = r.get("ratio_to_torch_eager", {})
        print(f"{name:12s} {cols}")
        if ratio:
            print(f"{'':12s} vs torch eager: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratio.items()))
        print(f"{'':12s} compiled/eager speed-up {r['compiled_speedup_over_graphc_eager']:.2f}x, first compile "
              f"{r['first_compile_s']:.2f} s")
    if args.warm_start or (not args.quick and (not args.only or "mlp" in args.only.split(","))):
        report["warm_start_mlp"] = ws = warm_start(args.threads, args.warm_repeats)
        _print_warm_start(ws)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
