"""The pipeline version (the hash of the IR's and passes' source in every compiled-entry key) is
kept in the cache under the files' sizes and modification times, so a warm start need not read
and hash ~330 kB of source; any change to a file's stat gives the hash of its new content."""
import os

import pytest

from graphc.compiler import entry_cache


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    extra = tmp_path / "extra_pass.py"  # stands for a pass file being edited
    extra.write_text("A = 1\n")
    real = entry_cache._sources
    monkeypatch.setattr(entry_cache, "_sources", lambda folder: real(folder) + ([str(extra)] if folder.endswith("passes") else []))
    reads = []
    real_open = open

    def counting_open(path, *a, **kw):
        reads.append(path)
        return real_open(path, *a, **kw)
    monkeypatch.setattr(entry_cache, "open", counting_open, raising=False)

    def version():
        entry_cache.pipeline_version.cache_clear()  # as in a new process
        reads.clear()
        return entry_cache.pipeline_version()
    yield version, extra, reads, tmp_path / "cache"
    entry_cache.pipeline_version.cache_clear()


def test_memo_hit_reads_no_source_and_agrees(fresh):
    version, extra, reads, cache_dir = fresh
    v1 = version()
    assert len(reads) > 30 and str(extra) in reads   # hashed from source the first time
    (memo,) = cache_dir.glob("pipeline_*.txt")      # not a *.py entry: code listings don't show it
    assert version() == v1 and reads == []          # a warm start: no source read
    memo.unlink()
    assert version() == v1 and reads                # the same hash from source


def test_an_edited_file_changes_the_version(fresh):
    version, extra, reads, _ = fresh
    v1 = version()
    st = os.stat(extra)
    extra.write_text("A = 2\n")                                         # same size, new content
    os.utime(extra, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    v2 = version()
    assert v2 != v1 and str(extra) in reads
    extra.write_text("A = 1\n")
    os.utime(extra, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000))   # the old content at a new time
    assert version() == v1 and str(extra) in reads


def test_a_damaged_memo_is_not_used(fresh):
    version, extra, reads, cache_dir = fresh
    v1 = version()
    (memo,) = cache_dir.glob("pipeline_*.txt")
    text = memo.read_text()
    memo.write_text(text[:-1] + ("0" if text[-1] != "0" else "1"))  # another version, checksum stale
    assert version() == v1 and reads
