"""The Triton backend end to end, on the CPU: ``compile(..., backend="triton")`` on CPU tensors
runs every generated kernel under Triton's interpreter. Models forward and backward, and a whole
training loop, must equal the numpy backend (the reference backend). tests/test_triton_aot.py
compiles every kernel the suite generated ahead of time for Hopper (sm_90)."""
from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F

pytest.importorskip("triton", reason="the Triton backend needs the triton package (Linux)")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_compile_models import CNN, AttentionBlock, mlp  # noqa: E402

pytestmark = pytest.mark.triton
TOL = dict(rtol=2e-4, atol=2e-5)


class LSTMHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


MODELS = {
    "mlp": (mlp, (5, 6)),
    "cnn": (CNN, (2, 2, 8, 8)),
    "attention": (AttentionBlock, (2, 4, 8)),
    "lstm": (LSTMHead, (2, 3, 4)),
}


def _run(model, backend: str, x):
    m = copy.deepcopy(model)
    c = graphc.compile(m, backend=backend)
    out = c(x)
    out.square().sum().backward()
    return out, {k: p.grad for k, p in m.named_parameters()}, {k: b for k, b in m.named_buffers()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_forward_backward_equals_numpy_backend(name):
    make, shape = MODELS[name]
    graphc.manual_seed(0)
    model = make()
    x = graphc.randn(*shape)
    want, want_g, want_b = _run(model, "numpy", x)
    got, got_g, got_b = _run(model, "triton", x)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), **TOL)
    assert got_g.keys() == want_g.keys()
    for k in want_g:
        np.testing.assert_allclose(got_g[k].numpy(), want_g[k].numpy(), **TOL, err_msg=k)
    for k in want_b:  # batch-norm statistics written back by the compiled code
        np.testing.assert_allclose(got_b[k].numpy(), want_b[k].numpy(), **TOL, err_msg=k)


def test_training_loop_equals_numpy_backend():
    """Four SGD-momentum steps of a compiled model + loss, both backends in lockstep."""
    graphc.manual_seed(1)
    base = mlp()
    x, y = graphc.randn(5, 6), graphc.randint(0, 3, (5,))
    losses = {}
    params = {}
    for backend in ("numpy", "triton"):
        m = copy.deepcopy(base)
        opt = graphc.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

        @graphc.compile(backend=backend)
        def loss_fn(x, y):
            return F.nll_loss(m(x), y)

        losses[backend] = []
        for _ in range(4):
            opt.zero_grad()
            loss = loss_fn(x, y)
            loss.backward()
            opt.step()
            losses[backend].append(loss.item())
        params[backend] = [p.detach().numpy().copy() for p in m.parameters()]
    np.testing.assert_allclose(losses["triton"], losses["numpy"], **TOL)
    assert losses["numpy"][-1] < losses["numpy"][0]
    for a, b in zip(params["triton"], params["numpy"]):
        np.testing.assert_allclose(a, b, **TOL)


def test_generated_code_is_readable_and_shown_by_explain():
    f = graphc.compile(lambda x, w: F.relu(x @ w + 1.0).sum(1), backend="triton")  # mm_ then red_
    x, w = graphc.randn(4, 3), graphc.randn(3, 5)
    np.testing.assert_allclose(f(x, w).numpy(), F.relu(x @ w + 1.0).sum(1).numpy(), **TOL)
    text = str(graphc.explain(f, x, w))
    assert "@triton.jit" in text and "def mm_" in text and "def red_" in text
    assert "_launch('mm_" in text   # the host function launching it


def test_only_large_kernels_are_autotuned():
    """Tuning compiles every candidate config: kernels over fewer than TUNE_MIN_ELEMENTS run
    with the renderer's default blocks instead (most of a training step's kernels)."""
    from graphc.codegen import triton_codegen
    from graphc.codegen.scheduler import build_schedule
    from graphc.ir.printer import parse_graph
    from graphc.runtime.triton_runtime import worth_tuning

    def kernels(m: int, n: int) -> dict:
        g = parse_graph(f"graph f(%x: f32[{m},{n}], %w: f32[{n},{n}]) {{\n"
                        f"  %0: f32[{m},{n}] = exp(%x)\n"
                        f"  %1: f32[{m}] = sum(%x) dims=[1] keepdim=False\n"
                        f"  %2: f32[{m},{n}] = matmul(%x, %w)\n"
                        f"  return %0, %1, %2\n}}\n")
        rendered = triton_codegen.render_kernels(build_schedule(g, triton_codegen.TARGET), "ieee")
        return {r.kind: worth_tuning(r) for r in rendered.values()}

    assert kernels(8, 64) == {"pointwise": False, "reduction": False, "matmul": False}
    assert kernels(2048, 1024) == {"pointwise": False, "reduction": False, "matmul": False}
    assert kernels(4096, 4096) == {"pointwise": True, "reduction": True, "matmul": True}


def _x(*shape):
    return graphc.randn(*shape, generator=graphc.Generator().manual_seed(sum(shape)))


# Each once gave a wrong answer or a crash on the Triton backend (found in review)
TRICKY = {
    # a matmul operand also read by the epilogue, and A is B: separate kernel inputs
    "residual-linear": (lambda x, w, b: x + F.linear(x, w, b), lambda: (_x(4, 4), _x(4, 4), _x(4))),
    "matmul-plus-operand": (lambda x, w: x @ w + w, lambda: (_x(4, 4), _x(4, 4))),
    "x@x-relu-batched": (lambda x: (x @ x).relu(), lambda: (_x(2, 3, 3),)),
    # a reduced value (no keepdim) broadcast back over the domain aligns with trailing dims
    "minus-amax-no-keepdim": (lambda x: x - x.amax(1), lambda: (_x(4, 4),)),
    "minus-sum-exp-sum": (lambda x: (x - x.sum(1)).exp().sum(1), lambda: (_x(4, 4),)),
    # a domain-shaped value constant along the reduced axis is still stored over all of them
    "expand-then-reduce": (lambda r: r.expand(3, 4) * r.expand(3, 4).sum(0, keepdim=True), lambda: (_x(1, 4),)),
    "expand-softmax": (lambda r: r.expand(3, 4).softmax(0), lambda: (_x(1, 4),)),
    # a returned view of a copy kernel's buffer must not live in the pooled workspace
    "transpose-reshape-output": (lambda x: (x * 2).t().reshape(-1), lambda: (_x(2, 3),)),
    # a library result that is not C-contiguous (cumsum of a transpose) read by a kernel
    "strided-extern-result": (lambda x: x.t().cumsum(0) + 1, lambda: (_x(4, 3),)),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_programs_equal_eager_on_both_backends(name):
    fn, make = TRICKY[name]
    for backend in ("numpy", "triton"):
        compiled = graphc.compile(fn, backend=backend)
        first_args, second_args = make(), [a * 10 for a in make()]
        first = compiled(*first_args)
        second = compiled(*second_args)   # must not overwrite what the first call returned
        np.testing.assert_allclose(first.numpy(), fn(*first_args).numpy(), **TOL, err_msg=backend)
        np.testing.assert_allclose(second.numpy(), fn(*second_args).numpy(), rtol=2e-4, atol=2e-4,
                                   err_msg=backend)


def test_gpu_launcher_prepares_once_then_only_calls(monkeypatch):
    """On a GPU a kernel's config, module and grid are fixed at its first launch; later launches
    only wrap the pointers (checked with a stand-in kernel and arrays that look like CuPy's)."""
    from graphc.codegen import triton_codegen
    from graphc.codegen.scheduler import build_schedule
    from graphc.ir.printer import parse_graph
    from graphc.runtime import triton_runtime

    g = parse_graph("graph f(%x: f32[8,4]) {\n  %0: f32[8,4] = exp(%x)\n  return %0\n}\n")
    (rendered,) = triton_codegen.render_kernels(build_schedule(g, triton_codegen.TARGET), "ieee").values()
    calls, loads = [], []

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kw: calls.append((grid, [a.data_ptr() for a in args[:2]], kw))

    def load(r, interpret):
        loads.append(interpret)
        return Kernel()

    class DeviceArray:  # what the runtime reads of a CuPy array
        __module__ = "cupy._core.core"

        def __init__(self, ptr):
            self.dtype, self.data = np.dtype(np.float32), type("Mem", (), {"ptr": ptr})()

    monkeypatch.setattr(triton_runtime, "load", load)
    launcher = triton_runtime.Launcher(rendered)
    launcher([DeviceArray(100)], [DeviceArray(200)])
    launcher([DeviceArray(300)], [DeviceArray(400)])
    assert loads == [False]                       # compiled (not interpreted) module, loaded once
    assert [c[1] for c in calls] == [[100, 200], [300, 400]]
    grid, _, kw = calls[0]
    assert grid == rendered.grid() and kw["enable_fp_fusion"] is True
    assert kw["XBLOCK"] == rendered.constexprs["XBLOCK"]   # small kernel: the default blocks, no tuning
