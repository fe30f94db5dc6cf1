"""The flat optimizer path (a group's parameters and state as views of flat buffers, updated in
cache-sized pieces) gives exactly the per-parameter path's results, and never cuts an alias."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import graphc
from graphc import nn
import graphc.nn.functional as F
import graphc.optim._per_parameter as per_parameter
from graphc.optim import _flat

CASES = [("Adam", {"lr": 0.01, "amsgrad": True}), ("AdamW", {"lr": 0.01}),
         ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
         ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}), ("NAdam", {}), ("RAdam", {}),
         ("ASGD", {}), ("Rprop", {}), ("Adagrad", {}), ("Adadelta", {}), ("Adamax", {})]


def _model():
    graphc.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 7), nn.Tanh(), nn.Linear(7, 2))


def _train(model, opt, steps=6, freeze_at=None):
    x, y = graphc.randn(4, 5, generator=graphc.Generator().manual_seed(1)), graphc.zeros(4, 2)
    for i in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        if freeze_at is not None and i >= freeze_at:
            model[0].bias.grad = None  # a parameter without gradient this step
        opt.step()


def _per_parameter(monkeypatch):
    monkeypatch.setattr(per_parameter, "flat_group", lambda *a: None)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_flat_updates_equal_per_parameter_updates_bit_for_bit(name, kwargs, monkeypatch):
    flat_model, ref_model = _model(), _model()
    flat_opt = getattr(graphc.optim, name)(flat_model.parameters(), **kwargs)
    _train(flat_model, flat_opt)
    assert flat_opt._flat, "the flat path was not taken"
    buffers = {id(p._data.base) for p in flat_model.parameters()}
    assert len(buffers) == 1 and all(p._data.base is not None for p in flat_model.parameters())
    with monkeypatch.context() as m:
        _per_parameter(m)
        ref_opt = getattr(graphc.optim, name)(ref_model.parameters(), **kwargs)
        _train(ref_model, ref_opt)
    for p, q in zip(flat_model.parameters(), ref_model.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
        assert flat_opt.state[p].keys() == ref_opt.state[q].keys()
        for k in ref_opt.state[q]:
            np.testing.assert_array_equal(flat_opt.state[p][k].numpy(), ref_opt.state[q][k].numpy())


def test_pieces_cover_the_buffer_across_parameter_boundaries(monkeypatch):
    monkeypatch.setattr(_flat, "CHUNK", 10)  # pieces smaller than some parameters, larger than others
    model, ref = _model(), _model()
    opt = graphc.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt)
    with monkeypatch.context() as m:
        _per_parameter(m)
        _train(ref, graphc.optim.Adam(ref.parameters(), lr=0.01))
    pieces = next(iter(opt._flat.values())).pieces
    assert any(len(parts) > 1 for _, _, parts in pieces) and len(pieces) > 5
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_state_dict_round_trip_and_replaced_parameters(monkeypatch):
    model, ref = _model(), _model()
    opt = graphc.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, steps=3)
    saved = copy.deepcopy(opt.state_dict())
    opt2 = graphc.optim.Adam(model.parameters(), lr=0.01)
    opt2.load_state_dict(saved)  # state tensors not viewing any flat buffer yet
    model[0].weight.data = model[0].weight.detach().clone()  # a parameter's array replaced
    _train(model, opt2, steps=3)
    with monkeypatch.context() as m:
        _per_parameter(m)
        _train(ref, graphc.optim.Adam(ref.parameters(), lr=0.01), steps=6)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_an_array_someone_holds_is_never_moved():
    model = _model()
    held = model[2].weight.detach().numpy()  # shares the parameter's memory
    opt = graphc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train(model, opt)
    assert not opt._flat
    np.testing.assert_array_equal(held, model[2].weight.detach().numpy())
    assert np.shares_memory(held, model[2].weight.detach().numpy())


def test_a_parameter_without_gradient_is_skipped_as_per_parameter(monkeypatch):
    model, ref = _model(), _model()
    _train(model, graphc.optim.Adam(model.parameters(), lr=0.01), freeze_at=2)
    with monkeypatch.context() as m:
        _per_parameter(m)
        _train(ref, graphc.optim.Adam(ref.parameters(), lr=0.01), freeze_at=2)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
