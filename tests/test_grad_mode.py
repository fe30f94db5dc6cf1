"""Grad-mode switches: no_grad, enable_grad, set_grad_enabled and inference_mode, as context
managers, as decorators (with and without parentheses, on functions and generators), nested,
restored on exceptions, and set_grad_enabled(False) as a plain call."""
import threading

import numpy as np
import pytest

import graphc as torch


@pytest.fixture(autouse=True)
def _restore_grad_mode():
    assert torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(True)


def test_no_grad_context():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        y = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    assert (x * 2).requires_grad


def test_enable_grad_inside_no_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        with torch.enable_grad():
            assert torch.is_grad_enabled()
            z = x * 2
        w = x * 2
        assert not torch.is_grad_enabled()
    assert z.requires_grad and not w.requires_grad
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_set_grad_enabled_context_and_nesting():
    with torch.set_grad_enabled(False):
        assert not torch.is_grad_enabled()
        with torch.set_grad_enabled(True):
            assert torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
        with torch.no_grad():
            with torch.set_grad_enabled(True):
                assert torch.is_grad_enabled()
            assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_set_grad_enabled_as_plain_call():
    x = torch.tensor([1.0], requires_grad=True)
    torch.set_grad_enabled(False)
    assert not torch.is_grad_enabled()
    y = x * 2
    torch.set_grad_enabled(True)
    assert torch.is_grad_enabled()
    assert not y.requires_grad
    assert (x * 2).requires_grad


def test_set_grad_enabled_plain_call_inside_no_grad_is_undone_on_exit():
    with torch.no_grad():
        torch.set_grad_enabled(True)
        assert torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_no_grad_decorator():
    x = torch.tensor([1.0], requires_grad=True)

    @torch.no_grad()
    def f(t):
        assert not torch.is_grad_enabled()
        return t * 2

    assert not f(x).requires_grad
    assert torch.is_grad_enabled()
    assert f.__name__ == "f"


def test_bare_decorators():
    @torch.no_grad
    def f():
        return torch.is_grad_enabled()

    @torch.enable_grad
    def g():
        return torch.is_grad_enabled()

    @torch.inference_mode
    def h():
        return torch.is_inference_mode_enabled()

    assert f() is False
    with torch.no_grad():
        assert g() is True
    assert h() is True
    assert torch.is_grad_enabled()


def test_enable_grad_decorator_inside_no_grad():
    x = torch.tensor([1.0], requires_grad=True)

    @torch.enable_grad()
    def f(t):
        return t * 2

    with torch.no_grad():
        y = f(x)
        assert not torch.is_grad_enabled()
    assert y.requires_grad


def test_set_grad_enabled_decorator_does_not_change_mode_at_definition():
    @torch.set_grad_enabled(False)
    def f():
        return torch.is_grad_enabled()

    assert torch.is_grad_enabled()
    assert f() is False
    assert torch.is_grad_enabled()


def test_decorated_generator_keeps_mode_per_step():
    @torch.no_grad()
    def gen():
        for _ in range(2):
            yield torch.is_grad_enabled()

    it = gen()
    assert next(it) is False
    assert torch.is_grad_enabled()  # restored between steps
    assert next(it) is False
    assert list(it) == []
    assert torch.is_grad_enabled()


def test_mode_restored_after_exception():
    for make in (torch.no_grad, lambda: torch.set_grad_enabled(False), torch.inference_mode):
        with pytest.raises(ValueError):
            with make():
                raise ValueError
        assert torch.is_grad_enabled()
        assert not torch.is_inference_mode_enabled()

    @torch.no_grad()
    def boom():
        raise KeyError

    with pytest.raises(KeyError):
        boom()
    assert torch.is_grad_enabled()


def test_grad_mode_objects_are_reusable():
    ng = torch.no_grad()
    for _ in range(2):
        with ng:
            assert not torch.is_grad_enabled()
        assert torch.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = []

    def worker():
        seen.append(torch.is_grad_enabled())

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen == [True]


def test_inference_mode_context():
    x = torch.tensor([1.0], requires_grad=True)
    with torch.inference_mode():
        assert torch.is_inference_mode_enabled()
        assert not torch.is_grad_enabled()
        y = x * 2
        z = torch.ones(2)
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    assert not y.requires_grad
    assert y.is_inference() and z.is_inference()
    assert not x.is_inference() and not torch.ones(1).is_inference()


def test_inference_mode_false_and_nesting():
    with torch.inference_mode():
        with torch.inference_mode(False):
            assert not torch.is_inference_mode_enabled()
            assert torch.is_grad_enabled()
            t = torch.ones(1)
        assert torch.is_inference_mode_enabled()
        assert not torch.is_grad_enabled()
    assert not t.is_inference()
    with torch.inference_mode(mode=False):
        assert not torch.is_inference_mode_enabled()
        assert torch.is_grad_enabled()


def test_inference_mode_decorator():
    @torch.inference_mode()
    def f(t):
        return t * 2, torch.is_inference_mode_enabled()

    x = torch.tensor([1.0], requires_grad=True)
    y, inside = f(x)
    assert inside and y.is_inference() and not y.requires_grad
    assert not torch.is_inference_mode_enabled()


def test_inference_tensor_used_in_normal_graph_without_saving():
    with torch.inference_mode():
        c = torch.ones(2)
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x + c).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_no_grad_inplace_on_leaf_is_allowed():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with torch.no_grad():
        w -= 0.5 * w.grad  # an SGD step
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_array_equal(w.detach().numpy(), [0.0, 0.0])


def test_requires_grad_flag_can_be_set_under_no_grad():
    with torch.no_grad():
        x = torch.ones(2, requires_grad=True)
        y = x * 2
    assert x.requires_grad and not y.requires_grad
