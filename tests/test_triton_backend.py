"""Triton backend: kernels rendered from hand-built schedule records, run under Triton's
interpreter on numpy buffers against the reference interpreter, and compiled ahead of time for
sm_90 (so a kernel that would not build for Hopper fails here, on a machine without a GPU)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc  # noqa: F401  (registers every primitive)
from graphc.codegen import triton_kernels as TK
from graphc.codegen.schedule import PREFIX, Access, Kernel, KernelArg, KernelOut
from graphc.ir import PRIMITIVES
from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.dtypes import DType
from graphc.ir.graph import Graph, Value
from graphc.ir.interpret import interpret
from graphc.ir.primitive import TensorType

pytest.importorskip("triton")
from graphc.runtime import triton_runtime as TR  # noqa: E402

pytestmark = pytest.mark.triton


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graphc-cache"))


def contiguous(shape) -> tuple[int, ...]:
    out, n = [], 1
    for s in reversed(shape):
        out.append(n)
        n *= s
    return tuple(reversed(out))


class Case:
    """A kernel record built by hand: buffers (numpy arrays), args (buffer, index, offset) over
    the kernel's space, a body whose inputs have the shape of that space, and outputs."""

    def __init__(self, kind: str, ranges, rranges=()) -> None:
        self.kind, self.ranges, self.rranges = kind, tuple(ranges), tuple(rranges)
        self.g = Graph("body")
        self.buffers: dict[str, np.ndarray] = {}
        self.args: list[KernelArg] = []
        self.outs: list[KernelOut] = []
        self.out_dtypes: list[DType] = []

    def arg(self, array: np.ndarray, index=None, offset: int = 0, shape=None) -> Value:
        """A kernel arg over ``array``; the body input has the shape of the space, or ``shape``
        (then the reference interpreter reads the array itself: matmul operands, a key)."""
        name = f"buf{len(self.buffers)}"
        self.buffers[name] = np.ascontiguousarray(array)
        space = self.ranges + self.rranges
        index = contiguous(space) if index is None else tuple(index)
        self.args.append(KernelArg(Access(name, (), array.shape, contiguous(array.shape), offset), index))
        d = dt.from_numpy_dtype(array.dtype)
        return self.g.add_input(TensorType(tuple(shape or space), d))

    def view(self, i: int) -> np.ndarray:
        """What body input ``i`` is: its buffer through the index map."""
        a = self.args[i]
        flat = self.buffers[a.access.buffer].reshape(-1)
        item = flat.itemsize
        space = self.ranges + self.rranges
        if self.g.inputs[i].shape != space:
            return self.buffers[a.access.buffer]
        return np.lib.stride_tricks.as_strided(flat[a.offset:], space, tuple(s * item for s in a.index))

    def output(self, *values: Value, full: bool = False) -> None:
        for v in values:
            shape = (self.ranges + self.rranges) if full else self.ranges
            self.outs.append(KernelOut(f"out{len(self.outs)}", contiguous(shape), full))
            self.out_dtypes.append(v.dtype)

    def kernel(self) -> Kernel:
        self.g.set_outputs(self._out_values)
        return Kernel(f"{PREFIX[self.kind]}_0", self.kind, self.ranges, self.rranges, self.g, self.args, self.outs,
                      comment="hand-built test kernel")

    def run(self, *outs: Value, full=(), config=None, aot: bool = True, **render_kw):
        """Render, run under the interpreter, compare with the reference; AOT-compile for sm_90."""
        self._out_values = list(outs)
        for v in outs:
            self.output(v, full=v in full)
        k = self.kernel()
        dtypes = {n: dt.from_numpy_dtype(b.dtype) for n, b in self.buffers.items()}
        dtypes.update({o.buffer: d for o, d in zip(self.outs, self.out_dtypes)})
        rk = TK.render(k, dtypes, **render_kw)
        results = [np.empty((self.ranges + self.rranges) if o.full else self.ranges, d.np)
                   for o, d in zip(self.outs, self.out_dtypes)]
        TR.launch(rk, [self.buffers[a.access.buffer] for a in self.args], results, config)
        expect = interpret(self.g, [self.view(i) for i in range(len(self.args))])
        if aot:
            compiled = TR.compile_aot(rk)
            assert "ptx" in compiled.asm and ".target sm_90" in compiled.asm["ptx"], rk.name
        return rk, results, [np.asarray(e).reshape(r.shape) for e, r in zip(expect, results)]


def close(got, want, rtol=1e-5, atol=1e-6):
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype, (i, g.dtype, w.dtype)
        if g.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")
        else:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"output {i}")


rng = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------
# Coverage of the tables
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_is_kernel_op_extern_or_unsupported(name):
    prim = PRIMITIVES[name]
    places = [prim in TK.TRITON_OPS, prim in TK.EXTERN, prim in TK.UNSUPPORTED]
    assert sum(places) == 1, f"{name}: kernel op / extern / unsupported = {places}"
    if prim in TK.UNSUPPORTED:
        assert len(TK.UNSUPPORTED[prim]) > 20
    if prim.elementwise and prim in TK.TRITON_OPS:
        assert callable(TK.TRITON_OPS[prim])


def test_extern_primitive_in_a_kernel_body_is_a_clear_error():
    c = Case("pointwise", (4,))
    x = c.arg(rng.random(4).astype(np.float32))
    y = c.g.add_node(P.cumsum, [x], {"dim": 0})
    c.g.set_outputs([y])
    c.outs.append(KernelOut("o", (1,)))
    k = Kernel("poi_0", "pointwise", (4,), (), c.g, c.args, c.outs)
    with pytest.raises(NotImplementedError, match="cumsum cannot run inside a Triton kernel.*xp.cumsum"):
        TK.render(k, {"buf0": dt.float32, "o": dt.float32})


def test_import_graphc_does_not_import_triton():
    import subprocess
    import sys
    code = "import sys, graphc, graphc.codegen.triton_kernels, graphc.runtime.triton_runtime; " \
           "print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# Pointwise
# ---------------------------------------------------------------------------------------------

FLOAT_UNARY = sorted((p for p in TK.TRITON_OPS if p.elementwise and p.name in {
    "neg", "abs", "sign", "floor", "ceil", "round", "trunc", "exp", "exp2", "expm1", "log", "log2", "log10",
    "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sigmoid", "sqrt", "rsqrt",
    "reciprocal", "erf", "relu", "isnan", "isinf", "isfinite", "logical_not", "copy", "stop_gradient", "lgamma",
    "erfinv"}), key=lambda p: p.name)
FLOAT_BINARY = sorted((p for p in TK.TRITON_OPS if p.elementwise and p.name in {
    "add", "sub", "mul", "div", "floor_divide", "remainder", "pow", "maximum", "minimum", "atan2", "eq", "ne", "lt",
    "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "xlogy"}), key=lambda p: p.name)
INT_BINARY = sorted((p for p in TK.TRITON_OPS if p.elementwise and p.name in {
    "add", "sub", "mul", "floor_divide", "remainder", "pow", "maximum", "minimum", "bitwise_and", "bitwise_or",
    "bitwise_xor", "lt", "eq"}), key=lambda p: p.name)


@pytest.mark.parametrize("prim", FLOAT_UNARY, ids=lambda p: p.name)
def test_float_unary(prim):
    c = Case("pointwise", (3, 8))
    x = rng.uniform(-0.9, 0.9, (3, 8)).astype(np.float32)
    if prim.name in ("log", "log2", "log10", "sqrt", "rsqrt", "lgamma"):
        x = np.abs(x) + 0.05
    x[0, :3] = (-2.5, 0.5, 1.5) if prim.name == "round" else x[0, :3]  # ties round to even
    y = c.g.add_node(prim, [c.arg(x)], {})
    _, got, want = c.run(y, aot=False)
    close(got, want, rtol=2e-5)


@pytest.mark.parametrize("prim", FLOAT_BINARY, ids=lambda p: p.name)
def test_float_binary_with_broadcast_and_scalar(prim):
    c = Case("pointwise", (4, 8))
    a = rng.uniform(-2, 2, (4, 8)).astype(np.float32)
    b = rng.uniform(0.5, 2, (8,)).astype(np.float32)
    if prim.name in ("pow", "xlogy"):
        a = np.abs(a)
    a[0, 0] = 0.0
    y = c.g.add_node(prim, [c.arg(a), c.arg(b, index=(0, 1))], {})
    z = c.g.add_node(prim, [y if y.dtype is dt.float32 else c.g.add_node(P.cast, [y], {"dtype": dt.float32}), 1.5], {})
    _, got, want = c.run(y, z, aot=False)
    close(got, want, rtol=2e-5)


@pytest.mark.parametrize("prim", INT_BINARY, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", [np.int32, np.int8], ids=["i32", "i8"])
def test_int_binary_floor_semantics_and_wrapping(prim, dtype):
    c = Case("pointwise", (2, 16))
    a = rng.integers(-9, 10, (2, 16)).astype(dtype)
    b = rng.integers(1, 5, (2, 16)).astype(dtype) * np.where(rng.random((2, 16)) < 0.5, -1, 1).astype(dtype)
    if prim is P.pow:
        b = np.abs(b)
    a[0, :2] = (100, -100) if dtype is np.int8 else a[0, :2]  # int8 sums and products wrap
    y = c.g.add_node(prim, [c.arg(a), c.arg(b)], {})
    w = c.g.add_node(P.gt, [y, 0], {}) if y.dtype is not dt.bool_ else y  # a compare after a wrap
    _, got, want = c.run(y, w, aot=False)
    close(got, want)


def test_bool_arithmetic_and_logic():
    c = Case("pointwise", (16,))
    a, b = rng.random(16) < 0.5, rng.random(16) < 0.5
    x, y = c.arg(a), c.arg(b)
    outs = [c.g.add_node(p, [x, y], {}) for p in (P.add, P.mul, P.maximum, P.minimum, P.bitwise_xor, P.logical_or)]
    outs += [c.g.add_node(P.bitwise_not, [x], {}), c.g.add_node(P.add, [x, 1], {}), c.g.add_node(P.abs, [x], {}),
             c.g.add_node(P.floor, [x], {})]
    _, got, want = c.run(*outs)
    close(got, want)


def test_int_unary_and_mixed_dtypes():
    c = Case("pointwise", (16,))
    i = c.arg(rng.integers(-20, 20, 16).astype(np.int64))
    u = c.arg(rng.integers(0, 255, 16).astype(np.uint8))
    f = c.arg(rng.standard_normal(16).astype(np.float64))
    outs = [c.g.add_node(p, [i], {}) for p in (P.neg, P.abs, P.sign, P.bitwise_not, P.round, P.isnan, P.isinf,
                                                P.isfinite, P.logical_not, P.relu)]
    outs += [c.g.add_node(P.add, [u, 250], {}), c.g.add_node(P.mul, [i, f], {}), c.g.add_node(P.div, [i, 3], {}),
             c.g.add_node(P.add, [u, i], {}), c.g.add_node(P.cast, [f], {"dtype": dt.int32}),
             c.g.add_node(P.cast, [f], {"dtype": dt.bool_}), c.g.add_node(P.cast, [u], {"dtype": dt.float16}),
             c.g.add_node(P.where, [c.g.add_node(P.gt, [f, 0], {}), i, 0.5], {}),
             c.g.add_node(P.sigmoid, [i], {}), c.g.add_node(P.exp, [f], {})]
    _, got, want = c.run(*outs)
    close(got, want, rtol=1e-6)


def test_float_specials_nan_inf():
    c = Case("pointwise", (8,))
    x = c.arg(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5], np.float32))
    outs = [c.g.add_node(p, [x], {}) for p in (P.isnan, P.isinf, P.isfinite, P.relu, P.sign)]
    outs += [c.g.add_node(P.maximum, [x, 0.0], {}), c.g.add_node(P.minimum, [x, 0.0], {})]
    _, got, want = c.run(*outs, aot=False)
    close(got, want)


def test_permuted_and_sliced_inputs_fp16_and_full():
    """in0 is a [6, 4] buffer read transposed; in1 a [5, 10] buffer read as [1:5, 2:8:2]
    (offset 12, strides (10, 2)); fp16 computed in fp32, rounded once at the store (so within
    fp16 rounding of the reference, which rounds after every op)."""
    c = Case("pointwise", (4, 3))
    t = rng.standard_normal((3, 4)).astype(np.float16)
    s = rng.standard_normal((5, 10)).astype(np.float16)
    a = c.arg(t, index=(1, 4))
    b = c.arg(s, index=(10, 2), offset=12)
    k = c.g.add_node(P.full, [], {"shape": (4, 3), "value": 0.1, "dtype": dt.float16})
    y = c.g.add_node(P.mul, [c.g.add_node(P.add, [a, b], {}), k], {})
    z = c.g.add_node(P.exp, [y], {})
    _, got, want = c.run(y, z)
    close(got, want, rtol=2e-3, atol=1e-3)


def test_all_elementwise_ops_in_one_kernel_compile_for_sm90():
    """Every elementwise kernel op, in float32, float64, int32 and bool flavours, in one kernel
    compiled ahead of time (PTX for sm_90); the interpreter run checks the values too."""
    c = Case("pointwise", (16,))
    f = c.arg(rng.uniform(0.1, 0.9, 16).astype(np.float32))
    d = c.arg(rng.uniform(0.1, 0.9, 16).astype(np.float64))
    i = c.arg(rng.integers(1, 9, 16).astype(np.int32))
    b = c.arg(rng.random(16) < 0.5)
    outs = []
    for p in TK.TRITON_OPS:
        if not p.elementwise:
            continue
        if p is P.where:
            outs.append(c.g.add_node(p, [b, f, d], {}))
        elif p is P.cast:
            outs.append(c.g.add_node(p, [d], {"dtype": dt.float16}))
        elif p.name.startswith("bitwise"):
            outs += [c.g.add_node(p, [i] * (1 if p is P.bitwise_not else 2), {})]
        else:
            arity = 1 if p not in FLOAT_BINARY else 2
            outs += [c.g.add_node(p, [x] * arity, {}) for x in (f, d)]
            if p in INT_BINARY:
                outs.append(c.g.add_node(p, [i, i], {}))
    outs.append(c.g.add_node(P.full, [], {"shape": (16,), "value": float("-inf"), "dtype": dt.float32}))
    outs += [c.g.add_node(p, [x, 1.5], {}) for p in (P.pow, P.atan2, P.div, P.floor_divide) for x in (f, d)]
    _, got, want = c.run(*outs)
    close(got, want, rtol=2e-5)


def test_rand_uniform_range_and_uniformity():
    c = Case("pointwise", (64, 64))
    key = c.arg(np.array([1234, 5678], np.int64), index=(0, 0), shape=(2,))
    u = c.g.add_node(P.rand_uniform, [key], {"shape": (64, 64), "dtype": dt.float32, "stream": 0})
    v = c.g.add_node(P.rand_uniform, [key], {"shape": (64, 64), "dtype": dt.float16, "stream": 1})
    rk, (a, h), _ = c.run(u, v)
    for x in (a, h.astype(np.float32)):
        assert x.min() >= 0 and x.max() < 1
        assert abs(x.mean() - 0.5) < 0.02 and abs(x.var() - 1 / 12) < 0.01
        counts = np.histogram(x, bins=10, range=(0, 1))[0]
        assert counts.min() > 0.8 * x.size / 10
    assert np.abs(np.corrcoef(a.ravel(), h.ravel().astype(np.float32))[0, 1]) < 0.05  # streams differ


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------

REDUCTIONS = [P.sum, P.prod, P.amax, P.amin, P.argmax, P.argmin]


def _reduce(c: Case, prim, x: Value, nx: int, nr: int) -> Value:
    if prim in (P.argmax, P.argmin):  # the reduction space is (kept..., reduced) with one reduced dim
        return c.g.add_node(prim, [x], {"dim": nx, "keepdim": False})
    return c.g.add_node(prim, [x], {"dims": tuple(range(nx, nx + nr)), "keepdim": False})


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "looped"])
@pytest.mark.parametrize("prim", REDUCTIONS, ids=lambda p: p.name)
def test_reduction_inner_axis(prim, persistent):
    c = Case("reduction", (5,), (24,))
    x = rng.uniform(0.9, 1.1, (5, 24))
    x[1, 3] = x[1, 7] = 2.0  # a tie: the first index wins
    y = _reduce(c, prim, c.arg(x.astype(np.float32)), 1, 1)
    rk, got, want = c.run(y, persistent=persistent, config=None if persistent else {"XBLOCK": 2, "RBLOCK": 8})
    assert ("for roffset" in rk.source) != persistent
    close(got, want, rtol=1e-5)


@pytest.mark.parametrize("prim", [P.sum, P.amax, P.argmin], ids=lambda p: p.name)
def test_reduction_outer_axes_through_index_map(prim):
    """x: [6, 4, 5] reduced over dims 0 and 2 (argmin: dim 0) -> kept (4,), reduced (6, 5)."""
    x = rng.standard_normal((6, 4, 5)).astype(np.float64)
    if prim is P.argmin:
        c = Case("reduction", (4, 5), (6,))
        a = c.arg(x, index=(5, 1, 20))
        y = _reduce(c, prim, a, 2, 1)
    else:
        c = Case("reduction", (4,), (6, 5))
        a = c.arg(x, index=(5, 20, 1))
        y = _reduce(c, prim, a, 1, 2)
    _, got, want = c.run(y)
    close(got, want, rtol=1e-12)


def test_reduction_int_bool_and_nan():
    c = Case("reduction", (3,), (10,))
    i = c.arg(rng.integers(-50, 50, (3, 10)).astype(np.int32))
    b = c.arg(rng.random((3, 10)) < 0.3)
    f = rng.standard_normal((3, 10)).astype(np.float32)
    f[0, 4] = np.nan
    fv = c.arg(f)
    outs = [_reduce(c, P.sum, i, 1, 1), _reduce(c, P.sum, b, 1, 1), _reduce(c, P.amax, b, 1, 1),
            _reduce(c, P.amin, i, 1, 1), _reduce(c, P.prod, c.g.add_node(P.sign, [i], {}), 1, 1),
            _reduce(c, P.amax, fv, 1, 1), _reduce(c, P.argmax, fv, 1, 1), _reduce(c, P.argmin, b, 1, 1)]
    _, got, want = c.run(*outs)
    close(got, want)


def _softmax_body(c: Case, x: Value):
    m = c.g.add_node(P.amax, [x], {"dims": (1,), "keepdim": True})
    e = c.g.add_node(P.exp, [c.g.add_node(P.sub, [x, m], {})], {})
    s = c.g.add_node(P.sum, [e], {"dims": (1,), "keepdim": True})
    return c.g.add_node(P.div, [e, s], {})


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "looped"])
def test_softmax_shaped_body(persistent):
    """Two reduction levels (max, then the sum of exp(x - max)) and a whole-space result that
    combines reduced and unreduced values; fp16 input."""
    c = Case("reduction", (6,), (40,))
    x = c.arg((rng.standard_normal((6, 40)) * 3).astype(np.float16))
    y = _softmax_body(c, x)
    rk, got, want = c.run(y, full=(y,), persistent=persistent,
                          config=None if persistent else {"XBLOCK": 4, "RBLOCK": 16})
    assert rk.source.count("for roffset") == (0 if persistent else 3)
    close(got, want, rtol=2e-3, atol=1e-4)


def test_mean_variance_layer_norm_shaped_body():
    """sum and sum of squares over one range (mean, variance), then a normalized whole-space
    output and the per-row statistics, with a broadcast weight."""
    c = Case("reduction", (8,), (32,))
    x = c.arg(rng.standard_normal((8, 32)))
    w = c.arg(rng.standard_normal(32), index=(0, 1))
    s1 = c.g.add_node(P.sum, [x], {"dims": (1,), "keepdim": True})
    s2 = c.g.add_node(P.sum, [c.g.add_node(P.mul, [x, x], {})], {"dims": (1,), "keepdim": True})
    mean = c.g.add_node(P.div, [s1, 32], {})
    var = c.g.add_node(P.sub, [c.g.add_node(P.div, [s2, 32], {}), c.g.add_node(P.mul, [mean, mean], {})], {})
    rstd = c.g.add_node(P.rsqrt, [c.g.add_node(P.add, [var, 1e-5], {})], {})
    y = c.g.add_node(P.mul, [c.g.add_node(P.mul, [c.g.add_node(P.sub, [x, mean], {}), rstd], {}), w], {})
    _, got, want = c.run(y, mean, rstd, full=(y,))
    close(got, want, rtol=1e-10)


def test_looped_mean_variance_over_default_block():
    """Past PERSISTENT_MAX the kernel loops with its default RBLOCK (one accumulator per sum)."""
    n = TK.PERSISTENT_MAX + 100
    c = Case("reduction", (2,), (n,))
    x = c.arg(rng.standard_normal((2, n)).astype(np.float32))
    s1 = c.g.add_node(P.sum, [x], {"dims": (1,), "keepdim": False})
    s2 = c.g.add_node(P.sum, [c.g.add_node(P.mul, [x, x], {})], {"dims": (1,), "keepdim": False})
    rk, got, want = c.run(s1, s2)
    assert not rk.persistent and "acc" in rk.source
    close(got, want, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Matmul
# ---------------------------------------------------------------------------------------------

def _matmul_case(batch, m, n, k, dtype, bias_relu: bool):
    c = Case("matmul", (*batch, m, n), (k,))
    nb = len(batch)
    bs = contiguous(batch)
    a = rng.standard_normal((*batch, m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)  # shared by every batch entry
    av = c.arg(a, index=tuple(s * m * k for s in bs) + (k, 0, 1), shape=(*batch, m, k))
    bv = c.arg(b, index=(0,) * nb + (0, 1, n), shape=(k, n))
    y = c.g.add_node(P.matmul, [av, bv], {})
    if bias_relu:
        bias = c.arg(rng.standard_normal(n).astype(dtype), index=(0,) * nb + (0, 1, 0), shape=(n,))
        y = c.g.add_node(P.relu, [c.g.add_node(P.add, [y, bias], {})], {})
    return c, y, a, b


@pytest.mark.parametrize("batch", [(), (3,)], ids=["2d", "batched"])
def test_matmul_bias_relu_epilogue_ieee(batch):
    c, y, a, b = _matmul_case(batch, 20, 24, 40, np.float32, True)
    rk, got, want = c.run(y, input_precision="ieee")
    assert 'input_precision="ieee"' in rk.source
    close(got, want, rtol=1e-4, atol=1e-4)


def test_matmul_float64_int_and_fp16():
    for dtype, tol in ((np.float64, 1e-12), (np.float16, 2e-2)):
        c, y, *_ = _matmul_case((), 16, 16, 32, dtype, False)
        _, got, want = c.run(y)
        close(got, want, rtol=tol, atol=tol)
    c = Case("matmul", (4, 5), (6,))
    a = c.arg(rng.integers(-5, 5, (4, 6)).astype(np.int32), index=(6, 0, 1), shape=(4, 6))
    b = c.arg(rng.integers(-5, 5, (6, 5)).astype(np.int32), index=(0, 1, 5), shape=(6, 5))
    _, got, want = c.run(c.g.add_node(P.matmul, [a, b], {}))
    close(got, want)


# ---------------------------------------------------------------------------------------------
# Runtime details
# ---------------------------------------------------------------------------------------------

def test_kernel_files_named_by_source_hash_and_rewritten_when_tampered():
    c = Case("pointwise", (4,))
    y = c.g.add_node(P.neg, [c.arg(np.ones(4, np.float32))], {})
    rk, got, _ = c.run(y, aot=False)
    path = TR.source_path(rk)
    assert path.name == f"{rk.name}_{rk.source_hash}.py" and path.read_text() == rk.source
    path.write_text("raise SystemExit('not ours')\n")
    assert TR.source_path(rk).read_text() == rk.source
    assert rk.grid({"XBLOCK": 2}) == (2,)


def test_non_contiguous_host_buffer_is_rejected():
    with pytest.raises(ValueError, match="not C-contiguous"):
        TR.HostArray(np.ones((4, 4))[:, ::2])
