"""graphc compiled vs graphc eager (and PyTorch eager / torch.compile when torch is installed).

Workloads (issue #3):
  mlp       MLP forward+backward, batch 64, 784-512-256-10, cross-entropy loss: compiling the
            model only, and compiling model + loss (one graph, one compiled backward)
  small     the same step for a small MLP (batch 16, 32-32-10)
  block     LayerNorm + GELU + softmax on (64, 256) and on (8, 32), forward only
  chain     an elementwise chain on 1M float32 elements, forward only

For each: median time per call (after warm-up), the compiled/eager ratio, and first-call compile
latency. Frameworks are timed in alternating rounds in one run (graphc eager, graphc compiled,
PyTorch eager, torch.compile, one round of calls each, repeated), so ratios are fair on a noisy
machine. Threads are equal: ``--threads N`` (default 1) sets OpenBLAS/OpenMP threads before numpy
loads, graphc's kernel-piece pool (GRAPHC_NUM_THREADS) and ``torch.set_num_threads(N)``.

    python benchmarks/compile_vs_eager.py [--quick] [--threads N] [--only layernorm,chain] [--json PATH] [--no-torch]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GRAPHC_NUM_THREADS")


def _threads_from_argv(argv: list) -> int:
    """``--threads N`` read before numpy is imported: BLAS reads its thread count when it loads."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


if __name__ == "__main__":
    for _var in _THREAD_VARS:
        os.environ[_var] = str(_threads_from_argv(sys.argv[1:]))

import numpy as np  # noqa: E402  (after the thread variables)


def _setup_graphc():
    import graphc
    import graphc.nn as nn
    import graphc.nn.functional as F
    return graphc, nn, F


def workloads(lib, nn, F, seed: int = 0):
    """name -> (make_inputs, fn); the same code runs on graphc and torch."""
    lib.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    rng = np.random.default_rng(seed)
    x_mlp = lib.from_numpy(rng.standard_normal((64, 784)).astype(np.float32))
    y_mlp = lib.from_numpy(rng.integers(0, 10, 64).astype(np.int64))
    x_blk = lib.from_numpy(rng.standard_normal((64, 256)).astype(np.float32))
    w_blk = lib.from_numpy(rng.standard_normal(256).astype(np.float32))
    b_blk = lib.from_numpy(rng.standard_normal(256).astype(np.float32))
    x_chain = lib.from_numpy(rng.standard_normal(1 << 20).astype(np.float32))

    def mlp_step(model, x, y):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    def block(x, w, b):
        return F.softmax(F.gelu(F.layer_norm(x, (x.shape[-1],), w, b)), dim=-1)

    def chain(x):
        return ((x * 1.5 + 0.5).sigmoid() * x - 0.25).tanh() * 2.0 + x

    small = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    x_small = lib.from_numpy(rng.standard_normal((16, 32)).astype(np.float32))
    y_small = lib.from_numpy(rng.integers(0, 10, 16).astype(np.int64))
    x_sblk = lib.from_numpy(rng.standard_normal((8, 32)).astype(np.float32))
    w_sblk = lib.from_numpy(rng.standard_normal(32).astype(np.float32))
    b_sblk = lib.from_numpy(rng.standard_normal(32).astype(np.float32))

    def loss_and_step(model):
        """The loss of ``model`` (the function to compile) and a training step around a loss fn."""
        def loss(x, y):
            return F.cross_entropy(model(x), y)

        def step_of(loss_fn):
            def step(x, y):
                model.zero_grad()
                out = loss_fn(x, y)
                out.backward()
                return out
            return step
        return loss, step_of

    # (model to compile or None, inputs, fn, compile_target): compile_target names what
    # graphc.compile/torch.compile wraps: the model ("model") or the function itself ("fn").
    return {
        "mlp fwd+bwd 64x784-512-256-10 [model compiled]": (mlp, (x_mlp, y_mlp), mlp_step, "model"),
        "mlp fwd+bwd 64x784-512-256-10 [model+loss compiled]": (None, (x_mlp, y_mlp), loss_and_step(mlp), "loss"),
        "small mlp fwd+bwd 16x32-32-10 [model+loss compiled]": (None, (x_small, y_small), loss_and_step(small),
                                                                "loss"),
        "layernorm+gelu+softmax (64,256)": (None, (x_blk, w_blk, b_blk), block, "fn"),
        "layernorm+gelu+softmax (8,32)": (None, (x_sblk, w_sblk, b_sblk), block, "fn"),
        "elementwise chain 1M": (None, (x_chain,), chain, "fn"),
    }


def _calls(lib, model, inputs, fn, target):
    """(eager call, compiled call) for one workload, with ``lib.compile`` applied to ``target``."""
    if target == "model":
        cmodel = lib.compile(model)
        return (lambda: fn(model, *inputs)), (lambda: fn(cmodel, *inputs))
    if target == "loss":
        loss_fn, make_step = fn
        step_e, step_c = make_step(loss_fn), make_step(lib.compile(loss_fn))
        return (lambda: step_e(*inputs)), (lambda: step_c(*inputs))
    cfn = lib.compile(fn)
    return (lambda: fn(*inputs)), (lambda: cfn(*inputs))


def _calibrate(fn, min_time: float) -> int:
    """Calls per timed round of ``fn`` so that a round lasts at least ``min_time`` seconds."""
    fn()  # warm-up
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time or n >= 1 << 16:
            return n
        n *= 2


def _time_alternating(fns: list, repeats: int, min_time: float) -> list[float]:
    """Median seconds per call of each of ``fns``, timed in alternating rounds (one round of each
    in turn, ``repeats`` times), so a burst of load on the machine hits them alike."""
    counts = [_calibrate(fn, min_time) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, n, acc in zip(fns, counts, samples):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            acc.append((time.perf_counter() - t0) / n)
    return [statistics.median(acc) for acc in samples]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when installed")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for numpy's BLAS, graphc's kernel pieces and PyTorch (default 1)")
    p.add_argument("--only", help="comma-separated words: run the workloads whose name holds one (layernorm,chain)")
    args = p.parse_args(argv)
    repeats, min_time = (3, 0.02) if args.quick else (7, 0.2)
    os.environ["GRAPHC_NUM_THREADS"] = str(args.threads)  # read per call by graphc's piece pool
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-bench-cache-"))

    graphc, gnn, gF = _setup_graphc()
    torch = None
    if not args.no_torch:
        try:
            import torch as _torch
            torch = _torch
            torch.set_num_threads(args.threads)
        except ImportError:
            print("(torch not installed: PyTorch columns skipped; pip install -e '.[bench]')")
    gw = workloads(graphc, gnn, gF)
    tw = workloads(torch, torch.nn, torch.nn.functional) if torch is not None else {}

    results = {}
    print(f"threads: {args.threads} each (" + ", ".join(f"{v}={os.environ.get(v)}" for v in _THREAD_VARS)
          + (f", torch.get_num_threads()={torch.get_num_threads()}" if torch is not None else "") + ")")
    header = f"{'workload':<54}{'eager ms':>10}{'compiled ms':>13}{'ratio':>8}{'compile s':>11}"
    if torch is not None:
        header += f"{'torch ms':>10}{'torch.compile ms':>18}{'tc compile s':>14}{'compiled/torch':>16}"
    print(header)
    for name, (model, inputs, fn, target) in gw.items():
        if args.only and not any(w in name for w in args.only.split(",")):
            continue
        row = {}
        eager, compiled_call = _calls(graphc, model, inputs, fn, target)
        t0 = time.perf_counter()
        compiled_call()
        row["compile_s"] = time.perf_counter() - t0
        # correctness check before timing
        a, b = eager(), compiled_call()
        if not np.allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5):
            raise SystemExit(f"{name}: compiled result differs from eager")
        fns = [eager, compiled_call]
        if torch is not None:
            tmodel, tinputs, tfn, ttarget = tw[name]
            teager, tcall = _calls(torch, tmodel, tinputs, tfn, ttarget)
            fns.append(teager)
            try:
                t0 = time.perf_counter()
                tcall()
                row["torch_compile_s"] = time.perf_counter() - t0
                fns.append(tcall)
            except Exception as e:  # torch.compile needs a C compiler toolchain; report, don't fail
                row["torch_compile_error"] = f"{type(e).__name__}: {str(e)[:200]}"
        times = _time_alternating(fns, repeats, min_time)
        row["eager_s"], row["compiled_s"] = times[0], times[1]
        line = (f"{name:<54}{row['eager_s'] * 1e3:>10.3f}{row['compiled_s'] * 1e3:>13.3f}"
                f"{row['compiled_s'] / row['eager_s']:>8.2f}{row['compile_s']:>11.3f}")
        if torch is not None:
            row["torch_eager_s"] = times[2]
            row["compiled_over_torch_eager"] = row["compiled_s"] / row["torch_eager_s"]
            if len(times) > 3:
                row["torch_compiled_s"] = times[3]
                line += (f"{row['torch_eager_s'] * 1e3:>10.3f}{row['torch_compiled_s'] * 1e3:>18.3f}"
                         f"{row['torch_compile_s']:>14.2f}")
            else:
                line += f"{row['torch_eager_s'] * 1e3:>10.3f}{'n/a':>18}{'n/a':>14}"
            line += f"{row['compiled_over_torch_eager']:>16.2f}"
        print(line, flush=True)
        results[name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
