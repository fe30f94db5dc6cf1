"""graphc.save / graphc.load (a zip of a JSON manifest plus raw tensor bytes, never pickle) and
graphc.safetensors, including corrupted, tampered and malicious files."""
from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import math
import os
import pathlib
import pickle
import shlex
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import graphc as torch
from graphc import nn
from graphc import safetensors as st
from graphc.serialization import MANIFEST_NAME, MAX_DIMS, PREFIX, CheckpointError

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **load_kwargs)


def assert_same(a, b, path="obj"):
    """Exact equality including container types, key types/order, tensor kind, dtype, shape,
    bit-exact values and requires_grad."""
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape), path
        assert a.requires_grad == b.requires_grad, path
        assert np.ascontiguousarray(a._data).tobytes() == np.ascontiguousarray(b._data).tobytes(), path
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), path
        for (ka, va), kb in zip(a.items(), b.keys()):
            assert type(ka) is type(kb), f"{path} key {ka!r}"
            assert_same(va, b[kb], f"{path}[{ka!r}]")
        assert getattr(a, "__dict__", {}).keys() == getattr(b, "__dict__", {}).keys(), path
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, complex):
        assert_same(a.real, b.real, path + ".real")
        assert_same(a.imag, b.imag, path + ".imag")
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), path
    else:
        assert a == b, path


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def saved_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def tamper_manifest(data: bytes, edit) -> bytes:
    """Rewrite a checkpoint with edit(manifest) applied (zip CRCs stay valid)."""
    entries = read_zip(data)
    m = json.loads(entries[MANIFEST_NAME])
    edit(m)
    entries[MANIFEST_NAME] = json.dumps(m).encode()
    return write_zip(entries)


def load_bytes(data: bytes):
    return torch.load(io.BytesIO(data))


def make_model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3), nn.BatchNorm1d(3))
    m.train()
    m(torch.randn(5, 4))  # updates running stats and num_batches_tracked
    return m


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------

def test_model_state_dict_roundtrip_via_path(tmp_path):
    model = make_model()
    sd = model.state_dict()
    path = tmp_path / "model.pt"
    torch.save(sd, str(path))
    loaded = torch.load(str(path))
    assert type(loaded) is OrderedDict
    assert_same(sd, loaded)
    assert loaded["1.num_batches_tracked"].dtype == torch.int64
    fresh = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3), nn.BatchNorm1d(3))
    fresh.load_state_dict(loaded)
    model.eval(), fresh.eval()
    x = torch.randn(3, 4)
    assert np.array_equal(model(x)._data, fresh(x)._data)


def test_state_dict_keep_vars_parameters_and_metadata_attr():
    model = make_model()
    sd = model.state_dict(keep_vars=True)
    sd._metadata = OrderedDict([("", {"version": 1}), ("1", {"version": 2})])  # as PyTorch's state_dict has
    loaded = roundtrip(sd)
    assert_same(sd, loaded)
    assert isinstance(loaded["0.weight"], nn.Parameter) and loaded["0.weight"].requires_grad
    assert type(loaded["1.running_mean"]) is torch.Tensor and not loaded["1.running_mean"].requires_grad
    assert loaded._metadata == sd._metadata and type(loaded._metadata) is OrderedDict


def test_optimizer_like_state_dict():
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3), "exp_avg_sq": torch.rand(2, 3)},
                  1: {"step": torch.tensor(3.0), "momentum_buffer": None}},
        "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0, "amsgrad": False,
                          "maximize": False, "foreach": None, "capturable": False, "fused": None,
                          "params": [0, 1]}],
    }
    ckpt = {"epoch": 7, "model": make_model().state_dict(), "optimizer": state, "best": float("inf"),
            "history": [0.5, 0.25], "name": "run-1"}
    loaded = roundtrip(ckpt)
    assert_same(ckpt, loaded)
    assert list(loaded["optimizer"]["state"]) == [0, 1]  # int keys stay ints
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


PY_VALUES = [None, True, False, 0, -1, 2 ** 100, -(2 ** 63), 1.5, -0.0, float("nan"), float("inf"), float("-inf"),
             1e-310, "", "héllo ✓ \x00", b"", b"\x00\xffbytes", 1 + 2j, complex(float("nan"), -0.0), [], (), {},
             OrderedDict(), [[], [()]], (1, [2, (3,)]), torch.Size([2, 0, 3]), torch.float16, torch.bool,
             torch.device("cpu"), torch.device("cuda", 1)]


@pytest.mark.parametrize("value", PY_VALUES, ids=repr)
def test_python_values_roundtrip(value):
    assert_same(value, roundtrip(value))


def test_dict_key_types_preserved():
    d = {0: "int", "0": "str", 1.5: "float", None: "none", True: "bool", (1, "a"): "tuple", b"k": "bytes", 2j: "c"}
    loaded = roundtrip(d)
    assert_same(d, loaded)
    assert [type(k) for k in loaded] == [int, str, float, type(None), bool, tuple, bytes, complex]


ALL_DTYPES = [torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.uint8, torch.bool]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (3,), (2, 3, 4)], ids=str)
def test_dtype_and_shape_roundtrip(dtype, shape):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype.np) if dtype.category == 1 else None
    if dtype is torch.bool:
        arr = np.asarray(rng.random(shape) > 0.5)
    elif info is not None:
        arr = rng.integers(info.min, info.max, size=shape, dtype=dtype.np, endpoint=True)
        if arr.size >= 2:
            arr.flat[0], arr.flat[1] = info.min, info.max
    else:
        arr = np.asarray(rng.standard_normal(shape) * 1e3).astype(dtype.np)
        if arr.size >= 3:
            arr.flat[0], arr.flat[1], arr.flat[2] = np.inf, np.nan, -0.0
    t = torch.from_numpy(arr)
    loaded = roundtrip({"t": t})["t"]
    assert loaded.dtype == dtype and tuple(loaded.shape) == shape
    assert loaded._data.tobytes() == arr.tobytes()  # bit-exact, including NaN payloads and -0.0
    assert loaded._data.flags.writeable


def test_non_contiguous_tensors_saved_contiguous():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = {"t": base.t(), "step": base[:, ::2], "flip": base.flip(0), "narrow": base[1:3, 2:5]}
    assert not base.t()._data.flags.c_contiguous
    loaded = roundtrip(views)
    for k, v in views.items():
        assert np.array_equal(loaded[k]._data, v._data), k
        assert loaded[k]._data.flags.c_contiguous, k
        assert tuple(loaded[k].shape) == tuple(v.shape)


def test_requires_grad_and_parameter_kinds():
    leaf = torch.ones(3, requires_grad=True)
    nonleaf = leaf * 2
    frozen = nn.Parameter(torch.zeros(2), requires_grad=False)
    p = nn.Parameter(torch.randn(2, 2))
    loaded = roundtrip({"leaf": leaf, "nonleaf": nonleaf, "frozen": frozen, "p": p, "plain": torch.ones(1)})
    assert type(loaded["leaf"]) is torch.Tensor and loaded["leaf"].requires_grad and loaded["leaf"].is_leaf
    assert loaded["nonleaf"].requires_grad and loaded["nonleaf"].is_leaf and loaded["nonleaf"].grad_fn is None
    assert type(loaded["frozen"]) is nn.Parameter and not loaded["frozen"].requires_grad
    assert type(loaded["p"]) is nn.Parameter and loaded["p"].requires_grad
    assert not loaded["plain"].requires_grad
    (loaded["p"] * 3).sum().backward()
    assert np.array_equal(loaded["p"].grad._data, np.full((2, 2), 3, np.float32))


def test_shared_tensors_stored_once():
    w = nn.Parameter(torch.randn(64, 64))
    alias = w.detach()  # a different tensor over the same memory
    obj = {"encoder": w, "decoder": w, "alias": alias, "list": [w, alias]}
    data = saved_bytes(obj)
    manifest = json.loads(read_zip(data)[MANIFEST_NAME])
    assert len(manifest["blobs"]) == 1 and len(manifest["tensors"]) == 2
    loaded = load_bytes(data)
    assert loaded["encoder"] is loaded["decoder"] is loaded["list"][0]
    assert loaded["alias"] is loaded["list"][1] and type(loaded["alias"]) is torch.Tensor
    assert np.shares_memory(loaded["encoder"]._data, loaded["alias"]._data)
    assert len(data) < 64 * 64 * 4 * 1.5


def test_file_targets(tmp_path):
    obj = {"a": torch.arange(5), "b": [1, "x"]}
    p = tmp_path / "ckpt.pt"
    torch.save(obj, p)  # os.PathLike
    assert_same(obj, torch.load(p))
    with open(p, "wb") as fh:  # file objects
        torch.save(obj, fh)
    with open(p, "rb") as fh:
        assert_same(obj, torch.load(fh))
    assert_same(obj, torch.load(os.fsencode(str(p))))  # bytes path

    class ReadOnlyStream:  # not seekable
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def read(self, n=-1):
            return self._b.read(n)

        def seekable(self):
            return False
    assert_same(obj, torch.load(ReadOnlyStream(p.read_bytes())))

    buf = io.BytesIO(b"prefix")  # a checkpoint starting mid-stream
    buf.seek(6)
    torch.save(obj, buf)
    buf.seek(6)
    assert_same(obj, torch.load(buf))


def test_second_archive_in_stream_is_not_silently_read():
    buf = io.BytesIO()
    torch.save({"first": 1}, buf)
    torch.save({"second": 2}, buf)
    buf.seek(0)
    with pytest.raises(CheckpointError, match="one checkpoint per file"):
        torch.load(buf)


def test_save_is_deterministic():
    obj = {"m": make_model().state_dict(), "x": (1, 2.0)}
    assert saved_bytes(obj) == saved_bytes(obj)


def test_format_layout():
    t = torch.tensor([[1.0, 2.0, 3.0]])
    data = saved_bytes({"w": t, "n": 3})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [MANIFEST_NAME, PREFIX + "data/0"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        manifest = json.loads(zf.read(MANIFEST_NAME))
        blob = zf.read(PREFIX + "data/0")
    assert manifest["format"] == "graphc.checkpoint" and manifest["version"] == 1
    assert manifest["byteorder"] == "little"
    assert blob == struct.pack("<3f", 1.0, 2.0, 3.0)
    assert manifest["blobs"] == [{"nbytes": 12, "sha256": hashlib.sha256(blob).hexdigest()}]
    assert manifest["tensors"] == [{"blob": 0, "dtype": "float32", "shape": [1, 3], "kind": "tensor",
                                    "requires_grad": False}]
    assert manifest["root"] == {"dict": [["w", {"tensor": 0}], ["n", 3]]}


def test_pytorch_compat_arguments():
    obj = {"a": torch.ones(2)}
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=4, _use_new_zipfile_serialization=True)
    for kwargs in [{}, {"weights_only": True}, {"weights_only": False}, {"mmap": True}, {"map_location": "cpu"}]:
        buf.seek(0)
        assert_same(obj, torch.load(buf, **kwargs))
    torch.serialization.add_safe_globals([OrderedDict])
    assert OrderedDict in torch.serialization.get_safe_globals()
    with torch.serialization.safe_globals([dict]):
        pass
    torch.serialization.clear_safe_globals()


# ---------------------------------------------------------------------------------------------
# map_location
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loc", ["cpu", torch.device("cpu"), {"cuda:0": "cpu"}, {"cpu": "cpu"},
                                 lambda storage, loc: storage, lambda storage, loc: None],
                         ids=["str", "device", "dict-other", "dict-cpu", "callable", "callable-none"])
def test_map_location_cpu(loc):
    obj = {"a": torch.arange(3.0), "p": nn.Parameter(torch.ones(2))}
    loaded = roundtrip(obj, map_location=loc)
    assert_same(obj, loaded)


@pytest.mark.parametrize("loc", ["cuda", "cuda:0", torch.device("cuda", 0), {"cpu": "cuda:0"},
                                 lambda storage, loc: storage.cuda()],
                         ids=["str", "str-index", "device", "dict", "callable"])
def test_map_location_cuda_is_a_clear_error(loc):
    with pytest.raises(torch.DeviceUnavailableError, match="graphc.cuda.is_available"):
        roundtrip({"a": torch.ones(2)}, map_location=loc)


def test_map_location_bad_type():
    with pytest.raises(TypeError, match="map_location"):
        roundtrip({"a": torch.ones(2)}, map_location=3.5)
    with pytest.raises(TypeError, match="map_location returned"):
        roundtrip({"a": torch.ones(2)}, map_location=lambda s, loc: "nope")


# ---------------------------------------------------------------------------------------------
# unsupported objects
# ---------------------------------------------------------------------------------------------

class Foo:
    pass


def test_unsupported_object_names_the_path(tmp_path):
    with pytest.raises(TypeError, match=r"cannot save object of type .*Foo at obj\['model'\]\['x'\]: graphc.save "
                                        r"stores tensors"):
        torch.save({"model": {"w": torch.ones(1), "x": Foo()}}, io.BytesIO())
    with pytest.raises(TypeError, match=r"at obj\[2\]\[0\]"):
        torch.save([1, 2, (len,)], io.BytesIO())
    with pytest.raises(TypeError, match="save model.state_dict"):
        torch.save(nn.Linear(2, 2), io.BytesIO())
    with pytest.raises(TypeError, match="graphc.from_numpy"):
        torch.save({"a": np.zeros(2)}, io.BytesIO())
    with pytest.raises(TypeError, match="set"):
        torch.save({1, 2}, io.BytesIO())
    with pytest.raises(TypeError, match="dict key of type"):
        torch.save({torch.ones(1): 1}, io.BytesIO())

    class MyDict(dict):
        pass
    with pytest.raises(TypeError, match="MyDict"):
        torch.save(MyDict(a=1), io.BytesIO())
    # a failed save leaves an existing file untouched
    path = tmp_path / "keep.pt"
    torch.save({"ok": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        torch.save({"bad": Foo()}, path)
    assert path.read_bytes() == before


def test_cycles_and_depth_are_clear_errors():
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="contains itself"):
        torch.save(a, io.BytesIO())
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ValueError, match="nest more than"):
        torch.save(deep, io.BytesIO())
    shared = [1]
    assert_same([shared, shared], roundtrip([shared, shared]))  # repeated (acyclic) containers are fine


def test_bad_targets():
    with pytest.raises(TypeError, match="path"):
        torch.save({}, 42)
    with pytest.raises(TypeError, match="path"):
        torch.load(42)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        torch.load("/nonexistent/dir/ckpt.pt")


# ---------------------------------------------------------------------------------------------
# corrupted, tampered and foreign files
# ---------------------------------------------------------------------------------------------

GOOD = None


def good_bytes() -> bytes:
    global GOOD
    if GOOD is None:
        GOOD = saved_bytes({"w": torch.arange(10, dtype=torch.float32), "b": torch.tensor([True, False]),
                            "meta": {"step": 3}})
    return GOOD


@pytest.mark.parametrize("cut", [0, 1, 10, 100, -1, -22, -100, "half"])
def test_truncated_file(cut, tmp_path):
    data = good_bytes()
    n = len(data) // 2 if cut == "half" else cut
    path = tmp_path / "trunc.pt"
    path.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match="truncated|empty|not a graphc checkpoint|corrupted"):
        torch.load(path)


def test_flipped_byte_in_blob_detected():
    data = bytearray(good_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(PREFIX + "data/0")
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + 5] ^= 0xFF
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_bytes(bytes(data))


def test_tampered_blob_with_valid_zip_crc_detected_by_sha256():
    entries = read_zip(good_bytes())
    blob = bytearray(entries[PREFIX + "data/0"])
    blob[0] ^= 0x01
    entries[PREFIX + "data/0"] = bytes(blob)
    with pytest.raises(CheckpointError, match="checksum mismatch in blob 0.*SHA-256"):
        load_bytes(write_zip(entries))


def test_missing_blob_entry():
    entries = read_zip(good_bytes())
    del entries[PREFIX + "data/1"]
    with pytest.raises(CheckpointError, match="blob 1 is missing"):
        load_bytes(write_zip(entries))


def edit_tensor(key, value):
    def edit(m):
        m["tensors"][0][key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (edit_tensor("blob", 7), "refers to blob 7"),
    (edit_tensor("shape", [11]), "needs 44 bytes but its blob 0 holds 40"),
    (edit_tensor("shape", [-10]), "invalid shape"),
    (edit_tensor("shape", "10"), "invalid shape"),
    (edit_tensor("dtype", "quint8"), "unknown dtype 'quint8'"),
    (edit_tensor("dtype", "float"), "unknown dtype 'float'"),
    (edit_tensor("kind", "module"), "invalid kind"),
    (edit_tensor("requires_grad", 1), "invalid requires_grad"),
    (lambda m: m["tensors"][1].update(requires_grad=True), "only floating tensors can require grad"),
    (lambda m: m["blobs"][0].update(nbytes=44), "needs 40 bytes but its blob 0 holds 44"),
    (lambda m: m["blobs"][0].update(sha256="zz"), "blob 0 in the manifest is malformed"),
    (lambda m: m.update(version=2), "format version 2, written by a newer graphc"),
    (lambda m: m.update(version="1"), "invalid format version"),
    (lambda m: m.update(format="other"), "does not describe"),
    (lambda m: m.update(byteorder="big"), "byte order"),
    (lambda m: m.pop("root"), "no 'root'"),
    (lambda m: m.update(tensors={}), "'tensors' table"),
    (lambda m: m.update(root={"tensor": 5}), "refers to tensor 5"),
    (lambda m: m.update(root={"pickle": "cos\nsystem\n"}), "unknown node type 'pickle'"),
    (lambda m: m.update(root={"tuple": [1], "dict": []}), "malformed node"),
    (lambda m: m.update(root={"dict": [[[1], 2]]}), "invalid dict key"),
    (lambda m: m.update(root={"bytes": "!!"}), "invalid base64"),
    (lambda m: m.update(root={"float": "1e5"}), "malformed node"),
    (lambda m: m.update(root={"odict": [], "attrs": [["__class__", 1]]}), "malformed node"),
    (lambda m: m.update(root={"dtype": "object"}), "malformed node"),
    (lambda m: m.update(root={"device": "tpu"}), "invalid device"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_tampered_manifest(edit, message):
    with pytest.raises(CheckpointError, match=message):
        load_bytes(tamper_manifest(good_bytes(), edit))


def test_manifest_size_mismatch_with_zip_entry():
    entries = read_zip(good_bytes())
    entries[PREFIX + "data/0"] += b"\x00\x00\x00\x00"
    with pytest.raises(CheckpointError, match="holds 44 bytes but the manifest says 40"):
        load_bytes(write_zip(entries))


def test_bool_blob_with_invalid_values():
    data = saved_bytes({"b": torch.tensor([True, False])})
    entries = read_zip(data)
    entries[PREFIX + "data/0"] = b"\x02\x00"

    def fix_hash(m):
        m["blobs"][0]["sha256"] = hashlib.sha256(b"\x02\x00").hexdigest()
    entries[MANIFEST_NAME] = tamper_manifest_bytes(entries[MANIFEST_NAME], fix_hash)
    with pytest.raises(CheckpointError, match="bool values other than 0 and 1"):
        load_bytes(write_zip(entries))


def tamper_manifest_bytes(raw: bytes, edit) -> bytes:
    m = json.loads(raw)
    edit(m)
    return json.dumps(m).encode()


@pytest.mark.parametrize("manifest, message", [
    (b"\xff\xfe not utf-8", "not valid JSON"),
    (b"{\"format\": ", "not valid JSON"),
    (b"[1, 2]", "does not describe"),
    (b'{"format": "graphc.checkpoint", "format": "x"}', "duplicate key"),
    (b'{"format": "graphc.checkpoint", "version": NaN}', "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "nests too deeply|not valid JSON"),
])
def test_invalid_manifest(manifest, message):
    with pytest.raises(CheckpointError, match=message):
        load_bytes(write_zip({MANIFEST_NAME: manifest}))


def test_compressed_or_encrypted_entries_refused():
    entries = read_zip(good_bytes())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(CheckpointError, match="compressed"):
        load_bytes(buf.getvalue())


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (os.urandom(64), "not a graphc checkpoint"),
    (b"hello, world\n" * 10, "not a graphc checkpoint"),
    (b"PK\x03\x04" + b"\x00" * 40, "not a readable zip archive"),
    (write_zip({"some/file.txt": b"x"}), "zip archive but not a graphc checkpoint"),
    (st.save({"a": torch.ones(2)}), "safetensors file.*graphc.safetensors.load_file"),
])
def test_not_a_checkpoint(data, message):
    with pytest.raises(CheckpointError, match=message):
        load_bytes(data)


def test_text_mode_file_rejected(tmp_path):
    p = tmp_path / "c.pt"
    torch.save({"a": 1}, p)
    with open(p, encoding="latin-1") as fh, pytest.raises(TypeError, match="binary mode"):
        torch.load(fh)


# ---------------------------------------------------------------------------------------------
# malicious pickles: refused, never executed
# ---------------------------------------------------------------------------------------------

class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any attempt to unpickle during the test fails loudly (graphc never should)."""
    def boom(*a, **k):
        raise AssertionError("graphc tried to unpickle")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, boom)
        monkeypatch.setattr(pickle, "_" + name, boom, raising=False)


def test_malicious_payload_is_live(tmp_path):
    """Sanity check of the payload itself: unpickling it does run the command."""
    marker = tmp_path / "sanity_marker"
    pickle.loads(pickle.dumps(_Evil(marker)))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_raw_pickle_refused(tmp_path, no_unpickling, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": _Evil(marker)}, protocol=protocol))
    with pytest.raises(CheckpointError, match="not a graphc checkpoint") as exc:
        torch.load(path)
    if protocol >= 2:
        assert "pickle file" in str(exc.value) and "never unpickles" in str(exc.value)
    with pytest.raises(CheckpointError):
        torch.load(path, weights_only=False)
    assert not marker.exists()


def test_malicious_pickle_in_pytorch_zip_layout_refused(tmp_path, no_unpickling):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = pickle.dumps({"weight": _Evil(marker)}, protocol=2)
    path.write_bytes(write_zip({"archive/data.pkl": payload, "archive/byteorder": b"little",
                                "archive/data/0": b"\x00" * 16, "archive/version": b"3\n",
                                "archive/.data/serialization_id": b"0123"}))
    with pytest.raises(CheckpointError, match="PyTorch checkpoint.*never unpickles"):
        torch.load(path, weights_only=False)
    assert not marker.exists()


def test_malicious_pickle_disguised_as_manifest_refused(tmp_path, no_unpickling):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    for entries in ({MANIFEST_NAME: payload},
                    {MANIFEST_NAME: json.dumps({"format": "graphc.checkpoint", "version": 1, "byteorder": "little",
                                                "blobs": [], "tensors": [],
                                                "root": {"bytes": base64.b64encode(payload).decode()}}).encode()}):
        try:
            result = load_bytes(write_zip(entries))
        except CheckpointError:
            pass
        else:
            assert result == payload  # bytes are data, never unpickled
    assert not marker.exists()


def test_no_pickle_or_eval_in_loader_source():
    banned_modules = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "copyreg"}
    banned_calls = {"eval", "exec", "__import__", "compile", "getattr", "importlib"}
    for rel in ("graphc/serialization.py", "graphc/safetensors.py"):
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, rel
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, rel
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in banned_calls:
                # getattr is only used with a constant attribute name
                assert node.func.id == "getattr" and isinstance(node.args[1], ast.Constant), (rel, node.lineno)


# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------

def spec_file(header: dict, data: bytes, pad: bytes = b" ") -> bytes:
    """Build a safetensors file by hand, straight from the format description."""
    hb = json.dumps(header).encode("utf-8")
    hb += pad * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


def spec_file_raw(hb: bytes, data: bytes) -> bytes:
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


def spec_parse(blob: bytes):
    """An independent reader written from the spec, used to check what graphc writes."""
    (n,) = struct.unpack("<Q", blob[:8])
    raw = blob[8:8 + n]
    assert n % 8 == 0 and raw.rstrip(b" ") == raw.rstrip(b" ").strip() and raw.startswith(b"{")
    header = json.loads(raw.decode("utf-8"))
    meta = header.pop("__metadata__", None)
    data = blob[8 + n:]
    codes = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
             "U8": "u1", "BOOL": "?"}
    out, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        assert b == end and set(info) == {"dtype", "shape", "data_offsets"}
        out[name] = np.frombuffer(data[b:e], dtype=codes[info["dtype"]]).reshape(info["shape"])
        end = e
    assert end == len(data)
    order = [name for name, _ in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])]
    return out, meta, order


# The exact bytes the reference implementation (safetensors 0.8.0, safetensors.numpy.save) writes
# for {"w": f32 [[1, -2]], "n": i64 [7], "m": bool [True, False], "h": f16 0.5}, metadata {"k": "v"}.
REFERENCE_BYTES = (
    b'\xf8\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"k":"v"},"n":{"dtype":"I64","shape":[1],"data_offsets":'
    b'[0,8]},"w":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]},"h":{"dtype":"F16","shape":[],'
    b'"data_offsets":[16,18]},"m":{"dtype":"BOOL","shape":[2],"data_offsets":[18,20]}}   '
    b'\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00\xc0\x008\x01\x00')


def reference_tensors():
    return {"w": torch.tensor([[1.0, -2.0]]), "n": torch.tensor([7]), "m": torch.tensor([True, False]),
            "h": torch.tensor(0.5, dtype=torch.float16)}


def test_safetensors_matches_reference_bytes(tmp_path):
    assert st.save(reference_tensors(), metadata={"k": "v"}) == REFERENCE_BYTES
    path = tmp_path / "ref.safetensors"
    path.write_bytes(REFERENCE_BYTES)
    loaded = st.load_file(path)
    assert list(loaded) == ["h", "m", "n", "w"]  # sorted by name, like safetensors
    for name, t in reference_tensors().items():
        assert_same(t, loaded[name], name)
    with st.safe_open(path, framework="pt") as f:
        assert f.metadata() == {"k": "v"}
        assert f.keys() == ["h", "m", "n", "w"]
        assert_same(reference_tensors()["w"], f.get_tensor("w"))


def test_safetensors_reads_hand_built_file(tmp_path):
    w = np.array([[1.5, -2.25, 3.0], [0.0, -0.0, 1e30]], dtype="<f4")
    idx = np.array([-5, 2 ** 40], dtype="<i8")
    mask = np.array([[True], [False]])
    d16 = np.array([np.inf, -1.0], dtype="<f2")
    data = idx.tobytes() + w.tobytes() + d16.tobytes() + mask.tobytes()
    header = {"__metadata__": {"format": "pt", "ünicode": "✓"},
              "idx": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
              "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [16, 40]},
              "empty": {"dtype": "F64", "shape": [0, 4], "data_offsets": [40, 40]},
              "half": {"dtype": "F16", "shape": [2], "data_offsets": [40, 44]},
              "mask": {"dtype": "BOOL", "shape": [2, 1], "data_offsets": [44, 46]}}
    path = tmp_path / "hand.safetensors"
    path.write_bytes(spec_file(header, data))
    got = st.load_file(str(path))
    assert np.array_equal(got["weight"]._data, w) and got["weight"].dtype == torch.float32
    assert np.array_equal(got["idx"]._data, idx) and got["idx"].dtype == torch.int64
    assert np.array_equal(got["mask"]._data, mask) and got["mask"].dtype == torch.bool
    assert got["half"]._data.tobytes() == d16.tobytes()
    assert tuple(got["empty"].shape) == (0, 4) and got["empty"].dtype == torch.float64
    assert got["weight"]._data.flags.writeable
    with st.safe_open(path) as f:
        assert f.metadata() == {"format": "pt", "ünicode": "✓"}
    assert set(st.load(path.read_bytes())) == set(header) - {"__metadata__"}
    # unpadded headers and headers with surrounding whitespace are valid JSON too
    raw = json.dumps({"a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}).encode()
    for hb in (raw, b"  " + raw + b"   "):
        got = st.load(struct.pack("<Q", len(hb)) + hb + b"\x01\x02\xff")
        assert got["a"]._data.tolist() == [1, 2, 255] and got["a"].dtype == torch.uint8


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_safetensors_written_files_follow_the_spec(dtype, tmp_path):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3, 5)) * 50).astype(dtype.np) if dtype is not torch.bool else rng.random((3, 5)) > .5
    tensors = {"b.weight": torch.from_numpy(a), "a.scalar": torch.from_numpy(np.array(a[0, 0])),
               "empty": torch.zeros(0, 2, dtype=dtype), "extra.f64": torch.ones(2, dtype=torch.float64),
               "transposed": torch.from_numpy(a).t()}
    path = tmp_path / "out.safetensors"
    st.save_file(tensors, path, metadata={"format": "pt"})
    arrays, meta, order = spec_parse(path.read_bytes())
    assert meta == {"format": "pt"}
    for name, t in tensors.items():
        assert arrays[name].dtype == t._data.dtype and np.array_equal(arrays[name], t._data), name
    sizes = [arrays[n].dtype.itemsize for n in order]
    assert sizes == sorted(sizes, reverse=True)  # largest dtype first, then by name (as the reference)
    loaded = st.load_file(path)
    for name, t in tensors.items():
        assert loaded[name].dtype == dtype or name == "extra.f64"
        assert np.array_equal(loaded[name]._data, t._data), name
    assert st.save(tensors, metadata={"format": "pt"}) == path.read_bytes()


def test_safetensors_roundtrip_state_dict():
    sd = make_model().state_dict()
    loaded = st.load(st.save(dict(sd)))
    assert sorted(loaded) == sorted(sd)
    for k in sd:
        assert_same(sd[k], loaded[k], k)


def hdr(**tensors) -> dict:
    return {name: {"dtype": d, "shape": s, "data_offsets": o} for name, (d, s, o) in tensors.items()}


@pytest.mark.parametrize("blob, message", [
    (b"", "header too small"),
    (b"\x01\x02\x03", "header too small"),
    (struct.pack("<Q", 200_000_000) + b"{}", "header too large"),
    (struct.pack("<Q", 2 ** 64 - 1), "header too large"),
    (struct.pack("<Q", 100) + b"{}      ", "invalid header length"),
    (spec_file({}, b"")[:-1] + b"x", "invalid JSON"),
    (struct.pack("<Q", 8) + b'{"a":   ', "invalid JSON"),
    (spec_file_raw(b'{"\xff":1}', b""), "invalid UTF-8"),
    (struct.pack("<Q", 8) + b"[1]     ", "expected a JSON object"),
    (struct.pack("<Q", 8) + b"{}\0\0\0\0\0\0", "invalid JSON"),
    (spec_file_raw(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                   b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4), "appears twice"),
    (spec_file(hdr(a=("X9", [1], [0, 4])), b"\0" * 4), "unknown dtype 'X9'"),
    (spec_file(hdr(a=("U16", [2], [0, 4])), b"\0" * 4), "dtype U16, which graphc does not support"),
    (spec_file(hdr(a=("F32", [-1], [0, 4])), b"\0" * 4), "invalid shape"),
    (spec_file(hdr(a=("F32", [True], [0, 4])), b"\0" * 4), "invalid shape"),
    (spec_file(hdr(a=("F32", [0, 2 ** 62], [0, 0])), b""), "too large for an array"),
    (spec_file(hdr(a=("F32", [0, 2 ** 64], [0, 0])), b""), "too large for an array"),
    (spec_file(hdr(a=("F32", [2 ** 62, 0, 3], [0, 0])), b""), "too large for an array"),
    (spec_file(hdr(a=("F32", [0] * (MAX_DIMS + 1), [0, 0])), b""), f"has {MAX_DIMS + 1} dimensions; at most"),
    (spec_file(hdr(a=("F32", [1] * (MAX_DIMS + 1), [0, 4])), b"\0" * 4), f"has {MAX_DIMS + 1} dimensions"),
    (spec_file(hdr(a=("F32", [1], [4, 0])), b"\0" * 4), "invalid data_offsets"),
    (spec_file(hdr(a=("F32", [1], [0])), b"\0" * 4), "invalid data_offsets"),
    (spec_file(hdr(a=("F32", [2], [0, 4])), b"\0" * 4), "needs 8 bytes"),
    (spec_file(hdr(a=("F32", [1], [4, 8])), b"\0" * 8), "leaves a gap"),
    (spec_file(hdr(a=("F32", [1], [0, 4]), b=("F32", [1], [0, 4])), b"\0" * 4), "overlaps"),
    (spec_file(hdr(a=("F32", [2], [0, 8]), b=("F32", [1], [4, 8])), b"\0" * 8), "overlaps"),
    (spec_file(hdr(a=("F32", [2], [0, 8])), b"\0" * 4), "truncated"),
    (spec_file(hdr(a=("F32", [1], [0, 4])), b"\0" * 8), "not fully covered"),
    (spec_file({"__metadata__": {"k": 1}, **hdr(a=("F32", [1], [0, 4]))}, b"\0" * 4), "__metadata__"),
    (spec_file({"a": [1, 2]}, b""), "invalid header entry"),
])
def test_safetensors_validation(blob, message, tmp_path):
    with pytest.raises(st.SafetensorError, match=message):
        st.load(blob)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(st.SafetensorError, match=message):
        st.load_file(path)
    assert issubclass(st.SafetensorError, CheckpointError) and issubclass(st.SafetensorError, RuntimeError)


def test_safetensors_bool_bytes_normalized():
    got = st.load(spec_file(hdr(m=("BOOL", [3], [0, 3])), b"\x00\x01\x02"))
    assert got["m"]._data.tolist() == [False, True, True]


def test_safetensors_save_errors(tmp_path):
    with pytest.raises(TypeError, match="names must be str"):
        st.save({1: torch.ones(1)})
    with pytest.raises(TypeError, match="expected a graphc.Tensor"):
        st.save({"a": [1.0]})
    with pytest.raises(ValueError, match="reserved"):
        st.save({"__metadata__": torch.ones(1)})
    with pytest.raises(TypeError, match="metadata"):
        st.save({"a": torch.ones(1)}, metadata={"k": 1})
    with pytest.raises(TypeError, match="dict"):
        st.save([torch.ones(1)])
    path = tmp_path / "keep.safetensors"
    st.save_file({"a": torch.ones(1)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        st.save_file({"a": "x"}, path)
    assert path.read_bytes() == before


def test_safetensors_device_and_cross_format(tmp_path):
    path = tmp_path / "x.safetensors"
    st.save_file({"a": torch.ones(2)}, path)
    with pytest.raises(torch.DeviceUnavailableError):
        st.load_file(path, device="cuda")
    assert np.array_equal(st.load_file(path, device="cpu")["a"]._data, [1, 1])
    ckpt = tmp_path / "c.pt"
    torch.save({"a": torch.ones(2)}, ckpt)
    with pytest.raises(st.SafetensorError):
        st.load_file(ckpt)
    with st.safe_open(path) as f, pytest.raises(st.SafetensorError, match="no tensor named"):
        f.get_tensor("b")


def test_entry_claiming_more_bytes_than_the_file_holds():
    """A central directory promising a huge blob must not make graphc allocate it."""
    big = 1 << 40
    entries = read_zip(good_bytes())
    entries[MANIFEST_NAME] = tamper_manifest_bytes(entries[MANIFEST_NAME], lambda m: (
        m["blobs"][0].update(nbytes=big), m["tensors"][0].update(shape=[big // 4])))
    data = bytearray(write_zip(entries))
    # patch the sizes of data/0 in its central directory record
    cd = data.index(b"PK\x01\x02")  # the first central directory record
    while True:
        name_len = struct.unpack("<H", data[cd + 28:cd + 30])[0]
        if data[cd + 46:cd + 46 + name_len] == (PREFIX + "data/0").encode():
            break
        extra, comment = struct.unpack("<HH", data[cd + 30:cd + 34])
        cd += 46 + name_len + extra + comment
    data[cd + 20:cd + 28] = struct.pack("<II", 0xFFFFFFF0, 0xFFFFFFF0)
    with pytest.raises(CheckpointError, match="claims 4294967280 bytes that the archive does not hold"):
        load_bytes(bytes(data))


def test_huge_int_is_a_clear_save_error():
    with pytest.raises(ValueError, match="more than 3000 digits"):
        torch.save(10 ** 5000, io.BytesIO())
