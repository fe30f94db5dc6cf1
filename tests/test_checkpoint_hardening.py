"""Crafted checkpoints and safetensors files fail with the format's own error (CheckpointError /
SafetensorError) and a clear message, never with a numpy or Python error from deep inside, and never
load into something that breaks later (an OrderedDict whose ``keys`` is not the method)."""
from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
from collections import OrderedDict

import pytest

import graphc as torch
from graphc import safetensors as st
from graphc.serialization import MANIFEST_NAME, MAX_DIMS, CheckpointError

TOO_BIG = "too large for an array"


def checkpoint(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def tampered(data: bytes, edit) -> bytes:
    """The checkpoint with ``edit(manifest)`` applied; the zip's own checksums stay valid."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    m = json.loads(entries[MANIFEST_NAME])
    edit(m)
    entries[MANIFEST_NAME] = json.dumps(m).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, raw in entries.items():
            zf.writestr(name, raw)
    return buf.getvalue()


def load(data: bytes):
    return torch.load(io.BytesIO(data))


def with_shape(shape, numel: int = 0):
    """A checkpoint of one float32 tensor of ``numel`` elements whose manifest claims ``shape``."""
    def edit(m):
        m["tensors"][0]["shape"] = shape
    return tampered(checkpoint({"t": torch.zeros(numel)}), edit)


@pytest.mark.parametrize("shape, numel, message", [
    ([0, 2 ** 62], 0, TOO_BIG),
    ([0, 2 ** 63], 0, TOO_BIG),
    ([0, 2 ** 64], 0, TOO_BIG),
    ([0, 10 ** 30], 0, TOO_BIG),
    ([0, 2 ** 40, 2 ** 40], 0, TOO_BIG),
    ([0] + [1] * MAX_DIMS, 0, f"has {MAX_DIMS + 1} dimensions; at most {MAX_DIMS}"),
    ([1] * (MAX_DIMS + 1), 1, f"has {MAX_DIMS + 1} dimensions; at most {MAX_DIMS}"),
    ([1] * 200, 1, "has 200 dimensions"),
], ids=["0x2^62", "0x2^63", "0x2^64", "0x10^30", "0x2^40x2^40", "65-dims-empty", "65-dims", "200-dims"])
def test_checkpoint_shape_beyond_numpy_limits(shape, numel, message):
    with pytest.raises(CheckpointError, match=message):
        load(with_shape(shape, numel))


def test_checkpoint_largest_shapes_still_load():
    assert load(with_shape([0, 2 ** 40]))["t"].shape == (0, 2 ** 40)
    assert load(with_shape([1] * MAX_DIMS, 1))["t"].shape == (1,) * MAX_DIMS


@pytest.mark.parametrize("root, message", [
    ({"odict": [["a", 1]], "attrs": [["keys", 1]]}, "attribute 'keys', which would hide OrderedDict.keys"),
    ({"odict": [["a", 1]], "attrs": [["items", {"dict": []}]]}, "attribute 'items'"),
    ({"odict": [], "attrs": [["values", 1]]}, "attribute 'values'"),
    ({"odict": [], "attrs": [["get", 1]]}, "attribute 'get'"),
    ({"odict": [], "attrs": [["move_to_end", 1]]}, "attribute 'move_to_end'"),
    ({"dict": [["sd", {"odict": [], "attrs": [["_metadata", 1], ["copy", 1]]}]]}, r"at obj\['sd'\].*'copy'"),
], ids=["keys", "items", "values", "get", "move_to_end", "nested-copy"])
def test_odict_attribute_shadowing_a_method_is_rejected_at_load(root, message):
    data = tampered(checkpoint({"x": 1}), lambda m: m.update(root=root))
    with pytest.raises(CheckpointError, match=message):
        load(data)


def test_odict_metadata_attribute_still_loads():
    sd = OrderedDict(w=torch.ones(2))
    sd._metadata = {"": {"version": 1}}
    got = load(checkpoint(sd))
    assert got._metadata == {"": {"version": 1}} and list(got.keys()) == ["w"]


def test_odict_attribute_shadowing_a_method_is_not_saved():
    od = OrderedDict(a=1)
    od.keys = lambda: ["b"]
    with pytest.raises(TypeError, match="cannot save attribute 'keys' of the OrderedDict at obj: it hides"):
        checkpoint(od)


@pytest.mark.parametrize("root, message", [
    ({"complex": [10 ** 400, 0]}, "complex number at obj is out of range"),
    ({"complex": [0, -10 ** 400]}, "complex number at obj is out of range"),
    ({"size": [2 ** 63]}, "malformed node"),
    ({"size": [10 ** 30]}, "malformed node"),
], ids=["complex-re", "complex-im", "size-2^63", "size-10^30"])
def test_other_out_of_range_values_in_the_object_tree(root, message):
    with pytest.raises(CheckpointError, match=message):
        load(tampered(checkpoint({"x": 1}), lambda m: m.update(root=root)))


# ---- safetensors (crafted shapes: test_serialization.py's test_safetensors_validation) ----------

def safetensors_file(shape, nbytes: int = 0, dtype: str = "F32") -> bytes:
    hb = json.dumps({"a": {"dtype": dtype, "shape": shape, "data_offsets": [0, nbytes]}}).encode()
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"\0" * nbytes


def test_safetensors_largest_shapes_still_load():
    assert st.load(safetensors_file([0, 2 ** 40]))["a"].shape == (0, 2 ** 40)
    assert st.load(safetensors_file([1] * MAX_DIMS, 4))["a"].shape == (1,) * MAX_DIMS


def test_the_limit_is_numpys():
    import numpy as np
    np.zeros((1,) * MAX_DIMS)
    with pytest.raises(ValueError):
        np.zeros((1,) * (MAX_DIMS + 1))
    np.zeros((0, sys.maxsize // 8), np.float64)
    with pytest.raises(ValueError):
        np.zeros((0, sys.maxsize // 8 + 1), np.float64)
