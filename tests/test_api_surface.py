"""PyTorch 2.13's public names (tests/data/torch_api_2.13.txt, written by tools/list_torch_api.py):
each exists in graphc, or is excluded with a reason (tests/data/api_excluded.txt), or is allowed
as pending other work (tests/data/api_missing_allowed.txt). Stale lines in either list fail too."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


cov = _load("api_coverage")


@pytest.fixture(scope="module")
def report():
    return cov.coverage()


def test_every_pytorch_name_is_present_excluded_or_allowed(report):
    rows, _ = report
    missing = {c.namespace: c.missing for c in rows if c.missing}
    assert not missing, ("PyTorch names graphc neither has nor lists (add them, or a line with the reason to "
                         f"tests/data/api_excluded.txt or api_missing_allowed.txt): {missing}")


def test_no_stale_lines(report):
    rows, unused = report
    stale = {c.namespace: c.stale_excluded for c in rows if c.stale_excluded}
    assert not stale, f"excluded, but graphc has them now (remove the exclusion): {stale}"
    assert not unused, "lines that match nothing left to exclude or allow: " + ", ".join(
        f"{r.namespace} {r.pattern} (line {r.line})" for r in unused)


def test_rule_files_need_a_reason(tmp_path):
    bad = tmp_path / "rules.txt"
    bad.write_text("# heading\ntorch.fft fft\n")
    with pytest.raises(ValueError, match="expected 'namespace name reason'"):
        cov.read_rules(bad)


def test_the_data_file_covers_the_namespaces_the_issue_names():
    names = cov.torch_names()
    for ns in ("torch", "torch.Tensor", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.utils",
               "torch.optim", "torch.utils.data", "torch.autograd", "torch.linalg", "torch.special", "torch.fft",
               "torch.func", "torch.distributions", "torch.amp", "torch.cuda", "torch.testing",
               "torch.nn.modules.activation", "torch.nn.modules.conv"):
        assert names.get(ns), ns
    assert "MultiheadAttention" in names["torch.nn.modules.activation"]
    assert {"add_", "is_xpu", "scatter_"} <= set(names["torch.Tensor"])
    assert "set_grad_enabled" in names["torch"]  # public, though torch.__all__ leaves it out


def test_coverage_table_counts_add_up(report):
    rows, _ = report
    for c in rows:
        assert len(c.present) + len(c.excluded) + len(c.allowed) + len(c.missing) == c.total
    text = cov.table(rows)
    assert "| `torch.nn.modules.activation` |" in text and text.splitlines()[-1].startswith("| all |")


def test_the_data_file_is_what_the_script_writes_from_pytorch():
    torch = pytest.importorskip("torch")
    if not torch.__version__.startswith("2.13"):
        pytest.skip(f"the data file is PyTorch 2.13's; installed: {torch.__version__}")
    # in a fresh process: what other tests imported from torch (forward AD loads torch.onnx, which
    # then shows as an attribute of torch) must not count
    import json
    import subprocess
    code = ("import json, sys; sys.path.insert(0, 'tools'); import list_torch_api; "
            "print(json.dumps({ns: sorted(v) for ns, v in list_torch_api.collect().items()}))")
    written = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                        check=True).stdout)
    assert {ns: sorted(v) for ns, v in written.items()} == {ns: sorted(v) for ns, v in cov.torch_names().items()}


def test_readme_snippet_runs():
    import re
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## PyTorch's public surface, measured", 1)[1]
    assert "| `torch.Tensor` |" in section.split("```python")[0]  # the coverage table is there
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102  (the repository's own README)
    assert scope["one_hot"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert abs(scope["a"].grad.item() - 1) < 0.1
