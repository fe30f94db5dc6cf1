"""Shape arithmetic shared by every type rule: broadcasting and dimension wrapping."""
from __future__ import annotations

from typing import Iterable, Sequence


class ShapeError(RuntimeError):
    """A shape rule was violated. Subclasses RuntimeError because PyTorch raises RuntimeError."""


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    if len(shapes) == 1:
        return tuple(shapes[0])
    # the common cases while tracing, without the loop: equal shapes, or one shape and 0-d operands
    # (Python numbers); both broadcast to that shape, and neither can fail
    first = None
    for s in shapes:
        if len(s):
            if first is None:
                first = s
            elif s != first:
                break
    else:
        return tuple(first) if first is not None else ()
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    # dimension by dimension from the last, as PyTorch's infer_size reports the rightmost mismatch
    for j in range(ndim - 1, -1, -1):
        for s in shapes:
            i = j - (ndim - len(s))
            if i < 0:
                continue
            n = s[i]
            if out[j] == n or n == 1:
                continue
            if out[j] == 1:
                out[j] = n
                continue
            raise ShapeError(
                f"The size of tensor a ({out[j]}) must match the size of tensor b ({n}) at "
                f"non-singleton dimension {j}; shapes {tuple(shapes[0])} and {tuple(s)} "
                "do not broadcast"
            )
    return tuple(out)


def wrap_dim(dim: int, ndim: int) -> int:
    """Turn a possibly negative dim into an index, with PyTorch's IndexError when out of range."""
    rank = max(ndim, 1)  # a 0-dim tensor accepts dim 0 and -1
    if not -rank <= dim < rank:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {dim})"
        )
    return dim % rank


def wrap_dims(dims: int | Iterable[int] | None, ndim: int) -> tuple[int, ...]:
    """Normalize a reduction's dims: None means every dim; duplicates are an error."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = tuple(wrap_dim(d, ndim) for d in dims)
    if len(set(out)) != len(out):
        dup = next(d for d in out if out.count(d) > 1)
        raise RuntimeError(f"dim {dup} appears multiple times in the list of dims")
    if ndim == 0:
        return ()
    return tuple(sorted(out))


def numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def infer_size(shape: Sequence[int], total: int) -> tuple[int, ...]:
    """Resolve one -1 in a reshape target, with PyTorch's error when sizes don't agree."""
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or total % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {total}")
        return tuple(total // known if s == -1 else s for s in shape)
    if known != total:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {total}")
    return shape
