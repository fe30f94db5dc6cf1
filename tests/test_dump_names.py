"""The dump tool names things: parameters by module path, every node with the user's file:line,
forward and backward graphs labelled, and each specialization's folder saying which guard made it."""
from __future__ import annotations

import inspect
import os
import re

import numpy as np

import graphc as torch
import graphc.nn as nn
from graphc.ir.printer import parse_graph, print_graph

HERE = os.path.abspath(__file__)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        h = self.bn(self.fc1(x)).relu()  # LINE_HIDDEN
        return self.fc2(h)  # LINE_OUT


def _line(marker: str) -> int:
    src, start = inspect.getsourcelines(Net)
    return start + next(i for i, s in enumerate(src) if marker in s)


def _ir(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))


def test_parameters_and_buffers_are_named_by_module_path(tmp_path):
    torch.manual_seed(0)
    m = torch.compile(Net(), dump_dir=str(tmp_path))
    m(torch.randn(5, 4)).sum().backward()
    (folder,) = list(tmp_path.iterdir())
    traced = (folder / "00_traced.ir").read_text()
    header = _ir(traced).splitlines()[0]
    for name in ("fc1.weight", "fc1.bias", "bn.weight", "bn.running_mean", "bn.running_var", "fc2.weight"):
        assert re.search(rf"%{re.escape(name)}: f32\[[0-9,]*\] (param|buffer)", header), (name, header)
    assert not re.search(r"%[pb]\d+:", header), header
    code = (folder / "90_code.py").read_text()
    assert re.search(r"def \w+_forward\([^)]*in_fc1_weight", code), "generated code names its arguments by path"
    # the backward graph's saved parameters keep their names
    assert "%fc2.weight" in (folder / "51_backward.ir").read_text()


def test_every_node_carries_the_users_file_and_line(tmp_path):
    torch.manual_seed(0)
    m = torch.compile(Net(), dump_dir=str(tmp_path))
    m(torch.randn(5, 4)).sum().backward()
    (folder,) = list(tmp_path.iterdir())
    hidden, out = _line("LINE_HIDDEN"), _line("LINE_OUT")
    for stage in ("00_traced.ir", "50_forward.ir", "51_backward.ir"):
        body = [ln for ln in _ir((folder / stage).read_text()).splitlines() if " = " in ln]
        assert body, stage
        for ln in body:
            loc = ln.rsplit("  # ", 1)
            assert len(loc) == 2, f"{stage}: a node without a source location: {ln}"
            path, line = loc[1].rsplit(":", 1)
            assert os.path.abspath(path) == HERE and int(line) in (hidden, out), (stage, ln)
        # both lines are represented, also in the backward graph (gradients take the op's line)
        assert {int(ln.rsplit(":", 1)[1]) for ln in body} == {hidden, out}, stage
    code = (folder / "90_code.py").read_text()
    assert f"{HERE}:{hidden}" in code and f"{HERE}:{out}" in code


def test_locations_parse_back_and_print_the_same(tmp_path):
    m = torch.compile(Net(), dump_dir=str(tmp_path))
    m(torch.randn(5, 4))
    (folder,) = list(tmp_path.iterdir())
    for f in sorted(folder.glob("*.ir")):
        text = f.read_text()
        g = parse_graph(text)  # the label comment and the locations parse
        assert print_graph(g) == _ir(text) + "\n", f.name
        assert any(n.loc for n in g.nodes), f.name


def test_forward_and_backward_are_labelled_in_stage_files_and_fusion_log(tmp_path):
    m = torch.compile(Net(), dump_dir=str(tmp_path))
    m(torch.randn(5, 4)).sum().backward()
    (folder,) = list(tmp_path.iterdir())
    for f in folder.glob("*.ir"):
        first = f.read_text().splitlines()[0]
        assert first.startswith("# "), f.name
        if "forward" in f.name:
            assert "forward graph" in first, (f.name, first)
        if "backward" in f.name:
            assert "backward graph" in first, (f.name, first)
    log = (folder / "60_fusion.log").read_text()
    fwd, bwd = log.index("## forward graph"), log.index("## backward graph")
    assert fwd < bwd


def test_each_specialization_says_which_guard_made_it(tmp_path):
    m = torch.compile(Net(), dump_dir=str(tmp_path))
    m(torch.randn(5, 4))
    m(torch.randn(7, 4))  # another batch size
    m.eval()
    m(torch.randn(7, 4))  # BatchNorm in eval mode
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 3
    why = [(f / "00_why.txt").read_text().splitlines()[0] for f in folders]
    assert why[0].endswith("the first compile")
    assert "recompiled because" in why[1] and "shape changed from (5, 4) to (7, 4)" in why[1], why[1]
    assert "recompiled because" in why[2] and "training" in why[2].lower(), why[2]


def test_whole_training_step_dump_names_grads_and_hyperparameters(tmp_path):
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

    def step(x):
        opt.zero_grad()
        loss = net(x).square().mean()
        loss.backward()
        opt.step()
        return loss

    f = torch.compile(step, dump_dir=str(tmp_path))
    x = torch.randn(5, 4)
    want = []
    for _ in range(3):
        want.append(float(f(x)))
    traced = [(d / "00_traced.ir").read_text() for d in sorted(tmp_path.iterdir())]
    assert any("%lr: f64[] hyper" in t for t in traced)
    assert all("%fc1.weight" in t for t in traced)
    assert all("backward" in t.splitlines()[0] for t in traced), "the whole step says it holds the backward"
    assert np.all(np.diff(want) < 0), "the compiled step still trains"
