"""Whole models, eager vs graphc.compile: an MLP, a CNN (conv, pooling, batch norm) and attention
blocks, forward and backward, in float32 (rtol 1e-5) and float64 (rtol 1e-10); batch-norm running
statistics written back by the compiled code; a few optimizer steps of training in lockstep."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F

TOL = {graphc.float32: dict(rtol=1e-5, atol=1e-6), graphc.float64: dict(rtol=1e-10, atol=1e-12)}


def mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.GELU(), nn.LayerNorm(8),
                         nn.Linear(8, 3), nn.LogSoftmax(dim=1))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # no bias before batch norm: its gradient is 0 up to rounding, which Adam would amplify
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(6, momentum=0.3)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = F.avg_pool2d(F.silu(self.bn2(self.conv2(x))), 2)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: multi-head self-attention and an MLP, with residuals."""

    def __init__(self, d: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(approximate="tanh"), nn.Linear(2 * d, d))

    def forward(self, x, mask=None):
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln2(x))


class HandAttention(nn.Module):
    """Attention written with matmuls and softmax, plus scaled_dot_product_attention (causal)."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
        manual = scores.softmax(-1) @ v
        causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(manual + causal)


MODELS = {
    "mlp": (mlp, (5, 6)),
    "cnn": (CNN, (3, 2, 8, 8)),
    "attention": (AttentionBlock, (2, 5, 8)),
    "hand-attention": (HandAttention, (2, 4, 8)),
    "transformer-layer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), (2, 5, 8)),
}


def _pair(make, dtype):
    graphc.manual_seed(0)
    eager = make().to(dtype)
    compiled_model = copy.deepcopy(eager)
    return eager, compiled_model, graphc.compile(compiled_model)


def _assert_close(got, want, tol, what):
    got, want = np.asarray(got), np.asarray(want)
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=what)


@pytest.mark.parametrize("dtype", [graphc.float32, graphc.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_forward_backward_and_buffers_match_eager(name, dtype):
    make, shape = MODELS[name]
    eager, model, compiled = _pair(make, dtype)
    tol = TOL[dtype]
    rng = np.random.default_rng(5)
    for step in range(2):   # the second call runs the cached code (and reads updated buffers)
        x = graphc.tensor(rng.standard_normal(shape)).to(dtype)
        xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
        ye, yc = eager(xe), compiled(xc)
        _assert_close(yc.detach().numpy(), ye.detach().numpy(), tol, f"{name} output, call {step}")
        g = graphc.tensor(rng.uniform(0.5, 1.5, size=tuple(ye.shape))).to(dtype)
        ye.backward(g)
        yc.backward(g)
        _assert_close(xc.grad.numpy(), xe.grad.numpy(), tol, f"{name} input gradient")
        for (pname, p), q in zip(eager.named_parameters(), model.parameters()):
            _assert_close(q.grad.numpy(), p.grad.numpy(), tol, f"{name} gradient of {pname}")
        for (bname, b), c in zip(eager.named_buffers(), model.buffers()):
            _assert_close(c.numpy(), b.numpy(), tol, f"{name} buffer {bname}")
    entry = next(iter(compiled._compiled.cache.values()))
    assert entry.eager_reason is None and entry.backward is not None
    assert compiled._compiled.recompiles == 0
    if name == "cnn":
        assert {id(t) for t in entry.mutated} == {id(b) for b in model.buffers()}  # bn1, bn2 statistics
        assert int(model.bn2.num_batches_tracked) == 2
    # eval mode: running statistics are read, not written; a new specialization
    eager.eval()
    compiled.eval()
    with graphc.no_grad():
        x = graphc.tensor(rng.standard_normal(shape)).to(dtype)
        _assert_close(compiled(x).numpy(), eager(x).numpy(), tol, f"{name} eval output")
    assert compiled._compiled.recompiles == 1   # train -> eval
    for (bname, b), c in zip(eager.named_buffers(), model.buffers()):
        _assert_close(c.numpy(), b.numpy(), tol, f"{name} buffer {bname} after eval")


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_training_steps_in_lockstep(opt_name):
    eager, model, compiled = _pair(CNN, graphc.float32)
    make_opt = {"SGD": lambda ps: graphc.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4),
                "Adam": lambda ps: graphc.optim.Adam(ps, lr=1e-2)}[opt_name]
    opt_e, opt_c = make_opt(eager.parameters()), make_opt(model.parameters())
    rng = np.random.default_rng(6)
    x = graphc.tensor(rng.standard_normal((4, 2, 8, 8)).astype(np.float32))
    target = graphc.tensor(np.array([0, 2, 1, 2]))

    def step(fn, opt):
        opt.zero_grad()
        loss = F.cross_entropy(fn(x), target)
        loss.backward()
        opt.step()
        return float(loss)

    losses = [(step(eager, opt_e), step(compiled, opt_c)) for _ in range(4)]
    for le, lc in losses:
        assert abs(le - lc) <= 1e-4 * max(1.0, abs(le)), losses
    assert losses[-1][1] < losses[0][1]
    for p, q in zip(eager.parameters(), model.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-4, atol=1e-5)
    for b, c in zip(eager.buffers(), model.buffers()):
        np.testing.assert_allclose(c.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    assert compiled._compiled.recompiles == 0


def test_whole_training_step_compiled_with_loss_and_attention_mask():
    """The function compiled is the loss: model call, cross entropy; a boolean attention mask
    and integer targets are inputs."""
    graphc.manual_seed(3)
    block = AttentionBlock().double()
    ref = copy.deepcopy(block)
    head = nn.Linear(8, 4).double()
    ref_head = copy.deepcopy(head)
    mask = graphc.tensor(np.triu(np.ones((5, 5), dtype=bool), 1))

    def loss_fn(m, h, x, t):
        return F.cross_entropy(h(m(x, mask)).reshape(-1, 4), t.reshape(-1))

    compiled = graphc.compile(lambda x, t: loss_fn(block, head, x, t), fullgraph=True)
    rng = np.random.default_rng(8)
    x = graphc.tensor(rng.standard_normal((2, 5, 8)))
    t = graphc.tensor(rng.integers(0, 4, size=(2, 5)))
    le, lc = loss_fn(ref, ref_head, x, t), compiled(x, t)
    np.testing.assert_allclose(float(lc), float(le), rtol=1e-12)
    le.backward()
    lc.backward()
    for p, q in zip(list(ref.parameters()) + list(ref_head.parameters()),
                    list(block.parameters()) + list(head.parameters())):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_dropout_in_compiled_code_is_random_per_call_and_seeded():
    model = nn.Sequential(nn.Linear(16, 64), nn.Dropout(0.5))
    compiled = graphc.compile(model)
    x = graphc.ones(8, 16)
    with graphc.no_grad():
        graphc.manual_seed(4)
        a = compiled(x).numpy()
        b = compiled(x).numpy()
        graphc.manual_seed(4)
        a2 = compiled(x).numpy()
        model.eval()
        full = model(x).numpy()
        np.testing.assert_array_equal(compiled(x).numpy(), full)
    assert not np.array_equal(a == 0, b == 0)            # a fresh mask per call
    np.testing.assert_array_equal(a, a2)                 # manual_seed makes it reproducible
    kept = a != 0
    assert 0.35 < kept.mean() < 0.65
    np.testing.assert_allclose(a[kept], 2 * full[kept], rtol=1e-6)   # scaled by 1 / (1 - p)


@pytest.mark.parametrize("dtype", [graphc.float32, graphc.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (2, 3), (64, 512)])
def test_rand_uniform_is_numpys_generator_stream(shape, dtype):
    """A key's uniforms are numpy's Generator(PCG64([key, stream])).random numbers, drawn in the
    requested type (float32: one 32-bit draw each)."""
    from graphc.ir import prims as P
    key, stream = np.array([-5, 2**62 + 3], np.int64), 2
    want = np.random.Generator(np.random.PCG64([2**64 - 5, 2**62 + 3, stream])).random(shape, dtype=dtype.np)
    got = P.rand_uniform.impl(key, shape=shape, dtype=dtype, stream=stream)
    assert got.dtype == dtype.np
    np.testing.assert_array_equal(got, want)


def test_dropout_mask_compiled_equals_eager_under_a_seed():
    """A training step's dropout draws the same mask compiled as eagerly, under one seed."""
    model = nn.Sequential(nn.Linear(16, 512), nn.Dropout(0.2))
    x = graphc.randn(64, 16)

    def f(x):
        return model(x) * 1.0  # an intermediate: the draw goes into a workspace buffer

    graphc.manual_seed(6)
    want = [f(x).detach().numpy() for _ in range(2)]
    compiled = graphc.compile(f)
    graphc.manual_seed(6)
    got = [compiled(x).detach().numpy() for _ in range(2)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g == 0, w == 0)
        np.testing.assert_allclose(g, w, rtol=1e-6)
    assert not np.array_equal(got[0] == 0, got[1] == 0)


def test_batch_norm_cumulative_average_matches_eager():
    """momentum=None divides by num_batches_tracked, read with .item(): a value that changes every
    call. It must not be baked into the graph (a graph break here); results equal eager."""
    graphc.manual_seed(7)
    eager = nn.BatchNorm1d(3, momentum=None)
    model = copy.deepcopy(eager)
    compiled = graphc.compile(model)
    rng = np.random.default_rng(9)
    with pytest.warns(UserWarning, match="reads the values of a parameter or buffer"):
        for _ in range(3):
            x = graphc.tensor(rng.standard_normal((4, 3)).astype(np.float32))
            np.testing.assert_allclose(compiled(x).detach().numpy(), eager(x).detach().numpy(), rtol=1e-5)
    for b, c in zip(eager.buffers(), model.buffers()):
        np.testing.assert_allclose(c.numpy(), b.numpy(), rtol=1e-6)
    assert int(model.num_batches_tracked) == 3
