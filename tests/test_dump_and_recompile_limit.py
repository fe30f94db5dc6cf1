"""`graphc dump --out` that can't be a folder is a one-line error; the recompile limit's warning,
counters, history and log agree with the number of compiles that really happened."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import graphc
from graphc.compiler import api, dump

SCRIPT = "import graphc\nf = graphc.compile(lambda x: x.sin() + 1)\nprint(f(graphc.ones(2)))\n"


def run_dump(tmp_path, out):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, "-m", "graphc", "dump", str(script), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


@pytest.mark.parametrize("where", ["file/sub", "file"])
def test_dump_out_under_a_file_is_a_one_line_error(tmp_path, where):
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / where
    r = run_dump(tmp_path, out)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stdout == ""
    (line,) = r.stderr.splitlines()
    reason = "Not a directory" if where == "file/sub" else "File exists"
    assert line == f"graphc dump: error: cannot create the output folder {out}: {reason}"


def test_dump_out_still_works(tmp_path):
    r = run_dump(tmp_path, tmp_path / "a" / "b")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a" / "b" / "<lambda>_0" / "90_code.py").exists()


def test_dump_dir_that_cant_be_written_raises_dump_error(tmp_path):
    (tmp_path / "file").write_text("a regular file")
    f = graphc.compile(lambda x: x.cos(), dump_dir=str(tmp_path / "file" / "sub"))
    with pytest.raises(dump.DumpError, match=r"cannot write the stages of <lambda> to .*file/sub/<lambda>_0: "
                                             "Not a directory"):
        f(graphc.ones(2))
    assert issubclass(dump.DumpError, OSError)


def test_recompile_limit_warning_counts_what_was_compiled(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_LOGS", "recompiles")
    traced = []

    def fn(x):
        traced.append(x.shape[0])
        return x * 2

    f = graphc.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, api.RECOMPILE_LIMIT + 5):       # 12 shapes: 9 compiled, then eager
            assert f(graphc.ones(n)).tolist() == [2.0] * n
    (w,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    compiles = len(f.cache)
    recompiles = compiles - 1
    assert compiles == api.RECOMPILE_LIMIT + 1
    assert f.recompiles == recompiles                                 # not one more for the eager call
    assert f"was recompiled {recompiles} times, the limit" in str(w.message)
    assert "shape changed from (9,) to (10,)" in str(w.message)     # why the 10th shape would recompile
    assert [h for h in f.history if h.startswith("recompile #")] == [
        f"recompile #{i}: tensor argument 0 shape changed from ({i},) to ({i + 1},)" for i in range(1, recompiles + 1)]
    assert f.history[-1].startswith(f"recompile limit ({api.RECOMPILE_LIMIT}) reached, running eagerly")
    log = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[graphc:recompiles]")]
    assert sum("recompiling because" in line for line in log) == recompiles
    assert sum("not recompiling" in line for line in log) == 1
    # the function body ran once per trace and once per eager call
    assert traced == list(range(1, compiles + 1)) + list(range(compiles + 1, api.RECOMPILE_LIMIT + 5))
    assert graphc.explain(f, graphc.ones(3)).recompiles == f.history
