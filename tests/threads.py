"""Run calls from several threads at once and collect the ones that gave a wrong answer."""
from __future__ import annotations

import threading
from typing import Callable


def run_together(work: Callable[[int], None], threads: int) -> list[BaseException]:
    """Start ``work(i)`` in ``threads`` threads at the same moment (a barrier); returns what
    they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as e:  # collected for the caller to report
            errors.append(e)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def wrong_answers(call: Callable[[int], bool], threads: int = 4, reps: int = 150) -> list[int]:
    """Thread ``i`` runs ``call(i)`` ``reps`` times; returns the ``i`` of every call that
    returned False (a wrong result). What a thread raised is raised here."""
    wrong: list[int] = []

    def work(i: int) -> None:
        for _ in range(reps):
            if not call(i):
                wrong.append(i)

    errors = run_together(work, threads)
    if errors:
        raise errors[0]
    return wrong
