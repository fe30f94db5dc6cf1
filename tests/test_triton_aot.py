"""Every Triton kernel the test session generated, compiled ahead of time for Hopper (sm_90) to
PTX and cubin, which Triton does without a GPU: a kernel that runs under the interpreter but
would not build for the GPU fails CI. conftest.py runs this module after all the others."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import pytest

pytest.importorskip("triton", reason="the Triton backend needs the triton package (Linux)")

pytestmark = [pytest.mark.triton, pytest.mark.aot_last]


def _build(rendered) -> str | None:
    """In a worker process: None when the kernel built to sm_90 PTX, else what went wrong."""
    from graphc.runtime import triton_runtime
    try:
        ptx = triton_runtime.compile_aot(rendered, arch=90).asm["ptx"]
    except Exception as e:  # noqa: BLE001 - reported with the kernel's source below
        return f"{type(e).__name__}: {e}"
    return None if ".target sm_90" in ptx else "no sm_90 PTX"


def test_every_generated_kernel_compiles_ahead_of_time_for_hopper():
    import graphc
    import graphc.nn as nn
    from graphc.runtime import triton_backend
    # kernels of its own too (a training step of a small MLP), when run alone
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3), nn.LogSoftmax(1))
    step = graphc.compile(lambda x, y: nn.functional.nll_loss(model(x), y), backend="triton")
    step(graphc.randn(4, 6), graphc.tensor([0, 2, 1, 0])).backward()
    rendered = triton_backend.rendered_kernels()
    assert {r.kind for r in rendered} == {"pointwise", "reduction", "matmul"}
    with ProcessPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        problems = [(r, why) for r, why in zip(rendered, pool.map(_build, rendered, chunksize=16)) if why]
    assert not problems, "\n\n".join(f"{r.name}: {why}\n{r.source}" for r, why in problems[:3])
