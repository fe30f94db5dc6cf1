"""Every case of ``op_cases.CASES`` (each primitive, composite and public op) compiled with the
Triton backend on CPU tensors, i.e. every generated kernel run under Triton's interpreter, against
eager mode: forward outputs and gradients, float32 (the GPU's working dtype). Also the dtype
promotion table of binary ops with tensor and Python-scalar operands."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from graphc.ir import PRIMITIVES

pytest.importorskip("triton", reason="the Triton backend needs the triton package (Linux)")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_cases import CASES  # noqa: E402
from test_compile_ops import _BINARY, _check_case, _has_float, _params  # noqa: E402
from test_compile_ops import test_dtype_promotion_matches_eager as _promotion  # noqa: E402

from graphc.codegen import triton_kernels  # noqa: E402

pytestmark = pytest.mark.triton
# fused kernels sum in another order than numpy: float32 results differ in the last bits
F32_KERNELS = dict(rtol=2e-5, atol=2e-5)


def _complex(case) -> bool:
    """The case reads or makes complex values: one of its primitives does, whatever it is given
    (their records say so). Triton has no complex type: the backend refuses graphs with complex
    values (test_complex_fft.py)."""
    return any(PRIMITIVES[n].complex_only for n in case.prims)


def _refused(case) -> bool:
    """The Triton backend refuses one of the case's primitives, with its reason (LAPACK
    factorizations without a CuPy counterpart; tests/test_linalg_lu.py checks the refusal)."""
    return any(PRIMITIVES[n] in triton_kernels.UNSUPPORTED for n in case.prims)


@pytest.mark.parametrize("case", _params([c for c in CASES if _has_float(c) and not _complex(c) and not _refused(c)]))
def test_triton_matches_eager_float32(case):
    _check_case(case, np.float32, F32_KERNELS, backend="triton")


@pytest.mark.parametrize("op", list(_BINARY))
def test_triton_dtype_promotion_matches_eager(op):
    _promotion(op, backend="triton")
