"""Flatten parameters into one vector and back."""
from __future__ import annotations

from ... import shape_ops
from ...autograd.grad_mode import no_grad
from ...tensors import Tensor


def parameters_to_vector(parameters) -> Tensor:
    return shape_ops.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset:offset + n].view_as(p))
            offset += n
