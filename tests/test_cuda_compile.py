"""Compiled code on a real GPU: ``graphc.compile`` of functions and models on cuda tensors picks
the Triton backend; results and gradients equal eager mode on the CPU.

On a GPU (``GRAPHC_REAL_CUDA=1 python -m pytest -m cuda``; benchmarks/gpu_check.py runs them)
the kernels run compiled. In CI, CuPy is the stand-in tests/fake_cupy.py, whose arrays have no
device pointers: there the ``kernels`` fixture runs each launch under Triton's interpreter on the
stand-in's host memory, so everything else (device choice, guards, allocation and extern calls
on the device's array module, results on the device) is still what runs.
"""
from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_compile_models import CNN, AttentionBlock, mlp  # noqa: E402
from test_triton_compile import LSTMHead  # noqa: E402

pytestmark = pytest.mark.cuda
TOL = dict(rtol=2e-4, atol=2e-5)


@pytest.fixture
def kernels(cuda, monkeypatch):
    """The cuda device; with the CuPy stand-in, kernel launches go to the interpreter."""
    if os.environ.get("GRAPHC_REAL_CUDA") != "1":
        from graphc.runtime import triton_runtime
        launch = triton_runtime.launch

        def on_host(rendered, args, outs, config=None):
            return launch(rendered, [a._a for a in args], [o._a for o in outs], config)
        monkeypatch.setattr(triton_runtime, "launch", on_host)
    return cuda

MODELS = {"mlp": (mlp, (5, 6)), "cnn": (CNN, (2, 2, 8, 8)), "attention": (AttentionBlock, (2, 4, 8)),
          "lstm": (LSTMHead, (2, 3, 4))}


def _host(t) -> np.ndarray:
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_model_on_cuda_equals_cpu_eager(kernels, name):
    cuda = kernels
    make, shape = MODELS[name]
    torch.manual_seed(0)
    cpu_model = make()
    gpu_model = copy.deepcopy(cpu_model).to(cuda)
    x = torch.randn(*shape)
    want = cpu_model(x)
    want.square().sum().backward()
    compiled = torch.compile(gpu_model)
    got = compiled(x.to(cuda))
    assert got.device == cuda
    got.square().sum().backward()
    np.testing.assert_allclose(_host(got), _host(want), **TOL)
    for (k, p), (_, q) in zip(cpu_model.named_parameters(), gpu_model.named_parameters()):
        assert q.grad.device == cuda, k
        np.testing.assert_allclose(_host(q.grad), _host(p.grad), **TOL, err_msg=k)
    for (k, b), (_, c) in zip(cpu_model.named_buffers(), gpu_model.named_buffers()):
        np.testing.assert_allclose(_host(c), _host(b), **TOL, err_msg=k)
    code = str(torch.explain(compiled, x.to(cuda)))
    assert "@triton.jit" in code


def test_training_loop_on_cuda_equals_cpu(kernels):
    cuda = kernels
    torch.manual_seed(1)
    base = mlp()
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    losses = {}
    for dev in ("cpu", cuda):
        m = copy.deepcopy(base).to(dev)
        opt = torch.optim.AdamW(m.parameters(), lr=0.01)
        step_loss = torch.compile(lambda x, y: F.nll_loss(m(x), y)) if dev != "cpu" else \
            (lambda x, y: F.nll_loss(m(x), y))
        losses[str(dev)] = []
        for _ in range(5):
            opt.zero_grad()
            loss = step_loss(x.to(dev), y.to(dev))
            loss.backward()
            opt.step()
            losses[str(dev)].append(loss.item())
    np.testing.assert_allclose(losses[str(cuda)], losses["cpu"], **TOL)


def test_pointwise_reduction_and_matmul_kernels_on_cuda(kernels):
    cuda = kernels
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 96)).astype(np.float32)
    b = rng.standard_normal((96, 48)).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32)

    def f(a, b, bias):
        h = F.relu(a @ b + bias)
        return h.softmax(-1), (h * h).sum(0), torch.sigmoid(a).mean(1)

    want = f(*(torch.tensor(v) for v in (a, b, bias)))
    got = torch.compile(f)(*(torch.tensor(v, device=cuda) for v in (a, b, bias)))
    for w, g in zip(want, got):
        assert g.device == cuda
        np.testing.assert_allclose(_host(g), _host(w), **TOL)


def test_device_is_part_of_the_guard(kernels):
    cuda = kernels
    f = torch.compile(lambda x: (x * 2).sum())
    assert f(torch.ones(4)).device.type == "cpu"
    assert f(torch.ones(4, device=cuda)).device == cuda
    assert len(f.cache) == 2


def test_zero_dim_cpu_tensor_joins_cuda_tensors(kernels):
    """As in eager mode (and PyTorch), a 0-dim CPU tensor may be an operand next to cuda tensors,
    as an argument or as a global the function reads."""
    cuda = kernels
    scale = torch.tensor(3.0)
    x = torch.randn(4, 3)
    f = torch.compile(lambda x, s: (x * s + scale).sum(0))
    got = f(x.to(cuda), torch.tensor(2.0))
    assert got.device == cuda
    np.testing.assert_allclose(_host(got), _host((x * 2.0 + 3.0).sum(0)), **TOL)
