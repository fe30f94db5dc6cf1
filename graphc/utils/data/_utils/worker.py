"""The DataLoader worker process loop and ``get_worker_info`` (``torch.utils.data._utils.worker``)."""
from __future__ import annotations

import os
import queue
import random
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler

from . import MP_STATUS_CHECK_INTERVAL, ExceptionWrapper


class ManagerWatchdog:
    """Tells a worker whether the process that started it is still alive (the parent pid changes if not)."""

    def __init__(self) -> None:
        self.manager_pid = os.getppid()
        self.manager_dead = False

    def is_alive(self) -> bool:
        if not self.manager_dead:
            self.manager_dead = os.getppid() != self.manager_pid
        return not self.manager_dead


_worker_info = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Information about the current DataLoader worker process (read-only, as in PyTorch).

    Attributes:
        id: the worker id, in ``[0, num_workers)``
        num_workers: the number of workers
        seed: the seed this worker's RNGs were seeded with (``base_seed + id``)
        dataset: this worker's copy of the dataset
        rng: per-thread RNG container (``None`` for process workers)
        worker_method: ``"multiprocessing"``
    """

    id: int
    num_workers: int
    seed: int
    dataset: object
    rng: object | None = None
    worker_method: str | None = "multiprocessing"


def get_worker_info():
    """The current worker's :class:`WorkerInfo` inside a DataLoader worker process, ``None`` in the main process.

    Useful in an ``IterableDataset.__iter__`` or a ``worker_init_fn`` to give each worker its own shard
    (``info.id`` out of ``info.num_workers``) or to seed other libraries with ``info.seed``.
    """
    return _worker_info


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    """Sent by a worker whose IterableDataset copy is exhausted."""
    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    """Sent to persistent workers at the start of a new epoch."""
    seed: int | None = None


def _generate_state(base_seed, worker_id):
    """numpy's seed for a worker: PyTorch's SeedSequence-like hash of (base_seed, worker_id) (MIT, numpy)."""
    INIT_A = 0x43B0D7E5
    MULT_A = 0x931E8875
    INIT_B = 0x8B51F9DD
    MULT_B = 0x58F38DED
    MIX_MULT_L = 0xCA01F9DD
    MIX_MULT_R = 0x4973F715
    XSHIFT = 4 * 8 // 2
    MASK32 = 0xFFFFFFFF

    entropy = [worker_id, base_seed & MASK32, base_seed >> 32, 0]
    pool = [0] * 4
    hash_const_A = INIT_A

    def hash(value):
        nonlocal hash_const_A
        value = (value ^ hash_const_A) & MASK32
        hash_const_A = (hash_const_A * MULT_A) & MASK32
        value = (value * hash_const_A) & MASK32
        value = (value ^ (value >> XSHIFT)) & MASK32
        return value

    def mix(x, y):
        result_x = (MIX_MULT_L * x) & MASK32
        result_y = (MIX_MULT_R * y) & MASK32
        result = (result_x - result_y) & MASK32
        result = (result ^ (result >> XSHIFT)) & MASK32
        return result

    for i in range(len(pool)):
        pool[i] = hash(entropy[i])
    for i_src in range(len(pool)):
        for i_dst in range(len(pool)):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hash(pool[i_src]))

    hash_const_B = INIT_B
    state = []
    for i_dst in range(4):
        data_val = pool[i_dst]
        data_val = (data_val ^ hash_const_B) & MASK32
        hash_const_B = (hash_const_B * MULT_B) & MASK32
        data_val = (data_val * hash_const_B) & MASK32
        data_val = (data_val ^ (data_val >> XSHIFT)) & MASK32
        state.append(data_val)
    return state


def _put(data_queue, item, worker_id) -> None:
    """Pickle ``item`` here, so a batch that cannot be pickled becomes an error the main process
    re-raises (``multiprocessing.Queue`` would pickle it in a feeder thread, lose it and hang the loader)."""
    try:
        payload = bytes(ForkingPickler.dumps(item))
    except Exception:
        payload = bytes(ForkingPickler.dumps((item[0], ExceptionWrapper(where=f"in DataLoader worker process {worker_id}"))))
    data_queue.put(payload)


def _worker_loop(dataset_kind, dataset, index_queue, data_queue, done_event, auto_collation, collate_fn,
                 drop_last, base_seed, init_fn, worker_id, num_workers, persistent_workers, shared_seed) -> None:
    """Body of one worker process: receive ``(task_idx, index)``, send back ``(task_idx, data)``.

    ``None`` on the index queue is the signal to exit. Exceptions are sent back wrapped (with the
    traceback text) so the main process re-raises them; an exhausted IterableDataset sends
    ``_IterableDatasetStopIteration``.
    """
    try:
        import numpy as np

        import graphc

        seed = base_seed + worker_id
        random.seed(seed)
        graphc.manual_seed(seed)
        np.random.seed(_generate_state(base_seed, worker_id))

        global _worker_info
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)

        from ..dataloader import _DatasetKind

        init_exception = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _DatasetKind.create_fetcher(dataset_kind, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_exception = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")

        iteration_end = False
        watchdog = ManagerWatchdog()

        while watchdog.is_alive():
            try:
                r = index_queue.get(timeout=MP_STATUS_CHECK_INTERVAL)
            except queue.Empty:
                continue
            if isinstance(r, _ResumeIteration):
                _put(data_queue, (r, None), worker_id)
                iteration_end = False
                fetcher = _DatasetKind.create_fetcher(dataset_kind, dataset, auto_collation, collate_fn, drop_last)
                continue
            elif r is None:
                # the final signal
                break
            elif done_event.is_set() or iteration_end:
                # skip work until the final signal arrives
                continue
            idx, index = r
            if init_exception is not None:
                data = init_exception
                init_exception = None
            else:
                try:
                    data = fetcher.fetch(index)
                except Exception as e:
                    if isinstance(e, StopIteration) and dataset_kind == _DatasetKind.Iterable:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                    else:
                        data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
            _put(data_queue, (idx, data), worker_id)
            del data, idx, index, r
    except KeyboardInterrupt:
        pass
    if done_event.is_set():
        data_queue.cancel_join_thread()
        data_queue.close()
