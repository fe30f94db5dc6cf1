"""graphc.autocast: per-op dtypes from PyTorch's documented CPU lists (and against
torch.autocast("cpu") where torch is installed), gradient dtypes, nesting, threads, the
weight-cast cache, and compile guards."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc import nn
from graphc.amp import autocast_mode
from graphc.amp.rules import AUTOCAST_RULES, FP32, LOWER, PROMOTE, UNLISTED, UNSAFE
from graphc.ir.primitive import PRIMITIVES
from graphc.passes.decompositions import COMPOSITES

LOW = graphc.bfloat16  # the CPU autocast default
LOW_NAME = LOW.name if hasattr(LOW, "name") else str(LOW)
EPS = {"bfloat16": 2.0 ** -7, "float16": 2.0 ** -10}[LOW_NAME]  # the format's machine epsilon


def test_every_primitive_and_composite_has_one_autocast_rule():
    ops = set(PRIMITIVES) | set(COMPOSITES)
    listed = set(AUTOCAST_RULES)
    assert listed & UNLISTED == set(), "an op is both listed and unlisted"
    assert ops - listed - UNLISTED == set(), "ops without an autocast rule (add them to graphc/amp/rules.py)"
    assert (listed | UNLISTED) - ops == set(), "rules for ops that do not exist"
    for op, rule in AUTOCAST_RULES.items():
        assert len(rule) == 2, op
        for kind in rule:
            assert kind in (None, LOWER, FP32, PROMOTE, UNSAFE) or callable(kind), (op, kind)


# Each case: a name, what PyTorch's "CPU Op-Specific Behavior" lists make of it ("low": the CPU
# lower-precision list; "f32": the float32 list; "in": unlisted, so the input's dtype), and a
# function of (library, F, tensors) run on both graphc and torch. The inputs of "f32" and "in"
# cases are in the low dtype, so that a cast shows.
def _inputs(lib, low):
    g = np.random.default_rng(0)
    arr = lambda *s: lib.tensor(g.standard_normal(s).astype(np.float32))  # noqa: E731
    x, w, v, b = arr(4, 4), arr(4, 4), arr(4), arr(2, 4, 4)
    spd = x @ x.T + 4 * lib.eye(4)
    return {"x": x, "w": w, "v": v, "b": b, "xl": x.to(low), "spd": spd.to(low), "img": arr(1, 2, 5, 5),
            "k": arr(3, 2, 3, 3), "img1": arr(1, 2, 6), "k1": arr(3, 2, 3), "tgt": lib.tensor([0, 1, 2, 3]),
            "img3": arr(1, 1, 2, 2, 4).to(low)}


CPU_CASES = [
    ("matmul", "low", lambda t, F, d: d["x"] @ d["w"]),
    ("mm", "low", lambda t, F, d: t.mm(d["x"], d["w"])),
    ("bmm", "low", lambda t, F, d: t.bmm(d["b"], d["b"])),
    ("addmm", "low", lambda t, F, d: t.addmm(d["x"], d["x"], d["w"])),
    ("baddbmm", "low", lambda t, F, d: t.baddbmm(d["b"], d["b"], d["b"])),
    ("linear", "low", lambda t, F, d: F.linear(d["x"], d["w"], d["v"])),
    ("conv1d", "low", lambda t, F, d: F.conv1d(d["img1"], d["k1"])),
    ("conv2d", "low", lambda t, F, d: F.conv2d(d["img"], d["k"])),
    ("conv_transpose2d", "low", lambda t, F, d: F.conv_transpose2d(d["img"], d["k"].transpose(0, 1))),
    ("prelu", "low", lambda t, F, d: F.prelu(d["x"], t.tensor([0.25]))),
    ("scaled_dot_product_attention", "low", lambda t, F, d: F.scaled_dot_product_attention(d["b"], d["b"], d["b"])),
    ("mse_loss", "f32", lambda t, F, d: F.mse_loss(d["xl"], d["xl"])),
    ("l1_loss", "f32", lambda t, F, d: F.l1_loss(d["xl"], d["xl"])),
    ("smooth_l1_loss", "f32", lambda t, F, d: F.smooth_l1_loss(d["xl"], d["xl"])),
    ("huber_loss", "f32", lambda t, F, d: F.huber_loss(d["xl"], d["xl"])),
    ("cross_entropy", "f32", lambda t, F, d: F.cross_entropy(d["xl"], d["tgt"])),
    ("nll_loss", "f32", lambda t, F, d: F.nll_loss(d["xl"], d["tgt"])),
    ("binary_cross_entropy_with_logits", "f32",
     lambda t, F, d: F.binary_cross_entropy_with_logits(d["xl"], d["xl"].sigmoid())),
    ("binary_cross_entropy", "f32", lambda t, F, d: F.binary_cross_entropy(d["xl"].sigmoid(), d["xl"].sigmoid())),
    ("kl_div", "f32", lambda t, F, d: F.kl_div(d["xl"].log_softmax(-1), d["xl"].softmax(-1), reduction="batchmean")),
    ("prod", "f32", lambda t, F, d: d["xl"].prod()),
    ("cdist", "f32", lambda t, F, d: t.cdist(d["xl"], d["xl"])),
    ("linalg.inv", "f32", lambda t, F, d: t.linalg.inv(d["spd"])),
    ("linalg.cholesky", "f32", lambda t, F, d: t.linalg.cholesky(d["spd"])),
    ("linalg.solve", "f32", lambda t, F, d: t.linalg.solve(d["spd"], d["spd"])),
    ("linalg.eigvalsh", "f32", lambda t, F, d: t.linalg.eigvalsh(d["spd"])),
    ("linalg.svdvals", "f32", lambda t, F, d: t.linalg.svdvals(d["spd"])),
    ("linalg.qr", "f32", lambda t, F, d: t.linalg.qr(d["spd"])[0]),
    ("avg_pool3d", "f32", lambda t, F, d: F.avg_pool3d(d["img3"], 2)),
    ("max_pool3d", "f32", lambda t, F, d: F.max_pool3d(d["img3"], 2)),
    ("avg_pool2d", "in", lambda t, F, d: F.avg_pool2d(d["xl"].reshape(1, 1, 4, 4), 2)),
    ("softmax", "in", lambda t, F, d: F.softmax(d["xl"], -1)),
    ("log_softmax", "in", lambda t, F, d: F.log_softmax(d["xl"], -1)),
    ("layer_norm", "in", lambda t, F, d: F.layer_norm(d["xl"], (4,))),
    ("exp", "in", lambda t, F, d: t.exp(d["xl"])),
    ("sum", "in", lambda t, F, d: d["xl"].sum()),
    ("cumsum", "in", lambda t, F, d: d["xl"].cumsum(0)),
    ("gelu", "in", lambda t, F, d: F.gelu(d["xl"])),
    ("cat of low and float32", "f32*", lambda t, F, d: t.cat([d["xl"], d["x"]])),
    ("add of low and float32", "f32*", lambda t, F, d: d["xl"] + d["x"]),
    ("float64 matmul", "f64", lambda t, F, d: d["x"].double() @ d["w"].double()),
    ("float64 linear", "f64", lambda t, F, d: F.linear(d["x"].double(), d["w"].double())),
]


def _expected(kind: str, low):
    return {"low": low, "f32": graphc.float32, "f32*": graphc.float32, "in": low, "f64": graphc.float64}[kind]


@pytest.mark.parametrize("name,kind,fn", CPU_CASES, ids=[c[0] for c in CPU_CASES])
def test_cpu_op_dtypes_follow_the_documented_lists(name, kind, fn):
    d = _inputs(graphc, LOW)
    with graphc.autocast("cpu"):
        out = fn(graphc, F, d)
    assert out.dtype is _expected(kind, LOW), name
    # outside autocast the same op keeps its operands' dtype
    if kind == "low":
        assert fn(graphc, F, d).dtype is graphc.float32


@pytest.mark.parametrize("name,kind,fn", CPU_CASES, ids=[c[0] for c in CPU_CASES])
def test_cpu_op_dtypes_match_torch_autocast(name, kind, fn):
    torch = pytest.importorskip("torch")
    tlow = getattr(torch, LOW_NAME)
    d = _inputs(torch, tlow)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autocast("cpu", dtype=tlow):
            want = fn(torch, torch.nn.functional, d)
    g = _inputs(graphc, LOW)
    with graphc.autocast("cpu", dtype=LOW):
        got = fn(graphc, F, g)
    assert got.dtype.name == str(want.dtype).replace("torch.", ""), name
    tol = 0.02 if got.dtype is not graphc.float32 or kind == "f32" else 1e-4
    np.testing.assert_allclose(got.detach().float().numpy(), want.detach().float().numpy(), rtol=tol, atol=tol)


def test_autocast_equals_explicit_casts_forward_and_backward():
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = graphc.randn(5, 6), graphc.tensor([0, 1, 2, 0, 1])
    with graphc.autocast("cpu"):
        h = model(x)
        loss = F.cross_entropy(h, y)
    assert h.dtype is LOW and loss.dtype is graphc.float32
    loss.backward()
    got = [p.grad.clone() for p in model.parameters()]
    assert all(g.dtype is graphc.float32 for g in got), "parameter gradients come back in the parameters' dtype"

    model.zero_grad()
    l1, l2 = model[0], model[2]
    a = F.relu(F.linear(x.to(LOW), l1.weight.to(LOW), l1.bias.to(LOW)))
    ref = F.cross_entropy(F.linear(a, l2.weight.to(LOW), l2.bias.to(LOW)).float(), y)
    ref.backward()
    assert loss.item() == ref.item()
    for g, p in zip(got, model.parameters()):
        np.testing.assert_array_equal(g.numpy(), p.grad.numpy())


def test_activation_gradients_are_in_the_autocast_dtype():
    w = nn.Parameter(graphc.randn(4, 4))
    x = graphc.randn(3, 4)
    with graphc.autocast("cpu"):
        h = x @ w
        h.retain_grad()
        loss = F.mse_loss(h, graphc.zeros(3, 4))
    loss.backward()
    assert h.grad.dtype is LOW and w.grad.dtype is graphc.float32


def test_nesting_disabling_and_state_queries():
    x, w = graphc.randn(3, 3), graphc.randn(3, 3)
    assert not graphc.is_autocast_enabled("cpu") and graphc.get_autocast_dtype("cpu") is LOW
    assert graphc.get_autocast_dtype("cuda") is graphc.float16
    with graphc.autocast("cpu"):
        assert graphc.is_autocast_enabled("cpu") and not graphc.is_autocast_enabled()  # no argument: cuda
        with graphc.autocast("cpu", enabled=False):
            assert not graphc.is_autocast_enabled("cpu")
            assert (x @ w).dtype is graphc.float32
        with graphc.autocast("cpu", dtype=graphc.float16):
            assert graphc.get_autocast_dtype("cpu") is graphc.float16
            assert (x @ w).dtype is graphc.float16
        assert (x @ w).dtype is LOW and graphc.get_autocast_dtype("cpu") is LOW
    assert not graphc.is_autocast_enabled("cpu") and (x @ w).dtype is graphc.float32
    with pytest.raises(ZeroDivisionError):
        with graphc.autocast("cpu"):
            1 / 0
    assert not graphc.is_autocast_enabled("cpu"), "an exception leaves the state restored"


def test_the_other_spellings_and_the_decorator():
    x, w = graphc.randn(3, 3), graphc.randn(3, 3)

    @graphc.autocast("cpu")
    def f(a, b):
        return a @ b
    assert f(x, w).dtype is LOW and (x @ w).dtype is graphc.float32
    with graphc.amp.autocast("cpu"):
        assert (x @ w).dtype is LOW
    with pytest.warns(FutureWarning, match=r"torch.cpu.amp.autocast\(args...\)` is deprecated"):
        ctx = graphc.cpu.amp.autocast()
    with ctx:
        assert (x @ w).dtype is LOW
    with pytest.warns(UserWarning, match="CUDA is not available or torch_xla is imported. Disabling autocast."):
        with pytest.warns(FutureWarning, match="torch.cuda.amp.autocast"):
            ctx = graphc.cuda.amp.autocast()
    with ctx:
        assert (x @ w).dtype is graphc.float32


def test_bad_arguments_raise_or_warn_as_pytorch():
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        graphc.autocast(graphc.device("cpu"))
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        graphc.autocast("tpu")
    with pytest.warns(UserWarning, match="CPU Autocast only supports dtypes of torch.bfloat16, torch.float16"):
        ctx = graphc.autocast("cpu", dtype=graphc.float64)
    with ctx:
        assert not graphc.is_autocast_enabled("cpu")


def test_autocast_state_is_per_thread():
    x, w = graphc.randn(3, 3), graphc.randn(3, 3)
    inside, seen = threading.Event(), {}

    def other():
        inside.wait()
        seen["enabled"] = graphc.is_autocast_enabled("cpu")
        seen["dtype"] = (x @ w).dtype
        with graphc.autocast("cpu", dtype=graphc.float16):
            seen["own"] = (x @ w).dtype

    t = threading.Thread(target=other)
    t.start()
    with graphc.autocast("cpu"):
        inside.set()
        t.join()
        mine = (x @ w).dtype
    assert seen == {"enabled": False, "dtype": graphc.float32, "own": graphc.float16}
    assert mine is LOW


def test_weight_casts_are_cached_in_the_region_and_freed_on_exit():
    lin = nn.Linear(4, 4)
    x = graphc.randn(2, 4)
    cache = autocast_mode._state.cache
    with graphc.autocast("cpu"):
        a, b = lin(x), lin(x)
        assert len(cache) == 2  # weight and bias, cast once for both calls
        (a.float().sum() + b.float().sum()).backward()
        with graphc.no_grad():
            lin.weight.mul_(2.0)  # a write makes the cached cast stale
        c = lin(x)
    assert len(cache) == 0
    np.testing.assert_allclose(lin.weight.grad.numpy(), 2 * x.sum(0, keepdim=True).expand(4, 4).numpy(), rtol=4 * EPS)
    with graphc.no_grad():
        want = F.linear(x, lin.weight, lin.bias)
    np.testing.assert_allclose(c.detach().float().numpy(), want.numpy(), rtol=2e-2, atol=2e-2)
    with graphc.autocast("cpu", cache_enabled=False):
        lin(x)
        assert len(cache) == 0


def test_compile_guards_on_autocast_and_casts_are_nodes():
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = graphc.randn(3, 4)
    f = graphc.compile(lambda t: model(t))
    assert f(x).dtype is graphc.float32
    with graphc.autocast("cpu"):
        out = f(x)
        eager = model(x)
    assert f.recompiles == 1 and "autocast state changed" in f.history[-1]
    assert out.dtype is LOW
    np.testing.assert_array_equal(out.detach().float().numpy(), eager.detach().float().numpy())
    assert f(x).dtype is graphc.float32 and f.recompiles == 1  # leaving autocast selects the first entry
    with graphc.autocast("cpu"):
        text = graphc.explain(f, x)
    traced = str(text).split("== after")[0]
    assert traced.count("= cast(") >= 5, traced  # input, two weights, two biases
    with graphc.autocast("cpu"):
        out.float().sum()
        loss = F.mse_loss(f(x), graphc.zeros(3, 2))
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype is graphc.float32 for p in model.parameters())


def test_autocast_entered_inside_a_compiled_function():
    w = nn.Parameter(graphc.randn(4, 4))

    @graphc.compile(fullgraph=True)
    def f(t):
        with graphc.autocast("cpu"):
            h = t @ w
        return h, h.float().sum()

    h, s = f(graphc.randn(2, 4))
    assert h.dtype is LOW and s.dtype is graphc.float32


CUDA_CASES = [  # PyTorch's "CUDA Op-Specific Behavior" lists
    ("matmul", "f16", lambda d: d["x"] @ d["w"]),
    ("linear", "f16", lambda d: F.linear(d["x"], d["w"])),
    ("conv2d", "f16", lambda d: F.conv2d(d["img"], d["k"])),
    ("softmax", "f32", lambda d: F.softmax(d["xh"], -1)),
    ("log_softmax", "f32", lambda d: F.log_softmax(d["xh"], -1)),
    ("layer_norm", "f32", lambda d: F.layer_norm(d["xh"], (4,))),
    ("exp", "f32", lambda d: d["xh"].exp()),
    ("pow", "f32", lambda d: d["xh"] ** 2),
    ("sum", "f32", lambda d: d["xh"].sum()),
    ("mse_loss", "f32", lambda d: F.mse_loss(d["xh"], d["xh"])),
    ("addcmul of float16 and float32", "f32", lambda d: graphc.addcmul(d["xh"], d["xh"], d["x"])),
    ("relu", "f16", lambda d: F.relu(d["xh"])),
]


@pytest.mark.cuda
@pytest.mark.parametrize("name,kind,fn", CUDA_CASES, ids=[c[0] for c in CUDA_CASES])
def test_cuda_op_dtypes_follow_the_documented_lists(cuda, name, kind, fn):
    d = {k: v.to(cuda) for k, v in _inputs(graphc, graphc.float16).items()}
    d["xh"] = d["x"].half()
    with graphc.autocast("cuda"):
        out = fn(d)
        on_cpu = _inputs(graphc, LOW)["x"] @ _inputs(graphc, LOW)["w"]
    assert out.dtype is {"f16": graphc.float16, "f32": graphc.float32}[kind] and out.device == cuda, name
    assert on_cpu.dtype is graphc.float32, "cuda autocast leaves CPU ops alone"


@pytest.mark.cuda
def test_cuda_autocast_refuses_binary_cross_entropy(cuda):
    p = graphc.rand(4, device=cuda)
    with graphc.autocast("cuda"):
        with pytest.raises(RuntimeError, match="binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast"):
            F.binary_cross_entropy(p, p)
        assert F.binary_cross_entropy_with_logits(p, p).dtype is graphc.float32


def _custom_mm(cast_inputs):
    seen = {}

    class MM(graphc.autograd.Function):
        @staticmethod
        @graphc.amp.custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            seen["fwd"] = (a.dtype, graphc.is_autocast_enabled("cpu"))
            return a.mm(b)

        @staticmethod
        @graphc.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            seen["bwd"] = (graphc.is_autocast_enabled("cpu"), g.mm(b.t().float()).dtype)
            return g.mm(b.t().to(g.dtype)), a.t().to(g.dtype).mm(g)
    return MM, seen


def test_custom_fwd_casts_inputs_and_custom_bwd_runs_in_the_forwards_state():
    a = nn.Parameter(graphc.randn(3, 3))
    b = graphc.randn(3, 3).to(LOW)
    MM, seen = _custom_mm(graphc.float32)
    with graphc.autocast("cpu"):
        out = MM.apply(a, b)
    assert out.dtype is graphc.float32 and seen["fwd"] == (graphc.float32, False)
    out.sum().backward()
    assert seen["bwd"] == (False, graphc.float32) and a.grad.dtype is graphc.float32

    MM, seen = _custom_mm(None)
    with graphc.autocast("cpu"):
        out = MM.apply(a, a)
        assert out.dtype is LOW and seen["fwd"] == (graphc.float32, True)
        out.float().sum().backward()  # backward inside the region: autocast on in custom_bwd only
        assert seen["bwd"] == (True, LOW)
        assert (a @ a).dtype is LOW, "autocast is on again after backward"
    assert a.grad.dtype is graphc.float32


def test_threads_calling_one_compiled_function_in_and_out_of_autocast():
    from threads import run_together
    model = nn.Linear(4, 4)
    f = graphc.compile(lambda t: model(t) * 2)
    x = graphc.randn(2, 4)
    with graphc.no_grad():
        want = {False: (model(x) * 2).numpy(), True: None}
        with graphc.autocast("cpu"):
            want[True] = (model(x) * 2).float().numpy()
    wrong: list = []

    def work(i: int) -> None:
        on = i % 2 == 1
        for _ in range(10):
            with graphc.no_grad(), graphc.autocast("cpu", enabled=on):
                out = f(x)
            if out.dtype is not (LOW if on else graphc.float32):
                wrong.append((i, out.dtype))
            elif not np.array_equal(out.float().numpy(), want[on]):
                wrong.append((i, "values"))

    errors = run_together(work, 4)
    assert not errors and not wrong, (errors[:2], wrong[:3])


def test_state_functions_and_their_deprecated_spellings():
    x, w = graphc.randn(2, 2), graphc.randn(2, 2)
    graphc.set_autocast_enabled("cpu", True)
    try:
        assert graphc.is_autocast_enabled("cpu") and (x @ w).dtype is LOW
        with pytest.warns(DeprecationWarning, match=r"torch.is_autocast_cpu_enabled\(\) is deprecated"):
            assert graphc.is_autocast_cpu_enabled()
    finally:
        graphc.set_autocast_enabled("cpu", False)
    assert (x @ w).dtype is graphc.float32
    with pytest.warns(DeprecationWarning, match=r"Please use torch.set_autocast_dtype\('cpu', dtype\) instead"):
        graphc.set_autocast_cpu_dtype(graphc.float16)
    try:
        with pytest.warns(DeprecationWarning):
            assert graphc.get_autocast_cpu_dtype() is graphc.float16
        with graphc.autocast("cpu"):  # no dtype: the thread's autocast dtype
            assert (x @ w).dtype is graphc.float16
    finally:
        graphc.set_autocast_dtype("cpu", LOW)
    with pytest.warns(DeprecationWarning):
        assert graphc.get_autocast_gpu_dtype() is graphc.float16


def test_backward_inside_autocast_compiled_equals_eager():
    graphc.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    x, y = graphc.randn(3, 4), graphc.randn(3, 2)

    def step(x, y):
        m.zero_grad()
        with graphc.autocast("cpu"):
            loss = F.mse_loss(m(x), y)
            loss.backward()  # backward rules run in the forward's dtypes, not recast
        return loss.detach()

    eager_loss = step(x, y)
    eager = [p.grad.clone() for p in m.parameters()]
    compiled_loss = graphc.compile(step, fullgraph=True)(x, y)
    assert compiled_loss.item() == eager_loss.item()
    for a, p in zip(eager, m.parameters()):
        assert a.dtype is graphc.float32 and p.grad.dtype is graphc.float32
        np.testing.assert_array_equal(a.numpy(), p.grad.numpy())
