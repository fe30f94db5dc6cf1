"""Helpers shared by the single- and multi-process DataLoader iterators (``torch.utils.data._utils``).

Worker code lives at module level so it can be pickled by the ``spawn``/``forkserver`` start methods.
"""
from __future__ import annotations

import atexit
import sys
import traceback

IS_WINDOWS = sys.platform == "win32"

MP_STATUS_CHECK_INTERVAL = 5.0
"""Seconds between liveness checks while the main process waits on its workers (and vice versa)."""

python_exit_status = False
"""Set once the interpreter starts shutting down: workers are then left to the daemon cleanup."""


def _set_python_exit_flag() -> None:
    global python_exit_status
    python_exit_status = True


atexit.register(_set_python_exit_flag)


class KeyErrorMessage(str):
    """str subclass whose repr is itself, so a KeyError built from it prints its traceback readably."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """Wraps an exception plus its traceback text to carry it across processes (``torch._utils``)."""

    def __init__(self, exc_info=None, where: str = "in background") -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        """Raise the wrapped exception type with a message holding the original traceback."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        elif getattr(self.exc_type, "message", None):
            raise self.exc_type(message=msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        try:
            raise exception
        finally:
            # no frame -> exception -> traceback -> frame cycle: the caller's frames (and the
            # DataLoader iterator in them) are freed by reference counting, not by a later gc run
            del exception


def cpu_count() -> int | None:
    import os
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0))
        except Exception:
            pass
    return os.cpu_count()


from . import collate, fetch, pin_memory, worker  # noqa: E402
