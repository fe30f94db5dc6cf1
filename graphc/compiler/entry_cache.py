"""The compiled-entry cache: what ``graphc.compile`` made of one traced graph, on disk, so that a
new process tracing the same graph under the same guards skips passes, autodiff, scheduling and
code generation (tracing still runs: its graph is the key, and it finds the tensors to read).

The key is the traced graph's canonical text plus every other fact that changes the compiled
result: whether a backward graph is made (grad mode, which inputs require grad, which outputs
receive gradients), how many outputs are the user's and how many are written-back mutations
(the rest of the forward's outputs are values saved for backward), the backend, its device,
generator versions and environment (as the code cache), and the source of every module between
tracing and the backend (ir, passes, this frontend), so changing a pass invalidates entries.

The value is a manifest: JSON text stored in the code cache under its own key (``entry_<hash>``,
written and read by ``cache.store``/``cache.load``, so it gets the same ownership, permission
and checksum checks), never executed. It names, per compiled graph (forward, then backward if
any), the code-cache entry holding its generated code and what the runtime needs besides the
code (``CompiledGraph.describe``: input types, workspace layout, aliased outputs, memory plan
summary), and the entry's differentiated inputs. Loading runs only that generated code, loaded
by the backend through ``cache.load`` (and its compiled form through ``cache.load_code``) as on
any code-cache hit. A damaged or missing piece makes
the lookup a miss: the caller compiles as if nothing were cached and stores everything again.

Backends that can't rebuild a compiled graph from its code alone (``Backend.can_restore`` is
False: Triton, whose launchers need the rendered kernels) are never looked up or stored here.

The generated code of an entry's graphs is keyed in the code cache by the entry's key and the
graph's name (``code_key``), not by the lowered graph's text: every pass is deterministic, so the
entry key determines each lowered graph, and printing a large one is a good part of a compile.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os

from graphc.runtime import cache

FORMAT = "graphc-entry-1"


@functools.lru_cache(maxsize=None)
def pipeline_version() -> str:
    """A hash of the source of the IR, every pass (decompositions, autodiff rules, fusion) and
    the frontend code that drives them: what turns a traced graph into the graphs a backend gets.
    (Computed once per process, at its first compile: walked with ``os.scandir`` and read with
    ``open``, a few times faster than pathlib's ``rglob``/``read_bytes``.)

    A warm start would spend about 2 ms reading and hashing those sources (~330 kB), so the
    version is also kept in the code cache under a key made of every file's path, size and
    modification time in nanoseconds (what Python's own bytecode cache trusts, with finer
    times): a file edited, added or removed gives another key, and the sources are hashed again."""
    import graphc.ir
    import graphc.passes
    files: list[str] = []
    for pkg in (graphc.ir, graphc.passes):
        files += sorted(_sources(os.path.dirname(pkg.__file__)))
    here = os.path.dirname(__file__)
    files += [os.path.join(here, "api.py"), os.path.join(here, "entry_cache.py")]
    try:
        stats = [(path, st.st_size, st.st_mtime_ns) for path, st in ((p, os.stat(p)) for p in files)]
    except OSError:
        stats = None
    memo = None
    if stats is not None:
        memo = "pipeline_" + hashlib.sha256(f"{FORMAT}\n{json.dumps(stats)}".encode()).hexdigest()[:32]
        known = cache.load(memo, ".txt")
        if known is not None and len(known) == 16 and all(c in "0123456789abcdef" for c in known):
            return known
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    version = h.hexdigest()[:16]
    if memo is not None:
        cache.store(memo, version, ".txt")  # not stored (read-only, refused directory): hashed again next time
    return version


def _sources(folder: str) -> list[str]:
    """The ``.py`` files under ``folder`` and its subfolders (``__pycache__`` left out)."""
    found = []
    with os.scandir(folder) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                if e.name != "__pycache__":
                    found += _sources(e.path)
            elif e.name.endswith(".py"):
                found.append(e.path)
    return found


def key(traced_text: str, backend, facts: dict) -> str:
    """The entry key of a traced graph (``facts``: the guards that change the compiled result,
    JSON-able)."""
    text = f"{FORMAT}\n{json.dumps(facts, sort_keys=True)}\n{traced_text}"
    version = f"{pipeline_version()} {backend.version()} {backend.environment()}"
    return "entry_" + cache.structural_hash(text, f"{backend.name} {backend.device}", version)


def code_key(entry_key: str, name: str) -> str:
    """The code cache key of the graph ``name`` (forward, backward) of an entry: the entry's key
    determines that graph (every pass is deterministic), so its text need not be printed."""
    return cache.structural_hash(f"{entry_key}\n{name}", "code", FORMAT)


def store(entry_key: str, graphs: list, wrt: list[int]) -> str | None:
    """Store the manifest of an entry whose compiled ``graphs`` (forward, then backward if any)
    came from or went into the code cache. Returns None when stored, else why not."""
    manifest = {"format": FORMAT, "wrt": list(wrt), "graphs": [g.describe() for g in graphs]}
    return cache.store(entry_key, json.dumps(manifest))


def restore(entry_key: str, backend) -> tuple[list, list[int]] | None:
    """(compiled graphs, wrt) rebuilt from the entry's manifest and the generated code it names,
    or None when the manifest or any code entry is absent, damaged or refused."""
    text = cache.load(entry_key)
    if text is None:
        return None
    try:
        manifest = json.loads(text)
        if manifest.get("format") != FORMAT:
            return None
        graphs = [backend.restore(desc) for desc in manifest["graphs"]]
        wrt = [int(i) for i in manifest["wrt"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not graphs or any(g is None for g in graphs):
        return None
    return graphs, wrt


def disabled() -> bool:
    """``GRAPHC_ENTRY_CACHE=0`` turns lookups and stores off (the code cache still works)."""
    return os.environ.get("GRAPHC_ENTRY_CACHE", "1") in ("0", "")
