"""The eager fast paths skip reading thread-local state while no thread has changed it
(``AlteredThreads``): the counts must stay exact, and a thread that did change its state must
still see it while other threads see the defaults."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import graphc
from graphc.autograd import grad_mode
from graphc.ir import primitive
from threads import run_together


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up quickly
    yield
    sys.setswitchinterval(old)


def _counts() -> tuple[int, int]:
    return primitive._dispatching_threads.count, grad_mode.altered.count


@pytest.fixture(autouse=True)
def baseline():
    """The counts before each test (a thread of an earlier test may have ended altered)."""
    return _counts()


def test_counts_return_to_zero_after_every_switch(baseline):
    d0, g0 = baseline
    x = graphc.ones(3, requires_grad=True)
    with graphc.no_grad():
        assert grad_mode.altered.count == g0 + 1
        with graphc.enable_grad():
            assert grad_mode.altered.count == g0  # back to the defaults inside
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with graphc.inference_mode():
        assert grad_mode.altered.count == g0 + 1
        assert (x * 2).is_inference()
    assert not (x * 2).is_inference()
    graphc.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        graphc.set_grad_enabled(True)
    with graphc.autocast("cpu", dtype=graphc.bfloat16):
        assert primitive._dispatching_threads.count == d0 + 1
        assert (graphc.ones(2, 2) @ graphc.ones(2, 2)).dtype is graphc.bfloat16
    assert graphc.compile(lambda t: t * 2 + 1)(graphc.ones(3)).tolist() == [3.0, 3.0, 3.0]
    assert _counts() == baseline
    assert (x * 2).requires_grad and (graphc.ones(2, 2) @ graphc.ones(2, 2)).dtype is graphc.float32


def test_a_thread_under_no_grad_leaves_the_others_recording(fast_switching, baseline):
    x = graphc.tensor(np.arange(4.0, dtype=np.float32), requires_grad=True)

    def work(i: int) -> None:
        for _ in range(200):
            if i % 2:
                with graphc.no_grad():
                    y = x * 3 + 1
                    assert not y.requires_grad and y.grad_fn is None
                with graphc.inference_mode():
                    assert (x + 1).is_inference()
            else:
                y = x * 3 + 1
                assert y.requires_grad and y.grad_fn is not None and not y.is_inference()
    assert run_together(work, 4) == []
    assert _counts() == baseline


def test_an_eager_thread_computes_while_another_traces_and_autocasts(fast_switching, baseline):
    a = graphc.tensor(np.eye(3, dtype=np.float32))
    wrong: list[str] = []

    def work(i: int) -> None:
        for k in range(30):
            if i == 0:
                out = graphc.compile(lambda t, k=k: t @ t + k)(a)  # a fresh trace every time
                if out.tolist() != (np.eye(3) + k).tolist():
                    wrong.append("traced")
            elif i == 1:
                with graphc.autocast("cpu", dtype=graphc.bfloat16):
                    if (a @ a).dtype is not graphc.bfloat16:
                        wrong.append("autocast")
            else:
                r = a @ a + 1.0  # the eager thread: no trace, no autocast, grad defaults
                if (r.dtype is not graphc.float32 or type(r) is not graphc.Tensor
                        or r.tolist() != (np.eye(3) + 1).tolist()):
                    wrong.append("eager")
    assert run_together(work, 3) == []
    assert wrong == []
    assert _counts() == baseline


def test_a_thread_ending_with_a_switch_changed_keeps_only_its_own_state(baseline):
    done = threading.Event()

    def leave_grad_off() -> None:
        graphc.set_grad_enabled(False)  # never set back: the thread ends with grad mode off
        done.set()
    t = threading.Thread(target=leave_grad_off)
    t.start()
    t.join()
    assert done.is_set()
    x = graphc.ones(2, requires_grad=True)
    assert grad_mode.altered.count == baseline[1] + 1  # the ended thread still counts
    assert (x * 2).requires_grad  # this thread's grad mode is its own
    grad_mode.altered.changed(True, False)  # (forget the ended thread, for the other tests)
    assert _counts() == baseline


@pytest.mark.parametrize("dtype", [graphc.float16, graphc.float32, graphc.float64])
def test_relu_clips_with_typed_bounds_keeping_signed_zero_and_nan(dtype):
    # relu clips against 0-d bounds of the operand's dtype made once (not Python floats): the
    # result keeps the dtype, -0.0 stays -0.0 (as PyTorch's relu), nan stays nan, -inf becomes 0
    x = graphc.tensor([-0.0, -1.5, float("nan"), 2.0, float("inf"), -float("inf")], dtype=dtype)
    r = graphc.relu(x)
    assert r.dtype is dtype
    got = r.numpy()
    np.testing.assert_array_equal(got, np.array([0.0, 0.0, np.nan, 2.0, np.inf, 0.0]))
    assert list(np.signbit(got[:2])) == [True, False]
    assert graphc.relu(graphc.tensor([-3, 0, 4])).tolist() == [0, 0, 4]


_DUAL_AFTER_PLAIN_OPS = """
import graphc
import graphc.autograd.forward_ad as fwAD
from graphc.ir import primitive
from graphc.tensors import Tensor
x = graphc.tensor([0.5, 1.0])
y = (x * 2).sin()  # plain ops first: bind skips asking eager tensors for a handler
assert Tensor in primitive._SKIP_TYPES
with fwAD.dual_level():
    dual = fwAD.make_dual(x, graphc.tensor([1.0, 3.0]))
    assert Tensor not in primitive._SKIP_TYPES  # from now on bind asks each tensor
    out = fwAD.unpack_dual((dual * 2).sin())
    want = (x * 2).cos() * 2 * graphc.tensor([1.0, 3.0])
    assert graphc.allclose(out.tangent, want), (out.tangent, want)
print("ok")
"""


def test_a_dual_tensor_made_after_plain_ops_still_reaches_its_handler():
    # bind stops asking eager tensors for a handler while no instance carries its own: the first
    # dual tensor must turn that off (in a fresh process: another test may have made one already)
    import subprocess
    out = subprocess.run([sys.executable, "-c", _DUAL_AFTER_PLAIN_OPS], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
