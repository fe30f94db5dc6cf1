"""`graphc dump --format html`: a self-contained page per compiled specialization, checked as
data (every stage drawn, final nodes mapped to the code that quotes them, everything escaped)
and in a real headless Chromium (loads without errors, a click shows the node, not blank)."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as torch
from graphc.compiler import dump_html, graph_svg
from graphc.ir.printer import parse_graph

# a folder name HTML would misread: the source locations of every node carry it
ODD = "a&b<c>"

SCRIPT = """
import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
cmodel = torch.compile(model)
x, y = torch.randn(4, 8), torch.randint(0, 4, (4,))
F.cross_entropy(cmodel(x), y).backward()
"""


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    """(output folder, the Sequential page's folder) of one `graphc dump --format html` run."""
    root = tmp_path_factory.mktemp("html")
    src = root / ODD
    src.mkdir()
    (src / "train.py").write_text(SCRIPT)
    out = root / "dump"
    r = subprocess.run([sys.executable, "-m", "graphc", "dump", str(src / "train.py"), "--out", str(out),
                        "--format", "html"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"open {out / 'index.html'}" in r.stderr
    return out, out / "Sequential_0"


def _data(page: str) -> dict:
    start = page.index('id="graphc-data">') + len('id="graphc-data">')
    return json.loads(page[start:page.index("</script>", start)])


def test_a_page_per_specialization_and_an_index_linking_them(dumped):
    out, folder = dumped
    index = (out / "index.html").read_text()
    assert 'href="Sequential_0/index.html"' in index
    page = (folder / "index.html").read_text()
    data = _data(page)
    ids = [s["id"] for s in data["stages"]]
    # traced, each pass, autodiff's split, each lowering pass of both graphs, in pipeline order
    assert ids[0] == "00_traced" and ids.index("50_forward") < ids.index("51_backward") < ids.index(
        "10_forward_after_fusion") < ids.index("15_backward_after_fusion")
    assert sorted(s["file"] for s in data["stages"]) == sorted(p.name for p in folder.glob("*.ir"))
    drawn = [s for s in data["stages"] if "same" not in s]
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="graph"') == len(drawn)
    for s in data["stages"]:  # a stage identical to an earlier one points at a drawn one
        assert "same" not in s or "nodes" in data["stages"][s["same"]]
    # the fusion log (a section per graph) and the memory plan are on the page
    for ln in (folder / "60_fusion.log").read_text().splitlines():
        assert html.escape(ln[3:] if ln.startswith("## ") else ln, quote=False) in page, ln
    for ln in (folder / "70_memory.txt").read_text().splitlines():
        assert html.escape(ln, quote=False) in page, ln
    assert "slot 0: offset 0" in page  # the plan's detail, from the code's comments
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_everything_from_the_ir_is_escaped(dumped):
    _, folder = dumped
    page = (folder / "index.html").read_text()
    assert ODD in (folder / "00_traced.ir").read_text()
    assert ODD not in page  # neither in the HTML, nor in the script's data, nor in the SVG
    assert html.escape(ODD) in page
    locs = {n["loc"] for s in _data(page)["stages"] for n in s.get("nodes", {}).values() if n["loc"]}
    assert locs and all(ODD in loc for loc in locs)


def test_final_graph_nodes_map_to_the_code_blocks_that_quote_them(dumped):
    _, folder = dumped
    page = (folder / "index.html").read_text()
    data = _data(page)
    code = (folder / "90_code.py").read_text()
    fused = 0
    for sid in ("10_forward_after_fusion", "15_backward_after_fusion"):
        stage = next(s for s in data["stages"] if s["id"] == sid)
        g = parse_graph((folder / stage["file"]).read_text())
        assert set(stage["nodes"]) == {n.outputs[0].name for n in g.nodes} | {
            v.name for v in g.inputs if v.users}
        for n in g.nodes:
            info = stage["nodes"][n.outputs[0].name]
            if n.prim.is_view:
                assert not info["code"] and "view" in info["note"]
                continue
            assert len(info["code"]) == 1, (sid, info)
            block = data["blocks"][info["code"][0]]["text"]
            assert block in code  # a piece of the real generated code
            quoted = [ln.strip()[5:] for ln in block.splitlines() if ln.strip().startswith("#    ")]
            if n.prim.name == "fused":
                fused += 1
                body = [ln.strip() for ln in info["ir"].splitlines()[2:] if " = " in ln]  # the body's nodes
                assert quoted == body, (quoted, body)
                assert info["body"].startswith("<svg")
            else:
                assert quoted == [info["ir"]], (quoted, info["ir"])
    assert fused >= 2  # relu+bias forward, its gradient backward
    # fused groups get a colour each
    final = page[page.index(f'id="stage-{_drawn_index(data, "15_backward_after_fusion")}"'):]
    fills = re.findall(r'fill="(hsl\([^"]+\))"', final[:final.index("</svg>")])
    assert fills and len(set(fills)) == len(fills)


def _drawn_index(data: dict, sid: str) -> int:
    i = next(i for i, s in enumerate(data["stages"]) if s["id"] == sid)
    return data["stages"][i].get("same", i)


def test_compile_dump_dir_writes_html_when_the_env_asks(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP_FORMAT", "html")
    f = torch.compile(lambda x: (x * 2).relu().sum(), dump_dir=str(tmp_path))
    f(torch.randn(3, 4))
    page = (tmp_path / "<lambda>_0" / "index.html").read_text()
    assert "&lt;lambda&gt;_0" in page and "<lambda>" not in page
    assert 'href="&lt;lambda&gt;_0/index.html"' in (tmp_path / "index.html").read_text()
    monkeypatch.setenv("GRAPHC_DUMP_FORMAT", "pdf")
    with pytest.raises(ValueError, match="GRAPHC_DUMP_FORMAT='pdf' is not a dump format; use one of text, dot, html"):
        torch.compile(lambda x: x + 1, dump_dir=str(tmp_path))(torch.randn(2))


def test_every_specialization_keeps_its_own_folder(tmp_path):
    # the second call recompiles for the same input signature (the optimizer made .grad tensors):
    # that replaces the cache entry, and the third compile's folder must not overwrite it
    model = torch.nn.Linear(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    @torch.compile(dump_dir=str(tmp_path))
    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    for n in (4, 4, 3):
        step(torch.randn(n, 8))
    whys = {p.name: (p / "00_why.txt").read_text().splitlines()[0] for p in tmp_path.iterdir()}
    assert sorted(whys) == ["step_0", "step_1", "step_2"], whys
    assert ".grad" in whys["step_1"] and "shape changed" in whys["step_2"], whys


def test_triton_nodes_show_their_launch_and_kernel_source(tmp_path, monkeypatch):
    # the Triton backend (under its interpreter on CPU tensors) rebuilds a matmul epilogue's
    # comment without locations; the page still finds every node's kernel, and shows its source
    monkeypatch.setenv("GRAPHC_DUMP_FORMAT", "html")
    w = torch.randn(8, 8, requires_grad=True)
    f = torch.compile(lambda x: torch.nn.functional.softmax((x @ w).relu() * 2, dim=-1).sum(),
                      backend="triton", dump_dir=str(tmp_path))
    f(torch.randn(4, 8)).backward()
    data = _data((tmp_path / "<lambda>_0" / "index.html").read_text())
    kinds = set()
    for sid in ("10_forward_after_fusion", "15_backward_after_fusion"):
        stage = next(s for s in data["stages"] if s["id"] == sid)
        for key, n in stage["nodes"].items():
            if n.get("note", "").startswith(("a graph input", "a view")):
                continue
            (block,) = [data["blocks"][i]["text"] for i in n["code"]]
            name = re.search(r"# -- (\w+):", block).group(1)
            assert f"_launch('{name}'" in block and f"def {name}(" in block and "@triton.jit" in block, block
            kinds.add(name.split("_")[0])
    assert {"mm", "red"} <= kinds


def _chain(n: int) -> str:
    lines = ["graph big(%x: f32[4], %w: f32[4] param) {", "  %0: f32[4] = add(%x, %w)"]
    lines += [f"  %{i}: f32[4] = mul(%{i - 1}, %{i - 1 if i < 2 else i - 2})" for i in range(1, n)]
    return "\n".join(lines + [f"  return %{n - 1}", "}"]) + "\n"


def test_layout_flows_downwards_and_large_graphs_are_drawn_in_part():
    g = parse_graph(_chain(1000))
    d = graph_svg.draw(g)
    assert (d.drawn, d.total) == (graph_svg.MAX_DRAWN, 1000)
    pos = {k: (float(x), float(y)) for k, x, y in
           re.findall(r'data-k="([^"]+)" transform="translate\(([-\d.]+),([-\d.]+)\)', d.svg)}
    assert len(pos) == graph_svg.MAX_DRAWN + 2  # the drawn nodes and both inputs
    for n in g.nodes[:graph_svg.MAX_DRAWN]:
        for x in n.value_inputs():
            assert pos[x.name][1] < pos[n.outputs[0].name][1], "every edge points down"
    page = dump_html.render_page("big", "big_0", [dump_html.Stage("01_x.ir", "x", _chain(1000), False)], {})
    assert f"the first {graph_svg.MAX_DRAWN} of 1000 nodes" in page


def test_crossing_reduction_untangles_two_independent_chains():
    # two chains whose inputs are declared crosswise: the sweeps put each chain in one column
    text = """graph two(%a: f32[2], %b: f32[2]) {
      %0: f32[2] = neg(%b)
      %1: f32[2] = neg(%a)
      %2: f32[2] = exp(%1)
      %3: f32[2] = exp(%0)
      %4: f32[2] = sin(%3)
      %5: f32[2] = sin(%2)
      return %4, %5
    }"""
    svg = graph_svg.draw(parse_graph(textwrap.dedent(text))).svg
    x = {k: float(v) for k, v in re.findall(r'data-k="([^"]+)" transform="translate\(([-\d.]+),', svg)}
    assert x["b"] == x["0"] == x["3"] == x["4"] and x["a"] == x["1"] == x["2"] == x["5"]


# ---- in a real browser ----------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true and no chromium binary found: .ci/run installs it (apt-get install -y chromium)")
    pytest.skip("no chromium binary found (apt-get install chromium): the browser checks of the HTML dump need it")


def _browse(page: Path, fragment: str, tmp: Path, shot: Path) -> tuple[str, str]:
    """(the DOM after the page's scripts ran, chromium's log) of ``page#fragment``; a screenshot."""
    r = subprocess.run([_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                        "--disable-dev-shm-usage",  # containers' /dev/shm is small
                        f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0",
                        "--window-size=1400,1000", f"--screenshot={shot}", "--dump-dom",
                        page.as_uri() + fragment], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr


def _js_errors(dom: str, log: str) -> list[str]:
    recorded = re.search(r'<pre id="graphc-errors"[^>]*>(.*?)</pre>', dom, re.S)
    assert recorded, "the page's error recorder is missing"
    return [e for e in recorded.group(1).splitlines() if e] + \
        [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


def test_page_in_headless_chromium_loads_clicks_and_draws(dumped, tmp_path):
    _, folder = dumped
    page = (folder / "index.html").read_text()
    data = _data(page)
    stage = next(s for s in data["stages"] if s["id"] == "10_forward_after_fusion")
    key, info = next((k, n) for k, n in stage["nodes"].items() if "= matmul(" in n["ir"])
    # a copy of the page that clicks the node the way a person does: a click event on its <g>
    click = ("<script>(function(){var k=%s;document.querySelectorAll('.stage:not([hidden]) g.n').forEach("
             "function(g){if(g.getAttribute('data-k')===k)g.dispatchEvent(new MouseEvent('click',{bubbles:true}));});"
             "})();</script></body>" % json.dumps(key))
    clicked = folder / "clicked.html"
    clicked.write_text(page.replace("</body>", click))
    shot = tmp_path / "page.png"
    dom, log = _browse(clicked, "#stage=10_forward_after_fusion", tmp_path, shot)
    assert 'data-ready="1"' in dom, "the page's script did not run to its end"
    assert _js_errors(dom, log) == []
    panel = dom[dom.index('id="panel"'):]
    panel = panel[:panel.index("</aside>")]
    assert f'<pre class="ir">{html.escape(info["ir"], quote=False)}</pre>' in panel
    block = data["blocks"][info["code"][0]]["text"]
    assert "np.matmul(" in block and html.escape(block, quote=False) in panel
    assert html.escape(f"source: {info['loc']}", quote=False) in panel
    assert re.search(rf'<g class="n sel" data-k="{re.escape(key)}"', dom), "the clicked node is highlighted"
    from PIL import Image
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (1000, 1400)
    graph_area = pixels[150:700, 250:880]  # under the stage bar, between the stage list and the panel
    assert pixels.std() > 20 and graph_area.std() > 10, "a blank screenshot"
    assert (graph_area.sum(axis=2) < 600).mean() > 0.02, "no graph drawn"


def test_browser_check_sees_a_script_error(dumped, tmp_path):
    # the checks above can fail: a page whose script throws is reported
    _, folder = dumped
    broken = folder / "broken.html"
    broken.write_text((folder / "index.html").read_text().replace(
        "</body>", "<script>null.boom();</script></body>"))
    dom, log = _browse(broken, "", tmp_path, tmp_path / "broken.png")
    errors = _js_errors(dom, log)
    assert errors and any("boom" in e or "null" in e for e in errors), errors
