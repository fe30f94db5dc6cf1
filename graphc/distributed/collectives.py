"""Collectives and point-to-point messages on tensors, with ``torch.distributed``'s signatures.

Each call is an MPI nonblocking operation on host buffers: a CPU tensor's own memory when it is
contiguous (no copy), else a contiguous host copy written back into the tensor when the operation
completes (cuda tensors go through the host this way). With ``async_op=True`` the call returns a
``Work`` whose ``wait()`` completes it; otherwise it waits before returning, and results are
written in place, as PyTorch does.
"""
from __future__ import annotations

import enum
import functools
import inspect
import pickle
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from graphc.runtime import devices as _rt

from ..dispatch import current as _dispatch
from ._mpi import load_mpi
from .process_group import GroupMember, ProcessGroup, default_group


class ReduceOp(enum.Enum):
    """How ``all_reduce``, ``reduce`` and ``reduce_scatter_tensor`` combine the ranks' tensors."""
    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7

    def __repr__(self) -> str:
        return f"<RedOpType.{self.name}: {self.value}>"


ReduceOp.RedOpType = ReduceOp  # type: ignore[attr-defined]  # torch spells ReduceOp.RedOpType.SUM too


def _mpi_op(op: ReduceOp, dtype: np.dtype) -> Any:
    MPI = load_mpi()
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op must be a graphc.distributed.ReduceOp, not {op!r}")
    if dtype == np.bool_:  # MPI reduces C booleans only with logical operations
        return {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.BOR: MPI.LOR,
                ReduceOp.PRODUCT: MPI.LAND, ReduceOp.MIN: MPI.LAND, ReduceOp.BAND: MPI.LAND,
                ReduceOp.BXOR: MPI.LXOR, ReduceOp.AVG: None}[op] or _no_avg(dtype)
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and dtype.kind not in "iu":
        raise RuntimeError(f"Cannot use ReduceOp.{op.name} with non-integral dtype")
    if op is ReduceOp.AVG and dtype.kind not in "fc":
        _no_avg(dtype)
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX, ReduceOp.BAND: MPI.BAND,
            ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}[op]


def _no_avg(dtype: np.dtype):
    raise RuntimeError(f"ReduceOp.AVG needs a floating point or complex tensor, got {dtype}: "
                       "all_reduce with ReduceOp.SUM and divide by the world size")


# dtypes MPI has no arithmetic for: reduced in float32 and rounded back
_WIDER = {"float16": np.float32, "bfloat16": np.float32}


class _HostBuffer:
    """A tensor's data as a contiguous host array MPI reads or writes (``array``), and ``finish``
    which puts MPI's result back into the tensor (nothing to copy when ``array`` is its memory)."""

    def __init__(self, tensor: Any, for_reduction: bool = False, written: bool = True) -> None:
        _check_tensor(tensor)
        self.tensor = tensor
        data = tensor._data
        self.written = written
        wide = _WIDER.get(np.dtype(data.dtype).name) if for_reduction else None
        if isinstance(data, np.ndarray) and data.flags.c_contiguous and data.flags.writeable and wide is None:
            self.array, self.copied = data, False
        else:
            host = _rt.runtime_of(data).to_host(data)
            self.array = np.ascontiguousarray(host, dtype=wide or host.dtype)
            self.copied = True

    def finish(self, result: np.ndarray | None = None) -> None:
        if not self.written:
            return
        data = self.tensor._data
        result = self.array if result is None else result
        if self.copied or result is not self.array:
            rt = _rt.runtime_of(data)
            data[...] = rt.from_host(result.astype(data.dtype, copy=False), rt.index_of(data))
        self.tensor._version_counter.value += 1


def _check_tensor(t: Any, name: str = "tensor") -> None:
    from ..tensors import Tensor
    if not isinstance(t, Tensor):
        raise TypeError(f"Invalid function argument. Expected parameter `{name}` of type torch.Tensor\n"
                        f"             but got {type(t)} instead.")


def _check_tensor_list(ts: Any, name: str) -> None:
    from ..tensors import Tensor
    if not isinstance(ts, list) or not all(isinstance(t, Tensor) for t in ts):
        raise TypeError(f"Invalid function argument. Expected parameter `{name}` of type List[torch.Tensor]\n"
                        f"             but got {type(ts)} instead.")


class Work:
    """A collective in flight (``async_op=True``): ``wait()`` completes it and writes its results."""

    def __init__(self, requests: Sequence[Any], finish: Callable[[], Any], outputs: list) -> None:
        self._requests = list(requests)
        self._finish = finish
        self._outputs = outputs
        self._done = False
        self._source: int | None = None

    def _complete(self, statuses: list) -> None:
        self._done = True
        self._requests = []
        self._source = statuses[0].Get_source() if statuses else None
        self._finish()

    def wait(self, timeout: Any = None) -> bool:
        if not self._done:
            MPI = load_mpi()
            statuses = [MPI.Status() for _ in self._requests]
            MPI.Request.Waitall(self._requests, statuses)
            self._complete(statuses)
        return True

    def is_completed(self) -> bool:
        if not self._done:
            MPI = load_mpi()
            statuses = [MPI.Status() for _ in self._requests]
            if MPI.Request.Testall(self._requests, statuses):
                self._complete(statuses)
        return self._done

    def is_success(self) -> bool:
        return self.is_completed()

    def exception(self) -> None:
        return None

    def result(self) -> list:
        self.wait()
        return self._outputs

    def _source_rank(self) -> int | None:
        """The sender's rank in the communicator (receives only)."""
        self.wait()
        return self._source

    def __repr__(self) -> str:
        return f"<graphc.distributed.Work {'completed' if self._done else 'pending'}>"


def _run(group: ProcessGroup | None, start: Callable[[Any], tuple], async_op: bool, outputs: list):
    """Start an operation on ``group``'s communicator (``start(comm) -> (requests, finish)``), and
    wait for it unless ``async_op``."""
    pg = default_group(group)
    requests, finish = start(pg.comm)
    work = Work(requests, finish, outputs)
    if async_op:
        return work
    work.wait()
    return None


def _collective(fn: Callable) -> Callable:
    """A public collective: inside ``graphc.compile``, a blocking ``all_reduce`` or ``broadcast``
    becomes a node of the graph (``in_graph``); the others break the graph (a traced graph holds
    no work handles, lists or point-to-point exchanges), before they touch any tensor's values.
    On a rank outside its ``group`` it does nothing, with PyTorch's warning."""
    signature = inspect.signature(fn)

    def eager(args, kwargs, member: bool):
        if not member:
            warnings.warn(f"Running {fn.__name__} on global rank {default_group().rank()} which does not belong to "
                          "the given group.", stacklevel=5)  # the caller of run, through the dispatch event
            return None
        return fn(*args, **kwargs)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        from .in_graph import IN_GRAPH
        bound = dict(signature.bind(*args, **kwargs).arguments)
        member = bound.get("group") is not GroupMember.NON_GROUP_MEMBER
        traced = IN_GRAPH.get(fn.__name__) if member and not bound.pop("async_op", False) else None
        return _dispatch().collective(fn.__name__, lambda: eager(args, kwargs, member),
                                      traced and (lambda: traced(**bound)))
    return run


def _root(pg: ProcessGroup, rank: int | None, group_rank: int | None, what: str, default: int | None = None) -> int:
    """A root's rank in ``pg``, given as a global rank (``rank``) or as a rank in the group."""
    if rank is not None and group_rank is not None:
        raise ValueError("Can't specify both group_rank and global_rank")
    if group_rank is not None:
        if not 0 <= int(group_rank) < pg.size():
            raise ValueError(f"Invalid {what} rank {group_rank}: the group has ranks 0 to {pg.size() - 1}")
        return int(group_rank)
    r = rank if rank is not None else default
    if r is None:
        raise ValueError("Must specify global_rank or group_rank")
    if int(r) not in pg.ranks:
        raise ValueError(f"Invalid {what} rank {r}: the group holds the global ranks {pg.ranks}")
    return pg.ranks.index(int(r))


def _same_dtype(*tensors) -> None:
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        a, b = list(dtypes)[:2]
        raise ValueError(f"Invalid usage of tensors with different dtypesFound {a} and  {b}")


def _average(arr: np.ndarray, n: int) -> np.ndarray:
    np.divide(arr, n, out=arr)
    return arr


@_collective
def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None, async_op: bool = False):
    """Combine ``tensor`` across the ranks with ``op``; every rank gets the result in ``tensor``."""
    buf = _HostBuffer(tensor, for_reduction=True)
    mpi_op = _mpi_op(op, buf.array.dtype)

    def start(comm):
        MPI = load_mpi()
        req = comm.Iallreduce(MPI.IN_PLACE, buf.array, op=mpi_op)

        def finish():
            if op is ReduceOp.AVG:
                _average(buf.array, comm.Get_size())
            buf.finish()
        return [req], finish
    return _run(group, start, async_op, [tensor])


@_collective
def reduce(tensor, dst: int | None = None, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None,
           async_op: bool = False, group_dst: int | None = None):
    """Combine ``tensor`` across the ranks into rank ``dst``'s ``tensor`` (the others' are kept)."""
    pg = default_group(group)
    root = _root(pg, dst, group_dst, "destination")
    mine = pg.rank() == root
    buf = _HostBuffer(tensor, for_reduction=True, written=mine)
    mpi_op = _mpi_op(op, buf.array.dtype)

    def start(comm):
        MPI = load_mpi()
        if mine:
            req = comm.Ireduce(MPI.IN_PLACE, buf.array, op=mpi_op, root=root)
        else:
            req = comm.Ireduce(buf.array, None, op=mpi_op, root=root)

        def finish():
            if mine and op is ReduceOp.AVG:
                _average(buf.array, comm.Get_size())
            buf.finish()
        return [req], finish
    return _run(pg, start, async_op, [tensor])


@_collective
def broadcast(tensor, src: int | None = None, group: ProcessGroup | None = None, async_op: bool = False,
              group_src: int | None = None):
    """Rank ``src``'s ``tensor`` into every rank's ``tensor``."""
    pg = default_group(group)
    root = _root(pg, src, group_src, "source")
    buf = _HostBuffer(tensor, written=pg.rank() != root)

    def start(comm):
        return [comm.Ibcast(_bytes(buf.array), root=root)], buf.finish
    return _run(pg, start, async_op, [tensor])


def _bytes(a: np.ndarray) -> np.ndarray:
    """The raw bytes of a contiguous array: data that is only moved needs no MPI type of its own
    (bfloat16, bool and complex move as they are)."""
    return a.reshape(-1).view(np.uint8)


def _check_sizes(kind: str, tensors: Sequence, like: Any, n: int) -> None:
    if len(tensors) != n:
        raise ValueError(f"{kind}: expected a list of {n} tensors (one per rank), got {len(tensors)}")
    for i, t in enumerate(tensors):
        if tuple(t.shape) != tuple(like.shape):
            raise RuntimeError(f"{kind}: invalid tensor size at index {i} (expected {tuple(like.shape)}, "
                               f"got {tuple(t.shape)})")


def _gathered_rows(rows: np.ndarray, outputs: Sequence) -> Callable[[], None]:
    """Copy row ``i`` of ``rows`` into ``outputs[i]``."""
    def finish():
        for i, t in enumerate(outputs):
            out = _HostBuffer(t)
            out.finish(rows[i].reshape(out.array.shape))
    return finish


@_collective
def all_gather(tensor_list: list, tensor, group: ProcessGroup | None = None, async_op: bool = False):
    """Every rank's ``tensor`` into ``tensor_list[rank]``, on every rank."""
    _check_tensor_list(tensor_list, "tensor_list")
    _check_tensor(tensor)
    _same_dtype(tensor, *tensor_list)
    pg = default_group(group)
    _check_sizes("all_gather", tensor_list, tensor, pg.size())
    send = _HostBuffer(tensor, written=False).array
    rows = np.empty((pg.size(),) + send.shape, send.dtype)

    def start(comm):
        return [comm.Iallgather(_bytes(send), _bytes(rows))], _gathered_rows(rows, tensor_list)
    return _run(pg, start, async_op, tensor_list)


@_collective
def all_gather_into_tensor(output_tensor, input_tensor, group: ProcessGroup | None = None, async_op: bool = False):
    """Every rank's ``input_tensor``, concatenated (or stacked) in rank order into ``output_tensor``."""
    _check_tensor(output_tensor, "output_tensor")
    _check_tensor(input_tensor, "input_tensor")
    _same_dtype(output_tensor, input_tensor)
    pg = default_group(group)
    if output_tensor.numel() != pg.size() * input_tensor.numel():
        raise ValueError("output tensor size must be equal to world_size times input tensor size")
    send = _HostBuffer(input_tensor, written=False).array
    out = _HostBuffer(output_tensor)

    def start(comm):
        return [comm.Iallgather(_bytes(send), _bytes(out.array))], out.finish
    return _run(pg, start, async_op, [output_tensor])


@_collective
def reduce_scatter_tensor(output, input, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None,
                          async_op: bool = False):
    """``input`` combined across ranks with ``op``, split into world-size equal blocks along its
    first dimension; rank ``i`` gets block ``i`` in ``output``."""
    _check_tensor(output, "output")
    _check_tensor(input, "input")
    _same_dtype(output, input)
    pg = default_group(group)
    if input.numel() != pg.size() * output.numel():
        raise ValueError("input tensor must be the same size as output size times world size")
    send = _HostBuffer(input, for_reduction=True, written=False).array
    out = _HostBuffer(output, for_reduction=True)
    mpi_op = _mpi_op(op, send.dtype)

    def start(comm):
        req = comm.Ireduce_scatter_block(send, out.array, op=mpi_op)

        def finish():
            if op is ReduceOp.AVG:
                _average(out.array, comm.Get_size())
            out.finish()
        return [req], finish
    return _run(pg, start, async_op, [output])


def _rooted_list(tensor, tensors: list | None, name: str, pg, rank: int | None, group_rank: int | None,
                 role: str) -> tuple[list, int, bool]:
    """gather's and scatter's checks: the list of tensors is given on the root rank only.
    Returns the list ([] off the root), the root and whether this rank is it."""
    _check_tensor(tensor)
    if tensors:
        _check_tensor_list(tensors, name)
    tensors = tensors or []
    _same_dtype(tensor, *tensors)
    root = _root(pg, rank, group_rank, role, default=0)
    mine = pg.rank() == root
    if mine and not tensors:
        raise ValueError(f"Argument ``{name}`` must be specified on {role} rank.")
    if not mine and tensors:
        raise ValueError(f"Argument ``{name}`` must NOT be specified on non-{role} ranks.")
    return tensors, root, mine


@_collective
def gather(tensor, gather_list: list | None = None, dst: int | None = None, group: ProcessGroup | None = None,
           async_op: bool = False, group_dst: int | None = None):
    """Every rank's ``tensor`` into ``gather_list`` on rank ``dst`` (default 0)."""
    pg = default_group(group)
    gather_list, root, mine = _rooted_list(tensor, gather_list, "gather_list", pg, dst, group_dst, "destination")
    if mine:
        _check_sizes("gather", gather_list, tensor, pg.size())
    send = _HostBuffer(tensor, written=False).array
    rows = np.empty((pg.size(),) + send.shape, send.dtype) if mine else None

    def start(comm):
        req = comm.Igather(_bytes(send), _bytes(rows) if mine else None, root=root)
        return [req], (_gathered_rows(rows, gather_list) if mine else (lambda: None))
    return _run(pg, start, async_op, gather_list)


@_collective
def scatter(tensor, scatter_list: list | None = None, src: int | None = None, group: ProcessGroup | None = None,
            async_op: bool = False, group_src: int | None = None):
    """``scatter_list[i]`` on rank ``src`` (default 0) into rank ``i``'s ``tensor``."""
    pg = default_group(group)
    scatter_list, root, mine = _rooted_list(tensor, scatter_list, "scatter_list", pg, src, group_src, "source")
    out = _HostBuffer(tensor)
    rows = None
    if mine:
        _check_sizes("scatter", scatter_list, tensor, pg.size())
        rows = np.stack([_HostBuffer(t, written=False).array for t in scatter_list])

    def start(comm):
        return [comm.Iscatter(_bytes(rows) if mine else None, _bytes(out.array), root=root)], out.finish
    return _run(pg, start, async_op, [tensor])


def _peer(pg: ProcessGroup, rank: int | None, group_rank: int | None, what: str) -> int:
    r = _root(pg, rank, group_rank, what)
    if r == pg.rank():
        raise ValueError(f"Invalid {what} rank: {what} rank should not be the same as the rank of the "
                         "current process.")
    return r


@_collective
def isend(tensor, dst: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
          group_dst: int | None = None) -> Work:
    """Send ``tensor`` to rank ``dst``; the returned ``Work`` completes when it may be reused."""
    pg = default_group(group)
    peer = _peer(pg, dst, group_dst, "destination")
    send = _HostBuffer(tensor, written=False).array.copy()  # the caller may change tensor meanwhile

    def start(comm):
        return [comm.Isend(_bytes(send), dest=peer, tag=tag)], lambda: None
    return _run(pg, start, True, [tensor])


@_collective
def irecv(tensor, src: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
          group_src: int | None = None) -> Work:
    """Receive into ``tensor`` from rank ``src`` (None: from any rank)."""
    pg = default_group(group)
    peer = load_mpi().ANY_SOURCE if src is None and group_src is None else _peer(pg, src, group_src, "source")
    out = _HostBuffer(tensor)

    def start(comm):
        return [comm.Irecv(_bytes(out.array), source=peer, tag=tag)], out.finish
    return _run(pg, start, True, [tensor])


@_collective
def send(tensor, dst: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
         group_dst: int | None = None) -> None:
    isend(tensor, dst, group, tag, group_dst).wait()


@_collective
def recv(tensor, src: int | None = None, group: ProcessGroup | None = None, tag: int = 0,
         group_src: int | None = None) -> int:
    """Receive into ``tensor``; returns the sender's global rank."""
    return default_group(group).ranks[irecv(tensor, src, group, tag, group_src)._source_rank()]


@_collective
def barrier(group: ProcessGroup | None = None, async_op: bool = False, device_ids: Any = None, timeout: Any = None):
    """Wait until every rank of the group has reached this call."""
    def start(comm):
        return [comm.Ibarrier()], lambda: None
    return _run(group, start, async_op, [])


@_collective
def all_gather_object(object_list: list, obj: Any, group: ProcessGroup | None = None) -> None:
    """Every rank's picklable ``obj`` into ``object_list[rank]``. As in PyTorch, this unpickles
    what the other ranks send: use it only among ranks you trust (your own job)."""
    pg = default_group(group)
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list needs {pg.size()} entries (one per rank), "
                         f"got {len(object_list)}")
    object_list[:] = [pickle.loads(b) for b in pg.comm.allgather(pickle.dumps(obj))]


@_collective
def broadcast_object_list(object_list: list, src: int | None = None, group: ProcessGroup | None = None,
                          device: Any = None, group_src: int | None = None) -> None:
    """Rank ``src``'s picklable objects into every rank's ``object_list`` (same caveat as
    ``all_gather_object``)."""
    pg = default_group(group)
    root = _root(pg, src, group_src, "source", default=0)
    data = pg.comm.bcast(pickle.dumps(list(object_list)) if pg.rank() == root else None, root=root)
    object_list[:] = pickle.loads(data)
