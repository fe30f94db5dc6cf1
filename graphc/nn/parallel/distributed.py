"""``DistributedDataParallel``: every rank holds the same model and trains on its own share of each
batch; gradients are averaged across the ranks during ``backward()``, so every rank's optimizer
takes the same step.

How the averaging overlaps the backward pass (PyTorch's reducer, on MPI): the parameters are
grouped into buckets in reverse order (roughly the order backward produces their gradients; the
first bucket small so communication starts early). A hook after each parameter's gradient is
accumulated counts its bucket down; a full bucket is flattened into one buffer and its all-reduce
started with MPI's nonblocking ``Iallreduce`` while backward goes on computing. Buckets start in
index order on every rank (MPI matches collectives by order). When the backward pass ends (an
autograd final callback) the remaining buckets start, every all-reduce is waited for, and the
averaged gradients are written into ``.grad``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from graphc.runtime import devices as _rt

from ...autograd import engine, grad_mode
from ...autograd.graph import AccumulateGrad
from ...dispatch import current as _dispatch
from ...tensors import Tensor
from ..modules.module import Module
from ... import distributed as distributed

_FIRST_BUCKET_BYTES = 1 << 20  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES



def _broadcast_coalesced(tensors: list, group: Any) -> None:
    """``tensors`` (any dtypes) from the group's first rank, as one broadcast of their bytes."""
    if not tensors:
        return
    host = [np.ascontiguousarray(_rt.runtime_of(t._data).to_host(t._data)) for t in tensors]
    flat = Tensor._make(np.concatenate([h.reshape(-1).view(np.uint8) for h in host]))
    distributed.broadcast(flat, group=group, group_src=0)
    if distributed.get_rank(group) == 0:
        return
    offset = 0
    for t, h in zip(tensors, host):
        n = h.nbytes
        got = flat._data[offset:offset + n].view(h.dtype).reshape(h.shape)
        offset += n
        rt = _rt.runtime_of(t._data)
        t._data[...] = rt.from_host(got, rt.index_of(t._data))
        t._version_counter.value += 1


class _PassState:
    """Where the backward pass now running stands: armed by a forward, the next bucket to start,
    whether the final callback is queued, which parameters got a gradient."""

    def __init__(self) -> None:
        self.armed = False
        self.next = 0
        self.callback_queued = False
        self.used: dict[int, bool] = {}


class _Bucket:
    def __init__(self, params: list) -> None:
        self.params = params
        self.pending = 0  # parameters whose gradient this backward pass has yet to produce
        self.work = None
        self.flat: Tensor | None = None

    def start(self, group: Any) -> None:
        """Flatten this rank's gradients (zeros for a parameter without one) and start averaging."""
        if _dispatch().functional:  # a traced training step: the average is a node of its graph
            from ...creation import zeros
            from ...shape_ops import cat
            with grad_mode.no_grad():
                parts = [(zeros(p.shape, dtype=p.dtype) if p.grad is None else p.grad).reshape(-1)
                         for p in self.params]
                self.flat = cat(parts) if len(parts) > 1 else parts[0].clone()
            distributed.all_reduce(self.flat, op=distributed.ReduceOp.AVG, group=group)  # a node of the traced graph
            self.work = None
            return
        parts = [np.zeros(p.shape, p.dtype.np).reshape(-1) if p.grad is None
                 else _rt.runtime_of(p.grad._data).to_host(p.grad._data).reshape(-1) for p in self.params]
        self.flat = Tensor._make(np.concatenate(parts))
        self.work = distributed.all_reduce(self.flat, op=distributed.ReduceOp.AVG, group=group, async_op=True)

    def finish(self, used: dict) -> None:
        """Wait, then write the averages into ``.grad`` (of parameters some rank used)."""
        if self.work is None:  # traced: the graph's average becomes the new .grad
            offset = 0
            with grad_mode.no_grad():
                for p in self.params:
                    n = p.numel()
                    p.grad = self.flat[offset:offset + n].reshape(p.shape)
                    offset += n
            self.work = self.flat = None  # no traced tensor stays behind
            return
        self.work.wait()
        offset = 0
        for p in self.params:
            n = p.numel()
            if used.get(id(p), True):
                avg = self.flat._data[offset:offset + n].reshape(p.shape)
                if p.grad is None:
                    p.grad = Tensor._make(_rt.get(p.device.type).from_host(avg.copy(), p.device.index))
                else:
                    g = p.grad._data
                    rt = _rt.runtime_of(g)
                    g[...] = rt.from_host(avg, rt.index_of(g))
                    p.grad._version_counter.value += 1
            offset += n
        self.work = self.flat = None


class DistributedDataParallel(Module):
    """Data parallelism across processes (``torch.nn.parallel.DistributedDataParallel``).

    Wrap the model after ``graphc.distributed.init_process_group()``; rank 0's parameters and
    buffers are copied to every rank. Each ``backward()`` after a forward through this wrapper
    leaves the gradients averaged over the ranks. ``no_sync()`` skips that (gradient
    accumulation); ``find_unused_parameters=True`` allows parameters that some forward passes
    don't use; ``broadcast_buffers`` copies rank 0's buffers (BatchNorm statistics) before each
    forward. The wrapped module may be a ``graphc.compile``d one, and a whole training step
    through the wrapper compiles into one graph: there the buffers' broadcast and each bucket's
    average are ``collective`` nodes of the graph. Compiling the wrapper alone breaks the graph
    (the averaging would run in autograd hooks after the compiled call, which it can't arm).
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group: Any = None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 delay_all_reduce_named_params: Any = None, param_to_hook_all_reduce: Any = None,
                 mixed_precision: Any = None, device_mesh: Any = None, skip_all_reduce_unused_params: bool = False) -> None:
        super().__init__()
        unsupported = {"delay_all_reduce_named_params": delay_all_reduce_named_params,
                       "param_to_hook_all_reduce": param_to_hook_all_reduce, "mixed_precision": mixed_precision,
                       "device_mesh": device_mesh}
        for name, value in unsupported.items():
            if value is not None:
                raise NotImplementedError(f"DistributedDataParallel: graphc does not support {name}; leave it out")
        # static_graph, gradient_as_bucket_view and check_reduction are PyTorch's speed and memory
        # options: accepted, and the gradients are the same without them
        from graphc.distributed.process_group import default_group
        group = default_group(process_group)
        params = list(dict.fromkeys(p for p in module.parameters() if p.requires_grad))
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.module = module
        self.process_group = group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self.dim = dim
        self.device_ids = device_ids
        self.output_device = output_device
        cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * (1 << 20))
        self._buckets = self._make_buckets(params, cap)
        self._bucket_of = {id(p): b for b in self._buckets for p in b.params}
        self._params = params
        # one backward pass's bookkeeping, mutated in place and never rebound: a compiled training
        # step guards module attributes its trace rebinds, and this changes every step
        self._pass = _PassState()
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]
        _broadcast_coalesced(list(module.state_dict(keep_vars=True).values()), group)

    @staticmethod
    def _make_buckets(params: list, cap: int) -> list:
        """Buckets of one dtype and device each, parameters in reverse order; the first bucket is
        small, so the first all-reduce starts early in the backward pass."""
        buckets: list = []
        open_: dict = {}
        for p in reversed(params):
            key = (p.dtype, str(p.device))
            cur = open_.get(key)
            if cur is not None:
                limit = min(_FIRST_BUCKET_BYTES, cap) if cur is buckets[0] else cap
                if sum(q.numel() * q.element_size() for q in cur.params) >= limit:
                    cur = None
            if cur is None:
                cur = open_[key] = _Bucket([])
                buckets.append(cur)
            cur.params.append(p)
        return buckets

    # ---- forward -----------------------------------------------------------------------------

    def forward(self, *inputs, **kwargs):
        handler = _dispatch()
        tracing = handler.functional
        if tracing:
            handler.needs_backward_inside(
                "DistributedDataParallel averages gradients during backward(): compile the wrapped module "
                "(DistributedDataParallel(compile(model))) or a whole training step that calls backward()")
            if self.find_unused_parameters and self.require_backward_grad_sync and grad_mode.is_grad_enabled():
                handler.eager_only("DistributedDataParallel(find_unused_parameters=True): which parameters each rank "
                                   "used is known only when the step runs")
        if self.broadcast_buffers:
            buffers = [b for b in self.module.buffers()]
            if buffers and tracing:
                for b in buffers:  # nodes of the traced graph
                    distributed.broadcast(b, group=self.process_group, group_src=0)
            elif buffers:
                _broadcast_coalesced(buffers, self.process_group)
        sync = grad_mode.is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            self._prepare_for_backward()
        out = self.module(*inputs, **kwargs)
        if sync and self.find_unused_parameters:
            self._mark_unused(out)
        return out

    def _prepare_for_backward(self) -> None:
        self._pass.armed = True
        self._pass.next = 0
        self._pass.callback_queued = False
        self._pass.used = {id(p): False for p in self._params}
        for b in self._buckets:
            b.pending = len(b.params)
            b.work = None

    def _mark_unused(self, out: Any) -> None:
        """Parameters the output doesn't depend on are ready now (they will get no gradient)."""
        reached, stack, seen = set(), [t.grad_fn for t in _tensors(out) if t.grad_fn is not None], set()
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, AccumulateGrad):
                reached.add(id(node.variable))
            stack.extend(n for n, _ in node.next_functions)
        for p in self._params:
            if id(p) not in reached:
                self._ready(p, used=False)

    # ---- backward ----------------------------------------------------------------------------

    def _grad_ready(self, param: Tensor) -> None:
        if not self._pass.armed:
            return  # a backward outside a DDP forward, or under no_sync()
        if not self._pass.callback_queued:
            engine.queue_callback(self._finish_backward)
            self._pass.callback_queued = True
        self._ready(param, used=True)
        for b in self._buckets[:self._pass.next]:
            if b.work is not None:
                b.work.is_completed()  # MPI progresses nonblocking collectives inside its calls

    _grad_ready.traceable_in_graph = True  # in a traced step, its collectives become graph nodes

    def _ready(self, param: Tensor, used: bool) -> None:
        if used:
            self._pass.used[id(param)] = True
        bucket = self._bucket_of[id(param)]
        bucket.pending -= 1
        while self._pass.next < len(self._buckets) and self._buckets[self._pass.next].pending == 0:
            self._buckets[self._pass.next].start(self.process_group)
            self._pass.next += 1

    def _finish_backward(self) -> None:
        self._pass.armed = False
        if self._pass.next < len(self._buckets):
            if not self.find_unused_parameters:
                missing = [i for i, p in enumerate(self._params) if not self._pass.used[id(p)]]
                raise RuntimeError(
                    "Expected to have finished reduction in the prior iteration before starting a new one. This "
                    "error indicates that your module has parameters that were not used in producing loss. You can "
                    "enable unused parameter detection by passing the keyword argument "
                    "`find_unused_parameters=True` to `torch.nn.parallel.DistributedDataParallel`, and by making "
                    "sure all `forward` function outputs participate in calculating loss. Parameter indices which "
                    f"did not receive grad for rank {self.process_group.rank()}: {' '.join(map(str, missing))}")
            for b in self._buckets[self._pass.next:]:
                b.start(self.process_group)
            self._pass.next = len(self._buckets)
        used: dict = {}
        if self.find_unused_parameters:
            # a parameter no rank used keeps its gradient (None), as in PyTorch
            flags = Tensor._make(np.array([self._pass.used[id(p)] for p in self._params], dtype=np.uint8))
            distributed.all_reduce(flags, op=distributed.ReduceOp.MAX, group=self.process_group)
            used = {id(p): bool(f) for p, f in zip(self._params, flags._data)}
        for b in self._buckets:
            b.finish(used)

    # ---- the rest of PyTorch's API -----------------------------------------------------------

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forward and backward passes inside accumulate local gradients without averaging them;
        the first backward after the block averages everything accumulated."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old


def _tensors(out: Any) -> Iterator[Tensor]:
    if isinstance(out, Tensor):
        yield out
    elif isinstance(out, (list, tuple)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)
