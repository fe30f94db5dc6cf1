"""A leaf's first gradient becomes .grad without a copy when nothing else holds it, and is copied
whenever something does (another leaf, the user's own gradient tensor, a hook)."""
from __future__ import annotations

import numpy as np

import graphc
import graphc.autograd.engine as engine


def _copies(monkeypatch) -> list:
    """Gradient copies the engine makes for leaves (the count of calls, appended to a list)."""
    made: list = []

    class Counting:
        @staticmethod
        def array(*args, **kwargs):
            made.append(1)
            return np.array(*args, **kwargs)
    monkeypatch.setattr(engine, "array_module", lambda *a: Counting)
    return made


def test_a_fresh_gradient_is_not_copied(monkeypatch):
    made = _copies(monkeypatch)
    w = graphc.randn(3, requires_grad=True)
    (w * 2).sum().backward()
    assert made == []
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])


def test_shared_or_user_owned_gradients_are_copied(monkeypatch):
    made = _copies(monkeypatch)
    a, b = graphc.randn(3, requires_grad=True), graphc.randn(3, requires_grad=True)
    (a + b).sum().backward()  # add passes one gradient tensor to both leaves
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.add_(1)
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, 1.0])

    mine = graphc.ones(3)
    c = graphc.randn(3, requires_grad=True)
    c.backward(mine)  # the user's own tensor reaches the leaf directly
    c.grad.add_(5)
    np.testing.assert_array_equal(mine.numpy(), [1.0, 1.0, 1.0])

    kept = []
    d = graphc.randn(3, requires_grad=True)
    d.register_hook(lambda g: kept.append(g))
    (d * 3).sum().backward()
    d.grad.add_(1)
    np.testing.assert_array_equal(kept[0].numpy(), [3.0, 3.0, 3.0])
    assert len(made) == 4  # a's and b's, c's, d's: each copied
