"""The nine real PyTorch programs of tests/programs/ (from PyTorch's examples and tutorials, at the
small sizes the tests use), timed whole: graphc eager, graphc with the program's own
``torch.compile`` call (usually the model only, as the examples do; loss, backward and optimizer
stay eager), and PyTorch eager running the same source with ``graphc`` replaced by ``torch``.

Each figure is the median time of one call of the program's ``train(modules, compiled, steps)``
(its training loop, then its evaluation), after a warm-up call that compiles; frameworks are timed
in alternating rounds in one process. Threads are equal (``--threads N``, default 1).

    python benchmarks/programs.py [--steps 4] [--only vae,dcgan] [--quick] [--no-torch] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "programs"))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=4, help="training steps per train() call (per epoch where it has epochs)")
    p.add_argument("--only", default="", help="comma-separated program names")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    from training_steps import setup
    torch = setup(args.threads, args.no_torch)
    import warnings

    import graphc
    from compile_vs_eager import _time_alternating
    from swap import PROGRAMS, load
    repeats, min_time = (3, 0.01) if args.quick else (7, 0.2)
    names = [n for n in PROGRAMS if not args.only or n in args.only.split(",")]
    print(f"threads {args.threads} each; ms per train() call of {args.steps} steps")
    print(f"{'program':<22}{'eager ms':>10}{'compiled ms':>13}{'speed-up':>10}"
          + (f"{'torch ms':>10}{'compiled/torch':>16}{'eager/torch':>13}" if torch else ""))
    results = {}
    for name in names:
        program = load(name)
        graphc.manual_seed(0)
        eager_modules, compiled_modules = program.build(), program.build()
        fns = [lambda: program.train(eager_modules, False, args.steps),
               lambda: program.train(compiled_modules, True, args.steps)]
        if torch is not None:
            theirs = load(name, "torch")
            torch.manual_seed(0)
            torch_modules = theirs.build()
            fns.append(lambda: theirs.train(torch_modules, False, args.steps))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the programs' own deprecation warnings, once per call
            times = _time_alternating(fns, repeats, min_time)
        row = {"eager_ms": times[0] * 1e3, "compiled_ms": times[1] * 1e3, "speedup": times[0] / times[1]}
        line = f"{name:<22}{row['eager_ms']:>10.2f}{row['compiled_ms']:>13.2f}{row['speedup']:>9.2f}x"
        if torch is not None:
            row.update(torch_eager_ms=times[2] * 1e3, compiled_over_torch=times[1] / times[2],
                       eager_over_torch=times[0] / times[2])
            line += f"{row['torch_eager_ms']:>10.2f}{row['compiled_over_torch']:>15.2f}x{row['eager_over_torch']:>12.2f}x"
        print(line, flush=True)
        results[name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "steps": args.steps, "programs": results}, f, indent=1)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
