"""The training step tests compile whole: zero_grad, forward, cross-entropy, backward, step."""
from __future__ import annotations

import graphc.nn.functional as F


def cross_entropy_step(model, opt, detach: bool = False):
    """``step(x, y)`` of ``model`` trained by ``opt``; it returns the loss (detached if asked)."""
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach() if detach else loss
    return step
