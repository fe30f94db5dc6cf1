"""``torch.func.rearrange``: einops' ``rearrange`` (https://einops.rocks/api/rearrange/) without the
einops package. A pattern such as ``"b (h w) c -> b c h w"`` names the input's axes (a
parenthesized group is one dimension made of several axes, ``...`` any number of dimensions,
``1``/``()`` a dimension of size 1) and the output's order; the result is one reshape into the
elementary axes, one permute and one reshape, so it is differentiable, batches under ``vmap`` and
compiles like any view. Errors are PyTorch's (functorch.einops) messages."""
from __future__ import annotations

import functools
import keyword
import math

from .. import shape_ops
from ..tensors import Tensor

__all__ = ["rearrange"]

_ELLIPSIS = "…"


class _Expression:
    """One side of a pattern: ``groups`` is a list of dimensions, each the list of its axis names
    (empty: a size-1 dimension); the ellipsis is the name ``…`` (a group of its own unless
    parenthesized)."""

    def __init__(self, text: str) -> None:
        self.groups: list[list[str]] = []
        self.names: set[str] = set()
        self.has_ellipsis = False
        self.ellipsis_parenthesized = False
        if "." in text:
            if "..." not in text:
                raise ValueError("Expression may contain dots only inside ellipsis (...)")
            if text.count("...") != 1 or text.count(".") != 3:
                raise ValueError("Expression may contain dots only inside ellipsis (...); only one ellipsis for "
                                 "tensor ")
            text = text.replace("...", _ELLIPSIS)
            self.has_ellipsis = True
        group: list[str] | None = None
        word = ""
        for char in text + " ":
            if char.isalnum() or char in ("_", _ELLIPSIS):
                word += char
                continue
            if word:
                self._add(word, group)
                word = ""
            if char == "(":
                if group is not None:
                    raise ValueError("Axis composition is one-level (brackets inside brackets not allowed)")
                group = []
            elif char == ")":
                if group is None:
                    raise ValueError("Brackets are not balanced")
                self.groups.append(group)
                group = None
            elif char != " ":
                raise ValueError(f"Unknown character '{char}'")
        if group is not None:
            raise ValueError(f"Imbalanced parentheses in expression: '{text}'")

    def _add(self, name: str, group: list[str] | None) -> None:
        if name in self.names:
            raise ValueError(f"Indexing expression contains duplicate dimension '{name}'")
        if name == _ELLIPSIS:
            self.ellipsis_parenthesized = group is not None
        elif name.isdecimal():
            if int(name) != 1:
                raise ValueError("rearrange only supports unnamed axes of size 1")
            if group is None:
                self.groups.append([])  # a size-1 dimension
            return
        elif not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name.endswith("_"):
            raise ValueError(f"Invalid axis identifier: {name}\nnot a valid python identifier (or it starts or "
                             "ends with an underscore)")
        self.names.add(name)
        if group is None:
            self.groups.append([name])
        else:
            group.append(name)


@functools.lru_cache(256)
def _parse(pattern: str) -> tuple[_Expression, _Expression]:
    try:
        left_text, right_text = pattern.split("->")
    except ValueError:
        raise ValueError("Pattern must contain a single '->' separator") from None
    left, right = _Expression(left_text), _Expression(right_text)
    if not left.has_ellipsis and right.has_ellipsis:
        raise ValueError(f"Ellipsis found in right side, but not left side of a pattern {pattern}")
    if left.has_ellipsis and left.ellipsis_parenthesized:
        raise ValueError(f"Ellipsis is parenthesis in the left side is not allowed: {pattern}")
    difference = left.names ^ right.names
    if difference:
        raise ValueError(f"Identifiers only on one side of rearrange expression (should be on both): {difference}")
    return left, right


def rearrange(tensor: Tensor | list | tuple, pattern: str, **axes_lengths: int) -> Tensor:
    """Reorder, split, merge, squeeze or unsqueeze dimensions as ``pattern`` says, e.g.
    ``rearrange(images, "b h w c -> b c h w")`` or ``rearrange(x, "b (h1 h) w -> (b h1) h w", h1=2)``;
    a list or tuple of tensors is stacked first (a new leading dimension)."""
    if not isinstance(tensor, Tensor):
        tensor = shape_ops.stack(list(tensor))
    left, right = _parse(pattern)
    if _ELLIPSIS in axes_lengths:
        raise ValueError(f"'{_ELLIPSIS}' is not an allowed axis identifier")
    for length in axes_lengths.values():
        if type(length) is not int:
            raise TypeError(f"rearrange axis lengths must be integers, got: {type(length)}")
    unmatched = axes_lengths.keys() - left.names
    if unmatched:
        raise ValueError(f"Identifiers not found in rearrange expression: {set(unmatched)}")
    ndim = tensor.dim()
    fixed = len(left.groups) - left.has_ellipsis
    if left.has_ellipsis and fixed > ndim:
        raise ValueError(f"Number of dimensions in pattern ({fixed}) must be less than or equal to the number of "
                         f"dimensions in the tensor ({ndim})")
    if not left.has_ellipsis and fixed != ndim:
        raise ValueError(f"Number of dimensions in pattern ({fixed}) must be equal to the number of dimensions in "
                         f"the tensor ({ndim})")
    n_ellipsis = ndim - fixed
    ellipsis_axes = [f"{_ELLIPSIS}{i}" for i in range(n_ellipsis)]

    # the elementary axes of the input, in order, with their sizes
    sizes: dict[str, int] = {}
    order: list[str] = []
    dim = 0
    for group in left.groups:
        if group == [_ELLIPSIS]:
            for name in ellipsis_axes:
                sizes[name] = tensor.shape[dim]
                order.append(name)
                dim += 1
            continue
        size = tensor.shape[dim]
        unknown = [n for n in group if n not in axes_lengths]
        known = math.prod(axes_lengths[n] for n in group if n in axes_lengths)
        if len(unknown) > 1:
            raise ValueError(f"Could not infer sizes for {set(unknown)}: specify all but one axis of "
                             f"({' '.join(group)})")
        if (unknown and (known == 0 or size % known)) or (not unknown and size != known):
            given = ", ".join(f"{n}={axes_lengths[n]}" for n in group if n in axes_lengths) or "size 1"
            raise ValueError(f"Shape mismatch: dimension {dim} of size {size} can't be split into "
                             f"({' '.join(group)}) with {given}")
        for name in group:
            sizes[name] = axes_lengths[name] if name in axes_lengths else size // known
            order.append(name)
        dim += 1

    # the output's dimensions as groups of elementary axes
    out_groups: list[list[str]] = []
    for group in right.groups:
        if group == [_ELLIPSIS]:
            out_groups.extend([name] for name in ellipsis_axes)
        else:
            out_groups.append([a for name in group for a in (ellipsis_axes if name == _ELLIPSIS else [name])])
    out_order = [name for group in out_groups for name in group]
    x = tensor.reshape(*[sizes[name] for name in order]) if order else tensor.reshape(())
    perm = [order.index(name) for name in out_order]
    if perm != list(range(len(perm))):
        x = x.permute(*perm)
    return x.reshape(*[math.prod(sizes[n] for n in group) for group in out_groups])
