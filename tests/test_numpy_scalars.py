"""0-d float64 arithmetic in the numpy backend's code is Python float arithmetic (see
``codegen/numpy_scalars``): the same bits as eager mode's numpy float64 ops, zero divisors and
overflow included, and an optimizer's per-parameter bias corrections cost no ufunc call each."""
from __future__ import annotations

import numpy as np

import graphc


def _scalars(*values):
    return [graphc.tensor(v, dtype=graphc.float64) for v in values]


def f(a, b, c, h):
    lr = 1e-3 / (1 - b ** a)                      # Adam's step size, a pow then Python floats
    d = (1 - c) * 0.1 + -a / 3 - h.to(graphc.float64)  # a float32 read exactly as a float64
    big = c * 1e308 * 10                          # overflow to inf, as numpy
    return lr, d, big, a / (c - c), (c - c) / (c - c), -(a * b) / 7.0, (a + 1) * (b - 2)


def test_0d_float64_kernels_are_python_floats_equal_to_eager_bit_for_bit():
    rng = np.random.default_rng(0)
    compiled = graphc.compile(f)
    code = graphc.explain(f, *_scalars(3.0, 0.9, 0.25), graphc.tensor(0.1, dtype=graphc.float32)).code
    assert "_fdiv(" in code and "np.subtract(" not in code and "np.true_divide(" not in code
    with np.errstate(all="ignore"):
        for _ in range(20):
            a, b, c = rng.uniform(-5, 5), rng.uniform(0, 1), rng.standard_normal() * 10.0 ** rng.integers(-8, 8)
            args = (*_scalars(a, b, c), graphc.tensor(rng.standard_normal(), dtype=graphc.float32))
            got, want = compiled(*args), f(*args)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype == graphc.float64 and g.shape == ()
                np.testing.assert_array_equal(g.numpy(), w.numpy())
                assert np.signbit(g.numpy()) == np.signbit(w.numpy())


def test_python_float_results_read_by_numpy_ops_keep_float64():
    # a float64 0-d value read by an op on a float32 0-d array: numpy must see a float64, not a
    # weak Python float (which would make the result float32)
    def g(a, x):
        s = (1 - a) * 3
        return x * s, x.to(graphc.float64) + s

    a, x = graphc.tensor(0.1, dtype=graphc.float64), graphc.tensor(1.7, dtype=graphc.float32)
    for got, want in zip(graphc.compile(g)(a, x), g(a, x)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_an_adamw_groups_bias_corrections_call_numpy_only_for_pow_and_the_step_count():
    graphc.manual_seed(0)
    model = graphc.nn.Linear(3, 2)
    opt = graphc.optim.AdamW(model.parameters(), lr=1e-2)
    x = graphc.randn(4, 3)

    def step(x):
        opt.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        return loss.detach()

    step(x)  # the state exists: the traced step reads the step counts
    code = graphc.explain(step, x).code
    sections = code.split("# -- ")
    scalar = [s for s in sections if s.split("\n")[0].endswith("pointwise over []")]
    calls = [ln.strip().split(" = ")[-1] for s in scalar for ln in s.split("\n")[1:]
             if "np." in ln and not ln.strip().startswith("#")]
    assert scalar and calls
    # for the group (its two parameters count the same steps): the float32 step count + 1 (with a
    # float32 constant, not a Python int), beta1 ** step, beta2 ** step and sqrt(1 - beta2 ** step)
    # as numpy's power; the rest is Python float arithmetic
    assert all(c.startswith(("np.power(", "np.add(")) for c in calls), calls
    assert sum(c.startswith("np.power(") for c in calls) == 3, calls
    adds = [c for c in calls if c.startswith("np.add(")]
    assert len(adds) == 1 and ", _k" in adds[0], calls
