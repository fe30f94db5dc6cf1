"""graphc.nn.init (gains, bounds and standard deviations, checked statistically with a fixed seed)
and graphc.nn.utils (gradient clipping, parameter/vector conversion)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
from graphc.nn import init


def npy(t):
    return t.detach().numpy()


# ---- calculate_gain ---------------------------------------------------------------------------------

def test_calculate_gain():
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid"):
        assert init.calculate_gain(name) == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        init.calculate_gain("foo")
    with pytest.raises(ValueError, match="negative_slope x not a valid number"):
        init.calculate_gain("leaky_relu", "x")


def test_fan_in_fan_out():
    assert init._calculate_fan_in_and_fan_out(torch.empty(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(torch.empty(8, 4, 3, 2)) == (24, 48)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(torch.empty(3))


# ---- distributions ----------------------------------------------------------------------------------

def test_uniform_normal_constant_and_in_place():
    torch.manual_seed(0)
    t = torch.empty(200, 100)
    assert init.uniform_(t, -2.0, 3.0) is t
    a = npy(t)
    assert a.min() >= -2.0 and a.max() <= 3.0 and abs(a.mean() - 0.5) < 0.05
    init.normal_(t, 1.0, 0.5)
    assert abs(npy(t).mean() - 1.0) < 0.01 and abs(npy(t).std() - 0.5) < 0.01
    init.constant_(t, 0.3)
    np.testing.assert_allclose(npy(t), 0.3, rtol=1e-6)
    init.zeros_(t)
    assert np.all(npy(t) == 0)
    init.ones_(t)
    assert np.all(npy(t) == 1)
    # a parameter that requires grad is filled without recording history
    p = nn.Parameter(torch.empty(3, 3))
    init.ones_(p)
    assert p.is_leaf and p.grad_fn is None and p.requires_grad


def test_xavier_bounds_and_std():
    torch.manual_seed(0)
    fan_in, fan_out = 300, 200
    t = torch.empty(fan_out, fan_in)
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    a = npy(t)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    init.xavier_normal_(t)
    assert npy(t).std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    assert abs(npy(t).mean()) < 0.002


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_bounds_and_std(mode):
    torch.manual_seed(0)
    t = torch.empty(64, 32, 3, 3)       # fan_in = 288, fan_out = 576
    fan = 288 if mode == "fan_in" else 576
    init.kaiming_uniform_(t, mode=mode, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    a = npy(t)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    init.kaiming_normal_(t, mode=mode, nonlinearity="relu")
    assert npy(t).std() == pytest.approx(math.sqrt(2 / fan), rel=0.02)
    # the default (a=0, leaky_relu) has the relu gain; a=sqrt(5) is Linear's 1/sqrt(fan_in) bound
    init.kaiming_uniform_(t, a=math.sqrt(5))
    assert np.abs(npy(t)).max() <= 1 / math.sqrt(288)
    assert np.abs(npy(t)).max() > 0.99 / math.sqrt(288)
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(t, mode="fan_avg")


def test_kaiming_zero_element_warns():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(torch.empty(0, 3))


def test_trunc_normal_in_bounds():
    torch.manual_seed(0)
    t = torch.empty(100, 100)
    init.trunc_normal_(t, mean=0.5, std=1.0, a=-0.5, b=1.0)
    a = npy(t)
    assert a.min() >= -0.5 and a.max() <= 1.0
    assert a.min() < -0.49 and a.max() > 0.99
    # mean of N(0.5, 1) truncated to [-0.5, 1]: mu + sigma * (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha))
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    want = 0.5 + (phi(-1.0) - phi(0.5)) / (Phi(0.5) - Phi(-1.0))
    assert a.mean() == pytest.approx(want, abs=0.01)
    init.trunc_normal_(t, std=0.02)  # the common ViT use: [-2, 2] is ~100 std wide
    assert npy(t).std() == pytest.approx(0.02, rel=0.03)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (3, 2, 2, 2)])
def test_orthogonal(shape):
    torch.manual_seed(0)
    t = torch.empty(*shape)
    init.orthogonal_(t, gain=1.5)
    m = npy(t).reshape(shape[0], -1).astype(np.float64) / 1.5
    rows, cols = m.shape
    if rows <= cols:
        np.testing.assert_allclose(m @ m.T, np.eye(rows), atol=1e-5)  # orthonormal rows
    else:
        np.testing.assert_allclose(m.T @ m, np.eye(cols), atol=1e-5)  # orthonormal columns
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        init.orthogonal_(torch.empty(3))


def test_eye_dirac_sparse():
    t = torch.empty(3, 5)
    init.eye_(t)
    np.testing.assert_array_equal(npy(t), np.eye(3, 5))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(torch.empty(2, 2, 2))
    w = torch.empty(4, 2, 3, 3)
    init.dirac_(w, groups=2)
    x = torch.randn(1, 4, 5, 5)
    y = nn.functional.conv2d(x, w, padding=1, groups=2)
    np.testing.assert_allclose(npy(y), npy(x), atol=1e-6)  # a dirac kernel is the identity conv
    torch.manual_seed(0)
    s = torch.empty(10, 6)
    init.sparse_(s, sparsity=0.3)
    assert np.all((npy(s) == 0).sum(0) >= 3)


def test_layer_default_inits_are_reproducible_with_seed():
    torch.manual_seed(42)
    a = nn.Linear(4, 3).weight.detach().numpy().copy()
    torch.manual_seed(42)
    b = nn.Linear(4, 3).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


# ---- nn.utils ---------------------------------------------------------------------------------------

def _params_with_grads(grads):
    ps = []
    for g in grads:
        p = nn.Parameter(torch.zeros(len(g)))
        p.grad = torch.tensor(g, dtype=torch.float32)
        ps.append(p)
    return ps


def test_clip_grad_norm_scales_and_returns_total_norm():
    ps = _params_with_grads([[3.0, 4.0], [12.0]])
    total = nn.utils.clip_grad_norm_(ps, max_norm=1.0)
    assert total.item() == pytest.approx(13.0)
    coef = 1.0 / (13.0 + 1e-6)
    np.testing.assert_allclose(npy(ps[0].grad), [3 * coef, 4 * coef], rtol=1e-6)
    np.testing.assert_allclose(npy(ps[1].grad), [12 * coef], rtol=1e-6)
    # below the threshold nothing changes
    ps = _params_with_grads([[0.3, 0.4]])
    assert nn.utils.clip_grad_norm_(ps, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_allclose(npy(ps[0].grad), [0.3, 0.4], rtol=1e-6)


def test_clip_grad_norm_other_norms_single_tensor_and_nonfinite():
    p = _params_with_grads([[3.0, -4.0]])[0]
    total = nn.utils.clip_grad_norm_(p, 2.0, norm_type="inf")
    assert total.item() == pytest.approx(4.0)
    np.testing.assert_allclose(npy(p.grad), [3 * 2 / (4 + 1e-6), -4 * 2 / (4 + 1e-6)], rtol=1e-6)
    ps = _params_with_grads([[1.0, -2.0], [3.0]])
    assert nn.utils.clip_grad_norm_(ps, 100.0, norm_type=1).item() == pytest.approx(6.0)
    ps = _params_with_grads([[float("inf"), 1.0]])
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    # parameters without .grad are skipped
    q = nn.Parameter(torch.ones(2))
    assert nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0


def test_clip_grad_norm_on_model():
    torch.manual_seed(0)
    m = nn.Linear(5, 3)
    (m(torch.randn(8, 5)) * 100).sum().backward()
    before = math.sqrt(sum(float((npy(p.grad).astype(np.float64) ** 2).sum()) for p in m.parameters()))
    total = nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    assert total.item() == pytest.approx(before, rel=1e-5)
    after = math.sqrt(sum(float((npy(p.grad).astype(np.float64) ** 2).sum()) for p in m.parameters()))
    assert after == pytest.approx(0.5, rel=1e-4)


def test_clip_grad_value():
    ps = _params_with_grads([[3.0, -0.5, -7.0]])
    assert nn.utils.clip_grad_value_(ps, 1.0) is None
    np.testing.assert_array_equal(npy(ps[0].grad), [1.0, -0.5, -1.0])


def test_parameters_to_vector_and_back():
    m = nn.Linear(2, 3)
    v = nn.utils.parameters_to_vector(m.parameters())
    assert tuple(v.shape) == (9,)
    np.testing.assert_array_equal(npy(v), np.concatenate([npy(m.weight).ravel(), npy(m.bias)]))
    w = m.weight
    nn.utils.vector_to_parameters(torch.arange(9.0), m.parameters())
    assert m.weight is w
    np.testing.assert_array_equal(npy(m.weight), [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(npy(m.bias), [6, 7, 8])
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        nn.utils.vector_to_parameters([1.0], m.parameters())


def test_clip_grads_with_norm_and_total_norm():
    ps = _params_with_grads([[3.0, 4.0]])
    total = nn.utils.get_total_norm([p.grad for p in ps])
    assert total.item() == pytest.approx(5.0)
    nn.utils.clip_grads_with_norm_(ps, 1.0, total)
    np.testing.assert_allclose(npy(ps[0].grad), [3 / (5 + 1e-6), 4 / (5 + 1e-6)], rtol=1e-6)


# ---- weight_norm / spectral_norm / parametrize --------------------------------------------------

def test_parametrized_weight_norm():
    torch.manual_seed(0)
    m = nn.Linear(3, 4).double()
    w0 = npy(m.weight).copy()
    nn.utils.parametrizations.weight_norm(m)
    assert type(m).__name__ == "ParametrizedLinear" and isinstance(m, nn.Linear)
    assert sorted(m.state_dict()) == ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    g = npy(m.parametrizations.weight.original0)
    np.testing.assert_allclose(g, np.linalg.norm(w0, axis=1, keepdims=True))  # g = ||w|| per output row
    np.testing.assert_allclose(npy(m.weight), w0)                             # initially w is unchanged
    with torch.no_grad():
        m.parametrizations.weight.original0.mul_(2.0)
    np.testing.assert_allclose(npy(m.weight), 2 * w0)
    x = torch.tensor(np.ones((1, 3)), requires_grad=True)
    m(x).sum().backward()
    assert m.parametrizations.weight.original1.grad is not None
    nn.utils.parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and sorted(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(npy(m.weight), 2 * w0)


def test_old_weight_norm_and_custom_parametrization():
    m = nn.Conv2d(2, 3, 2).double()
    w0 = npy(m.weight).copy()
    with pytest.warns(FutureWarning, match="weight_norm` is deprecated"):
        nn.utils.weight_norm(m, dim=0)
    assert sorted(m.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert tuple(m.weight_g.shape) == (3, 1, 1, 1)
    np.testing.assert_allclose(npy(m.weight), w0)
    nn.utils.remove_weight_norm(m)
    assert sorted(m.state_dict()) == ["bias", "weight"] and isinstance(m.weight, nn.Parameter)

    class Symmetric(nn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).transpose(-1, -2)

    lin = nn.Linear(3, 3)
    nn.utils.parametrize.register_parametrization(lin, "weight", Symmetric())
    w = npy(lin.weight)
    np.testing.assert_array_equal(w, w.T)
    assert nn.utils.parametrize.is_parametrized(lin, "weight")
    assert not nn.utils.parametrize.is_parametrized(lin, "bias")


def test_spectral_norm_normalizes_largest_singular_value():
    torch.manual_seed(0)
    m = nn.Linear(6, 4).double()
    nn.utils.parametrizations.spectral_norm(m)
    assert sorted(m.state_dict()) == ["bias", "parametrizations.weight.0._u", "parametrizations.weight.0._v",
                                      "parametrizations.weight.original"]
    for _ in range(20):  # power iterations run in training mode, one per access
        w = npy(m.weight)
    assert np.linalg.svd(w, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-6)
    old = nn.Linear(6, 4).double()
    nn.utils.spectral_norm(old, n_power_iterations=30)
    old(torch.ones(1, 6, dtype=torch.float64))
    assert sorted(old.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert np.linalg.svd(npy(old.weight), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-6)
