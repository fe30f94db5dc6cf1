"""Helpers the layers share: argument expansion (``_ntuple`` and friends are what user code imports
from torch.nn.modules.utils), input-rank checks and weight/bias registration."""
from __future__ import annotations

import collections.abc
from itertools import repeat

from ...tensors import Tensor
from ..parameter import Parameter


def _ntuple(n: int, name: str = "parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """(1, 2) -> (2, 2, 1, 1) for n=2: F.pad's order from per-dim padding."""
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size, defaults):
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d for v, d in zip(out_size, defaults[-len(out_size):])]


def _expand(v, n: int) -> tuple:
    """A layer's per-dim size argument as an n-tuple. Unlike ``_ntuple``, only a list or tuple counts
    as per-dim values: any other value (a 0-d tensor, too, though it is iterable) is repeated, as
    graphc's layers have always accepted."""
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


def _check_input_dim(input: Tensor, dims: tuple[int, ...]) -> None:
    if input.dim() not in dims:
        raise ValueError(f"expected {' or '.join(f'{d}D' for d in dims)} input (got {input.dim()}D input)")


def _register_weight_bias(module, weight: Tensor | None, bias: Tensor | None) -> None:
    """Registers ``weight`` then ``bias`` as Parameters; a None still takes its slot, as PyTorch's
    layers do, so attribute access, state_dict keys and their order match."""
    module.register_parameter("weight", None if weight is None else Parameter(weight))
    module.register_parameter("bias", None if bias is None else Parameter(bias))


def consume_prefix_in_state_dict_if_present(state_dict: dict, prefix: str) -> None:
    """Strip ``prefix`` (e.g. ``"module."`` of a DataParallel checkpoint) from the keys in place,
    metadata included, as PyTorch's."""
    for key in sorted(state_dict.keys()):
        if key.startswith(prefix):
            state_dict[key[len(prefix):]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata.keys()):
            if len(key) == 0:
                continue
            if key == prefix.replace(".", "") or key.startswith(prefix):
                metadata[key[len(prefix):]] = metadata.pop(key)
