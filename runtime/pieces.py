"""Running a kernel's pieces (see ``graphc.codegen.numpy_codegen.PIECE``) on a small thread pool.

Generated numpy code calls ``in_pieces(fn, n, rows)``: ``fn(lo, hi)`` computes rows ``lo:hi``
of a kernel, every piece writing its own rows, so pieces run in any order and at once. numpy's
ufuncs release the GIL, so the pool's threads compute in parallel. The pool is made on first use
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


def in_pieces(fn: Callable[[int, int], None], n: int, rows: int) -> None:
    """``fn(lo, hi)`` for consecutive row ranges of ``rows`` rows covering ``0:n``."""
    bounds = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
    if len(bounds) == 1 or threads() == 1 or threading.current_thread().name.startswith("graphc-piece"):
        for lo, hi in bounds:
            fn(lo, hi)
        return
    # each piece runs in a copy of the caller's context: numpy's error state (errstate) is a
    # context variable, which pool threads would not otherwise see
    pool = _executor()
    for f in [pool.submit(contextvars.copy_context().run, fn, lo, hi) for lo, hi in bounds]:
        f.result()  # re-raises what a piece raised
