"""Per-call waste in the numpy backend's generated code: a constant fills its planned buffer
instead of np.full allocating one on every call, a ufunc writing into a planned buffer reads an
expanded operand as it is (no np.broadcast_to), relu's backward writes its bit mask product into
its planned buffer, and a gather's index grid is made once; the results equal eager's, also
when the caller mutates what a call returned and calls again."""
import numpy as np
import pytest

import graphc
from graphc.ir import prims as P
from train_steps import cross_entropy_step


def _body(code: str) -> list[str]:
    """The generated function's statements (module-level constants are made once, at load)."""
    return [ln.strip() for ln in code.splitlines() if ln.startswith("    ") and not ln.strip().startswith("#")]


def _mlp_step():
    graphc.manual_seed(0)
    model = graphc.nn.Sequential(graphc.nn.Linear(12, 64), graphc.nn.ReLU(), graphc.nn.Linear(64, 5))
    opt = graphc.optim.SGD(model.parameters(), lr=0.1)
    return model, cross_entropy_step(model, opt, detach=True)


def test_training_step_code_has_no_per_call_allocation_of_constants_or_broadcasts():
    rng = np.random.default_rng(0)
    x, y = graphc.tensor(rng.standard_normal((64, 12)), dtype=graphc.float32), graphc.tensor(rng.integers(0, 5, 64))
    _, step = _mlp_step()
    body = _body(graphc.explain(graphc.compile(step, fullgraph=True), x, y).code)
    assert not [ln for ln in body if "np.full(" in ln], body      # the loss seed and the zeros: fill
    assert [ln for ln in body if ln.endswith(".fill(1.0)")], body
    assert not [ln for ln in body if "broadcast_to(" in ln and "out=" in ln], body
    wz = [ln for ln in body if "_where_zero(" in ln and ", True" in ln]  # relu's backward, 64x64
    assert wz and all(ln.startswith("_where_zero(") and ln.endswith(")") and ", out=" in ln for ln in wz), wz


def test_compiled_training_step_equals_eager_when_the_caller_mutates_the_loss():
    rng = np.random.default_rng(1)
    x, y = graphc.tensor(rng.standard_normal((64, 12)), dtype=graphc.float32), graphc.tensor(rng.integers(0, 5, 64))
    m_eager, eager = _mlp_step()
    m_comp, step = _mlp_step()
    step = graphc.compile(step, fullgraph=True)
    for _ in range(4):
        want, got = eager(x, y), step(x, y)
        assert float(got) == pytest.approx(float(want), rel=1e-5)
        got.add_(100.0)  # the caller owns what it got: the next call must not see this
    for a, b in zip(m_eager.parameters(), m_comp.parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_results_read_from_constants_and_broadcasts_are_the_callers():
    def fn(x, s):
        ones = graphc.ones(4)
        return x * ones - s.expand(4), (ones - x * s).sum(0, keepdim=True) + graphc.zeros(()), -s.expand(4)

    x, s = graphc.arange(4.0), graphc.tensor(2.0)
    comp = graphc.compile(fn)
    for _ in range(3):
        got, want = comp(x, s), fn(x, s)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
        for g in got:
            g.add_(7.0)  # mutating the results must not change the next call's


def test_gather_grid_is_shared_read_only_and_bounds_keep_their_message():
    x = np.arange(20.0).reshape(4, 5)
    idx = np.array([[4], [0], [2], [1]])
    np.testing.assert_array_equal(P._gather(x, idx, axis=1), np.take_along_axis(x, idx, axis=1))
    grid = P._gather_grid((4, 1), 1)
    assert grid[1] is None and not grid[0].flags.writeable and P._gather_grid((4, 1), 1) is grid
    for bad in (-1, 5):
        idx[2, 0] = bad
        with pytest.raises(RuntimeError, match=f"index {bad} is out of bounds for dimension 1 with size 5"):
            P._gather(x, idx, axis=1)


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_a_pad_fills_its_planned_buffer_and_copies_its_operand_in(dtype):
    # (the reference implementation would allocate and fill a new array on every call)
    def fn(x):
        return graphc.nn.functional.pad(x, (1, 2, 0, 3), value=7) * 2
    rng = np.random.default_rng(4)
    a = rng.integers(-5, 5, (2, 3, 4)).astype(dtype)
    x = graphc.from_numpy(a)
    body = _body(graphc.explain(graphc.compile(fn), x).code)
    assert not [ln for ln in body if "_impl['pad']" in ln], body
    assert [ln for ln in body if ln.endswith("[0:2, 0:3, 1:5] = in_x0")], body
    want = np.pad(a, ((0, 0), (0, 3), (1, 2)), constant_values=7) * 2
    step = graphc.compile(fn)
    for _ in range(2):  # the second call reuses the buffer
        got = step(x).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fn(x).numpy(), want)
