"""Every primitive is either differentiable (a VJP rule) or declared non-differentiable, and every
differentiable primitive and every composite has a gradcheck case in ``op_cases.CASES``.

Adding a primitive or a composite without a VJP rule / gradient test fails here.
"""
from __future__ import annotations

import os
import sys
from collections import Counter

import pytest

import graphc  # noqa: F401  (loads the frontend, as user code does)
from graphc.ir import PRIMITIVES
from graphc.passes.autodiff import UNSUPPORTED, VJP
from graphc.passes.decompositions import COMPOSITES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_cases import CASES  # noqa: E402

# declared on each primitive's record (``differentiable=False``)
NON_DIFFERENTIABLE = frozenset(p for p in PRIMITIVES.values() if not p.differentiable)
DIFFERENTIABLE = sorted(n for n, p in PRIMITIVES.items() if p not in NON_DIFFERENTIABLE and p not in UNSUPPORTED)


def _gradchecked(attr: str) -> set[str]:
    return {name for c in CASES if c.gradcheck for name in getattr(c, attr)}


def test_registry_is_not_empty():
    assert len(PRIMITIVES) > 50 and len(COMPOSITES) > 10
    assert "mul" in DIFFERENTIABLE and "eq" not in DIFFERENTIABLE


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_has_exactly_one_autodiff_entry(name):
    prim = PRIMITIVES[name]
    kinds = [prim in VJP, prim in NON_DIFFERENTIABLE, prim in UNSUPPORTED]
    assert sum(kinds) == 1, (
        f"primitive {name!r} must have exactly one of: a VJP rule, differentiable=False on its record, or an "
        f"UNSUPPORTED entry with the reason (has rule, non-differentiable, unsupported = {kinds})")


def test_unsupported_entries_explain_themselves():
    for prim, why in UNSUPPORTED.items():
        assert isinstance(why, str) and len(why) > 20, prim.name


def test_vjp_table_only_holds_registered_primitives():
    registered = set(map(id, PRIMITIVES.values()))
    stray = [p.name for p in VJP if id(p) not in registered]
    assert not stray, f"VJP rules for unregistered primitives: {stray}"


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_differentiable_primitive_has_gradcheck_case(name):
    assert name in _gradchecked("prims"), (
        f"differentiable primitive {name!r} has no gradcheck case calling it directly: add a "
        f"prim_case to tests/op_cases.py")


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_has_gradcheck_case(name):
    assert name in _gradchecked("composites"), (
        f"composite {name!r} has no gradcheck case: add a comp_case to tests/op_cases.py")


def test_case_table_is_consistent():
    dupes = [i for i, n in Counter(c.id for c in CASES).items() if n > 1]
    assert not dupes, f"duplicate case ids: {dupes}"
    unknown_prims = {n for c in CASES for n in c.prims} - set(PRIMITIVES)
    unknown_comps = {n for c in CASES for n in c.composites} - set(COMPOSITES)
    assert not unknown_prims and not unknown_comps, (unknown_prims, unknown_comps)
    nondiff = {n for c in CASES for n in c.prims} & {p.name for p in NON_DIFFERENTIABLE}
    assert not nondiff, f"gradcheck cases for non-differentiable primitives: {nondiff}"
    # the brief's public-API surface is in the table too, not only the primitives
    assert sum(c.id.startswith("api-") for c in CASES) >= 100
    assert sum(c.gradgrad for c in CASES) >= 7
