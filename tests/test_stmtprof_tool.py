"""tools/stmtprof.py (per-statement time of a compiled training step's generated code) runs and
prints the statements it timed, the step's products among them, with times that add up to no
more than the step's."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stmtprof_times_the_mlp_steps_statements():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "stmtprof.py"), "mlp", "--steps", "3", "--top", "8"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.strip().splitlines()
    step, inside = map(float, re.match(r"step (\d+) us, inside generated statements (\d+) us", head).groups())
    assert 0 < inside <= step
    assert len(rows) == 8 and all(re.match(r" *\d+\.\d us  ", row) for row in rows)
    assert any("matmul" in row for row in rows)
    pieces = [row for row in rows if "_in_pieces(" in row]
    assert pieces and all(re.search(r"  poi_\d+: pointwise over \[", row) for row in pieces)  # named by kernel
    assert sum(float(row.split()[0]) for row in rows) <= inside + 1
