"""The on-disk compile cache trusts nothing it did not write (runtime/cache.py, README "The compile
cache and what it trusts"): a private directory, entries owned by this user and closed to others'
writes, no symbolic link followed, unpredictable temporary files, and a log that says when code was
not stored."""
from __future__ import annotations

import os
import stat
import threading
import types

import numpy as np
import pytest

import graphc
from graphc.ir.printer import parse_graph
from graphc.runtime import backends, cache
from graphc.runtime import triton_runtime as TR

GRAPH = "graph k(%x: f32[2]) {\n  %0: f32[2] = exp(%x)\n  return %0\n}\n"


def evil_source(marker) -> str:
    """Generated-code-shaped source that leaves ``marker`` behind if it is ever executed."""
    return (f"open({str(marker)!r}, 'w').write('executed')\n"
            "def graphc_k(x, ws):\n    return (x * 0,)\n")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(d))
    monkeypatch.setenv("GRAPHC_LOGS", "cache")
    monkeypatch.setattr(cache, "_said", set())  # "once per process": fresh for each test
    return d


def compile_k():
    return backends.get("numpy", "cpu").compile(parse_graph(GRAPH), "k")


def check_result(compiled) -> None:
    np.testing.assert_allclose(compiled([np.zeros(2, np.float32)])[0], [1.0, 1.0])


def refusals(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[graphc:cache]") and "not using it" in line]


def compile_after_refusal(capsys, marker) -> str:
    """Compile graph k with a refused entry in the cache: the code is regenerated and the planted
    code not executed; returns the one line that says why the entry was refused."""
    capsys.readouterr()
    compiled = compile_k()
    assert not compiled.from_cache and not marker.exists()
    check_result(compiled)
    (line,) = refusals(capsys.readouterr().out)
    return line


def plant(cache_dir, tmp_path):
    """A valid entry (right checksum) for graph k whose code would leave a marker if executed."""
    key = compile_k().key
    marker = tmp_path / "executed"
    assert cache.store(key, evil_source(marker)) is None
    return key, cache_dir / f"{key}.py", marker


def test_cache_directory_and_missing_parents_are_created_private(tmp_path, monkeypatch):
    d = tmp_path / "a" / "b" / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(d))
    old = os.umask(0o022)
    try:
        assert cache.store("k" * 32, "x = 1\n") is None
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", d):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700, p
    assert stat.S_IMODE(os.stat(d / f"{'k' * 32}.py").st_mode) == 0o600
    assert cache.load("k" * 32) == "x = 1\n"


def test_entry_writable_by_others_is_refused_once_and_replaced(cache_dir, tmp_path, capsys):
    key, entry, marker = plant(cache_dir, tmp_path)
    os.chmod(entry, 0o666)
    line = compile_after_refusal(capsys, marker)
    assert f"cache entry {entry} is writable by group and others (mode 0666)" in line
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600   # our own file: replaced by a fresh entry
    assert compile_k().from_cache


def test_directory_owned_by_another_user_is_not_used(cache_dir, tmp_path, monkeypatch, capsys):
    key, entry, marker = plant(cache_dir, tmp_path)
    before = entry.read_bytes()
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)    # as if another user had made the directory
    capsys.readouterr()
    for _ in range(3):
        compiled = compile_k()
        assert not compiled.from_cache and not marker.exists()
        check_result(compiled)
        assert compiled.not_stored == f"cache directory {cache_dir} is owned by uid {uid}, not by this user (uid {uid + 1})"
    (line,) = refusals(capsys.readouterr().out)              # said once, not at every compile
    assert f"cache directory {cache_dir} is owned by uid {uid}" in line
    assert entry.read_bytes() == before                       # nothing stored there


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777], ids=["0777", "0770", "1777"])
def test_directory_writable_by_others_is_not_used(cache_dir, tmp_path, mode):
    key, entry, marker = plant(cache_dir, tmp_path)
    before = entry.read_bytes()
    files = sorted(p.name for p in cache_dir.iterdir())  # the planted source and the honest code's
    os.chmod(cache_dir, mode)
    compiled = compile_k()
    assert not compiled.from_cache and not marker.exists()
    check_result(compiled)
    assert "writable by group" in compiled.not_stored
    assert entry.read_bytes() == before and sorted(p.name for p in cache_dir.iterdir()) == files


def test_entry_owned_by_another_user_is_not_replaced(cache_dir, tmp_path, monkeypatch):
    compile_k()
    entry = next(cache_dir.glob("*.py"))
    before = entry.read_bytes()
    st = os.lstat(entry)
    real_lstat = os.lstat

    def lstat(path, *a, **kw):  # the entry, as if root or another user had left it there
        r = real_lstat(path, *a, **kw)
        if os.fspath(path) == str(entry):
            return os.stat_result((r.st_mode, r.st_ino, r.st_dev, r.st_nlink, st.st_uid + 1, *r[5:]))
        return r
    monkeypatch.setattr(os, "lstat", lstat)
    why = cache.store(entry.stem, "x = 2\n")
    assert why == f"cache entry {entry} is owned by uid {st.st_uid + 1}, not by this user (uid {st.st_uid})"
    assert entry.read_bytes() == before


def test_symlink_at_the_entry_path_is_not_followed(cache_dir, tmp_path, capsys):
    key = compile_k().key
    entry = cache_dir / f"{key}.py"
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = tmp_path / "executed"
    cache_dir_env = os.environ["GRAPHC_CACHE_DIR"]
    os.environ["GRAPHC_CACHE_DIR"] = str(outside)
    try:
        cache.store(key, evil_source(marker))                  # a valid entry, somewhere else
    finally:
        os.environ["GRAPHC_CACHE_DIR"] = cache_dir_env
    target = outside / f"{key}.py"
    planted = target.read_bytes()
    entry.unlink()
    entry.symlink_to(target)
    line = compile_after_refusal(capsys, marker)
    assert f"cache entry {entry} is a symbolic link" in line
    assert target.read_bytes() == planted                      # the target was not written through
    assert not entry.is_symlink() and entry.is_file()          # the link itself was replaced
    assert compile_k().from_cache


def test_symlink_at_the_old_predictable_temp_path_is_not_followed(cache_dir, tmp_path):
    cache_dir.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    key = "0123456789abcdef" * 2
    (cache_dir / f".{key}.{os.getpid()}.tmp").symlink_to(victim)
    assert cache.store(key, "x = 1\n") is None
    assert victim.read_text() == "precious"
    entry = cache_dir / f"{key}.py"
    assert not entry.is_symlink() and cache.load(key) == "x = 1\n"


def test_a_renamed_entry_is_detected(cache_dir):
    a, b = "a" * 32, "b" * 32
    assert cache.store(a, "x = 1\n") is None
    os.rename(cache_dir / f"{a}.py", cache_dir / f"{b}.py")
    assert cache.load(b) is None


def test_unwritable_cache_directory_log_says_not_stored(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocker / "sub"))
    monkeypatch.setenv("GRAPHC_LOGS", "cache")
    assert cache.store("c" * 32, "x = 1\n") == f"cannot write to the cache directory {blocker / 'sub'} " \
                                               f"(Not a directory: {blocker / 'sub'})"
    f = graphc.compile(lambda x: x.exp() * 2)
    np.testing.assert_allclose(f(graphc.zeros(3)).numpy(), [2.0, 2.0, 2.0])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[graphc:cache]")]
    assert lines and all("generated code (cache miss, not stored: cannot write to the cache directory" in ln
                         for ln in lines), lines
    assert not any("stored as" in ln for ln in lines)


# ---- Triton kernel files -------------------------------------------------------------------

def kernel(source: str = "X = 1\n"):
    return types.SimpleNamespace(name="poi_test", source_hash="0123abcd", source=source)


def test_triton_kernel_folder_is_created_private(cache_dir):
    path = TR.source_path(kernel())
    assert path.parent == cache_dir / "triton" and path.read_text() == "X = 1\n"
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache_dir / "triton").st_mode) == 0o700


def test_triton_kernel_file_in_a_shared_folder_is_not_used(cache_dir, tmp_path, capsys):
    rk = kernel()
    shared = cache_dir / "triton"
    shared.mkdir(parents=True)
    planted = shared / f"{rk.name}_{rk.source_hash}.py"
    planted.write_text(rk.source)                             # the right text, in a folder others may write
    os.chmod(shared, 0o777)
    path = TR.source_path(rk)
    assert path.parent != shared and path.read_text() == rk.source
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700 and os.stat(path.parent).st_uid == os.getuid()
    assert "Triton kernel files go to" in capsys.readouterr().out


def test_triton_kernel_file_writable_by_others_is_rewritten(cache_dir):
    rk = kernel()
    path = TR.source_path(rk)
    os.chmod(path, 0o666)
    assert TR.source_path(rk) == path and stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_triton_kernel_symlinks_are_not_followed(cache_dir, tmp_path):
    rk = kernel()
    path = TR.source_path(rk)
    victim = tmp_path / "victim.py"
    victim.write_text(rk.source)
    path.unlink()
    path.symlink_to(victim)                    # the right text, but through a link: not imported from there
    assert TR.source_path(rk) == path and not path.is_symlink() and path.read_text() == rk.source
    path.unlink()
    # the temporary name the old code used
    (path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp").symlink_to(victim)
    assert TR.source_path(kernel("X = 2\n")).read_text() == "X = 2\n"
    assert victim.read_text() == "X = 1\n"


def test_autotune_file_writable_by_others_is_ignored(cache_dir):
    folder = TR.source_path(kernel()).parent
    tuning = folder / "autotune.json"
    tuning.write_text('{"k": {"XBLOCK": 4}}')
    assert TR._read_tuning() == {"k": {"XBLOCK": 4}}
    os.chmod(tuning, 0o666)
    assert TR._read_tuning() == {}


# ---- compiled code entries (marshal of the generated source's code objects) ----------------------

def code_entry(cache_dir, key: str):
    (path,) = cache_dir.glob(f"{key}.*.code")
    return path


def count_compiles(monkeypatch) -> list:
    """Calls of the numpy backend's ``compile()`` of generated source."""
    from graphc.runtime import numpy_backend
    calls = []
    real = numpy_backend._compile

    def counted(src, fn_name):
        calls.append(fn_name)
        return real(src, fn_name)
    monkeypatch.setattr(numpy_backend, "_compile", counted)
    return calls


def plant_code(cache_dir, tmp_path):
    """A code entry for graph k with a valid checksum for its cached source, whose code would
    leave a marker if it were ever run."""
    key = compile_k().key
    marker = tmp_path / "executed"
    filename = "<graphc:graphc_k>"
    evil = [compile(evil_source(marker), filename, "exec")]
    assert cache.store_code(key, cache.load(key), filename, evil) is None
    return key, code_entry(cache_dir, key), marker


def test_a_hit_runs_the_cached_code_without_compiling(cache_dir, monkeypatch):
    key = compile_k().key
    path = code_entry(cache_dir, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    calls = count_compiles(monkeypatch)
    compiled = compile_k()
    assert compiled.from_cache and calls == []
    check_result(compiled)


def test_a_trusted_code_entry_is_what_runs(cache_dir, tmp_path):
    # the planted entry passes every check (this user's, private, right checksum): it runs, which
    # shows the checks below are what stops it, not a mismatch of some other kind
    key, path, marker = plant_code(cache_dir, tmp_path)
    assert compile_k().from_cache and marker.exists()


def test_tampered_code_entry_is_recompiled_from_source(cache_dir, monkeypatch):
    key = compile_k().key
    path = code_entry(cache_dir, key)
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))           # one bit of the marshal data
    calls = count_compiles(monkeypatch)
    compiled = compile_k()
    assert compiled.from_cache and calls == ["graphc_k"]          # the source was compiled again
    check_result(compiled)
    assert path.read_bytes() != good[:-1] + bytes([good[-1] ^ 1])  # and its code stored again
    assert compile_k().from_cache and calls == ["graphc_k"]        # which the next hit runs
    path.write_bytes(good[:100])                                  # truncated
    check_result(compile_k())
    assert calls == ["graphc_k"] * 2
    check_result(compile_k())
    assert calls == ["graphc_k"] * 2


def test_code_entry_of_other_source_is_not_used(cache_dir, tmp_path):
    key = compile_k().key
    marker = tmp_path / "executed"
    filename = "<graphc:graphc_k>"
    # a valid code entry, but compiled from other source than the entry's
    assert cache.store_code(key, "other source", filename, [compile(evil_source(marker), filename, "exec")]) is None
    compiled = compile_k()
    assert compiled.from_cache and not marker.exists()
    check_result(compiled)


def test_code_entry_of_another_python_is_not_used(cache_dir, tmp_path, monkeypatch):
    key, path, marker = plant_code(cache_dir, tmp_path)
    monkeypatch.setattr(cache, "_MAGIC", b"\x00\x00\r\n")         # as if written by another bytecode version
    compiled = compile_k()
    assert compiled.from_cache and not marker.exists()
    check_result(compiled)


def test_code_entry_writable_by_others_is_refused_once_and_replaced(cache_dir, tmp_path, capsys, monkeypatch):
    key, path, marker = plant_code(cache_dir, tmp_path)
    os.chmod(path, 0o666)
    capsys.readouterr()
    calls = count_compiles(monkeypatch)
    compiled = compile_k()
    assert compiled.from_cache and calls == ["graphc_k"] and not marker.exists()
    check_result(compiled)
    (line,) = refusals(capsys.readouterr().out)
    assert f"cache entry {path} is writable by group and others (mode 0666)" in line
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600           # our own file: replaced
    check_result(compile_k())
    assert calls == ["graphc_k"] and not marker.exists()          # the replacement is used


def test_code_entry_owned_by_another_user_is_refused_and_kept(cache_dir, tmp_path, capsys, monkeypatch):
    key, path, marker = plant_code(cache_dir, tmp_path)
    before = path.read_bytes()
    planted = os.stat(path)
    real_fstat, real_lstat = os.fstat, os.lstat

    def foreign(st):  # the planted entry, as if another user had left it there
        if (st.st_dev, st.st_ino) != (planted.st_dev, planted.st_ino):
            return st
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid + 1, *st[5:]))
    monkeypatch.setattr(os, "fstat", lambda fd: foreign(real_fstat(fd)))
    monkeypatch.setattr(os, "lstat", lambda p, *a, **kw: foreign(real_lstat(p, *a, **kw)))
    capsys.readouterr()
    calls = count_compiles(monkeypatch)
    for _ in range(2):
        compiled = compile_k()
        assert compiled.from_cache and not marker.exists()
        check_result(compiled)
    assert calls == ["graphc_k", "graphc_k"]                      # compiled from source each time
    (line,) = refusals(capsys.readouterr().out)
    assert f"cache entry {path} is owned by uid {planted.st_uid + 1}" in line
    assert path.read_bytes() == before                            # never replaced


def test_symlink_at_the_code_entry_path_is_not_followed(cache_dir, tmp_path, capsys):
    key, path, marker = plant_code(cache_dir, tmp_path)
    target = tmp_path / "elsewhere.code"
    planted = path.read_bytes()
    target.write_bytes(planted)
    os.chmod(target, 0o600)
    path.unlink()
    path.symlink_to(target)
    capsys.readouterr()
    compiled = compile_k()
    assert compiled.from_cache and not marker.exists()
    check_result(compiled)
    (line,) = refusals(capsys.readouterr().out)
    assert f"cache entry {path} is a symbolic link" in line
    assert not path.is_symlink()                                  # the link itself was replaced
    assert target.read_bytes() == planted                         # its target was not written through
