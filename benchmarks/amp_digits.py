"""Mixed precision speed: one training step of the digits example's models (batch 64 of 1x8x8
images) in float32 and under CPU autocast (bfloat16 when graphc has it, and float16 with a
GradScaler), eager and compiled (the whole step, scaler included, is one graph). Prints
the median time per step and the ratio to float32. Accuracy is checked by
tests/test_examples.py, not here.

    python benchmarks/amp_digits.py [--model cnn|mlp] [--steps 20] [--compile]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

import graphc as torch  # noqa: E402
import graphc.nn.functional as F  # noqa: E402
from digits_classifier import CNN, MLP  # noqa: E402


def time_steps(model_cls, amp, compiled: bool, steps: int) -> float:
    torch.manual_seed(0)
    model = model_cls()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=amp is torch.float16)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    fn = torch.compile(step, fullgraph=True) if compiled else step
    for _ in range(3):  # warm-up (and compile)
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn().item()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--compile", action="store_true", help="also time the compiled step")
    args = p.parse_args(argv)
    model_cls = CNN if args.model == "cnn" else MLP
    configs = [("float32", None), ("bfloat16 autocast", torch.bfloat16),
               ("float16 autocast + GradScaler", torch.float16)]
    results = {}
    print(f"{args.model}: median ms per training step (batch 64), {args.steps} steps")
    for mode in (["eager", "compiled"] if args.compile else ["eager"]):
        for name, amp in configs:
            t = time_steps(model_cls, amp, mode == "compiled", args.steps)
            results[(mode, name)] = t
            base = results[(mode, "float32")]
            print(f"  {mode:9s} {name:30s} {t * 1e3:8.2f} ms   x{t / base:.2f} vs float32")
    return results


if __name__ == "__main__":
    main()
