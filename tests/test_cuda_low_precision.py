"""float16 and bfloat16 on the cuda device: compiled Triton kernels compute in float32 inside and
store the low-precision type, so they agree with CPU eager mode (which computes in float32 and
rounds once) to the format's precision; autocast's compiled matmul runs in the low type. In CI the
kernels run under Triton's interpreter on the CuPy stand-in; ``GRAPHC_REAL_CUDA=1 pytest -m cuda``
(benchmarks/gpu_check.py) runs them on the GPU."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import graphc as torch
import graphc.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cuda_compile import kernels  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.cuda
EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}


@pytest.fixture(autouse=True)
def _interpreter_bf16_dot(monkeypatch):
    """Triton's interpreter stores bfloat16 as its uint16 bits and its ``tl.dot`` multiplies those
    integers (triton/runtime/interpreter.py ``create_dot`` converts only 8-bit floats): under the
    interpreter, widen bfloat16 operands to float32 first, as the GPU's tensor cores do (exactly:
    a product of two bfloat16 values fits in float32). On a real GPU nothing is patched."""
    if os.environ.get("GRAPHC_REAL_CUDA") == "1":
        return
    import triton.language as tl
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    dot = builder.create_dot

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        if a.dtype == tl.bfloat16 or b.dtype == tl.bfloat16:
            widen = lambda h: interpreter.TensorHandle(  # noqa: E731
                (h.data.astype(np.uint32) << 16).view(np.float32), tl.float32)
            a, b = widen(a), widen(b)
        return dot(self, a, b, d, input_precision, max_num_imprecise_acc)

    monkeypatch.setattr(builder, "create_dot", create_dot)


def _block(x, w):
    h = F.layer_norm(x * w + 0.5, (x.shape[-1],))
    return F.softmax(h, dim=-1), (h * x).sum(-1), F.gelu(h)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_compiled_kernels_compute_in_float32_and_store_the_low_type(kernels, dtype):
    cuda, dt = kernels, getattr(torch, dtype)
    torch.manual_seed(0)
    x, w = torch.randn(16, 40).to(dt), torch.randn(40).to(dt)
    want = _block(x, w)  # CPU eager: float32 inside, rounded once
    got = torch.compile(_block)(x.to(cuda), w.to(cuda))
    tol = 4 * EPS[dtype]
    for g, e in zip(got, want):
        assert g.device.type == "cuda" and g.dtype is dt
        np.testing.assert_allclose(g.cpu().float().numpy(), e.float().numpy(), rtol=tol, atol=tol)
    # and against float32 itself, within the format's rounding of inputs and result
    ref = _block(x.float(), w.float())
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.cpu().float().numpy(), r.numpy(), rtol=8 * EPS[dtype], atol=8 * EPS[dtype])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_compiled_matmul_under_autocast_on_cuda(kernels, dtype):
    cuda, dt = kernels, getattr(torch, dtype)
    torch.manual_seed(0)
    a, b = torch.randn(8, 32), torch.randn(32, 4)

    def f(a, b):
        with torch.autocast("cuda", dtype=dt):
            return a @ b, (a @ b).float().sum()

    got, total = torch.compile(f)(a.to(cuda), b.to(cuda))
    assert got.dtype is dt and total.dtype is torch.float32
    # each operand rounded to the format (by at most one unit in the last place, whichever rounding
    # the device's conversion uses), products summed in float32, the result rounded once
    an, bn = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    exact = an @ bn
    bound = 2 * EPS[dtype] * (np.abs(an) @ np.abs(bn)) + EPS[dtype] * np.abs(exact) + 1e-6
    err = np.abs(got.cpu().float().numpy() - exact)
    assert np.all(err <= bound), (err - bound).max()
    # (inside a kernel the low-precision product stays in float32 until it is stored, so the fused
    # float32 sum may skip the product's rounding: each element by at most half a unit in the last
    # place of the format, so the sums within EPS of the sum of magnitudes, not of the sum, which
    # cancels)
    stored = got.float().cpu().numpy().astype(np.float64)
    assert abs(float(total) - stored.sum()) <= EPS[dtype] * np.abs(stored).sum() + 1e-6
