"""What a compiled function returns belongs to the caller, as eagerly: a tensor the function made
is new at every call (a caller's in-place change to one call's result reaches no later call),
a tensor the function read from outside is that tensor, and a 0-d result is an array that
in-place ops can write into."""
from __future__ import annotations

import graphc

G = graphc.ones(3)


def test_a_tensor_made_inside_is_new_at_every_call():
    def fn(x):
        ones = graphc.ones(4)
        return x * ones, ones
    c = graphc.compile(fn)
    x = graphc.arange(4.0)
    _, ones = c(x)
    ones.add_(5)
    y, ones2 = c(x)
    assert ones2 is not ones and ones2.tolist() == [1.0] * 4
    assert y.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_global_or_closure_tensor_returned_is_that_tensor():
    held = graphc.zeros(2)

    def fn(x):
        return x + 1, G, held
    c = graphc.compile(fn)
    x = graphc.arange(3.0)
    for _ in range(2):
        _, g, h = c(x)
        assert g is G and h is held


def test_a_0d_result_takes_in_place_ops():
    def fn(x, s):
        return (graphc.ones(4) - x * s).sum() + graphc.zeros(())
    c = graphc.compile(fn)
    x, s = graphc.arange(4.0), graphc.tensor(2.0)
    r = c(x, s)
    r.add_(7.0)  # a numpy scalar as its data made this a TypeError
    assert r.item() == (4 - 12) + 7.0
    assert c(x, s).item() == -8.0
