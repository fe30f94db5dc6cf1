"""On-disk cache of generated code, keyed by the graph's structural hash.

Generated code is executed when it is loaded, so the cache trusts only what this user could have
written itself:

- The cache directory (``GRAPHC_CACHE_DIR``, default ``$XDG_CACHE_HOME/graphc`` or
  ``~/.cache/graphc``) and any missing parents are created mode 0700.
- A directory or entry that is not owned by the current user, or that group or others may write,
  is refused: the refusal is logged once per process (``GRAPHC_LOGS=cache``, else a warning on
  the ``graphc.cache`` logger) and the code is regenerated. Nothing is stored in a refused
  directory, and an entry owned by someone else is never replaced.
- Entries are opened without following symbolic links (``O_NOFOLLOW``) and checked on the opened
  file (owner, mode, regular file). New entries are written to a temporary file with a random name
  created exclusively (``mkstemp``) and renamed into place.
- Each entry stores a checksum of its key and code: a truncated, edited or renamed file is
  detected and regenerated. The checksum only detects corruption, not tampering (anyone able to
  write the file can recompute it); ownership and permissions are the protection.

Next to an entry's source, ``{key}.{python tag}.code`` holds the same source compiled by this
Python (``marshal`` of its code objects), so a hit does not run ``compile()`` again (most of a
warm start's loading time). It is read with the same checks as the source, only after the source
itself passed them, and its checksum covers the key, the Python's bytecode version, the code's
file name and the source's digest: code compiled from any other source, or by another Python, is
never used (the source is compiled again and the code entry rewritten). Marshal data is as
trusted as the source it was compiled from, and read from the same places: this user's files only.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import logging
import marshal
import os
import stat
import sys
import tempfile
import threading
from pathlib import Path
from types import CodeType

FORMAT = "graphc-codegen-3"

_POSIX = hasattr(os, "getuid")  # ownership and permission bits mean nothing on Windows
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

log = logging.getLogger("graphc.cache")


class Untrusted(Exception):
    """A cache directory or entry that this user did not (only) write: not used, not replaced."""


def cache_dir() -> Path:
    env = os.environ.get("GRAPHC_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def structural_hash(graph_text: str, backend: str, generator_version: str) -> str:
    """Same graph text, backend and code generator (its source hash) -> same key."""
    return hashlib.sha256(f"{FORMAT}\n{backend}\n{generator_version}\n{graph_text}".encode()).hexdigest()[:32]


# ---- trust ----------------------------------------------------------------------------------

def _check_owner(st: os.stat_result, what: str) -> None:
    """Raise Untrusted unless ``st`` is owned by this user."""
    if _POSIX and st.st_uid != os.getuid():
        raise Untrusted(f"{what} is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})")


def _check(st: os.stat_result, what: str) -> None:
    """Raise Untrusted unless ``st`` is owned by this user and not writable by group or others."""
    if not _POSIX:
        return
    _check_owner(st, what)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        who = " and ".join(w for bit, w in ((0o020, "group"), (0o002, "others")) if mode & bit)
        raise Untrusted(f"{what} is writable by {who} (mode {mode:04o})")


def _makedirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each mode 0700 (less what the umask removes)."""
    missing = []
    p = path
    while not os.path.lexists(p) and p.parent != p:
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:  # made meanwhile by another process: checked like any other
            pass


def private_dir(path: Path | None = None, create: bool = True) -> Path:
    """``path`` (default: the cache directory), created with its missing parents (mode 0700) if
    ``create``. Raises Untrusted if it is not a directory owned by this user and closed to writes
    by group and others (a symbolic link to it must be this user's too), OSError if it is absent
    or can't be created."""
    path = cache_dir() if path is None else Path(path)
    if create:
        _makedirs(path)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        _check_owner(st, f"cache directory {path} (a symbolic link)")
        st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    _check(st, f"cache directory {path}")
    return path


def read_entry(path: Path) -> bytes | None:
    """The bytes of the file ``path`` (in a directory checked by ``private_dir``), None if absent.
    Raises Untrusted for a symbolic link, something not a regular file, or a file not owned by
    this user or writable by group or others; OSError if it can't be read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError:
        if os.path.islink(path):  # O_NOFOLLOW refused it (ELOOP)
            raise Untrusted(f"cache entry {path} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted(f"cache entry {path} is not a regular file")
        _check(st, f"cache entry {path}")
        return f.read()


def write_entry(path: Path, data: bytes) -> None:
    """Replace ``path`` (in a directory checked by ``private_dir``) by a file holding ``data``:
    written to a new temporary file (random name, created exclusively, mode 0600), then renamed
    over ``path``, which replaces a symbolic link there rather than following it. Raises
    Untrusted if ``path`` exists and belongs to another user (never replaced), OSError on failure."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        _check_owner(st, f"cache entry {path}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_said: set[str] = set()
_said_lock = threading.Lock()


def say_once(reason: str, consequence: str) -> None:
    """Log ``reason: consequence`` once per process and reason: printed with ``GRAPHC_LOGS=cache``
    (as the compiler's other logs), else a warning on the ``graphc.cache`` logger."""
    with _said_lock:
        if reason in _said:
            return
        _said.add(reason)
    text = f"{reason}: {consequence}"
    if "cache" in {s.strip() for s in os.environ.get("GRAPHC_LOGS", "").split(",")}:
        print(f"[graphc:cache] {text}", flush=True)
        log.debug(text)
    else:
        log.warning(text)


def describe(e: OSError) -> str:
    """An OSError in a few words: 'Not a directory: /path'."""
    if e.strerror and e.filename:
        return f"{e.strerror}: {e.filename}"
    return e.strerror or str(e)


# ---- generated code -------------------------------------------------------------------------

def _header(key: str, body: str) -> str:
    digest = hashlib.sha256(f"{key}\n{body}".encode()).hexdigest()  # the key too: a renamed entry is detected
    return f"# {FORMAT} sha256={digest}"


_REFUSED = "not using it; the code is regenerated"


def _read(name: str) -> bytes | None:
    """The bytes of the entry file ``name`` in the cache directory; None when absent, unreadable
    or not trusted (logged once)."""
    try:
        return read_entry(private_dir(create=False) / name)
    except Untrusted as e:
        say_once(str(e), _REFUSED)
    except OSError:
        pass
    return None


def _write(name: str, data: bytes) -> str | None:
    """Store ``data`` as the entry file ``name``; None when stored, else why not (a refused
    directory or entry, also logged once; a read-only or full disk)."""
    d = cache_dir()
    try:
        d = private_dir(d)
        write_entry(d / name, data)
    except Untrusted as e:
        say_once(str(e), _REFUSED)
        return str(e)
    except OSError as e:
        return f"cannot write to the cache directory {d} ({describe(e)})"
    return None


def load(key: str, suffix: str = ".py") -> str | None:
    """The cached source for ``key``, or None when absent, corrupted or not trusted (logged once).
    ``suffix``: the entry file's (``.txt`` for notes that are not code: no ``*.py`` listing shows them)."""
    data = _read(f"{key}{suffix}")
    if data is None:
        return None
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    header, _, body = text.partition("\n")
    return body if header == _header(key, body) else None


def store(key: str, source: str, suffix: str = ".py") -> str | None:
    """Write ``source`` as the entry for ``key`` (``suffix``: as for ``load``). Returns None when
    it was stored, else why not (a refused directory or entry, also logged once; a read-only or
    full disk): that only costs regeneration next time."""
    return _write(f"{key}{suffix}", f"{_header(key, source)}\n{source}".encode())


# ---- compiled code --------------------------------------------------------------------------

CODE_FORMAT = b"graphc-code-1"
# this Python's bytecode: a code entry is named for it (another Python sharing the directory has
# its own) and its checksum covers the magic number, so bytecode of another version never loads
_PY_TAG = sys.implementation.cache_tag
_MAGIC = importlib.util.MAGIC_NUMBER


def _code_name(key: str) -> str:
    return f"{key}.{_PY_TAG}.code"


def _code_digest(key: str, source: str, filename: str, payload: bytes) -> bytes:
    h = hashlib.sha256(b"%s\n%s\n%s\n%s\n" % (CODE_FORMAT, key.encode(), _MAGIC, filename.encode()))
    h.update(hashlib.sha256(source.encode()).digest())
    h.update(payload)
    return h.hexdigest().encode()


def load_code(key: str, source: str, filename: str) -> list[CodeType] | None:
    """The code objects ``store_code`` kept for ``source`` (the entry ``load(key)`` returned) as
    compiled under ``filename``; None when absent, damaged, not trusted (logged once), compiled
    from other source or by another Python."""
    data = None if _PY_TAG is None else _read(_code_name(key))
    if data is None:
        return None
    header, _, payload = data.partition(b"\n")
    if header != CODE_FORMAT + b" sha256=" + _code_digest(key, source, filename, payload):
        return None
    try:
        codes = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if type(codes) is not tuple or not all(type(c) is CodeType for c in codes):
        return None
    return list(codes)


def store_code(key: str, source: str, filename: str, codes: list[CodeType]) -> str | None:
    """Keep ``codes`` (``source``, the entry stored under ``key``, compiled under ``filename``).
    Returns None when stored, else why not (as ``store``): that only costs compiling again."""
    if _PY_TAG is None:
        return "this Python has no bytecode cache tag"
    payload = marshal.dumps(tuple(codes))
    return _write(_code_name(key), CODE_FORMAT + b" sha256=" + _code_digest(key, source, filename, payload)
                  + b"\n" + payload)
