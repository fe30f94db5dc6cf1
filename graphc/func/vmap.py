"""``vmap``: trace the function once on one sample, then run the graph on the whole batch with
the batching rules (``passes/vmap``)."""
from __future__ import annotations

import functools
from typing import Any, Callable

from graphc.ir import prims as P
from graphc.passes.vmap import BatchContext, interpret
from graphc.passes.vmap.rules import materialize, move_from_front, move_to_front

from ..device import using_device
from ..tensors import Tensor
from . import pytree
from .trace import FuncTrace


def _name(func) -> str:
    if hasattr(func, "__name__"):
        return func.__name__
    if isinstance(func, functools.partial):
        return f"functools.partial({_name(func.func)}, ...)"
    return repr(func)


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """PyTorch's ``torch.func.vmap``: ``func`` mapped over dimension ``in_dims`` of its inputs."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        for d in pytree.flatten(out_dims)[0]:
            if d is not None and not isinstance(d, int):
                raise ValueError(
                    f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python "
                    "collection of ints representing where in the outputs the vmapped dimension should appear.")
        size, flat_dims, flat_args, spec = _batched_inputs(func, in_dims, args)
        if chunk_size is None or chunk_size >= size:
            return _vmap_call(func, size, flat_dims, flat_args, spec, out_dims, randomness, kwargs)
        chunks = []
        for start in range(0, size, chunk_size):
            n = min(chunk_size, size - start)
            part = [a if d is None else P.slice(a, index=tuple((start, start + n, 1) if i == d else (0, s, 1)
                                                                for i, s in enumerate(a.shape)))
                    for a, d in zip(flat_args, flat_dims)]
            chunks.append(_vmap_call(func, n, flat_dims, part, spec, out_dims, randomness, kwargs))
        return _concat_chunks(func, chunks, out_dims)

    return wrapped


def _batched_inputs(func, in_dims, args):
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a "
                         f"(potentially nested) tuple matching the structure of inputs, got: {type(in_dims)}.")
    if not args:
        raise ValueError(f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
                         "trying to vmap over a function with no inputs. The latter is unsupported.")
    flat_args, spec = pytree.flatten(args)
    flat_dims = pytree.broadcast_prefix(in_dims, spec)
    if flat_dims is None:
        raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
                         f"structure of `inputs`. in_dims has structure {pytree.flatten(in_dims)[1]} but inputs has "
                         f"structure {spec}.")
    for i, (a, d) in enumerate(zip(flat_args, flat_dims)):
        if d is not None and not isinstance(d, int):
            raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but "
                             "in_dim must be either an integer dimension or None.")
        if d is not None and not isinstance(a, Tensor):
            raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but "
                             f"the input is of type {type(a)}. We cannot vmap over non-Tensor arguments, please use "
                             "None as the respective in_dim")
        if d is not None and not -a.dim() <= d < a.dim():
            raise ValueError(f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for some input, "
                             f"but that input is a Tensor of dimensionality {a.dim()} so expected in_dim to satisfy "
                             f"-{a.dim()} <= in_dim < {a.dim()}.")
        if d is not None and d < 0:
            flat_dims[i] = d % a.dim()
    sizes = [a.shape[d] for a, d in zip(flat_args, flat_dims) if d is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    return sizes[0], flat_dims, flat_args, spec


def _vmap_call(func, size, flat_dims, flat_args, spec, out_dims, randomness, kwargs):
    device = next(a.device for a, d in zip(flat_args, flat_dims) if d is not None)
    trace = FuncTrace("vmap", device)
    samples = [a if d is None else
               trace.input(tuple(s for i, s in enumerate(a.shape) if i != d), a.dtype, a.requires_grad)
               for a, d in zip(flat_args, flat_dims)]
    out = trace.run(func, *pytree.unflatten(samples, spec), **kwargs)
    flat_out, out_spec = pytree.flatten(out)
    flat_out_dims = _out_dims(func, out, out_dims, out_spec)
    values = [trace.value(o) for o in flat_out]
    env = trace.lifted_env()
    for s, a, d in zip(samples, flat_args, flat_dims):
        if d is not None:
            env[id(s._value)] = (move_to_front(a, d), True)
    ctx = BatchContext(size, randomness)
    with using_device(device):  # constants the graph creates go on the inputs' device
        interpret(trace.graph.nodes, env, ctx)
    results = []
    for o, v, d in zip(flat_out, values, flat_out_dims):
        if d is None:
            if v is not None and env[id(v)][1]:
                raise ValueError(f"vmap({_name(func)}, ...): `{_name(func)}` can not return a BatchedTensor when "
                                 "out_dim is None")
            results.append(env[id(v)][0] if v is not None else o)
            continue
        if v is None:
            raise ValueError(f"vmap({_name(func)}, ...): `{_name(func)}` must only return Tensors, got type "
                             f"{type(o)}. Did you mean to set out_dims= to None for output?")
        r, batched = env[id(v)]
        if not batched:
            r = materialize(ctx, r)
        ndim = len(r.shape)
        if not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
        results.append(move_from_front(r, d % ndim))
    return pytree.unflatten(results, out_spec)


def _out_dims(func, out, out_dims, out_spec) -> list:
    if isinstance(out, Tensor):
        if isinstance(out_dims, int) or out_dims is None:
            return [out_dims]
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            return list(out_dims)
        flat = None
    else:
        flat = pytree.broadcast_prefix(out_dims, out_spec)
    if flat is None:
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with "
                         f"the structure of `outputs`. out_dims has structure {pytree.flatten(out_dims)[1]} but "
                         f"outputs has structure {out_spec}.")
    return flat


def _concat_chunks(func, chunks: list, out_dims):
    from ..shape_ops import cat
    flats = [pytree.flatten(c) for c in chunks]
    spec = flats[0][1]
    dims = _out_dims(func, chunks[0], out_dims, spec)
    outs = [leaves[0] if d is None else cat(list(leaves), dim=d)
            for leaves, d in zip(zip(*(f[0] for f in flats)), dims)]
    return pytree.unflatten(outs, spec)
