"""graphc.jit: trace a model into a program, save it to one file, load and run it in a fresh
process that has no model source; damaged or newer files are refused."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
from graphc import safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1)).log_softmax(dim=1)


class Tagger(nn.Module):
    """An LSTM returning a dict and a tuple, to check output structures survive the file."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return {"tags": self.out(y), "state": (h, c)}


def _trained_cnn():
    torch.manual_seed(0)
    m = CNN()
    m.train()
    with torch.no_grad():  # give BatchNorm running statistics that are not the defaults
        for _ in range(3):
            m(torch.randn(8, 1, 8, 8) * 2 + 1)
    return m.eval()


def _run_fresh(code: str, *args: str) -> subprocess.CompletedProcess:
    """Python in a new process that imports only graphc (and numpy), from outside the repository,
    so none of this file's model classes exist there."""
    script = textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(ROOT))


LOAD_AND_RUN = """
    import sys, numpy as np
    import graphc
    p = graphc.jit.load(sys.argv[1])
    x = graphc.from_numpy(np.load(sys.argv[2]))
    out = p(x)
    assert not any(name.startswith("test_") for name in sys.modules)  # the model's source is not here
    np.save(sys.argv[3], out.numpy())
    print(type(p).__name__, p.graph.name)
"""


def test_save_in_one_process_load_and_run_in_another(tmp_path):
    m = _trained_cnn()
    x = torch.randn(2, 1, 8, 8)
    program = torch.jit.trace(m, x)
    expected = m(x).detach().numpy()
    np.testing.assert_allclose(program(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    path = tmp_path / "cnn.pt"
    torch.jit.save(program, str(path))
    np.save(tmp_path / "x.npy", x.numpy())
    r = _run_fresh(LOAD_AND_RUN, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy"))
    assert r.returncode == 0, r.stderr
    assert "Program CNN" in r.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)


def test_the_file_is_safetensors_with_the_weights_by_name_and_the_ir_text(tmp_path):
    m = _trained_cnn()
    program = torch.jit.trace(m, torch.randn(2, 1, 8, 8))
    path = tmp_path / "cnn.pt"
    torch.jit.save(program, path)
    weights = safetensors.load_file(path)
    assert sorted(weights) == sorted(m.state_dict())  # running statistics included
    for k, t in m.state_dict().items():
        if t.dtype.is_floating_point:
            np.testing.assert_array_equal(weights[k].numpy(), t.numpy())
    with safetensors.safe_open(path) as f:
        meta = f.metadata()
    assert meta["format"] == "graphc.jit" and meta["format_version"] == "1"
    assert meta["ir"] == program.code and meta["ir"].startswith("graph CNN(%x0: f32[2,1,8,8]")
    assert "%features.1.running_mean: f32[4] buffer" in meta["ir"]


def test_program_api():
    m = _trained_cnn()
    x = torch.randn(2, 1, 8, 8)
    p = torch.jit.trace(m, (x,))
    assert str(p.graph) == p.code
    assert set(p.state_dict()) == set(m.state_dict())
    assert p.state_dict()["head.weight"] is m.head.weight  # shares the model's tensors
    assert {k for k, _ in p.named_parameters()} == {k for k, _ in m.named_parameters()}
    with torch.no_grad():
        m.head.bias.add_(1.0)  # seen by the program, as a traced module shares its parameters
    np.testing.assert_allclose(p(x).numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert p.eval() is p
    with pytest.raises(RuntimeError, match=r"traced for f32\[2, 1, 8, 8\]"):
        p(torch.randn(3, 1, 8, 8))
    with pytest.raises(TypeError, match="takes 1 tensor argument"):
        p(x, x)


def test_lstm_with_structured_outputs_round_trips(tmp_path):
    torch.manual_seed(1)
    m = Tagger().eval()
    x = torch.randn(2, 6, 3)
    p = torch.jit.trace(m, x)
    torch.jit.save(p, tmp_path / "tagger.pt")
    q = torch.jit.load(tmp_path / "tagger.pt")
    keys = list(q.state_dict())
    # the model's state in its order, then tensors the forward made (the LSTM's zero initial state)
    assert keys[:len(m.state_dict())] == list(m.state_dict())
    assert all(k.startswith("constant") for k in keys[len(m.state_dict()):])
    got, want = q(x), m(x)
    assert set(got) == {"tags", "state"} and isinstance(got["state"], tuple)
    np.testing.assert_allclose(got["tags"].numpy(), want["tags"].detach().numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(got["state"], want["state"]):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_training_mode_batchnorm_updates_the_programs_buffers_and_dropout_draws_fresh_masks(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
    m.train()
    x = torch.randn(8, 4)
    p = torch.jit.trace(m, x)
    torch.jit.save(p, tmp_path / "train.pt")
    q = torch.jit.load(tmp_path / "train.pt")
    ref = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
    ref.load_state_dict(m.state_dict())
    ref.train()
    torch.manual_seed(5)
    want = ref(x).detach().numpy()
    torch.manual_seed(5)
    got = q(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # same dropout mask from the same seed
    np.testing.assert_allclose(q.state_dict()["1.running_mean"].numpy(), ref[1].running_mean.numpy(), rtol=1e-6)
    assert q.state_dict()["1.num_batches_tracked"].item() == 1
    assert not np.array_equal(q(x).numpy(), got)  # a new mask at the next call


def _tamper(path, old: bytes, new: bytes):
    data = path.read_bytes()
    assert data.count(old) >= 1
    path.write_bytes(data.replace(old, new, 1))


def test_tampered_files_are_refused(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    p = torch.jit.trace(m, torch.randn(1, 3))
    path = tmp_path / "p.pt"
    torch.jit.save(p, path)
    original = path.read_bytes()
    # a changed op in the IR text (same length: the header still parses)
    _tamper(path, b"relu(", b"tanh(")
    with pytest.raises(torch.jit.ProgramFileError, match="integrity check"):
        torch.jit.load(path)
    # a changed weight byte
    data = bytearray(original)
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(torch.jit.ProgramFileError, match="integrity check"):
        torch.jit.load(path)
    # truncated
    path.write_bytes(original[:-5])
    with pytest.raises(torch.jit.ProgramFileError, match="not a graphc program file"):
        torch.jit.load(path)
    # plain weights are not a program
    safetensors.save_file(m.state_dict(), path)
    with pytest.raises(torch.jit.ProgramFileError, match="not a graphc program"):
        torch.jit.load(path)


def test_a_newer_format_version_is_refused(tmp_path):
    p = torch.jit.trace(nn.Linear(3, 2), torch.randn(1, 3))
    path = tmp_path / "p.pt"
    torch.jit.save(p, path)
    _tamper(path, b'"format_version":"1"', b'"format_version":"7"')
    with pytest.raises(torch.jit.ProgramFileError, match="newer graphc.*version 7.*up to 1"):
        torch.jit.load(path)


def _forged(path, ir: str):
    """A program file holding ``ir`` with no weights, its digest recomputed (as an attacker could)."""
    from graphc.jit import _digest
    desc = json.dumps({"bindings": {}, "outputs": {"tensor": 0}, "mutations": [], "parameters": [], "state": []})
    meta = {"format": "graphc.jit", "format_version": "1", "ir": ir, "program": desc, "sha256": _digest(ir, desc, {})}
    path.write_bytes(safetensors.save({}, meta))
    return path


def test_a_file_with_a_valid_digest_but_code_in_it_is_parsed_not_run(tmp_path):
    """Even a file whose digest was recomputed can't run code: the IR is only parsed."""
    marker = tmp_path / "ran"
    ir = ('graph evil(%x0: f32[2]) {\n  %0: f32[2] = __import__("os").system("touch ' + str(marker) + '")\n'
          '  return %0\n}\n')
    path = _forged(tmp_path / "evil.pt", ir)
    with pytest.raises(torch.jit.ProgramFileError, match="does not parse"):
        torch.jit.load(path)
    assert not marker.exists()


def test_a_comment_cannot_smuggle_a_line_into_generated_code(tmp_path):
    """A node's trailing comment (its source location) is copied into generated code's comments;
    Python also ends a line at \\r, so the IR's comments stop there."""
    marker = tmp_path / "ran"
    ir = ('graph evil(%x0: f32[2]) {\n  %0: f32[2] = relu(%x0)  # model.py:1\r__import__("os").system("touch '
          + str(marker) + '")\n  return %0\n}\n')
    path = _forged(tmp_path / "evil.pt", ir)
    with pytest.raises(torch.jit.ProgramFileError, match="does not parse"):
        torch.jit.load(path)
    assert not marker.exists()


def test_an_ir_naming_an_unknown_composite_is_refused_at_load(tmp_path):
    ir = ('graph odd(%x0: f32[2]) {\n  %0: f32[2] = composite(%x0) name="no_such_op" layout=[["t",0]]\n'
          '  return %0\n}\n')
    path = _forged(tmp_path / "odd.pt", ir)
    with pytest.raises(torch.jit.ProgramFileError, match="no_such_op"):
        torch.jit.load(path)


def test_trace_errors_and_script():
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(RuntimeError, match="can't be captured as one graph"):
        torch.jit.trace(Branchy(), torch.randn(3))
    with pytest.raises(NotImplementedError, match="graphc.jit.trace"):
        torch.jit.script(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="example_inputs must be a tensor"):
        torch.jit.trace(nn.Linear(2, 2), [1.0, 2.0])

    @torch.jit.ignore
    def helper(x):
        return x + 1

    assert torch.jit.unused(helper) is helper and torch.jit.ignore(drop=True)(helper) is helper
    assert not torch.jit.is_scripting() and not torch.jit.is_tracing()


def test_a_plain_function_and_a_closure_constant():
    w = torch.randn(3, 3)

    def f(x, y):
        return (x @ w + y).relu(), x.sum()

    x, y = torch.randn(2, 3), torch.randn(2, 3)
    p = torch.jit.trace(f, (x, y))
    assert list(p.state_dict()) == ["constant0"] and p.state_dict()["constant0"] is w
    a, b = p(x, y)
    np.testing.assert_allclose(a.numpy(), f(x, y)[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), f(x, y)[1].numpy(), rtol=1e-6)


def test_file_objects_and_calls_from_several_threads():
    import io
    from concurrent.futures import ThreadPoolExecutor
    torch.manual_seed(2)
    m = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).eval()
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(m, torch.randn(4, 5)), buf)
    buf.seek(0)
    program = torch.jit.load(buf)
    xs = [torch.randn(4, 5) for _ in range(8)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(program, xs))
    for x, out in zip(xs, outs):
        np.testing.assert_allclose(out.numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)
