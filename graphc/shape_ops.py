"""PyTorch's shape and gather/scatter API over the movement and indexing primitives."""
from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.shapes import infer_size, wrap_dim

from .tensors import Tensor, device_full, device_tensor, host_array


def sizes_arg(args) -> tuple[int, ...]:
    """Accept f(2, 3), f((2, 3)), f([2, 3]) and f(torch.Size([2, 3]))."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    out = []
    for a in args:
        if isinstance(a, Tensor):
            a = a.item()
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"expected a sequence of integers, got {type(a).__name__} ({a!r})")
        out.append(int(a))
    return tuple(out)


def reshape(input, *shape):
    return P.reshape(input, shape=infer_size(sizes_arg(shape), input.numel()))


def _alias_view(t: Tensor) -> Tensor:
    """A new tensor object over the same memory (PyTorch returns a view, never ``self``)."""
    return P.reshape(t, shape=tuple(t.shape))


def view(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], dt.DType):
        if shape[0] is input.dtype:
            return _alias_view(input)
        raise NotImplementedError("view(dtype) between different dtypes is not supported by graphc")
    shape = infer_size(sizes_arg(shape), input.numel())
    try:
        if not input.is_contiguous():  # contiguous tensors (and symbolic ones) always have a view
            # whether a view exists depends on shape and strides alone: ask numpy about a stand-in
            # with the same layout over no memory (device arrays' reshape has no copy=False)
            layout = np.lib.stride_tricks.as_strided(np.zeros(1, input._data.dtype), input._data.shape,
                                                     input._data.strides, writeable=False)
            np.reshape(layout, shape, copy=False)
    except ValueError:
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one dimension "
            "spans across two contiguous subspaces). Use .reshape(...) instead.") from None
    return P.reshape(input, shape=shape)


def view_as(input, other):
    return view(input, tuple(other.shape))


def reshape_as(input, other):
    return reshape(input, tuple(other.shape))


def permute(input, *dims):
    dims = sizes_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length "
            f"of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is not equal to "
            f"len(dims) = {len(dims)}")
    return P.permute(input, dims=tuple(wrap_dim(d, input.ndim) for d in dims))


def transpose(input, dim0: int, dim1: int):
    n = input.ndim
    if n == 0:
        wrap_dim(dim0, 0), wrap_dim(dim1, 0)
        return _alias_view(input)
    a, b = wrap_dim(dim0, n), wrap_dim(dim1, n)
    dims = list(range(n))
    dims[a], dims[b] = dims[b], dims[a]
    return P.permute(input, dims=tuple(dims))


swapaxes = swapdims = transpose


def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else _alias_view(input)


def movedim(input, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    n = input.ndim
    src = [wrap_dim(d, n) for d in src]
    dst = [wrap_dim(d, n) for d in dst]
    rest = [d for d in range(n) if d not in src]
    order = [None] * n
    for s, d in zip(src, dst):
        order[d] = s
    it = iter(rest)
    order = [o if o is not None else next(it) for o in order]
    return P.permute(input, dims=tuple(order))


moveaxis = movedim


def squeeze(input, dim=None):
    shape = tuple(input.shape)
    if dim is None:
        dims = {i for i, s in enumerate(shape) if s == 1}
    else:
        dims = {wrap_dim(d, input.ndim) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        dims = {d for d in dims if input.ndim and shape[d] == 1}
    return P.reshape(input, shape=tuple(s for i, s in enumerate(shape) if i not in dims))


def unsqueeze(input, dim: int):
    d = wrap_dim(dim, input.ndim + 1)
    shape = list(input.shape)
    shape.insert(d, 1)
    return P.reshape(input, shape=tuple(shape))


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    if input.ndim == 0:
        return P.reshape(input, shape=(1,))
    s, e = wrap_dim(start_dim, input.ndim), wrap_dim(end_dim, input.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = tuple(input.shape)
    new = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    return P.reshape(input, shape=new)


def ravel(input):
    return reshape(input, -1)


def unflatten(input, dim: int, sizes):
    d = wrap_dim(dim, input.ndim)
    shape = tuple(input.shape)
    inner = infer_size(tuple(sizes), shape[d])
    return P.reshape(input, shape=shape[:d] + inner + shape[d + 1:])


def expand(input, *sizes):
    sizes = sizes_arg(sizes)
    src = tuple(input.shape)
    off = len(sizes) - len(src)
    if off < 0:
        raise RuntimeError(
            f"expand({input.type()}{{{list(src)}}}, size={list(sizes)}): the number of sizes provided "
            f"({len(sizes)}) must be greater or equal to the number of dimensions in the tensor ({len(src)})")
    target = []
    for i, s in enumerate(sizes):
        if s == -1:
            if i < off:
                raise RuntimeError(
                    f"The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension {i}")
            s = src[i - off]
        target.append(s)
    return P.expand(input, shape=tuple(target))


def expand_as(input, other):
    return expand(input, tuple(other.shape))


def broadcast_to(input, shape):
    return expand(input, tuple(shape))


def broadcast_shapes(*shapes):
    """The shape that tensors of these shapes broadcast to, as a Size (ints count as 1-d shapes)."""
    from .tensors import Size
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    out: list = []
    for i, shp in enumerate(shapes):
        for k in range(1, len(shp) + 1):
            n = shp[-k]
            if k > len(out):
                out.insert(0, n)
            elif out[-k] == 1:
                out[-k] = n
            elif n != 1 and n != out[-k]:
                raise RuntimeError(f"Attempting to broadcast a dimension of length {n} at {-k}! Mismatching "
                                   f"argument at index {i} had {shp}; but expected shape should be broadcastable "
                                   f"to {out}")
    return Size(out)


def broadcast_tensors(*tensors):
    from graphc.ir.shapes import broadcast_shapes
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return tuple(P.expand(t, shape=shape) for t in tensors)


def repeat(input, *sizes):
    sizes = sizes_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    if any(r < 0 for r in sizes):
        target = [r * n for r, n in zip(sizes, shape)]
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(target)}: {target}")
    inter = tuple(x for n in shape for x in (1, n))
    expanded = tuple(x for r, n in zip(sizes, shape) for x in (r, n))
    x = P.reshape(input, shape=inter)
    x = P.expand(x, shape=expanded)
    return P.copy(P.reshape(x, shape=tuple(r * n for r, n in zip(sizes, shape))))


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats, dim=None):
    if dim is None:
        input, dim = reshape(input, -1), 0
    d = wrap_dim(dim, input.ndim)
    if isinstance(repeats, Tensor):
        idx = np.repeat(np.arange(input.shape[d]), host_array(repeats._data))
    else:
        idx = np.repeat(np.arange(input.shape[d]), int(repeats))
    return P.take(input, device_tensor(idx.astype(np.int64), input), axis=d)


def cat(tensors, dim: int = 0, *, out=None):
    from .math_ops import write_out
    tensors = list(tensors)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    # PyTorch skips legacy empty 1-D tensors of size 0
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = kept[0]
    if ref.ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = wrap_dim(dim, ref.ndim)
    for k, x in enumerate(kept):
        if x.ndim != ref.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ref.ndim} and {x.ndim}")
    return write_out(out, P.concat(*kept, axis=d))


concat = concatenate = cat


def stack(tensors, dim: int = 0, *, out=None):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for k, x in enumerate(tensors[1:], 1):
        if tuple(x.shape) != tuple(tensors[0].shape):
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} at "
                f"entry 0 and {list(x.shape)} at entry {k}")
    d = wrap_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(x, d) for x in tensors], d, out=out)


def hstack(tensors):
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([x if x.ndim > 1 else unsqueeze(x, 0) for x in tensors], 0)


def narrow(input, dim: int, start: int, length: int):
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if start < 0:
        start += n
    if not (0 <= start <= n and 0 <= length and start + length <= n):
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    index = tuple((start, start + length, 1) if i == d else (0, s, 1) for i, s in enumerate(input.shape))
    return P.slice(input, index=index)


def split(tensor, split_size_or_sections, dim: int = 0):
    d = wrap_dim(dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] if step else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                f"dimension {d}), but got split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(tensor, d, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    size = -(-n // chunks) if n else 0
    return split(input, size, d) if size else tuple(narrow(input, d, 0, 0) for _ in range(1))


def tensor_split(input, indices_or_sections, dim: int = 0):
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        return split(input, sizes, d)
    bounds = [0] + [builtins.min(builtins.max(int(i), 0), n) for i in indices_or_sections] + [n]
    return tuple(narrow(input, d, a, builtins.max(b - a, 0)) for a, b in zip(bounds, bounds[1:]))


def unbind(input, dim: int = 0):
    d = wrap_dim(dim, input.ndim)
    return tuple(select(input, d, i) for i in range(input.shape[d]))


def select(input, dim: int, index: int):
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at dimension {d}")
    return P.select(input, dim=d, index=index % n)


def flip(input, *args, dims=None):
    # torch.flip(x, (0, 1)), torch.flip(x, dims=0) and the method form x.flip(0, 1)
    dims = {wrap_dim(d, input.ndim) for d in sizes_arg(args if dims is None else (dims,))}
    index = tuple((s - 1, -1, -1) if i in dims else (0, s, 1) for i, s in enumerate(input.shape))
    return P.copy(P.slice(input, index=index))  # flip returns a copy in PyTorch


def fliplr(input):
    return flip(input, (1,))


def flipud(input):
    return flip(input, (0,))


def roll(input, shifts, dims=None):
    if dims is None:
        return reshape(roll(flatten(input), shifts, 0), tuple(input.shape))
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    x = input
    for s, d in zip(shifts, dims):
        d = wrap_dim(d, x.ndim)
        n = x.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            a, b = narrow(x, d, n - s, s), narrow(x, d, 0, n - s)
            x = P.concat(a, b, axis=d)
    return x


def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1):
    a, b = wrap_dim(dim1, input.ndim), wrap_dim(dim2, input.ndim)
    rest = [d for d in range(input.ndim) if d not in (a, b)]
    x = P.permute(input, dims=tuple(rest) + (a, b))
    n, m = x.shape[-2], x.shape[-1]
    rows = np.arange(builtins.max(0, -offset), n)
    cols = rows + offset
    keep = cols < m
    rows, cols = rows[keep], cols[keep]
    flat = P.reshape(x, shape=tuple(x.shape[:-2]) + (n * m,))
    # a strided slice of the flattened matrix: a view of ``input`` whenever the flattening is one
    if len(rows):
        start = int(rows[0] * m + cols[0])
        last = (start, start + (len(rows) - 1) * (m + 1) + 1, m + 1)
    else:
        last = (0, 0, 1)
    index = tuple((0, s, 1) for s in flat.shape[:-1]) + (last,)
    return P.slice(flat, index=index)


def tril(input, diagonal: int = 0):
    n, m = input.shape[-2], input.shape[-1]
    mask = device_tensor(np.tril(np.ones((n, m), dtype=bool), diagonal), input)
    return P.where(mask, input, False if input.dtype is dt.bool_ else 0)  # keeps bool masks bool


def triu(input, diagonal: int = 0):
    n, m = input.shape[-2], input.shape[-1]
    mask = device_tensor(np.triu(np.ones((n, m), dtype=bool), diagonal), input)
    return P.where(mask, input, False if input.dtype is dt.bool_ else 0)  # keeps bool masks bool


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return P.sum(diagonal(input), dims=(0,), keepdim=False)


def diag(input, diagonal: int = 0):
    if input.ndim == 1:
        n = input.shape[0] + builtins.abs(diagonal)
        rows = np.arange(input.shape[0]) + builtins.max(0, -diagonal)
        cols = np.arange(input.shape[0]) + builtins.max(0, diagonal)
        idx = device_tensor((rows * n + cols).astype(np.int64), input)
        zeros = device_full(input, shape=(n * n,), value=0, dtype=input.dtype)
        return P.reshape(P.scatter(zeros, idx, input, axis=0), shape=(n, n))
    return globals()["diagonal"](input, diagonal)


# ---- integer-tensor indexing ops ------------------------------------------------------------

def _index_tensor(index, what: str) -> Tensor:
    if not isinstance(index, Tensor):
        from .creation import tensor
        index = tensor(index)
    if index.dtype.is_floating_point or index.dtype is dt.bool_:
        raise RuntimeError(f"{what}(): Expected dtype int64 for index")
    return index


def index_select(input, dim: int, index):
    index = _index_tensor(index, "index_select")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    return P.take(input, P.reshape(index, shape=(index.numel(),)), axis=wrap_dim(dim, input.ndim))


def gather(input, dim: int, index, *, sparse_grad: bool = False):
    index = _index_tensor(index, "gather")
    return P.gather(input, index, axis=wrap_dim(dim, input.ndim))


def take_along_dim(input, indices, dim=None):
    if dim is None:
        return P.take(reshape(input, -1), reshape(indices, -1), axis=0)
    return gather(input, dim, expand(indices, tuple(
        s if i == wrap_dim(dim, input.ndim) else builtins.max(s, input.shape[i]) for i, s in enumerate(indices.shape))))


def take(input, index):
    return P.take(reshape(input, -1), _index_tensor(index, "take"), axis=0)


def _scatter_src(input, src, value):
    if src is None and value is None:
        raise TypeError("scatter() needs either src or value")
    s = value if src is None else src
    if isinstance(s, Tensor) and s.dtype is not input.dtype:
        s = s.to(input.dtype)
    return s


def _scalar_scatter(input, index, src):
    """PyTorch counts a 0-d tensor as 1-d in scatter: a 0-d index (with a 0-d src) on a 0-d or 1-d
    input writes one element (``torch.zeros(10).scatter_(0, torch.tensor(y), value=1)``, the
    one-hot idiom). Returns the arguments as 1-d and the shape to give the result back."""
    if index.ndim != 0 or input.ndim > 1:
        return input, index, src, None
    if isinstance(src, Tensor) and src.ndim == 0:
        src = P.reshape(src, shape=(1,))
    shape = tuple(input.shape)
    return P.reshape(input, shape=(1,)) if not shape else input, P.reshape(index, shape=(1,)), src, shape


def scatter(input, dim: int, index, src=None, *, value=None, reduce=None):
    input, index, s, shape = _scalar_scatter(input, _index_tensor(index, "scatter"), _scatter_src(input, src, value))
    d = wrap_dim(dim, input.ndim)
    if reduce is None:
        out = P.scatter(input, index, s, axis=d)
    elif reduce == "add":
        if not isinstance(s, Tensor):
            s = device_full(input, shape=tuple(index.shape), value=s, dtype=input.dtype)
        out = P.scatter_add(input, index, s, axis=d)
    else:
        raise NotImplementedError(f"scatter(reduce={reduce!r}) is not supported by graphc; use 'add' or scatter_reduce")
    return out if shape in (None, tuple(out.shape)) else P.reshape(out, shape=shape)


def scatter_add(input, dim: int, index, src):
    input, index, s, shape = _scalar_scatter(input, _index_tensor(index, "scatter_add"), _scatter_src(input, src, None))
    out = P.scatter_add(input, index, s, axis=wrap_dim(dim, input.ndim))
    return out if shape in (None, tuple(out.shape)) else P.reshape(out, shape=shape)


def index_add(input, dim: int, index, source, *, alpha=1):
    index = _index_tensor(index, "index_add")
    src = source if alpha == 1 else P.mul(source, alpha)
    return P.index_add(input, index, src, axis=wrap_dim(dim, input.ndim))


def masked_fill(input, mask, value):
    if not isinstance(mask, Tensor) or mask.dtype is not dt.bool_:
        got = mask.dtype.c_name if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {got}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {value.ndim} dimension(s).")
        value = value.to(input.dtype)
    elif input.dtype.category < dt.scalar_dtype(value).category and input.dtype is not dt.bool_:
        value = type(input._data.dtype.type(0).item())(value)
    return P.where(mask, value, input) if isinstance(value, Tensor) else _masked_scalar(input, mask, value)


def _masked_scalar(input, mask, value):
    out = P.where(mask, value, input)
    return out if out.dtype is input.dtype else P.cast(out, dtype=input.dtype)


def masked_select(input, mask):
    m = P.expand(mask, shape=np.broadcast_shapes(tuple(mask.shape), tuple(input.shape)))
    x = P.expand(input, shape=tuple(m.shape))
    flat_idx = Tensor._make(np.flatnonzero(m._data).astype(np.int64))
    return P.take(P.reshape(x, shape=(x.numel(),)), flat_idx, axis=0)


def nonzero(input, *, as_tuple: bool = False):
    idx = P.nonzero(input)
    if as_tuple:
        n = idx.shape[1] if idx.ndim == 2 else 0
        return tuple(P.reshape(select(idx, 1, k), shape=(idx.shape[0],)) for k in range(n))
    return idx


def argwhere(input):
    return P.nonzero(input)


def sort(input, dim: int = -1, descending: bool = False, stable: bool | None = None):
    from .math_ops import grad_named, values_indices
    d = wrap_dim(dim, input.ndim) if input.ndim else 0
    if input.ndim == 0:
        return values_indices["sort"](_alias_view(input), device_tensor(np.zeros((), np.int64), input))
    idx = P.argsort(input, dim=d, descending=descending)  # a primitive, so sort/topk compile
    # PyTorch's overload taking ``stable`` is a second backward node
    vals = grad_named(P.gather(input, idx, axis=d), "SortBackward0" if stable is None else "SortBackward1")
    return values_indices["sort"](vals, idx)


def msort(input):
    return sort(input, 0).values


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    return sort(input, dim, descending, stable).indices


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    from .math_ops import values_indices
    d = wrap_dim(dim, input.ndim)
    if k > input.shape[d]:
        raise RuntimeError("selected index k out of range")
    s = sort(input, d, descending=largest, stable=True)
    idx = narrow(s.indices, d, 0, k)
    idx = P.copy(idx)
    from .math_ops import grad_named
    return values_indices["topk"](grad_named(P.gather(input, idx, axis=d), "TopkBackward0"), idx)


def unique(input, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique(dim=...) is not supported by graphc")
    # the output's size depends on the values: computed on the host
    vals, inv, counts = np.unique(host_array(input._data), return_inverse=True, return_counts=True)
    out = [device_tensor(vals, input)]
    if return_inverse:
        out.append(device_tensor(inv.reshape(input._data.shape).astype(np.int64), input))
    if return_counts:
        out.append(device_tensor(counts.astype(np.int64), input))
    return out[0] if len(out) == 1 else tuple(out)


def meshgrid(*tensors, indexing: str | None = None):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    shape = [t.numel() for t in tensors]
    if indexing == "xy" and len(shape) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, tt in enumerate(tensors):
        pos = i
        if indexing == "xy" and len(shape) >= 2 and i < 2:
            pos = 1 - i
        view_shape = [1] * len(shape)
        view_shape[pos] = tt.numel()
        out.append(P.expand(P.reshape(tt, shape=tuple(view_shape)), shape=tuple(shape)))
    return tuple(out)


# ---- more shape and indexing ops ---------------------------------------------------------------

def _atleast(tensors, nd: int):
    def one(t):
        if not isinstance(t, Tensor):
            from .creation import tensor
            t = tensor(t)
        if t.ndim >= nd:
            return t
        s = tuple(t.shape)
        if nd == 1:
            shape = (1,)
        elif nd == 2:
            shape = (1,) * (2 - len(s)) + s
        else:  # atleast_3d: 0-d (1,1,1), (n,) -> (1,n,1), (m,n) -> (m,n,1)
            shape = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)]
        return P.reshape(t, shape=shape)

    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(one(t) for t in tensors[0])
    return one(tensors[0]) if len(tensors) == 1 else tuple(one(t) for t in tensors)


def atleast_1d(*tensors):
    return _atleast(tensors, 1)


def atleast_2d(*tensors):
    return _atleast(tensors, 2)


def atleast_3d(*tensors):
    return _atleast(tensors, 3)


def block_diag(*tensors):
    mats = []
    for k, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {k} has "
                               f"{t.ndim} dimensions")
        mats.append(P.reshape(t, shape=(1, 1) if t.ndim == 0 else (1, t.shape[0]) if t.ndim == 1 else tuple(t.shape)))
    if not mats:
        return Tensor._make(np.zeros((1, 0), dt.get_default_dtype().np))
    d = dt.result_type(*mats)
    cols = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        m = m if m.dtype is d else P.cast(m, dtype=d)
        rows.append(P.pad(m, pads=((0, 0), (left, cols - left - m.shape[1]))))
        left += m.shape[1]
    return P.concat(*rows, axis=0) if len(rows) > 1 else P.copy(rows[0])


def cartesian_prod(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
        if t.dtype is not tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    if len(tensors) == 1:
        return P.copy(tensors[0])
    grids = meshgrid(*tensors, indexing="ij")
    n = int(np.prod([t.shape[0] for t in tensors]))
    return stack([P.reshape(g, shape=(n,)) for g in grids], 1)


def index_fill(input, dim: int, index, value):
    index = _index_tensor(index, "index_fill")
    if index.ndim > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    d = wrap_dim(dim, input.ndim) if input.ndim else 0
    n = input.shape[d] if input.ndim else 1
    idx = P.index_check(P.reshape(index, shape=(index.numel(),)), size=n, dim=d, mode="index")
    hit = P.scatter(device_full(input, shape=(n,), value=False, dtype=dt.bool_), idx, True, axis=0)
    mask = P.reshape(hit, shape=tuple(n if i == d else 1 for i in range(input.ndim)))
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                           f"{value.ndim} dimension(s).")
    return masked_fill(input, mask, value)


def _symbolic(t) -> bool:
    return isinstance(t, Tensor) and t._symbolic


def masked_scatter(input, mask, source):
    if not isinstance(mask, Tensor) or mask.dtype is not dt.bool_:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                           f"{_torch_type(mask.dtype) if isinstance(mask, Tensor) else type(mask).__name__}")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got"
                           f"{_torch_type(input.dtype)} and {_torch_type(source.dtype)}")
    m = P.expand(mask, shape=tuple(input.shape)) if tuple(mask.shape) != tuple(input.shape) else mask
    n = input.numel()
    flat_m = P.reshape(m, shape=(n,))
    if not _symbolic(flat_m) and int(flat_m._data.sum()) > source.numel():
        raise RuntimeError("Number of elements of source < number of ones in mask")
    if source.numel() == 0:
        return P.copy(input)
    # the k-th True of the mask takes the k-th element of source
    pos = P.sub(P.cumsum(flat_m, dim=0), 1)
    pos = P.minimum(P.maximum(pos, 0), source.numel() - 1)
    vals = P.take(P.reshape(source, shape=(source.numel(),)), pos, axis=0)
    return P.reshape(P.where(flat_m, vals, P.reshape(input, shape=(n,))), shape=tuple(input.shape))


def _torch_type(d) -> str:
    return d.scalar_name


def put(input, index, source, accumulate: bool = False):
    index = _index_tensor(index, "put_")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"put_(): self and source expected to have the same dtype, but got self.dtype = "
                           f"{_torch_type(input.dtype)} and source.dtype = {_torch_type(source.dtype)}")
    if source.numel() != index.numel():
        raise IndexError(f"put_(): Expected source and index to have the same number of elements, but got "
                         f"source.numel() = {source.numel()}, index.numel() = {index.numel()}")
    n = input.numel()
    idx = P.index_check(P.reshape(index, shape=(index.numel(),)), size=n, dim=0, mode="put")
    flat = P.reshape(input, shape=(n,))
    src = P.reshape(source, shape=(source.numel(),))
    out = P.index_add(flat, idx, src, axis=0) if accumulate else P.scatter(flat, idx, src, axis=0)
    return P.reshape(out, shape=tuple(input.shape))
