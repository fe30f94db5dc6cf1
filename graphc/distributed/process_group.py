"""The default process group: one per process, over MPI's COMM_WORLD (``init_process_group``).

MPI decides the ranks (``mpiexec`` starts the processes); the launcher variables PyTorch's
launchers set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) are read and must agree, and are set from
MPI where missing, so scripts written for ``torchrun`` find them after ``init_process_group``.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
import traceback
from datetime import timedelta
from typing import Any

from ._mpi import load_mpi

# PyTorch's backend names: graphc has one backend, MPI; "gloo" and "nccl" are accepted so that a
# PyTorch script runs unchanged, and run on MPI too.
_BACKENDS = ("mpi", "gloo", "nccl", "cpu:gloo,cuda:nccl")


class ProcessGroup:
    """The ranks of one MPI communicator; ``ranks``: their global ranks, in group-rank order."""

    def __init__(self, comm: Any, backend: str, ranks: list[int]) -> None:
        self.comm = comm
        self._backend = backend
        self.ranks = ranks

    def rank(self) -> int:
        return self.comm.Get_rank()

    def size(self) -> int:
        return self.comm.Get_size()

    def name(self) -> str:
        return self._backend

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self._backend!r}, rank={self.rank()}, size={self.size()})"


class GroupMember:
    """``group.WORLD``: the default group once ``init_process_group`` has run."""
    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = -100


group = GroupMember
_lock = threading.Lock()


def is_available() -> bool:
    """Whether mpi4py is installed (``graphc[mpi]``). Cheap: MPI itself starts, and a missing MPI
    library is reported, at ``init_process_group``."""
    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    return is_available()


def is_gloo_available() -> bool:
    return False


def is_nccl_available() -> bool:
    return False


def is_initialized() -> bool:
    return GroupMember.WORLD is not None


def default_group(group: ProcessGroup | None = None) -> ProcessGroup:
    """``group``, or the default group; PyTorch's error when there is none."""
    if group is not None and group is not GroupMember.WORLD:
        if not isinstance(group, ProcessGroup):
            raise TypeError(f"group must be a ProcessGroup or None, not {type(group).__name__}")
        return group
    pg = GroupMember.WORLD
    if pg is None:
        raise ValueError("Default process group has not been initialized, "
                         "please make sure to call init_process_group.")
    return pg


def _local_rank(comm: Any, MPI: Any) -> tuple[int, int]:
    """(rank, size) among the processes on this machine."""
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank(), node.Get_size()
    finally:
        node.Free()


def _check_launcher_env(mpi_values: dict) -> None:
    """A launcher's variables (``RANK`` ...) must say what MPI says; the missing ones are set."""
    for name, mpi_value in mpi_values.items():
        value = os.environ.get(name)
        if value is not None and int(value) != mpi_value:
            raise RuntimeError(
                f"init_process_group: the environment says {name}={value}, but MPI says {mpi_value}. "
                "graphc's ranks come from MPI: start every process with mpiexec (or "
                "`python -m graphc.distributed.run --nproc N script.py`), not with torchrun, and don't "
                f"set {name} by hand")
    for name, mpi_value in mpi_values.items():
        os.environ.setdefault(name, str(mpi_value))


def _check_argument(name: str, given: int, mpi_value: int) -> None:
    if given not in (-1, None) and given != mpi_value:
        raise ValueError(f"init_process_group: {name}={given}, but MPI started this process with "
                         f"{name}={mpi_value}; the MPI backend takes rank and world size from MPI "
                         f"(leave {name} out, or start the job with mpiexec -n <world_size>)")


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: timedelta | None = None, world_size: int = -1, rank: int = -1,
                       store: Any = None, group_name: str = "", pg_options: Any = None,
                       device_id: Any = None) -> None:
    """Join the job ``mpiexec`` started: the default group is MPI's COMM_WORLD.

    ``init_method``, ``store`` and ``timeout`` are PyTorch's rendezvous settings: MPI has done the
    rendezvous already, so they are accepted and not used. ``world_size`` and ``rank``, when given,
    must match MPI's. An uncaught exception in any rank then aborts the whole job (every rank
    exits, none waits forever in a collective), after printing its traceback.
    """
    if backend is not None and str(backend).lower() not in _BACKENDS:
        raise ValueError(f"Invalid backend: '{backend}'. graphc.distributed runs on MPI: "
                         "use backend='mpi' (or leave it out)")
    with _lock:
        if GroupMember.WORLD is not None:
            raise ValueError("trying to initialize the default process group twice!")
        MPI = load_mpi()
        world = MPI.COMM_WORLD
        _check_argument("rank", rank, world.Get_rank())
        _check_argument("world_size", world_size, world.Get_size())
        local_rank, local_size = _local_rank(world, MPI)
        _check_launcher_env({"RANK": world.Get_rank(), "WORLD_SIZE": world.Get_size(),
                             "LOCAL_RANK": local_rank, "LOCAL_WORLD_SIZE": local_size})
        comm = world.Dup()  # our own context: a user's mpi4py traffic never matches ours
        GroupMember.WORLD = ProcessGroup(comm, "mpi", list(range(comm.Get_size())))
        _install_abort_on_uncaught_exception(MPI)


def new_group(ranks: list[int] | None = None, timeout: timedelta | None = None, backend: str | None = None,
              pg_options: Any = None, use_local_synchronization: bool = False, group_desc: str | None = None,
              device_id: Any = None) -> ProcessGroup | int:
    """A group of the given global ranks (all of them when None), for collectives among them.
    Every rank of the default group must call it, members or not, as in PyTorch; a rank outside
    the group gets ``GroupMember.NON_GROUP_MEMBER``, and collectives on it there do nothing."""
    world = default_group()
    members = sorted(set(range(world.size()) if ranks is None else (int(r) for r in ranks)))
    for r in members:
        if not 0 <= r < world.size():
            raise ValueError(f"new_group: rank {r} is not in the default group (ranks 0 to {world.size() - 1})")
    MPI = load_mpi()
    mpi_group = world.comm.Get_group().Incl(members)
    try:
        comm = world.comm.Create(mpi_group)  # collective over the default group
    finally:
        mpi_group.Free()
    if comm == MPI.COMM_NULL:
        return GroupMember.NON_GROUP_MEMBER
    return ProcessGroup(comm, world.name(), members)


def get_group_rank(group: ProcessGroup, global_rank: int) -> int:
    """``global_rank``'s rank within ``group``."""
    pg = default_group(group)
    if global_rank not in pg.ranks:
        raise ValueError(f"Group {pg} does not contain rank {global_rank}")
    return pg.ranks.index(global_rank)


def get_global_rank(group: ProcessGroup, group_rank: int) -> int:
    """The global rank of ``group``'s rank ``group_rank``."""
    pg = default_group(group)
    if not 0 <= group_rank < len(pg.ranks):
        raise ValueError(f"Group rank {group_rank} is not part of group {pg}")
    return pg.ranks[group_rank]


def get_process_group_ranks(group: ProcessGroup) -> list[int]:
    return list(default_group(group).ranks)


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave ``group``, or the default group (MPI itself is finalized when the process exits)."""
    with _lock:
        pg = default_group(group)
        if pg is GroupMember.WORLD:
            GroupMember.WORLD = None
        pg.comm.Free()


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (the default group); -1 outside it."""
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return default_group(group).rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    """How many processes ``group`` (the default group) has; -1 outside it."""
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return default_group(group).size()


def get_backend(group: ProcessGroup | None = None) -> str:
    return default_group(group).name()


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    if "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"])
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("LOCAL_RANK is not in the environment. Consider passing fallback_rank "
                       "to allow `get_node_local_rank` to work, assuming you are not running in a "
                       "multi-device context and want the code to run locally instead.")


def _install_abort_on_uncaught_exception(MPI: Any) -> None:
    """Once this rank has printed an uncaught exception, abort every rank: the others would
    otherwise wait forever for it in their next collective (MPI has no timeouts)."""
    previous = sys.excepthook
    if getattr(previous, "_graphc_aborts", False):
        return

    def hook(kind, value, tb) -> None:
        try:
            previous(kind, value, tb)
        except Exception:
            traceback.print_exception(kind, value, tb)
        rank = MPI.COMM_WORLD.Get_rank()
        sys.stderr.write(f"graphc.distributed: rank {rank} raised {kind.__name__}; aborting all ranks\n")
        sys.stderr.flush()
        sys.stdout.flush()
        MPI.COMM_WORLD.Abort(1)

    hook._graphc_aborts = True  # type: ignore[attr-defined]
    sys.excepthook = hook
