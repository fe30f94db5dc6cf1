"""The batching rule table (passes/vmap): every primitive has a rule or is listed with the reason
it has none, and every rule batches its primitive's test case (``op_cases``, the gradient test
table) to what a loop over the samples gives.

Adding a primitive without a batching rule fails here.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import graphc
from graphc.func import vmap
from graphc.ir import PRIMITIVES
from graphc.ir import prims as P
from graphc.ir.graph import Graph, building
from graphc.ir.interpret import interpret as run_graph
from graphc.ir.primitive import TensorType
from graphc.passes.vmap import BATCH, UNSUPPORTED, batch_graph

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_cases import CASES, Fixed  # noqa: E402


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_has_a_batching_rule_or_a_reason(name):
    prim = PRIMITIVES[name]
    assert (prim in BATCH) != (prim in UNSUPPORTED), (
        f"primitive {name!r} needs exactly one of: a batching rule in passes/vmap/rules.py, or an UNSUPPORTED "
        "entry saying why it has none")


def test_unsupported_entries_explain_themselves():
    for prim, why in UNSUPPORTED.items():
        assert isinstance(why, str) and len(why) > 20, prim.name
    assert set(BATCH) | set(UNSUPPORTED) <= set(PRIMITIVES.values())


def _sample(a, k: int):
    """Sample ``k`` of a batch of 2 made from a case's argument: the argument itself, then a scaled
    copy (scaling keeps the cases' input domains: positive, distinct, SPD, ...); indices repeat."""
    v = np.array(a.value) if isinstance(a, Fixed) else a
    if isinstance(v, np.ndarray) and v.dtype.kind == "f" and k == 1:
        v = np.asarray(v * 0.9)  # (a 0-d array times a number is a numpy scalar)
    return graphc.tensor(v.copy()) if isinstance(v, np.ndarray) else v


class _Case:
    """A forward-only case for a primitive the gradient table leaves out (non-differentiable), or
    for a shape it does not try."""

    def __init__(self, name: str, *args, **attrs) -> None:
        self.id, self.args, self.prims = f"prim-{name}", args, frozenset({name})
        self.fn = lambda *xs: getattr(P, name)(*xs, **attrs)


_rng = np.random.default_rng(7)
_X, _Y = _rng.normal(size=(3, 4)), _rng.normal(size=(3, 4))
_I, _J = _rng.integers(0, 8, size=(3, 4)), _rng.integers(0, 8, size=(4,))
_B = _rng.random((3, 4)) < 0.5
_SYM = (lambda m: m + m.T)(_rng.normal(size=(3, 3)))
_NONDIFF = [
    _Case("argmax", _X, dim=1, keepdim=False), _Case("argmax", _X, dim=None, keepdim=True),
    _Case("argmin", _X, dim=0, keepdim=True), _Case("argmin", _X, dim=None, keepdim=False),
    _Case("argsort", _X, dim=1, descending=True), _Case("cumargmax", _X, dim=1), _Case("cumargmin", _X, dim=0),
    _Case("bitwise_and", _I, _J), _Case("bitwise_or", _I, _J), _Case("bitwise_xor", _I, _J),
    _Case("bitwise_not", _I), _Case("floor_divide", _I, _J + 1),
    _Case("eq", _I, _J), _Case("ne", _I, _J), _Case("lt", _X, _Y), _Case("le", _X, _Y), _Case("gt", _X, _Y),
    _Case("ge", _X, _Y), _Case("isnan", _X), _Case("isinf", _X), _Case("isfinite", _X),
    _Case("logical_and", _B, _X), _Case("logical_or", _B, _X), _Case("logical_xor", _B, _X),
    _Case("logical_not", _B), _Case("stop_gradient", _X), _Case("index_check", _I - 4, size=8, dim=0, mode="index"),
    _Case("det_sign", _rng.normal(size=(2, 3, 3))),
    _Case("searchsorted", np.sort(_rng.normal(size=(3, 5)), 1), _X, right=False, out_int32=False),
    _Case("searchsorted", np.sort(_rng.normal(size=(5,))), _X, right=True, out_int32=False),
    _Case("cumsum", np.array(1.5), dim=0), _Case("argsort", np.array(1.5), dim=0, descending=False),  # 0-d samples
    # special functions without a derivative (ir/special_prims.py); positive operands where they need them
    *(_Case(n, _X) for n in ("airy_ai", "bessel_j0", "bessel_j1", "modified_bessel_i0", "modified_bessel_i1")),
    *(_Case(n, np.abs(_X) + 0.1) for n in ("bessel_y0", "bessel_y1", "modified_bessel_k0", "modified_bessel_k1",
                                           "scaled_modified_bessel_k0", "scaled_modified_bessel_k1")),
    _Case("lu_pivots", _rng.normal(size=(2, 4, 3))),
    _Case("lu_permutation", np.array([[2, 3, 3], [3, 3, 3]], np.int32), m=4),
    _Case("ldl_factor", _SYM, hermitian=False, check_errors=False), _Case("ldl_pivots", _SYM, hermitian=False),
    _Case("ldl_info", _SYM, hermitian=False),
    _Case("ldl_solve", _SYM, np.array([3, 3, 3], np.int32), _X, hermitian=False),
    _Case("lstsq_rank", _rng.normal(size=(2, 4, 3)), rcond=1e-7, driver="gelsy"),
]

PRIM_CASES: dict = {}
for _c in CASES + _NONDIFF:
    if _c.id.startswith("prim-") and len(_c.prims) == 1:
        PRIM_CASES.setdefault(next(iter(_c.prims)), []).append(_c)


def _tensor_positions(case) -> list[int]:
    return [i for i, a in enumerate(case.args) if isinstance(a, (np.ndarray, Fixed))]


# every operand batched; with several tensor operands, also only the first and only the last
_RUNS = [pytest.param(c, which, id=f"{which}-{c.id}") for cs in PRIM_CASES.values() for c in cs
         for which in (("all", "first", "last") if len(_tensor_positions(c)) > 1 else ("all",))]


@pytest.mark.parametrize("case, which", _RUNS)
def test_rule_matches_a_loop_over_samples(case, which):
    tensor_pos = _tensor_positions(case)
    batched = {"all": tensor_pos, "first": tensor_pos[:1], "last": tensor_pos[-1:]}[which]
    samples = [[_sample(a, k if i in batched else 0) for i, a in enumerate(case.args)] for k in range(2)]
    args = [graphc.stack([samples[0][i], samples[1][i]]) if i in batched else samples[0][i]
            for i in range(len(case.args))]
    in_dims = tuple(0 if i in batched else None for i in range(len(case.args)))
    got = vmap(case.fn, in_dims=in_dims)(*args)
    want = graphc.stack([case.fn(*s) for s in samples])
    assert got.shape == want.shape and got.dtype is want.dtype
    assert np.allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-8, equal_nan=True), case.id


def test_every_rule_is_exercised_by_a_case():
    covered = {PRIMITIVES[n] for n in PRIM_CASES}
    untested = sorted(p.name for p in BATCH if p not in covered)
    # rand_uniform has no op case (it is random): test_func checks vmap's randomness modes
    assert untested == ["rand_uniform"], untested


def test_batch_graph_is_a_graph_transformation():
    g = Graph("f")
    x = g.add_input(TensorType((3, 4), graphc.float64))
    w = g.add_input(TensorType((4,), graphc.float64), "param")
    with building(g):
        y = P.sum(P.mul(P.sin(x), w), dims=(1,), keepdim=False)
        out = P.matmul(P.permute(x, dims=(1, 0)), y)
    g.set_outputs([out])
    bg = batch_graph(g, [True, False], size=5)
    assert [tuple(v.shape) for v in bg.inputs] == [(5, 3, 4), (4,)]
    assert tuple(bg.outputs[0].shape) == (5, 4)
    xs, wv = np.random.default_rng(0).normal(size=(5, 3, 4)), np.arange(4.0)
    got = run_graph(bg, [xs, wv])[0]
    want = np.stack([x_.T @ (np.sin(x_) * wv).sum(1) for x_ in xs])
    assert np.allclose(got, want)
