"""Nested Python containers of tensors (tuples, lists, dicts, namedtuples) as flat lists and back."""
from __future__ import annotations

from typing import Any, NamedTuple


class Spec(NamedTuple):
    """The structure of a tree: ``kind`` is None for a leaf, else the container's type (and, for a
    dict, its keys in order)."""

    kind: Any
    keys: tuple
    children: tuple

    def __repr__(self) -> str:
        if self.kind is None:
            return "*"
        inner = ", ".join(repr(c) for c in self.children)
        if self.kind is dict:
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.keys, self.children)) + "}"
        if self.kind is list:
            return f"[{inner}]"
        if self.kind is tuple:
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        return f"{self.kind.__name__}({inner})"

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind is None else sum(c.num_leaves for c in self.children)


LEAF = Spec(None, (), ())


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(tree: Any) -> tuple[list, Spec]:
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list) -> Spec:
    if isinstance(tree, dict):
        keys = tuple(tree)
        return Spec(dict, keys, tuple(_flatten(tree[k], leaves) for k in keys))
    if isinstance(tree, (list, tuple)):
        kind = type(tree) if _is_namedtuple(tree) else (list if isinstance(tree, list) else tuple)
        return Spec(kind, (), tuple(_flatten(x, leaves) for x in tree))
    leaves.append(tree)
    return LEAF


def unflatten(leaves: list, spec: Spec) -> Any:
    it = iter(leaves)
    return _build(it, spec)


def _build(it, spec: Spec) -> Any:
    if spec.kind is None:
        return next(it)
    children = [_build(it, c) for c in spec.children]
    if spec.kind is dict:
        return dict(zip(spec.keys, children))
    if spec.kind in (list, tuple):
        return spec.kind(children)
    return spec.kind(*children)


def broadcast_prefix(prefix: Any, spec: Spec) -> list | None:
    """``prefix`` (a tree whose leaves stand for whole subtrees of ``spec``, e.g. vmap's in_dims)
    spread to one entry per leaf of ``spec``; None when it does not match."""
    out: list = []
    return out if _broadcast(prefix, spec, out) else None


def _broadcast(prefix: Any, spec: Spec, out: list) -> bool:
    if not isinstance(prefix, (list, tuple, dict)):
        out.extend([prefix] * spec.num_leaves)
        return True
    if spec.kind is None:
        return False
    if isinstance(prefix, dict):
        if spec.kind is not dict or set(prefix) != set(spec.keys):
            return False
        return all(_broadcast(prefix[k], c, out) for k, c in zip(spec.keys, spec.children))
    if spec.kind is dict or len(prefix) != len(spec.children) or isinstance(prefix, list) != (spec.kind is list):
        return False
    return all(_broadcast(p, c, out) for p, c in zip(prefix, spec.children))
