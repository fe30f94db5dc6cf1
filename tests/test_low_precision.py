"""float16 and bfloat16 tensors on the CPU (issue 10, item 1).

Tolerances come from the formats: eps is 2**-10 for float16 and 2**-7 for bfloat16, and a result
rounded once from an exact (float64) value is within eps/2 of it, relatively. Ops that PyTorch's CPU
kernels compute in float32 and round once (sums, means, variances, norms, softmax, matmul, cumsum,
layer norm, gelu ...) are checked against that bound plus float32's own accumulation error
(n * 2**-24 * sum|x|); for sums and cumsums the test also shows that accumulating in the format
itself, as numpy would, breaks the bound, so the bound can tell the two apart.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

import graphc as torch
import graphc.nn.functional as F
from graphc import nn

LOW = [torch.float16, torch.bfloat16]
EPS = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}
F32_EPS = 2.0 ** -24  # float32's unit roundoff
ids = lambda d: d.name  # noqa: E731


def data(*shape, dtype, seed=0, scale=1.0):
    """Normal values rounded to ``dtype``, and the same values (exactly) as float64."""
    x = torch.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * scale).to(dtype)
    return x, x.double()


def f64(t) -> np.ndarray:
    return t.detach().double().numpy()


def assert_rounded_once(got, ref, dtype, atol=0.0):
    """``got`` (low precision) is ``ref`` (float64) rounded once: within eps/2 relatively (a small
    margin over it for float32's own rounding), plus ``atol`` for float32 accumulation."""
    assert got.dtype is dtype
    err = np.abs(f64(got) - f64(ref))
    bound = 0.5 * EPS[dtype] * (1 + 2 ** -10) * np.abs(f64(ref)) + atol
    assert np.all(err <= bound), f"max excess {np.max(err - bound):.3g} (max error {err.max():.3g})"


# ---- the dtype itself -----------------------------------------------------------------------

def test_dtype_facts():
    bf = torch.bfloat16
    assert repr(bf) == "graphc.bfloat16" and bf.is_floating_point and bf.itemsize == 2
    assert bf.short == "bf16" and bf.scalar_name == "BFloat16" and not bf.is_complex
    assert torch.half is torch.float16 and torch.float16.short == "f16"
    for d in LOW:
        x = torch.ones(3, dtype=d)
        assert x.dtype is d and x.element_size() == 2 and x.is_floating_point() and torch.is_floating_point(x)
    x = torch.ones(2, dtype=bf)
    assert x.type() == "graphc.BFloat16Tensor" and isinstance(x, torch.BFloat16Tensor)
    assert torch.ones(2).type("torch.BFloat16Tensor").dtype is bf
    assert torch.ones(2).type(torch.HalfTensor).dtype is torch.float16
    assert torch.ones(2).type(bf).dtype is bf
    assert x.to(bf) is x and x.to(torch.float16).dtype is torch.float16


def test_ir_text_names_bfloat16():
    from graphc.ir.printer import parse_graph, print_graph
    text = ("graph g(%x: bf16[2,3]) {\n  %0: f32[2,3] = cast(%x) dtype=f32\n"
            "  %1: bf16[2,3] = cast(%0) dtype=bf16\n  return %1\n}\n")
    g = parse_graph(text)
    assert g.inputs[0].dtype is torch.bfloat16 and g.nodes[1].attrs["dtype"] is torch.bfloat16
    assert print_graph(g) == text


# PyTorch's values (torch.finfo), written out
FINFO = {torch.float16: dict(bits=16, eps=2.0 ** -10, max=65504.0, min=-65504.0, tiny=2.0 ** -14, resolution=0.001),
         torch.bfloat16: dict(bits=16, eps=2.0 ** -7, max=3.3895313892515355e38, min=-3.3895313892515355e38,
                              tiny=2.0 ** -126, resolution=0.01)}


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_finfo(d):
    info = torch.finfo(d)
    for k, v in FINFO[d].items():
        assert getattr(info, k) == v, k
    assert info.smallest_normal == info.tiny and info.dtype == d.name
    with pytest.raises(TypeError, match="floating point"):
        torch.finfo(torch.int32)


# ---- promotion ------------------------------------------------------------------------------

# PyTorch's documented table, low-precision rows (torch.promote_types)
PROMOTE = [
    (torch.float16, torch.bfloat16, torch.float32), (torch.bfloat16, torch.float32, torch.float32),
    (torch.float16, torch.float32, torch.float32), (torch.bfloat16, torch.float64, torch.float64),
    (torch.bool, torch.bfloat16, torch.bfloat16), (torch.uint8, torch.bfloat16, torch.bfloat16),
    (torch.int64, torch.bfloat16, torch.bfloat16), (torch.int8, torch.float16, torch.float16),
    (torch.int32, torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16, torch.bfloat16),
]


@pytest.mark.parametrize("a, b, want", PROMOTE, ids=lambda x: x.name)
def test_promote_types(a, b, want):
    assert torch.promote_types(a, b) is want and torch.promote_types(b, a) is want
    x, y = torch.ones(2, dtype=a), torch.ones(2, dtype=b)
    assert (x + y).dtype is want and (y * x).dtype is want


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_scalars_and_zero_dim_tensors_do_not_widen(d):
    x = torch.ones(3, dtype=d)
    assert (x * 2.5).dtype is d and (x + 1).dtype is d and (x / 3).dtype is d and (2.5 - x).dtype is d
    assert (torch.arange(3) * torch.tensor(2.5, dtype=d)).dtype is d  # ints with a 0-d float
    assert (x + torch.tensor(2.5)).dtype is d  # a 0-d float32 tensor: same category, dims win
    other = torch.bfloat16 if d is torch.float16 else torch.float16
    assert (x + torch.tensor(1.0, dtype=other)).dtype is d
    assert (torch.tensor(1.0, dtype=d) + torch.tensor(1.0, dtype=other)).dtype is torch.float32
    assert torch.result_type(x, 1.0) is d and torch.can_cast(d, torch.float32)


def test_promotion_matches_torch():
    t = pytest.importorskip("torch")
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
    for a in names:
        for b in names:
            assert torch.promote_types(getattr(torch, a), getattr(torch, b)).name == \
                str(t.promote_types(getattr(t, a), getattr(t, b))).replace("torch.", ""), (a, b)


# ---- conversions, creation, indexing, printing, numpy -----------------------------------------

@pytest.mark.parametrize("d", LOW, ids=ids)
def test_casts_round_to_nearest_even(d):
    e = EPS[d]
    # exactly between two neighbours: to the even one; just above: up
    vals = [1 + e / 2, 1 + 3 * e / 2, 1 + e / 2 + e / 8, -(1 + 3 * e / 2), 3.0, 0.0]
    want = [1.0, 1 + 2 * e, 1 + e, -(1 + 2 * e), 3.0, 0.0]
    x = torch.tensor(vals, dtype=torch.float32)
    for y in (x.to(d), x.half() if d is torch.float16 else x.bfloat16(), x.type(d), torch.tensor(vals, dtype=d),
              (torch.HalfTensor if d is torch.float16 else torch.BFloat16Tensor)(vals)):
        assert y.dtype is d and y.tolist() == want
    # a double just above a tie goes through float32 first, as in PyTorch (c10 makes Half and
    # BFloat16 from a float): to the even neighbour, not up as a direct rounding would
    v = 1 + e / 2 + 2.0 ** -30
    wide = torch.tensor([v], dtype=torch.float64)
    for y in (torch.tensor([v], dtype=d), wide.to(d), torch.full((1,), v, dtype=d),
              torch.compile(lambda t: t.to(d))(wide), torch.compile(lambda t: t + torch.full((1,), v, dtype=d))(
                  torch.zeros(1, dtype=d))):
        assert y.tolist() == [1.0]
    assert torch.tensor([1e300], dtype=d).tolist() == [float("inf")]  # silently, as in PyTorch
    big = torch.tensor([1e6, -1e6]).to(d).tolist()
    assert big == ([float("inf"), float("-inf")] if d is torch.float16 else [999424.0, -999424.0])
    assert torch.tensor([1.5], dtype=d).to(torch.float64).item() == 1.5


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_creation_functions(d):
    assert torch.zeros(2, 3, dtype=d).dtype is d and torch.zeros(2, dtype=d).tolist() == [0.0, 0.0]
    assert torch.ones(2, dtype=d).tolist() == [1.0, 1.0]
    assert torch.full((2,), 0.1, dtype=d).tolist() == [torch.tensor([0.1]).to(d).item()] * 2
    assert torch.arange(0, 2, 0.5, dtype=d).tolist() == [0.0, 0.5, 1.0, 1.5]
    assert torch.linspace(0, 1, 5, dtype=d).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert torch.empty(4, dtype=d).dtype is d
    r = torch.rand(1000, dtype=d)
    assert r.dtype is d and 0 <= r.min().item() and r.max().item() < 1 and 0.4 < r.float().mean().item() < 0.6
    step = 2.0 ** -(11 if d is torch.float16 else 8)  # PyTorch's: multiples of 2**-significand bits
    assert torch.equal(torch.floor(r.double() / step) * step, r.double())
    n = torch.randn(1000, dtype=d)
    assert n.dtype is d and abs(n.float().mean().item()) < 0.2 and 0.8 < n.float().std().item() < 1.2
    x = torch.randn(3, 2)
    for like in (torch.zeros_like, torch.ones_like, torch.empty_like, torch.rand_like, torch.randn_like):
        y = like(x, dtype=d)
        assert y.dtype is d and y.shape == x.shape
        assert like(y).dtype is d
    assert torch.full_like(x, 2.0, dtype=d).tolist() == [[2.0, 2.0]] * 3
    assert x.new_zeros(2, dtype=d).dtype is d and torch.tensor([1, 2], dtype=d).dtype is d


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_indexing_and_setitem(d):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8
    x = base.to(d)
    assert x[1].tolist() == base[1].tolist() and x[:, 1:3].dtype is d
    assert x[torch.tensor([2, 0])].tolist() == base[torch.tensor([2, 0])].tolist()
    assert x[x > 0.7].tolist() == base[base > 0.7].tolist()
    x[0] = 0.1  # a Python float is rounded to the tensor's type
    assert x[0].tolist() == [torch.tensor(0.1).to(d).item()] * 4 and x.dtype is d
    x[1, 1:3] = torch.tensor([1.0 + EPS[d] / 2, 2.0])  # a float32 source: cast, rounded to even
    assert x[1, 1:3].tolist() == [1.0, 2.0]
    x.index_put_((torch.tensor([2, 2]),), torch.ones(2, 4, dtype=d), accumulate=True)
    assert x[2].tolist() == (base[2] + 2).tolist()


def test_printing_matches_pytorch_format():
    x = torch.tensor([1.5, 2.25, 3.0001], dtype=torch.bfloat16)
    assert repr(x) == "tensor([1.5000, 2.2500, 3.0000], dtype=graphc.bfloat16)"
    assert repr(torch.tensor([1.0, -2.0], dtype=torch.half, requires_grad=True)) == \
        "tensor([ 1., -2.], dtype=graphc.float16, requires_grad=True)"
    assert repr(torch.tensor(1e-5, dtype=torch.bfloat16)) == "tensor(1.0014e-05, dtype=graphc.bfloat16)"


def test_printing_matches_torch():
    t = pytest.importorskip("torch")
    vals = [[1.5, -2.25, 3.0001], [1e-3, 250.0, 7.0]]
    for a, b in ((torch.bfloat16, t.bfloat16), (torch.float16, t.float16)):
        assert repr(torch.tensor(vals, dtype=a)) == repr(t.tensor(vals, dtype=b)).replace("torch.", "graphc.")


def test_numpy_conversion():
    x = torch.tensor([1.5, 2.0], dtype=torch.bfloat16)
    for f in (x.numpy, lambda: np.asarray(x), lambda: x.numpy(force=True)):
        with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
            f()
    assert x.float().numpy().tolist() == [1.5, 2.0] and x.tolist() == [1.5, 2.0]
    assert type(x[0].item()) is float
    h = torch.tensor([1.5, 2.0], dtype=torch.half)
    a = h.numpy()
    assert a.dtype == np.float16
    a[0] = 4.0  # shares memory, as in PyTorch
    assert h[0].item() == 4.0
    assert torch.from_numpy(np.ones(2, np.float16)).dtype is torch.float16
    ml_dtypes = pytest.importorskip("ml_dtypes")
    b = np.array([1.5, -2.0], ml_dtypes.bfloat16)
    assert torch.from_numpy(b).dtype is torch.bfloat16 and torch.tensor(b).tolist() == [1.5, -2.0]
    with pytest.raises(RuntimeError, match="linalg.inv: Low precision dtypes not supported. Got BFloat16"):
        torch.linalg.inv(torch.eye(2, dtype=torch.bfloat16))


def test_ml_dtypes_is_imported_lazily_and_its_absence_is_explained():
    code = ("import sys, graphc\n"
            "assert 'ml_dtypes' not in sys.modules\n"
            "assert graphc.ones(2, dtype=graphc.half).sum().item() == 2\n"
            "assert 'ml_dtypes' not in sys.modules\n"
            "sys.modules['ml_dtypes'] = None  # as if not installed\n"
            "try:\n"
            "    graphc.ones(2, dtype=graphc.bfloat16)\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install ml_dtypes" in out.stdout and "bfloat16" in out.stdout


# ---- serialization --------------------------------------------------------------------------

def test_graphc_checkpoints_round_trip():
    m = nn.Linear(3, 2).bfloat16()
    h = torch.randn(4).half()
    buf = io.BytesIO()
    torch.save({"model": m.state_dict(), "h": h, "p": m.weight}, buf)
    buf.seek(0)
    back = torch.load(buf)
    assert back["model"]["weight"].dtype is torch.bfloat16 and back["h"].dtype is torch.float16
    assert torch.equal(back["model"]["weight"], m.weight) and torch.equal(back["h"], h)
    assert back["p"].requires_grad and back["p"].dtype is torch.bfloat16
    m2 = nn.Linear(3, 2).bfloat16()
    m2.load_state_dict(back["model"])
    assert torch.equal(m2.bias, m.bias)


def test_safetensors_f16_and_bf16():
    from graphc import safetensors as st
    x = torch.tensor([1.0, -2.5, 0.1], dtype=torch.bfloat16)
    h = torch.tensor([1.0, -2.5, 65504.0], dtype=torch.half)
    raw = st.save({"x": x, "h": h})
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    assert header["x"]["dtype"] == "BF16" and header["h"]["dtype"] == "F16"
    body = raw[8 + n:]
    xs, xe = header["x"]["data_offsets"]
    hs, he = header["h"]["data_offsets"]
    # the IEEE / bfloat16 bit patterns, little-endian: 1.0, -2.5, 0.1 (0x3dcd) and 1.0, -2.5, 65504
    assert body[xs:xe] == bytes.fromhex("803f20c0cd3d")
    assert body[hs:he] == bytes.fromhex("003c00c1ff7b")
    back = st.load(raw)
    assert back["x"].dtype is torch.bfloat16 and torch.equal(back["x"], x) and torch.equal(back["h"], h)


def test_safetensors_bytes_match_torch():
    t = pytest.importorskip("torch")
    from graphc import safetensors as st
    vals = np.random.default_rng(1).standard_normal(50).astype(np.float32)
    for a, b, code in ((torch.bfloat16, t.bfloat16, "BF16"), (torch.float16, t.float16, "F16")):
        raw = st.save({"v": torch.tensor(vals).to(a)})
        n = int.from_bytes(raw[:8], "little")
        assert json.loads(raw[8:8 + n])["v"]["dtype"] == code
        assert raw[8 + n:] == t.tensor(vals).to(b).view(t.uint8).numpy().tobytes()


# ---- computing in float32, rounding once ----------------------------------------------------

@pytest.mark.parametrize("d", LOW, ids=ids)
def test_sums_and_cumsums_round_once(d):
    x, x64 = data(4096, dtype=d, scale=0.01)
    x = x.abs() + 0.01  # positive: an in-format running sum stalls once it outgrows the terms
    x64 = x.double()
    slack = 4096 * F32_EPS * f64(x64.abs().sum())
    assert_rounded_once(x.sum(), x64.sum(), d, atol=slack)
    assert_rounded_once(x.cumsum(0), x64.cumsum(0), d, atol=slack)
    assert_rounded_once(x.reshape(64, 64).sum(1), x64.reshape(64, 64).sum(1), d, atol=64 * F32_EPS * 2)
    # accumulating in the format itself (numpy's float16 cumsum) is far outside that bound
    if d is torch.float16:
        naive = np.cumsum(x.numpy())
        assert np.abs(naive[-1] - f64(x64.sum())) > 10 * (0.5 * EPS[d] * f64(x64.sum()) + slack)


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_reductions_and_normalizations_round_once(d):
    x, x64 = data(32, 256, dtype=d)
    n = 256
    acc = n * F32_EPS * 8  # float32 accumulation over a row of |x| <~ 4
    assert_rounded_once(x.mean(1), x64.mean(1), d, atol=acc)
    assert_rounded_once(x.var(1), x64.var(1), d, atol=acc * 4)
    assert_rounded_once(x.std(0), x64.std(0), d, atol=acc * 4)
    assert_rounded_once(x.norm(dim=1), x64.norm(dim=1), d, atol=acc * 4)
    assert_rounded_once(x.logsumexp(1), x64.logsumexp(1), d, atol=acc)
    assert_rounded_once(x.softmax(1), x64.softmax(1), d, atol=1e-6)
    assert_rounded_once(F.log_softmax(x, 1), F.log_softmax(x64, 1), d, atol=acc)
    assert_rounded_once(F.layer_norm(x, (n,)), F.layer_norm(x64, (n,)), d, atol=1e-5)
    for f in (F.gelu, F.silu, torch.sigmoid, torch.tanh, torch.exp, torch.erf):
        assert_rounded_once(f(x), f(x64), d, atol=1e-7)


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_matmul_and_conv_accumulate_in_float32(d):
    a, a64 = data(16, 512, dtype=d, seed=1)
    b, b64 = data(512, 24, dtype=d, seed=2)
    slack = 512 * F32_EPS * (f64(a64.abs()) @ f64(b64.abs()))
    assert_rounded_once(a @ b, a64 @ b64, d, atol=slack)
    assert_rounded_once(F.linear(a, b.t()), F.linear(a64, b64.t()), d, atol=slack)
    x, x64 = data(2, 8, 10, 10, dtype=d, seed=3)
    w, w64 = data(4, 8, 3, 3, dtype=d, seed=4)
    k = 8 * 9
    bound = k * F32_EPS * F.conv2d(x64.abs(), w64.abs()).numpy()
    got, want = F.conv2d(x, w), F.conv2d(x64, w64)
    assert got.dtype is d
    assert np.all(np.abs(f64(got) - f64(want)) <= 0.5 * EPS[d] * np.abs(f64(want)) * (1 + 2 ** -10) + bound)


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_scalar_operands_as_pytorch(d):
    x, _ = data(1000, dtype=d)
    x32 = x.float()
    # mul and div read a Python scalar in float32; add rounds it to the tensor's type first
    assert torch.equal((x * 1.7).float(), (x32 * 1.7).to(d).float())
    assert torch.equal((x / 3).float(), (x32 / 3).to(d).float())
    assert torch.equal((x + 1.7).float(), (x32 + torch.tensor(1.7).to(d).item()).to(d).float())


# ---- autograd -------------------------------------------------------------------------------

def _mlp(seed: int):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 4))


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_mlp_gradients_match_float32_within_the_format(d):
    m = _mlp(0).to(d)
    ref = _mlp(1)
    ref.load_state_dict({k: v.float() for k, v in m.state_dict().items()})  # the same rounded weights
    x, _ = data(64, 16, dtype=d, seed=5)
    y = torch.tensor(np.random.default_rng(6).integers(0, 4, 64))
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    F.cross_entropy(ref(x.float()), y).backward()
    assert loss.dtype is d
    for (name, p), q in zip(m.named_parameters(), ref.parameters()):
        assert p.grad.dtype is d, name
        # a few roundings deep: relative (norm-wise) error of a few eps, not more
        rel = ((p.grad.float() - q.grad).norm() / q.grad.norm()).item()
        assert rel < 4 * EPS[d], (name, rel / EPS[d])
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    assert all(p.dtype is d for p in m.parameters())


def test_gradient_flows_back_through_casts():
    w = torch.randn(3, requires_grad=True)
    (w.bfloat16() * 2).sum().backward()
    assert w.grad.dtype is torch.float32 and w.grad.tolist() == [2.0, 2.0, 2.0]
    h = torch.randn(3, dtype=torch.half, requires_grad=True)
    (h.float() * 3).sum().backward()
    assert h.grad.dtype is torch.float16 and h.grad.tolist() == [3.0, 3.0, 3.0]


# ---- compiled code agrees with eager mode ---------------------------------------------------

def _program(x, w):
    h = F.gelu(x @ w) * 0.5
    h = F.layer_norm(h, (h.shape[-1],))
    s = h.softmax(-1) / 3 + h.sigmoid()
    return s.sum(0), h.cumsum(1), (h > 0.1).sum(), h.mean() + h.var(1).sum()


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_compiled_matches_eager(d):
    x, _ = data(8, 32, dtype=d, seed=7)
    w, _ = data(32, 16, dtype=d, seed=8)
    eager = _program(x, w)
    compiled = torch.compile(_program)(x, w)
    for e, c in zip(eager, compiled):
        assert c.dtype is e.dtype and torch.equal(c, e)
    # a pointwise kernel large enough to run in pieces on the thread pool
    big, _ = data(512, 256, dtype=d, seed=12)
    chain = lambda v: ((v * 1.7 + 1).sigmoid() / 3 - v).exp().tanh()  # noqa: E731
    assert torch.equal(torch.compile(chain)(big), chain(big))


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_compiled_training_gradients_match_eager(d):
    m = _mlp(2).to(d)
    x, _ = data(32, 16, dtype=d, seed=9)
    y = torch.tensor(np.random.default_rng(10).integers(0, 4, 32))
    F.cross_entropy(m(x), y).backward()
    eager = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    loss = torch.compile(lambda x: F.cross_entropy(m(x), y))(x)
    loss.backward()
    for p, g in zip(m.parameters(), eager):
        assert p.grad.dtype is d
        assert np.allclose(f64(p.grad), f64(g), rtol=EPS[d], atol=EPS[d] * f64(g.abs()).max())


# ---- bit for bit against PyTorch's CPU kernels ----------------------------------------------

@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_bit_for_bit_with_torch(name):
    t = pytest.importorskip("torch")
    d, td = getattr(torch, name), getattr(t, name)
    vals = np.random.default_rng(11).standard_normal((64, 300)).astype(np.float32)
    x, tx = torch.tensor(vals).to(d), t.tensor(vals).to(td)
    assert np.array_equal(x.float().numpy(), tx.float().numpy())  # the same rounding of float32
    exact = {"sum": lambda v: v.sum(), "sum0": lambda v: v.sum(0), "sum1": lambda v: v.sum(1),
             "mean": lambda v: v.mean(1), "cumsum": lambda v: v.cumsum(1), "mul": lambda v: v * 1.7,
             "div": lambda v: v / 3, "add": lambda v: v + 1.7, "var": lambda v: v.var(1)}
    for op, f in exact.items():
        assert np.array_equal(f(x).float().numpy(), f(tx).float().numpy()), op
    # within one unit in the last place: kernels whose float32 math differs in its last bits
    near = {"softmax": lambda v: v.softmax(1), "exp": lambda v: v.exp(), "sigmoid": lambda v: v.sigmoid(),
            "norm": lambda v: v.norm(dim=1)}
    for op, f in near.items():
        a, b = f(x).double().numpy(), f(tx).double().numpy()
        assert np.all(np.abs(a - b) <= EPS[d] * np.abs(b)), op
    # matmul: both round a float32 (or better) accumulation once; where a dot product cancels, the
    # accumulation orders' own errors (K * 2**-24 * |x||x|^T) may show
    a, b = (x @ x.t()).double().numpy(), (tx @ tx.t()).double().numpy()
    ax = np.abs(x.double().numpy())
    assert np.all(np.abs(a - b) <= EPS[d] * np.abs(b) + 2 * 300 * F32_EPS * (ax @ ax.T))


def test_assert_close_defaults_for_low_precision():
    # PyTorch's defaults: float16 rtol 1e-3, bfloat16 rtol 1.6e-2 (atol 1e-5 both)
    x = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    torch.testing.assert_close(x, torch.tensor([1.0078125, 2.0], dtype=torch.bfloat16))
    with pytest.raises(AssertionError, match="not close"):
        torch.testing.assert_close(x, torch.tensor([1.03125, 2.0], dtype=torch.bfloat16))
    h = torch.tensor([1.0, 2.0], dtype=torch.half)
    torch.testing.assert_close(h, torch.tensor([1.0009765625, 2.0], dtype=torch.half))
    with pytest.raises(AssertionError, match="not close"):
        torch.testing.assert_close(h, torch.tensor([1.00390625, 2.0], dtype=torch.half))


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_normalizations_take_float32_parameters_and_keep_the_input_type(d):
    # PyTorch's mixed-type CPU kernels: a float16/bfloat16 input with float32 weights (a module
    # left in float32 under autocast) gives the input's type, computed in float32
    x, x64 = data(6, 8, 5, dtype=d, seed=13)
    w = torch.linspace(0.5, 1.5, 8, requires_grad=True)
    b = torch.linspace(-1, 1, 8)
    y = F.layer_norm(x.transpose(1, 2), (8,), w, b)
    assert_rounded_once(y, F.layer_norm(x64.transpose(1, 2), (8,), w.double(), b.double()), d, atol=1e-5)
    y.float().sum().backward()
    assert w.grad.dtype is torch.float32
    assert F.group_norm(x, 2, w, b).dtype is d
    bn = nn.BatchNorm1d(8)
    assert bn(x).dtype is d and bn.running_mean.dtype is torch.float32
    want = 0.1 * f64(x64.mean((0, 2)))  # momentum 0.1 from zeros: the batch mean, rounded once
    assert np.all(np.abs(f64(bn.running_mean) - want) <= 0.5 * EPS[d] * np.abs(want) + 1e-6)
    with pytest.raises(RuntimeError, match="expect parameter to have scalar type of Float"):
        F.layer_norm(x.transpose(1, 2), (8,), w.double())


@pytest.mark.parametrize("d", LOW, ids=ids)
def test_low_precision_default_dtype(d):
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(d)
        assert torch.tensor([1.5]).dtype is d and torch.ones(2).dtype is d and torch.randn(2).dtype is d
        assert (torch.arange(3) * 1.5).dtype is d and (torch.arange(3) / 2).dtype is d
        assert nn.Linear(2, 2).weight.dtype is d
    finally:
        torch.set_default_dtype(old)
