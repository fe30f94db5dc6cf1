"""On-disk cache of generated code, keyed by the graph's structural hash.

Each entry stores its own checksum: a truncated or edited file is detected and regenerated.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

FORMAT = "graphc-codegen-1"


def cache_dir() -> Path:
    env = os.environ.get("GRAPHC_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def structural_hash(graph_text: str, backend: str, generator_version: str) -> str:
    """Same graph text, backend and code generator (its source hash) -> same key."""
    return hashlib.sha256(f"{FORMAT}\n{backend}\n{generator_version}\n{graph_text}".encode()).hexdigest()[:32]


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def load(key: str) -> str | None:
    """The cached source for ``key``, or None when absent or corrupted."""
    path = cache_dir() / f"{key}.py"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    header, _, body = text.partition("\n")
    if header != f"# {FORMAT} sha256={_checksum(body)}":
        return None
    return body


def store(key: str, source: str) -> None:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(f"# {FORMAT} sha256={_checksum(source)}\n{source}")
        os.replace(tmp, d / f"{key}.py")
    except OSError:
        pass  # a read-only or full cache directory only costs regeneration next time
