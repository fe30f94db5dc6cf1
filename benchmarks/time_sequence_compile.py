"""Compiling PyTorch's ``time_sequence_prediction`` example (issue #8, item 4).

The model of pytorch/examples ``time_sequence_prediction/train.py``: two LSTMCells (51 hidden)
and a Linear, unrolled over the input's T time steps, in float64; the data of its
``generate_sine_wave.py`` (sine waves with random phase, 100 x 1000, input = rows 3: without the
last column, 97 x 999). The compiled function is the model's forward plus the MSE loss; backward
runs through the compiled output, inside LBFGS's closure, as the example trains.

For each T it runs, in a fresh process with an empty cache, the closure once (it compiles on its
first call, then runs the compiled forward and backward), or ``--lbfgs-steps K`` whole LBFGS steps
(up to 20 closure calls each, as the example), and reports the compile time (the first call), the
compiler's own stage timings, the time of the closure call or steps, and the process's peak
resident memory. ``--warm`` runs the same again on the cache the first process filled.

    python benchmarks/time_sequence_compile.py [--T 50,100,200,400,999] [--warm] [--lbfgs-steps K] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def sine_data(n: int = 100, length: int = 1000, period: int = 20, seed: int = 2) -> np.ndarray:
    """generate_sine_wave.py's data set."""
    rng = np.random.RandomState(seed)
    x = np.empty((n, length), "int64")
    x[:] = np.array(range(length)) + rng.randint(-4 * period, 4 * period, n).reshape(n, 1)
    return np.sin(x / 1.0 / period).astype("float64")


class RssSampler:
    """Samples the process's resident memory every 20 ms (``/proc/self/statm``, Linux): the
    peak while compiling, apart from what running the compiled code takes afterwards."""

    def __init__(self) -> None:
        import threading
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                with open("/proc/self/statm") as f:
                    rss = int(f.read().split()[1]) * self._page
            except OSError:
                return
            self.samples.append((time.perf_counter(), rss))

    def peak_mib(self, start: float, end: float) -> float:
        self._stop.set()
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside, default=0) / 2 ** 20


def run_one(steps: int, lbfgs_steps: int = 0) -> dict:
    import graphc as torch
    import graphc.nn as nn
    import graphc.optim as optim

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, 51)
            self.lstm2 = nn.LSTMCell(51, 51)
            self.linear = nn.Linear(51, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = torch.zeros(input.size(0), 51, dtype=torch.double)
            c_t = torch.zeros(input.size(0), 51, dtype=torch.double)
            h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
            c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
            for input_t in input.chunk(input.size(1), dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return torch.cat(outputs, dim=1)

    np.random.seed(0)
    torch.manual_seed(0)
    data = sine_data()
    input = torch.from_numpy(np.ascontiguousarray(data[3:, :steps]))
    target = torch.from_numpy(np.ascontiguousarray(data[3:, 1:steps + 1]))
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    step_fn = torch.compile(lambda inp, tgt: criterion(seq(inp), tgt))
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    calls, first = [], {}

    def closure():
        optimizer.zero_grad()
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step_fn(input, target)
        if not calls:
            first["call_s"], first["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
            first["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        calls.append(loss.item())
        loss.backward()
        return loss

    sampler = RssSampler()
    t0 = time.perf_counter()
    if lbfgs_steps == 0:
        closure()
    for _ in range(lbfgs_steps):
        optimizer.step(closure)
    step_s = time.perf_counter() - t0
    entry = next(iter(step_fn._compiled.cache.values() if hasattr(step_fn, "_compiled") else step_fn.cache.values()))
    compile_peak = sampler.peak_mib(t0, t0 + entry.stages.get("compile_seconds", 0.0))
    return {"T": steps, "compile_s": entry.stages.get("compile_seconds"), "first_call_s": first["call_s"],
            "compile_peak_rss_mib": compile_peak,
            "first_call_cpu_s": first["cpu_s"],
            "stages": entry.stages.get("compile_stages", {}), "step_s": step_s, "closure_calls": len(calls),
            "losses": calls, "rss_after_compile_mib": first["rss_mib"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(steps: int, cache_dir: str, lbfgs_steps: int) -> dict:
    env = {**os.environ, "GRAPHC_CACHE_DIR": cache_dir}
    r = subprocess.run([sys.executable, __file__, "--child", str(steps), "--lbfgs-steps", str(lbfgs_steps)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"T={steps} failed:\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", default="50,100,200,400,999", help="time steps to unroll (comma-separated)")
    ap.add_argument("--lbfgs-steps", type=int, default=0, help="LBFGS steps per run (0: one closure call)")
    ap.add_argument("--warm", action="store_true", help="also run on the cache the first run filled")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(run_one(args.child, args.lbfgs_steps)))
        return
    rows = []
    print("compile s: the compile's own seconds (stages below); cpu s: CPU seconds of the first call;\n"
          "MiB: peak resident memory while compiling; call s: the first call (compile + forward);\n"
          "run s: the closure call or LBFGS steps; peak MiB: the whole process's peak resident memory\n")
    print(f"{'T':>4} {'run':>5} {'compile s':>9} {'cpu s':>7} {'MiB':>6} {'call s':>7} {'run s':>7} {'peak MiB':>8}  "
          "stages")
    for steps in (int(s) for s in args.T.split(",")):
        with tempfile.TemporaryDirectory() as d:
            runs = [("cold", _child(steps, d, args.lbfgs_steps))]
            if args.warm:
                runs.append(("warm", _child(steps, d, args.lbfgs_steps)))
        for kind, r in runs:
            r["run"] = kind
            rows.append(r)
            stages = "  ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
            print(f"{steps:>4} {kind:>5} {r['compile_s']:9.2f} {r['first_call_cpu_s']:7.2f} "
                  f"{r['compile_peak_rss_mib']:6.0f} {r['first_call_s']:7.2f} {r['step_s']:7.2f} "
                  f"{r['peak_rss_mib']:8.0f}  {stages}",
                  flush=True)
        if args.warm:
            assert runs[0][1]["losses"] == runs[1][1]["losses"], "warm and cold runs disagree"
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
