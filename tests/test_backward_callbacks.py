"""What DistributedDataParallel relies on in autograd: callbacks queued for the end of a backward
pass, and post-accumulate-grad hooks, which a compiled whole step cannot run (a graph break)."""
import warnings

import pytest

import graphc as torch
import graphc.nn as nn
from graphc.autograd.engine import queue_callback


def test_callbacks_run_when_the_pass_ends():
    w = torch.ones(3, requires_grad=True)
    v = torch.ones(3, requires_grad=True)
    seen = []

    def hook(p):
        if not seen:
            queue_callback(lambda: seen.append(("end", w.grad is not None and v.grad is not None)))
            queue_callback(lambda: seen.append(("end2",)))
        seen.append("hook")

    w.register_post_accumulate_grad_hook(hook)
    v.register_post_accumulate_grad_hook(hook)
    ((w * 2).sum() + (v * v).sum()).backward()
    assert seen == ["hook", "hook", ("end", True), ("end2",)]
    seen.clear()
    (w * 3).sum().backward()  # a new pass: its own callbacks, the old ones are gone
    assert seen == ["hook", ("end", True), ("end2",)]


def test_queue_callback_outside_backward():
    with pytest.raises(RuntimeError, match="Final callbacks can only be installed during backward pass."):
        queue_callback(lambda: None)


def test_compiled_step_with_post_accumulate_hooks_breaks_the_graph():
    model = nn.Linear(3, 2)
    calls = []
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(lambda p: calls.append(p))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    with pytest.raises(torch.GraphBreakError, match="hooks"):
        torch.compile(step, fullgraph=True)(torch.ones(4, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.compile(step)(torch.ones(4, 3))
    assert len(calls) >= 2  # the hooks ran (eagerly), they were not skipped
    assert any("hooks" in str(w.message) for w in caught)
