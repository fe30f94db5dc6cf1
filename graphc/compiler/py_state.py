"""Python state a traced function writes: module attributes and globals.

A module may compute a tensor in ``forward`` and keep it on ``self`` (PyTorch's Transformer example
caches its ``src_mask`` that way). While tracing, what it stores is a symbolic tensor, which holds
no values once the trace ends. So the dicts the traced code may write (the ``__dict__`` of every
module called, the function's globals) are watched: when tracing ends, each is put back as it was
before (also after a graph break, so the eager run that follows starts from the state eager
execution would see), and each write is lifted: the tensors written become extra graph outputs,
and after every compiled call the attribute is set to the value rebuilt from them, as the eager
call would have left it. The compiled entry is guarded on the value each written name had before
the call (a different one may change what the Python code does)."""
from __future__ import annotations

from typing import Any

MISSING = object()  # a name that was not set


class WatchedState:
    """The dicts watched during one trace, with their contents when first seen."""

    def __init__(self) -> None:
        self._dicts: dict[int, tuple[str, dict, dict]] = {}  # id(d) -> (label, d, copy of d)

    def watch(self, label: str, d: dict) -> None:
        if id(d) not in self._dicts:
            self._dicts[id(d)] = (label, d, dict(d))

    def stores(self) -> list[tuple[str, dict, str, Any, Any]]:
        """``(label, dict, key, value before, value now)`` per name the traced code rebound,
        in a stable order (dicts as first watched, keys in insertion order; a deleted name
        has ``MISSING`` as its value now)."""
        out = []
        for label, d, before in self._dicts.values():
            for key, now in d.items():
                if before.get(key, MISSING) is not now:
                    out.append((label, d, key, before.get(key, MISSING), now))
            out.extend((label, d, key, old, MISSING) for key, old in before.items() if key not in d)
        return out

    def restore(self) -> None:
        """Put every watched dict back as it was before tracing."""
        for _, d, before in self._dicts.values():
            for key in [k for k in d if k not in before]:
                del d[key]
            for key, old in before.items():
                if d.get(key, MISSING) is not old:
                    d[key] = old
