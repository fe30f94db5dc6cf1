"""Each numpy lowering against the fastest plain numpy form of the same math (issue #9, item 3).

For every elementwise and reduction primitive (``PRIMITIVES``: ``prim.elementwise``,
``prim.reduction``), one process times side by side, in alternation, taking the minimum of the
repeats:

  graphc   the code the numpy backend generates for a graph of that one primitive (the
           primitive's lowering, run as compiled code runs it: under ``np.errstate``, into the
           arrays the memory plan gives it), called directly, so guards and tensor wrapping are
           left out;
  eager    the primitive's ``impl`` (what eager mode computes with, tensor overhead left out);
  numpy    the fastest plain numpy expression for the same math written here by hand (ufuncs
           with ``out=`` into one array of its own where that helps).

Elementwise primitives run on 1M float32 elements (int32/bool where the primitive needs them);
reductions over the last dim and over dim 0 of a 1024x1024 float32 array, against the ufunc's
``reduce`` (``np.add.reduce(x, axis)``, ...). Composites that models use (gelu, silu, softplus,
logsigmoid, erfc, mean, the 1M pointwise chain of ``compile_vs_eager.py``): the generated code of
the graph ``graphc.compile`` makes of them (decomposed, simplified, fused), called directly too.
The per-call overhead of a compiled function (guards, arguments, outputs) is left out of every
row and printed in the summary. A ratio (graphc / numpy) above 1.15 is flagged ``SLOW``.

numpy has no erf: its "numpy" form is scipy.special.erf, as for erfc, gelu, lgamma, erfinv,
polygamma and xlogy. Compiled pointwise kernels over 128K+ elements run in cache-sized pieces on
a thread pool (``GRAPHC_NUM_THREADS``); the numpy forms run in one thread, so this benchmark sets
``GRAPHC_NUM_THREADS=1`` unless ``--threads`` says otherwise (pieces still run, in one thread).

    python benchmarks/lowerings.py [--quick] [--repeats N] [--threads N] [--json PATH] [--only sigmoid,erf]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SLOW = 1.15  # graphc / numpy above this is slower than noise explains


# ---- inputs ---------------------------------------------------------------------------------

def make_inputs(kind: str, n: int, rng) -> list[np.ndarray]:
    """Operands of one kind: each primitive's domain, so the math is the normal case, not nan."""
    f = lambda: rng.standard_normal(n).astype(np.float32)
    pos = lambda: (np.abs(rng.standard_normal(n)) + 0.1).astype(np.float32)
    i32 = lambda: rng.integers(-1000, 1000, n).astype(np.int32)
    b = lambda: rng.random(n) < 0.5
    return {
        "f": lambda: [f()], "pos": lambda: [pos()],
        "unit": lambda: [rng.uniform(-0.99, 0.99, n).astype(np.float32)],
        "ff": lambda: [f(), f()], "fpos": lambda: [f(), pos()], "posf": lambda: [pos(), f()],
        "pospos": lambda: [pos(), pos()], "zeta": lambda: [pos() + 1.5, pos()],
        "i": lambda: [i32()], "ii": lambda: [i32(), i32()], "b": lambda: [b()], "bb": lambda: [b(), b()],
        "where": lambda: [b(), f(), f()],
        "c": lambda: [(f() + 1j * f()).astype(np.complex64)],
    }[kind]()


# ---- the fastest plain numpy forms ----------------------------------------------------------

def _special():
    import scipy.special
    return scipy.special


def _np_sigmoid(x):
    t = np.negative(x)
    np.exp(t, out=t)
    np.add(t, 1, out=t)
    return np.reciprocal(t, out=t)


def _np_rsqrt(x):
    t = np.sqrt(x)
    return np.reciprocal(t, out=t)


def _np_xlogy(x, y):
    return _special().xlogy(x, y)


def _np_relu(x):
    # the clip ufunc: 2-3.5x faster than np.maximum(x, 0), whose broadcast-scalar loop is not
    # vectorized (np.clip's Python wrapper costs as much again on small arrays)
    return getattr(np, "_core", np).umath.clip(x, np.float32(0), np.float32(np.inf))


# primitive name -> (input kind, attrs, numpy form). Omitted form: the numpy ufunc of that name.
ELEMENTWISE: dict[str, tuple] = {
    "neg": ("f", {}, np.negative), "abs": ("f", {}, np.abs), "sign": ("f", {}, np.sign),
    "floor": ("f", {}, np.floor), "ceil": ("f", {}, np.ceil), "round": ("f", {}, np.round),
    "trunc": ("f", {}, np.trunc), "exp": ("f", {}, np.exp), "exp2": ("f", {}, np.exp2),
    "expm1": ("f", {}, np.expm1), "log": ("pos", {}, np.log), "log2": ("pos", {}, np.log2),
    "log10": ("pos", {}, np.log10), "log1p": ("pos", {}, np.log1p), "sin": ("f", {}, np.sin),
    "cos": ("f", {}, np.cos), "tan": ("f", {}, np.tan), "asin": ("unit", {}, np.arcsin),
    "acos": ("unit", {}, np.arccos), "atan": ("f", {}, np.arctan), "sinh": ("f", {}, np.sinh),
    "cosh": ("f", {}, np.cosh), "tanh": ("f", {}, np.tanh), "sigmoid": ("f", {}, _np_sigmoid),
    "sqrt": ("pos", {}, np.sqrt), "rsqrt": ("pos", {}, _np_rsqrt),
    "reciprocal": ("pos", {}, np.reciprocal), "erf": ("f", {}, lambda x: _special().erf(x)),
    "relu": ("f", {}, _np_relu), "isnan": ("f", {}, np.isnan), "isinf": ("f", {}, np.isinf),
    "isfinite": ("f", {}, np.isfinite), "logical_not": ("b", {}, np.logical_not),
    "bitwise_not": ("i", {}, np.invert), "add": ("ff", {}, np.add), "sub": ("ff", {}, np.subtract),
    "mul": ("ff", {}, np.multiply), "div": ("ff", {}, np.true_divide),
    "floor_divide": ("fpos", {}, np.floor_divide), "remainder": ("fpos", {}, np.remainder),
    "pow": ("posf", {}, np.power), "maximum": ("ff", {}, np.maximum),
    "minimum": ("ff", {}, np.minimum), "atan2": ("ff", {}, np.arctan2), "eq": ("ff", {}, np.equal),
    "ne": ("ff", {}, np.not_equal), "lt": ("ff", {}, np.less), "le": ("ff", {}, np.less_equal),
    "gt": ("ff", {}, np.greater), "ge": ("ff", {}, np.greater_equal),
    "logical_and": ("bb", {}, np.logical_and), "logical_or": ("bb", {}, np.logical_or),
    "logical_xor": ("bb", {}, np.logical_xor), "bitwise_and": ("ii", {}, np.bitwise_and),
    "bitwise_or": ("ii", {}, np.bitwise_or), "bitwise_xor": ("ii", {}, np.bitwise_xor),
    "where": ("where", {}, np.where),
    "cast": ("f", {"dtype": "int32"}, lambda x: x.astype(np.int32)),
    "copy": ("f", {}, np.copy), "stop_gradient": ("f", {}, np.copy),
    "lgamma": ("pos", {}, lambda x: _special().gammaln(x)),
    "erfinv": ("unit", {}, lambda x: _special().erfinv(x)),
    "xlogy": ("fpos", {}, _np_xlogy),
    "polygamma": ("pos", {"n": 1}, lambda x: _special().polygamma(1, x)),
    # complex parts of complex64 operands (graphc's real/imag take complex tensors only); numpy's
    # real and imag are views, copied here as the generated code's fresh arrays are
    "real": ("c", {}, lambda z: z.real.copy()), "imag": ("c", {}, lambda z: z.imag.copy()),
    "conj": ("c", {}, np.conj),
    "make_complex": ("ff", {}, lambda a, b: a + 1j * b.astype(np.complex64)),
    # scipy.special's functions (torch.special)
    **{name: ("f", {}, (lambda fn: lambda x: getattr(_special(), fn)(x))(fn)) for name, fn in (
        ("i0", "i0"), ("i0e", "i0e"), ("i1", "i1"), ("i1e", "i1e"), ("erfcx", "erfcx"), ("log_ndtr", "log_ndtr"),
        ("bessel_j0", "j0"), ("bessel_j1", "j1"), ("modified_bessel_i0", "i0"),
        ("modified_bessel_i1", "i1"))},
    **{name: ("pos", {}, (lambda fn: lambda x: getattr(_special(), fn)(x))(fn)) for name, fn in (
        ("bessel_y0", "y0"), ("bessel_y1", "y1"), ("modified_bessel_k0", "k0"), ("modified_bessel_k1", "k1"),
        ("scaled_modified_bessel_k0", "k0e"), ("scaled_modified_bessel_k1", "k1e"))},
    "airy_ai": ("f", {}, lambda x: _special().airy(x)[0]),
    "igamma": ("pospos", {}, lambda a, x: _special().gammainc(a, x)),
    "igammac": ("pospos", {}, lambda a, x: _special().gammaincc(a, x)),
    "zeta": ("zeta", {}, lambda x, q: _special().zeta(x, q)),
}

# reductions: (numpy form of x, axis) per primitive
REDUCTIONS: dict[str, tuple] = {
    "sum": (lambda x, ax: np.add.reduce(x, axis=ax), "dims"),
    "prod": (lambda x, ax: np.multiply.reduce(x, axis=ax), "dims"),
    "amax": (lambda x, ax: _rows_or_reduce(np.maximum, x, ax), "dims"),
    "amin": (lambda x, ax: _rows_or_reduce(np.minimum, x, ax), "dims"),
    "argmax": (lambda x, ax: np.argmax(x, axis=ax), "dim"),
    "argmin": (lambda x, ax: np.argmin(x, axis=ax), "dim"),
}


def _rows_or_reduce(ufunc, x, axis):
    """Over the last axis of a C-contiguous array, the ufunc's reduceat at the rows' starts: faster
    than its reduce along that axis, which numpy's iterator runs row by row."""
    if axis == x.ndim - 1:
        return ufunc.reduceat(x.reshape(-1), np.arange(0, x.size, x.shape[-1])).reshape(x.shape[:-1])
    return ufunc.reduce(x, axis=axis)


def _np_gelu(x):
    t = np.multiply(x, np.float32(1 / math.sqrt(2)))
    _special().erf(t, out=t)
    np.add(t, 1, out=t)
    np.multiply(t, x, out=t)
    return np.multiply(t, np.float32(0.5), out=t)


def _np_gelu_tanh(x):
    t = np.multiply(x, x)
    np.multiply(t, np.float32(0.044715), out=t)
    np.add(t, 1, out=t)
    np.multiply(t, x, out=t)
    np.multiply(t, np.float32(math.sqrt(2 / math.pi)), out=t)
    np.tanh(t, out=t)
    np.add(t, 1, out=t)
    np.multiply(t, x, out=t)
    return np.multiply(t, np.float32(0.5), out=t)


def _np_silu(x):
    t = np.negative(x)
    np.exp(t, out=t)
    np.add(t, 1, out=t)
    return np.divide(x, t, out=t)


def _np_softplus(x):
    # log1p(exp(x)), x past the threshold 20 as it is
    t = np.minimum(x, np.float32(20))
    np.exp(t, out=t)
    np.log1p(t, out=t)
    return np.copyto(t, x, where=x > 20) or t


def _np_logsigmoid(x):
    # -log1p(exp(-x)) = min(x, 0) - log1p(exp(-|x|))
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    return np.subtract(np.minimum(x, np.float32(0)), t, out=t)


def _np_chain(x):
    # ((x * 1.5 + 0.5).sigmoid() * x - 0.25).tanh() * 2.0 + x
    t = np.multiply(x, np.float32(-1.5))
    np.subtract(t, np.float32(0.5), out=t)
    np.exp(t, out=t)
    np.add(t, 1, out=t)
    np.divide(x, t, out=t)
    np.subtract(t, np.float32(0.25), out=t)
    np.tanh(t, out=t)
    np.multiply(t, np.float32(2), out=t)
    return np.add(t, x, out=t)


def composites(F, torch):
    """name -> (input kind, graphc function of tensors, numpy form)"""
    return {
        "gelu": ("f", F.gelu, _np_gelu),
        "gelu(tanh)": ("f", lambda x: F.gelu(x, approximate="tanh"), _np_gelu_tanh),
        "silu": ("f", F.silu, _np_silu),
        "softplus": ("f", F.softplus, _np_softplus),
        "logsigmoid": ("f", F.logsigmoid, _np_logsigmoid),
        "erfc": ("f", torch.erfc, lambda x: _special().erfc(x)),
        "chain": ("f", lambda x: ((x * 1.5 + 0.5).sigmoid() * x - 0.25).tanh() * 2.0 + x, _np_chain),
    }


# ---- graphc side ----------------------------------------------------------------------------

def lowering_call(prim, arrays: list[np.ndarray], attrs: dict):
    """The numpy backend's code for a graph of ``prim`` alone, as a no-argument callable."""
    from graphc.ir import dtypes
    from graphc.ir.graph import Graph
    from graphc.ir.primitive import TensorType
    from graphc.runtime import backends

    g = Graph(f"bench_{prim.name}")
    ins = [g.add_input(TensorType(a.shape, dtypes.from_numpy_dtype(a.dtype))) for a in arrays]
    g.set_outputs([prim(*ins, **attrs)])
    compiled = backends.get("numpy", "cpu").compile(g, g.name)
    ws = compiled.pool.acquire()
    return lambda: compiled.fn(*arrays, ws), compiled.source


def compiled_code_call(cf, tensors: list):
    """The generated code of the one graph ``graphc.compile`` made for ``cf`` (called once
    already), as a no-argument callable on the tensors' arrays."""
    (entry,) = cf.cache.values()
    assert entry.forward is not None and not entry.lifted, "a graph of the tensors alone"
    graph, arrays = entry.forward, [t.numpy() for t in tensors]
    ws = graph.pool.acquire()
    return lambda: graph.fn(*arrays, ws)


def eager_call(prim, arrays: list[np.ndarray], attrs: dict):
    """The primitive's ``impl`` as eager mode runs it (operand casts, result dtype)."""
    casts = prim.operand_casts(tuple(_typed(a) for a in arrays), attrs)
    out_type = prim.infer(*(_typed(a) for a in arrays), **attrs)
    return lambda: prim.run(arrays, attrs, casts, out_type.dtype)


def _typed(a: np.ndarray):
    from graphc.ir import dtypes
    from graphc.ir.primitive import TensorType
    return TensorType(a.shape, dtypes.from_numpy_dtype(a.dtype))


def _attrs(attrs: dict) -> dict:
    from graphc.ir import dtypes
    return {k: dtypes.from_name(v) if k == "dtype" else v for k, v in attrs.items()}


def check_close(name: str, got, want, atol: float = 2e-6) -> None:
    """``atol``: a sum of many terms in another order (BLAS, pairwise) differs by about float32's
    epsilon times the sum of their magnitudes, which the caller passes."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or (got.dtype != want.dtype and got.dtype.kind != want.dtype.kind):
        raise AssertionError(f"{name}: graphc gave {got.dtype}{got.shape}, numpy {want.dtype}{want.shape}")
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=atol, err_msg=name)
    else:
        np.testing.assert_array_equal(got, want, err_msg=name)


def timeit(fns: list, repeats: int, budget_s: float = 2.0) -> list[float]:
    """Minimum seconds per call of each function, timed in alternation (one round = one call of
    each, the order rotating from round to round), so a burst of load on the machine hits them
    alike. Slow functions get fewer rounds (at least 5): about ``budget_s`` seconds in all."""
    best = [math.inf] * len(fns)
    t0 = time.perf_counter()
    for f in fns:  # warm-up: lazy imports, first-touch page faults
        f()
    per_round = time.perf_counter() - t0
    for r in range(max(5, min(repeats, int(budget_s / per_round)))):
        for k in range(len(fns)):
            i = (k + r) % len(fns)
            t0 = time.perf_counter()
            fns[i]()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def timed_row(fns: list, repeats: int) -> list[float]:
    """``timeit``, and when the first function (graphc) looks slower than the last (numpy) by
    more than ``SLOW``, a second look with twice the rounds (the minimum of both): on a shared
    machine a burst of load can hit a few rounds of one function only."""
    best = timeit(fns, repeats)
    if best[0] > SLOW * best[-1]:
        best = [min(a, b) for a, b in zip(best, timeit(fns, 2 * repeats, budget_s=4.0))]
    return best


# ---- the run --------------------------------------------------------------------------------

def run(args) -> dict:
    import graphc
    import graphc.nn.functional as F
    from graphc.ir.primitive import PRIMITIVES

    rng = np.random.default_rng(0)
    n = args.n
    rows: list[dict] = []
    only = set(args.only.split(",")) if args.only else None

    def want(name):
        return only is None or name in only

    def row(section, name, g_us, e_us, n_us):
        r = {"section": section, "name": name, "graphc_us": g_us, "eager_us": e_us, "numpy_us": n_us,
             "ratio": g_us / n_us, "eager_ratio": None if e_us is None else e_us / n_us}
        rows.append(r)
        flag = "  SLOW" if r["ratio"] > SLOW else ""
        e = "" if e_us is None else f"{e_us:10.1f} {r['eager_ratio']:6.2f}"
        print(f"{name:<16}{g_us:10.1f} {n_us:10.1f} {r['ratio']:6.2f}  {e:<17}{flag}", flush=True)

    header = f"{'':<16}{'graphc µs':>10} {'numpy µs':>10} {'ratio':>6}  {'eager µs':>10} {'ratio':>6}"
    elementwise = [p for p in PRIMITIVES.values() if p.elementwise]
    missing = [p.name for p in elementwise if p.name not in ELEMENTWISE]
    if missing:
        raise SystemExit(f"no numpy form for elementwise primitives {missing}: add them to ELEMENTWISE")
    print(f"elementwise primitives on {n} elements (min of {args.repeats}; compiled code in "
          f"{os.environ.get('GRAPHC_NUM_THREADS')} thread(s))\n{header}")
    for p in elementwise:
        if not want(p.name):
            continue
        kind, attrs, np_form = ELEMENTWISE[p.name]
        arrays = make_inputs(kind, n, rng)
        attrs = _attrs(attrs)
        g_fn, _ = lowering_call(p, arrays, attrs)
        e_fn = eager_call(p, arrays, attrs)
        n_fn = lambda: np_form(*arrays)
        check_close(p.name, g_fn()[0], n_fn())
        check_close(p.name + " (eager)", e_fn(), n_fn())
        g, e, nn_ = timed_row([g_fn, e_fn, n_fn], args.repeats)
        row("elementwise", p.name, g * 1e6, e * 1e6, nn_ * 1e6)

    side = int(round(math.sqrt(n)))
    x2 = rng.standard_normal((side, side)).astype(np.float32)
    print(f"\nreductions of a {side}x{side} float32 array (min of {args.repeats})\n{header}")
    for p in PRIMITIVES.values():
        if not p.reduction or not want(p.name):
            continue
        if p.name not in REDUCTIONS:
            raise SystemExit(f"no numpy form for reduction {p.name}: add it to REDUCTIONS")
        np_form, style = REDUCTIONS[p.name]
        for axis in (1, 0):
            attrs = {"dims": (axis,), "keepdim": False} if style == "dims" else {"dim": axis, "keepdim": False}
            g_fn, _ = lowering_call(p, [x2], attrs)
            e_fn = eager_call(p, [x2], attrs)
            n_fn = lambda: np_form(x2, axis)
            check_close(p.name, g_fn()[0], n_fn(), atol=2e-6 + 1e-7 * float(np.abs(x2).sum(axis).max()))
            g, e, nn_ = timed_row([g_fn, e_fn, n_fn], args.repeats)
            row("reduction", f"{p.name}(dim={axis})", g * 1e6, e * 1e6, nn_ * 1e6)

    # composites: the generated code of their compiled graphs, called directly
    print(f"\ncomposites, generated code of the compiled graph on {n} elements (min of {args.repeats})\n{header}")
    x1 = rng.standard_normal(n).astype(np.float32)
    t1, t2 = graphc.from_numpy(x1), graphc.from_numpy(x2)
    cases = [(name, fn, t1, lambda f=np_form: f(x1)) for name, (_, fn, np_form) in composites(F, graphc).items()]
    cases += [(f"mean(dim={axis})", lambda x, axis=axis: x.mean(dim=axis), t2,
               lambda axis=axis: np.divide(np.add.reduce(x2, axis=axis), np.float32(side))) for axis in (1, 0)]
    for name, fn, t, n_fn in cases:
        if not want(name) and not want(name.split(" ")[0].split("(")[0]):
            continue
        cf = graphc.compile(fn)
        check_close(name, cf(t).numpy(), n_fn())
        g_fn = compiled_code_call(cf, [t])
        e_fn = lambda: fn(t)
        check_close(name, g_fn()[0], n_fn())
        g, e, nn_ = timed_row([g_fn, e_fn, n_fn], args.repeats)
        row("composite", name, g * 1e6, e * 1e6, nn_ * 1e6)

    # per-call overhead of a compiled function (guards, argument and output handling): a whole
    # call minus its generated code, on one element
    tiny = graphc.from_numpy(np.ones(1, np.float32))
    cf = graphc.compile(lambda x: -x)
    cf(tiny)
    whole, code = timeit([lambda: cf(tiny), compiled_code_call(cf, [tiny])], args.repeats * 20)
    overhead = whole - code

    slow = [r for r in rows if r["ratio"] > SLOW]
    slow_eager = [r for r in rows if r["eager_ratio"] is not None and r["eager_ratio"] > SLOW]
    ratios = [r["ratio"] for r in rows]
    print(f"\nsummary: {len(rows)} rows; graphc/numpy geometric mean "
          f"{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}, worst "
          + (max(rows, key=lambda r: r["ratio"])["name"] + f" {max(ratios):.2f}" if rows else "-"))
    print(f"  slower than numpy by more than {SLOW}x: "
          + (", ".join(f"{r['name']} {r['ratio']:.2f}" for r in slow) or "none"))
    print(f"  eager impl slower than numpy by more than {SLOW}x: "
          + (", ".join(f"{r['name']} {r['eager_ratio']:.2f}" for r in slow_eager) or "none"))
    print(f"  per-call overhead of a compiled function (guards, arguments, outputs; left out of every "
          f"row): {overhead * 1e6:.1f} µs")
    return {"meta": {"n": n, "repeats": args.repeats, "numpy": np.__version__, "threshold": SLOW,
                     "threads": int(os.environ["GRAPHC_NUM_THREADS"]),
                     "call_overhead_us": overhead * 1e6},
            "rows": rows, "slow": [r["name"] for r in slow]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 64K elements, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per form (default 30)")
    ap.add_argument("--n", type=int, default=None, help="elements (default 1M; 1024x1024 for reductions)")
    ap.add_argument("--only", default="", help="comma-separated primitive/composite names")
    ap.add_argument("--threads", type=int, default=1, help="GRAPHC_NUM_THREADS for compiled code (default 1)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    args.n = args.n or ((1 << 16) if args.quick else (1 << 20))
    args.repeats = args.repeats or (3 if args.quick else 30)
    os.environ["GRAPHC_NUM_THREADS"] = str(args.threads)  # read when compiled code first runs pieces
    data = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
