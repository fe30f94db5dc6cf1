"""Views as index maps: what a chain of reshape/permute/expand/slice/select does to (shape, strides,
offset), in elements. Kernels read their inputs through these maps, so views never copy."""
from __future__ import annotations

from graphc.ir.graph import Node


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for s in reversed(shape):
        strides.append(step)
        step *= max(s, 1)
    return tuple(reversed(strides))


def apply_view(node: Node, shape: tuple, strides: tuple, offset: int) -> tuple[tuple, tuple, int] | None:
    """(shape, strides, offset) after the view ``node``, or None when it can't be expressed as
    strides over the same memory (a reshape that would need a copy)."""
    name, attrs = node.prim.name, node.attrs
    if name == "permute":
        dims = attrs["dims"]
        return tuple(shape[d] for d in dims), tuple(strides[d] for d in dims), offset
    if name == "expand":
        new = tuple(attrs["shape"])
        lead = len(new) - len(shape)
        st = [0] * lead + [0 if s == 1 and n != 1 else t for s, n, t in zip(shape, new[lead:], strides)]
        return new, tuple(st), offset
    if name == "slice":
        new_shape, new_strides = [], []
        for (start, stop, step), t, s in zip(attrs["index"], strides, shape):
            n = len(range(start, stop, step)) if stop >= 0 else len(range(start, -1, step))
            if n:
                offset += start * t
            new_shape.append(n)
            new_strides.append(t * step)
        return tuple(new_shape), tuple(new_strides), offset
    if name == "select":  # one index along a dimension: an offset, the dimension gone
        d = attrs["dim"]
        return shape[:d] + shape[d + 1:], strides[:d] + strides[d + 1:], offset + attrs["index"] * strides[d]
    if name == "reshape":
        st = reshape_strides(shape, strides, tuple(attrs["shape"]))
        return None if st is None else (tuple(attrs["shape"]), st, offset)
    raise ValueError(f"{name} is not a view")


def reshape_strides(shape: tuple, strides: tuple, new: tuple) -> tuple | None:
    """Strides that make ``new`` a view of memory laid out as (shape, strides), or None when the
    reshape needs a copy. Groups of dimensions that are contiguous with each other may be split
    and merged freely; size-1 dimensions take any stride."""
    old = [(s, t) for s, t in zip(shape, strides) if s != 1]
    if any(s == 0 for s in shape):
        return contiguous_strides(new)
    i = j = 0
    new_nz = [k for k, s in enumerate(new) if s != 1]
    result = [0] * len(new)
    while i < len(old) or j < len(new_nz):
        if i >= len(old) or j >= len(new_nz):
            return None
        # take old dims [i, i2) and new dims [j, j2) with equal products
        po, pn = old[i][0], new[new_nz[j]]
        i2, j2 = i + 1, j + 1
        while po != pn:
            if po < pn:
                if i2 >= len(old):
                    return None
                po *= old[i2][0]
                i2 += 1
            else:
                if j2 >= len(new_nz):
                    return None
                pn *= new[new_nz[j2]]
                j2 += 1
        # the old group must be contiguous with itself
        for k in range(i, i2 - 1):
            if old[k][1] != old[k + 1][1] * old[k + 1][0]:
                return None
        stride = old[i2 - 1][1]
        for k in reversed(range(j, j2)):
            result[new_nz[k]] = stride
            stride *= new[new_nz[k]]
        i, j = i2, j2
    return tuple(result)


def broadcast_index(shape: tuple, strides: tuple, domain: tuple) -> tuple[int, ...]:
    """Strides over ``domain`` of an operand of ``shape`` (numpy broadcasting: right-aligned,
    size-1 dimensions repeat with stride 0)."""
    lead = len(domain) - len(shape)
    if lead < 0:
        raise ValueError(f"operand of shape {list(shape)} does not broadcast to {list(domain)}")
    return tuple(0 for _ in range(lead)) + tuple(
        0 if s == 1 and d != 1 else t for s, d, t in zip(shape, domain[lead:], strides))
