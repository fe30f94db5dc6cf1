"""Running a kernel's pieces (see ``graphc.codegen.numpy_codegen.PIECE``) on a small thread pool.

Generated numpy code calls ``in_pieces(fn, n, rows)``: ``fn(lo, hi, r)`` computes rows ``lo:hi``
of a kernel, every piece writing its own rows of the kernel's outputs, and its intermediates into
rows ``r:r + hi - lo`` of their (scratch) buffers. Pieces are dealt to workers in turn: worker
``w`` runs pieces ``w, w + k, w + 2k, ...`` of ``k`` workers, one after another, with the scratch
rows ``r = w * rows`` (so a worker's scratch stays in its core's cache, and they are rows of the
first piece it ran: rows no other worker touches). numpy's ufuncs release the GIL, so the pool's
threads compute in parallel. The pool is made on first use
in each process (a pool inherited through fork has no threads) and shared by all threads and
compiled functions; ``GRAPHC_NUM_THREADS`` sets its size (1: pieces run in the calling thread).
"""
from __future__ import annotations

import contextvars
import os
import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # imported when the pool is made: a warm start with one thread never needs it
    from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid that made it, pool)


def threads() -> int:
    env = os.environ.get("GRAPHC_NUM_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(4, os.cpu_count() or 1))


def _executor() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None or pool[0] != os.getpid():
        with _lock:
            if _pool is None or _pool[0] != os.getpid():
                from concurrent.futures import ThreadPoolExecutor
                _pool = (os.getpid(), ThreadPoolExecutor(threads(), thread_name_prefix="graphc-piece"))
            pool = _pool
    return pool[1]


def in_pieces(fn: Callable[[int, int, int], None], n: int, rows: int) -> None:
    """``fn(lo, hi, r)`` for consecutive row ranges ``lo:hi`` of ``rows`` rows covering ``0:n``
    (``r``: the scratch rows of the worker that runs it)."""
    k = min(-(-n // rows), threads())
    if k == 1 or threading.current_thread().name.startswith("graphc-piece"):
        for lo in range(0, n, rows):
            fn(lo, min(lo + rows, n), 0)
        return

    def worker(w: int) -> None:
        for lo in range(w * rows, n, k * rows):
            fn(lo, min(lo + rows, n), w * rows)
    # each worker runs in a copy of the caller's context: numpy's error state (errstate) is a
    # context variable, which pool threads would not otherwise see
    pool = _executor()
    for f in [pool.submit(contextvars.copy_context().run, worker, w) for w in range(k)]:
        f.result()  # re-raises what a piece raised
