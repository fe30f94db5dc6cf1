"""Nine programs from PyTorch's examples and tutorials (tests/programs/), run eagerly and compiled
with graphc (equal losses under one seed), and against PyTorch where it is installed: the same
source with ``graphc`` replaced by ``torch``, from the same initial weights."""
from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
import pytest

import graphc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs"))
from swap import PROGRAMS, load  # noqa: E402  (the folder on the path first)


def state_of(modules: dict) -> dict:
    return {k: {n: v.detach().numpy().copy() for n, v in m.state_dict().items()} for k, m in modules.items()}


def load_state(modules: dict, state: dict, tensor) -> None:
    for k, m in modules.items():
        m.load_state_dict({n: tensor(v.copy()) for n, v in state[k].items()})


def run(program, state: dict | None, compiled: bool, seed: int = 1) -> tuple[list, dict]:
    graphc.manual_seed(0)
    modules = program.build()
    if state is not None:
        load_state(modules, state, graphc.from_numpy)
    graphc.manual_seed(seed)
    return program.train(modules, compiled), modules


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_compiled_with_the_losses_of_eager_mode(name):
    program = load(name)
    graphc.manual_seed(0)
    state = state_of(program.build())
    eager, _ = run(program, state, compiled=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, _ = run(program, state, compiled=True)
    breaks = [str(w.message) for w in caught if "graphc.compile" in str(w.message)]
    assert not breaks, breaks  # compiled for real: no graph break, no recompile limit
    assert len(eager) >= 3 and all(math.isfinite(v) for v in eager)
    assert len(set(eager)) > 1  # the loop did something
    np.testing.assert_allclose(compiled, eager, rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_has_pytorchs_losses_from_the_same_weights_eager_and_compiled(name):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # tiny programs: threads only contend
    ours = load(name, deterministic=True)
    theirs = load(name, "torch", deterministic=True)
    graphc.manual_seed(0)
    state = state_of(ours.build())
    want_modules = theirs.build()
    load_state(want_modules, state, torch.from_numpy)
    torch.manual_seed(1)
    want = theirs.train(want_modules, False)
    for compiled in (False, True):
        got, _ = run(ours, state, compiled=compiled)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5, err_msg=f"compiled={compiled}")
