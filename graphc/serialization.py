"""``graphc.save`` / ``graphc.load``: checkpoints that never run code when they are loaded.

PyTorch's ``torch.save`` pickles the object, and unpickling a file can run arbitrary code. graphc
never unpickles anything (this module does not even import :mod:`pickle`). A graphc checkpoint is
an uncompressed zip archive holding

* ``graphc_checkpoint/manifest.json``: UTF-8 JSON with the format name and version, a table of
  data blobs (byte length and SHA-256 of each), a table of tensors (blob, dtype, shape, Tensor or
  Parameter, requires_grad, and ``device`` for a tensor saved from a GPU, e.g. "cuda:0") and the
  object tree, written with the tagged encoding below;
* ``graphc_checkpoint/data/<i>``: blob *i*, the raw little-endian C-order bytes of a tensor.

Object tree encoding (JSON):

===========================  ==================================================================
Python value                 JSON
===========================  ==================================================================
None, bool, str, int         null, true/false, string, integer
float                        a number; ``{"float": "nan" | "inf" | "-inf"}`` if not finite
list                         an array of encoded items
tuple                        ``{"tuple": [items]}``
dict                         ``{"dict": [[key, value], ...]}`` (keys keep their type: 0 vs "0")
collections.OrderedDict      ``{"odict": [[key, value], ...]}``, plus ``"attrs": [[name, value],
                             ...]`` for instance attributes such as a state_dict's ``_metadata``
                             (never one named like an OrderedDict method: ``keys``, ``items``...)
Tensor / nn.Parameter        ``{"tensor": index into the tensor table}``
bytes                        ``{"bytes": base64}``
complex                      ``{"complex": [real, imag]}`` (each an encoded float)
graphc.Size                  ``{"size": [ints]}``
graphc.dtype / device        ``{"dtype": "float32"}`` / ``{"device": "cpu"}``
===========================  ==================================================================

Dict keys may be None, bool, int, float, str, bytes, complex or tuples of those. The same tensor
object reached twice is stored once and loads as one object; distinct tensors viewing the same
memory with the same layout share one blob and load sharing memory. Other views are stored as
separate contiguous copies. Anything else (class instances, functions, modules, numpy arrays)
makes :func:`save` raise a ``TypeError`` naming where in the object it sits, before the file is
touched.

:func:`load` validates everything before building tensors (format and version, zip structure,
entry sizes, CRC-32 and SHA-256 of every blob, shapes against byte lengths and numpy's limits, dtypes,
references) and reports any problem as a :class:`CheckpointError`. It refuses PyTorch's pickle-based ``.pt``
files and plain pickles with an explanation instead of unpickling them.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import os
import struct
import sys
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from graphc.ir import dtypes as dt
from graphc.runtime.devices import CPU as CPU_RUNTIME, runtime_of

from .device import DeviceUnavailableError, check_device
from .device import device as _device
from .tensors import Size, Tensor

__all__ = ["save", "load", "CheckpointError", "FORMAT_NAME", "FORMAT_VERSION", "add_safe_globals",
           "get_safe_globals", "clear_safe_globals", "safe_globals", "DEFAULT_PROTOCOL"]

FORMAT_NAME = "graphc.checkpoint"
FORMAT_VERSION = 1
PREFIX = "graphc_checkpoint/"
MANIFEST_NAME = PREFIX + "manifest.json"
DEFAULT_PROTOCOL = 2  # accepted for torch.save(pickle_protocol=...) compatibility; unused

MAX_DEPTH = 100  # nesting of lists/tuples/dicts; real checkpoints nest a handful of levels
MAX_MANIFEST_BYTES = 1 << 28
MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32  # numpy's limit on an array's dimensions
_READ_CHUNK = 1 << 26
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same object saves to the same bytes
_SAVABLE = ("graphc.save stores tensors, numbers, strings, bytes, None, dtypes, devices and "
            "lists/tuples/dicts of them (no pickle, so no arbitrary Python objects)")


class CheckpointError(RuntimeError):
    """The file is not a valid graphc checkpoint (corrupted, truncated, tampered with, written by a
    newer graphc, or a different format such as a pickle-based PyTorch checkpoint)."""


# ---------------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------------

def _type_name(obj) -> str:
    t = type(obj)
    return t.__qualname__ if t.__module__ in ("builtins", None) else f"{t.__module__}.{t.__qualname__}"


def _hint(obj) -> str:
    mod = type(obj).__module__ or ""
    if mod.startswith("numpy"):
        return " (convert numpy values first: graphc.from_numpy(array) or value.item())"
    for cls in type(obj).__mro__:
        if cls.__name__ == "Module" and cls.__module__.startswith("graphc.nn"):
            return " (save model.state_dict() instead of the module, and load it with load_state_dict)"
        if cls.__name__ == "Optimizer":
            return " (save optimizer.state_dict() instead of the optimizer)"
    return ""


class _Encoder:
    """Walks the object tree once, producing the JSON tree plus the tensor and blob tables."""

    def __init__(self) -> None:
        self.blobs: list[np.ndarray] = []  # flat little-endian uint8 views, one per blob
        self.blob_meta: list[dict] = []
        self.tensors: list[dict] = []
        self._tensor_ids: dict[int, int] = {}
        self._blob_keys: dict[tuple, int] = {}
        self._alive: list = []  # keep tensors referenced so their ids stay unique during the walk
        self._active: set[int] = set()  # containers on the current path (cycle detection)

    def value(self, obj, path: str, depth: int):
        t = type(obj)
        if obj is None or t is bool or t is str:
            return obj
        if t is int:
            if obj.bit_length() > 10_000:  # JSON readers limit integer digits (Python: 4300)
                raise ValueError(f"cannot save the int at {path}: it has more than 3000 digits")
            return obj
        if t is float:
            return obj if math.isfinite(obj) else {"float": "nan" if obj != obj else ("inf" if obj > 0 else "-inf")}
        if isinstance(obj, Tensor):
            return {"tensor": self.tensor(obj, path)}
        if t is bytes:
            return {"bytes": base64.b64encode(obj).decode("ascii")}
        if t is complex:
            return {"complex": [self.value(obj.real, path, depth), self.value(obj.imag, path, depth)]}
        if t is Size:
            return {"size": [int(s) for s in obj]}
        if t is dt.DType:
            return {"dtype": obj.name}
        if t is _device:
            return {"device": str(obj)}
        if t in (list, tuple, dict, OrderedDict):
            if depth >= MAX_DEPTH:
                raise ValueError(f"cannot save the object at {path}: containers nest more than {MAX_DEPTH} levels deep")
            if id(obj) in self._active:
                raise ValueError(f"cannot save the object at {path}: it contains itself (a reference cycle)")
            self._active.add(id(obj))
            try:
                if t is list:
                    return [self.value(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(obj)]
                if t is tuple:
                    return {"tuple": [self.value(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(obj)]}
                pairs = [[self.key(k, path), self.value(v, f"{path}[{k!r}]", depth + 1)] for k, v in obj.items()]
                if t is dict:
                    return {"dict": pairs}
                out = {"odict": pairs}
                attrs = getattr(obj, "__dict__", None)
                if attrs:
                    for name in attrs:
                        if (not isinstance(name, str) or not name.isidentifier() or name.startswith("__")
                                or _shadows(name)):
                            why = f": it hides OrderedDict.{name}" if isinstance(name, str) and _shadows(name) else ""
                            raise TypeError(f"cannot save attribute {name!r} of the OrderedDict at {path}{why}")
                    out["attrs"] = [[name, self.value(v, f"{path}.{name}", depth + 1)] for name, v in attrs.items()]
                return out
            finally:
                self._active.discard(id(obj))
        raise TypeError(f"cannot save object of type {_type_name(obj)} at {path}: {_SAVABLE}{_hint(obj)}")

    def key(self, k, path: str):
        def check(x) -> None:
            tx = type(x)
            if tx is tuple:
                for y in x:
                    check(y)
            elif not (x is None or tx in (bool, int, float, str, bytes, complex)):
                raise TypeError(f"cannot save dict key of type {_type_name(x)} in the dict at {path}: "
                                "keys must be None, bool, int, float, str, bytes, complex or tuples of them")
        check(k)
        return self.value(k, f"{path} (key {k!r})", 0)

    def tensor(self, t: Tensor, path: str) -> int:
        from .nn.parameter import Parameter
        idx = self._tensor_ids.get(id(t))
        if idx is not None:
            return idx
        if type(t) not in (Tensor, Parameter):
            raise TypeError(f"cannot save tensor subclass {_type_name(t)} at {path}: {_SAVABLE}")
        arr = t._data
        try:
            rt = runtime_of(arr)
        except TypeError:
            raise TypeError(f"cannot save the tensor at {path}: it holds no concrete data "
                            f"({_type_name(arr)}; a symbolic tensor from tracing?)") from None
        d = dt.from_numpy_dtype(arr.dtype)
        mem_key = (rt.type, rt.data_ptr(arr), arr.shape, arr.strides, arr.dtype.str) if arr.size else None
        device = None if rt is CPU_RUNTIME else str(t.device)
        arr = rt.to_host(arr)  # a GPU tensor's bytes are copied to the host
        blob = self._blob_keys.get(mem_key) if mem_key is not None else None
        if blob is None:
            flat = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).reshape(-1).view(np.uint8)
            blob = len(self.blobs)
            self.blobs.append(flat)
            self.blob_meta.append({"nbytes": int(flat.nbytes), "sha256": hashlib.sha256(flat).hexdigest()})
            if mem_key is not None:
                self._blob_keys[mem_key] = blob
        idx = len(self.tensors)
        entry = {"blob": blob, "dtype": d.name, "shape": [int(s) for s in arr.shape],
                 "kind": "parameter" if isinstance(t, Parameter) else "tensor", "requires_grad": bool(t.requires_grad)}
        if device is not None:
            entry["device"] = device
        self.tensors.append(entry)
        self._tensor_ids[id(t)] = idx
        self._alive.append(t)
        return idx


def _write_entry(zf: zipfile.ZipFile, name: str, data) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    mv = memoryview(data).cast("B")
    info.file_size = mv.nbytes  # lets zipfile pick zip64 headers for blobs over 2 GiB
    with zf.open(info, "w") as out:
        for start in range(0, mv.nbytes, _READ_CHUNK):
            out.write(mv[start:start + _READ_CHUNK])


def save(obj, f, pickle_module=None, pickle_protocol=DEFAULT_PROTOCOL, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False) -> None:
    """Save ``obj`` (tensors, numbers, strings, None and lists/tuples/dicts of them, e.g. a model's
    or optimizer's ``state_dict()``) to ``f``, a path (str or ``os.PathLike``) or a binary file
    object. The pickle-related arguments are accepted for PyTorch compatibility and ignored:
    graphc's format never pickles. Unsupported objects raise ``TypeError`` before ``f`` is written."""
    enc = _Encoder()
    root = enc.value(obj, "obj", 0)
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "byteorder": "little",
                "blobs": enc.blob_meta, "tensors": enc.tensors, "root": root}
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")

    def write(fileobj) -> None:
        with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_entry(zf, MANIFEST_NAME, manifest_bytes)
            for i, flat in enumerate(enc.blobs):
                _write_entry(zf, f"{PREFIX}data/{i}", flat)

    if isinstance(f, (str, bytes, os.PathLike)):
        with open(f, "wb") as fh:
            write(fh)
    elif hasattr(f, "write"):
        write(f)
    else:
        raise TypeError(f"graphc.save: f must be a path (str or os.PathLike) or a binary file object, got {_type_name(f)}")


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, struct.error, ValueError,
               NotImplementedError, KeyError, OSError, OverflowError, IndexError)

_NOT_PICKLE = ("graphc.load never unpickles, because loading a pickle can run arbitrary code. Convert the "
               "file where you trust it, e.g. with PyTorch: safetensors.torch.save_file(torch.load(path, "
               "weights_only=True), 'model.safetensors'), then load that with graphc.safetensors.load_file")


def _describe(f) -> str:
    if isinstance(f, (str, bytes, os.PathLike)):
        return repr(os.fsdecode(f))
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"


def _sniff(head: bytes, src: str) -> None:
    """Explain why a file that is not a zip archive is not a graphc checkpoint."""
    if not head:
        raise CheckpointError(f"{src} is empty, not a graphc checkpoint")
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        raise CheckpointError(f"{src} is a pickle file (a legacy torch.save checkpoint or pickle.dump output), "
                              f"not a graphc checkpoint. {_NOT_PICKLE}")
    from .safetensors import MAX_HEADER_SIZE  # not at the top: safetensors imports this module
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < MAX_HEADER_SIZE:
        raise CheckpointError(f"{src} looks like a safetensors file, not a graphc checkpoint: "
                              "load it with graphc.safetensors.load_file")
    raise CheckpointError(f"{src} is not a graphc checkpoint (not a zip archive; graphc.save writes zip "
                          "archives with graphc_checkpoint/manifest.json). If it is a pickle-based file: "
                          f"{_NOT_PICKLE}")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _no_duplicates(pairs) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _reject_constant(name):
    raise ValueError(f"invalid JSON constant {name}")


def _strict_json(raw: bytes):
    """JSON as the checkpoint manifest and the safetensors header both require: UTF-8, no repeated
    key (json.loads would keep the last, so a tampered file could hide an entry), no NaN/Infinity.
    Raises UnicodeDecodeError, ValueError (_DuplicateKey for a repeated key) or RecursionError."""
    return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def _is_int(x) -> bool:
    return type(x) is int


def _shape_error(shape: list, itemsize: int) -> str | None:
    """Why no array can have ``shape`` (non-negative ints read from a file) with items of
    ``itemsize`` bytes, or None: more dimensions than numpy allows, or more bytes than an array
    may span (numpy counts an empty dimension as 1 there, so ``[0, 2**62]`` is refused too)."""
    if len(shape) > MAX_DIMS:
        return f"has {len(shape)} dimensions; at most {MAX_DIMS} are supported"
    span = itemsize
    for s in shape:
        span *= max(s, 1)
    if span > sys.maxsize:
        return (f"has shape {shape!r:.200}, too large for an array (over {sys.maxsize} bytes, counting "
                "empty dimensions as 1)")
    return None


def _shadows(name: str) -> bool:
    """Whether an instance attribute ``name`` would hide an OrderedDict method (``keys``, ``items``...)."""
    return hasattr(OrderedDict, name)


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, src: str, remap, size: int) -> None:
        self.zf, self.src, self.remap, self.size = zf, src, remap, size
        self._bufs: dict[int, bytearray] = {}
        self._arrays: dict[tuple, np.ndarray] = {}
        self._objs: dict[int, Tensor] = {}

    def error(self, msg: str) -> CheckpointError:
        return CheckpointError(f"{self.src}: {msg}")

    # -- raw entries ------------------------------------------------------------------------

    def read_entry(self, name: str, what: str, expected: int | None = None, limit: int | None = None) -> bytearray:
        info = self.zf.NameToInfo.get(name)
        if info is None:
            raise self.error(f"{what} is missing from the archive (no entry {name!r}); the file is incomplete or corrupted")
        if info.flag_bits & 0x1:
            raise self.error(f"{what} ({name}) is encrypted; graphc checkpoints never are")
        if info.compress_type != zipfile.ZIP_STORED:
            raise self.error(f"{what} ({name}) is compressed; graphc checkpoints store entries uncompressed")
        if info.compress_size != info.file_size or info.header_offset + info.compress_size > self.size:
            raise self.error(f"{what} ({name}) claims {info.file_size} bytes that the archive does not hold; "
                             "the file is truncated or corrupted")
        if expected is not None and info.file_size != expected:
            raise self.error(f"{what} ({name}) holds {info.file_size} bytes but the manifest says {expected}")
        if limit is not None and info.file_size > limit:
            raise self.error(f"{what} ({name}) is {info.file_size} bytes, larger than the {limit}-byte limit")
        buf = bytearray(info.file_size)
        view = memoryview(buf)
        try:
            with self.zf.open(info) as fh:
                n = 0
                while n < len(buf):
                    k = fh.readinto(view[n:n + _READ_CHUNK])
                    if not k:
                        break
                    n += k
                if n == len(buf):
                    fh.read(1)  # reach EOF so zipfile verifies the CRC-32 even of an empty entry
        except CheckpointError:
            raise
        except zipfile.BadZipFile as e:
            if "CRC" in str(e):
                raise self.error(f"checksum mismatch in {what} ({name}): the file is corrupted or was modified") from None
            raise self.error(f"cannot read {what} ({name}): {e}; the file is truncated or corrupted") from None
        except (*_ZIP_ERRORS, RuntimeError) as e:
            raise self.error(f"cannot read {what} ({name}): {type(e).__name__}: {e}; the file is truncated or corrupted") from None
        if n != len(buf):
            raise self.error(f"{what} ({name}) is truncated: read {n} of {len(buf)} bytes")
        return buf

    # -- manifest -----------------------------------------------------------------------------

    def manifest(self) -> dict:
        raw = self.read_entry(MANIFEST_NAME, "the manifest", limit=MAX_MANIFEST_BYTES)
        try:
            m = _strict_json(raw)
        except RecursionError:
            raise self.error("the manifest nests too deeply") from None
        except (UnicodeDecodeError, ValueError) as e:
            raise self.error(f"the manifest is not valid JSON ({e})") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
            raise self.error(f"the manifest does not describe a {FORMAT_NAME!r} file")
        version = m.get("version")
        if not _is_int(version) or version < 1:
            raise self.error(f"the manifest has an invalid format version {version!r}")
        if version > FORMAT_VERSION:
            raise self.error(f"the checkpoint uses format version {version}, written by a newer graphc; "
                             f"this graphc reads version {FORMAT_VERSION} and older")
        if m.get("byteorder") != "little":
            raise self.error(f"unsupported byte order {m.get('byteorder')!r} (expected 'little')")
        for key in ("blobs", "tensors"):
            if not isinstance(m.get(key), list):
                raise self.error(f"the manifest's {key!r} table is missing or not a list")
        if "root" not in m:
            raise self.error("the manifest has no 'root' object")
        for i, b in enumerate(m["blobs"]):
            if not (isinstance(b, dict) and _is_int(b.get("nbytes")) and b["nbytes"] >= 0
                    and isinstance(b.get("sha256"), str) and len(b["sha256"]) == 64):
                raise self.error(f"blob {i} in the manifest is malformed: {b!r}")
        for i, t in enumerate(m["tensors"]):
            self.check_tensor_entry(i, t, m["blobs"])
        return m

    def check_tensor_entry(self, i: int, t, blobs: list) -> None:
        if not isinstance(t, dict):
            raise self.error(f"tensor {i} in the manifest is malformed: {t!r}")
        blob, shape, name = t.get("blob"), t.get("shape"), t.get("dtype")
        if not _is_int(blob) or not 0 <= blob < len(blobs):
            raise self.error(f"tensor {i} refers to blob {blob!r}, which the archive does not have "
                             f"({len(blobs)} blobs)")
        if not isinstance(name, str):
            raise self.error(f"tensor {i} has an invalid dtype {name!r}")
        d = dt._BY_NAME.get(name)
        if d is None or d.name != name:
            raise self.error(f"tensor {i} has unknown dtype {name!r}; this graphc knows "
                             f"{', '.join(x.name for x in dt.ALL_DTYPES)}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise self.error(f"tensor {i} has an invalid shape {shape!r:.200}")
        problem = _shape_error(shape, d.itemsize)
        if problem is not None:
            raise self.error(f"tensor {i} ({name}) {problem}")
        nbytes = math.prod(shape) * d.itemsize
        if nbytes != blobs[blob]["nbytes"]:
            raise self.error(f"tensor {i} ({name}{shape}) needs {nbytes} bytes but its blob {blob} holds "
                             f"{blobs[blob]['nbytes']}")
        if t.get("kind") not in ("tensor", "parameter"):
            raise self.error(f"tensor {i} has an invalid kind {t.get('kind')!r}")
        rg = t.get("requires_grad")
        if type(rg) is not bool:
            raise self.error(f"tensor {i} has an invalid requires_grad {rg!r}")
        if rg and not d.is_floating_point:
            raise self.error(f"tensor {i} is {name} but marked requires_grad; only floating tensors can require grad")
        where = t.get("device", "cpu")
        try:
            if not isinstance(where, str):
                raise RuntimeError(where)
            _device(where)
        except RuntimeError:
            raise self.error(f"tensor {i} has an invalid device {where!r}") from None

    # -- tensors -----------------------------------------------------------------------------

    def blob(self, i: int) -> bytearray:
        buf = self._bufs.get(i)
        if buf is None:
            meta = self.m["blobs"][i]
            buf = self.read_entry(f"{PREFIX}data/{i}", f"blob {i}", expected=meta["nbytes"])
            if hashlib.sha256(buf).hexdigest() != meta["sha256"].lower():
                raise self.error(f"checksum mismatch in blob {i} ({PREFIX}data/{i}): its SHA-256 differs from the "
                                 "manifest's; the file is corrupted or was modified")
            self._bufs[i] = buf
        return buf

    def array(self, entry: dict) -> np.ndarray:
        key = (entry["blob"], entry["dtype"], tuple(entry["shape"]))
        arr = self._arrays.get(key)
        if arr is None:
            d = dt.from_name(entry["dtype"])
            buf = self.blob(entry["blob"])
            if d is dt.bool_ and buf and max(buf) > 1:
                raise self.error(f"blob {entry['blob']} holds bool values other than 0 and 1")
            arr = np.frombuffer(buf, dtype=d.np.newbyteorder("<")).reshape(key[2])
            if sys.byteorder != "little":
                arr = arr.astype(d.np)
            self._arrays[key] = arr
        return arr

    def tensor(self, idx, path: str) -> Tensor:
        if not _is_int(idx) or not 0 <= idx < len(self.m["tensors"]):
            raise self.error(f"{path} refers to tensor {idx!r}, which the manifest does not have")
        obj = self._objs.get(idx)
        if obj is not None:
            return obj
        from .nn.parameter import Parameter
        entry = self.m["tensors"][idx]
        arr = self.remap(Tensor._make(self.array(entry)), entry.get("device", "cpu"))._data
        if entry["kind"] == "parameter":
            obj = Parameter(Tensor._make(arr), requires_grad=entry["requires_grad"])
        else:
            obj = Tensor._make(arr, requires_grad=entry["requires_grad"])
        self._objs[idx] = obj
        return obj

    # -- object tree -------------------------------------------------------------------------

    def decode(self, node, path: str, depth: int):
        tn = type(node)
        if node is None or tn in (bool, int, float, str):
            return node
        if depth > 3 * MAX_DEPTH:
            raise self.error(f"the object at {path} nests too deeply")
        if tn is list:
            return [self.decode(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(node)]
        if tn is not dict or not node:
            raise self.error(f"malformed node at {path}: {node!r:.100}")
        tags = set(node)
        if tags == {"odict", "attrs"}:
            tag = "odict"
        elif len(tags) == 1:
            (tag,) = tags
        else:
            raise self.error(f"malformed node at {path}: keys {sorted(tags)}")
        v = node[tag]
        if tag == "tensor":
            return self.tensor(v, path)
        if tag == "tuple":
            self.expect(type(v) is list, path, node)
            return tuple(self.decode(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v))
        if tag in ("dict", "odict"):
            self.expect(type(v) is list, path, node)
            out = {} if tag == "dict" else OrderedDict()
            for pair in v:
                self.expect(type(pair) is list and len(pair) == 2, path, pair)
                k = self.key(pair[0], path, depth)
                out[k] = self.decode(pair[1], f"{path}[{k!r}]", depth + 1)
            if "attrs" in node:
                attrs = node["attrs"]
                self.expect(type(attrs) is list, path, node)
                for pair in attrs:
                    ok = (type(pair) is list and len(pair) == 2 and type(pair[0]) is str and pair[0].isidentifier()
                          and not pair[0].startswith("__"))
                    self.expect(ok, path, pair)
                    if _shadows(pair[0]):
                        raise self.error(f"the OrderedDict at {path} has an attribute {pair[0]!r}, which would "
                                         f"hide OrderedDict.{pair[0]}; graphc.save never writes one")
                    out.__dict__[pair[0]] = self.decode(pair[1], f"{path}.{pair[0]}", depth + 1)
            return out
        if tag == "float":
            self.expect(v in ("nan", "inf", "-inf"), path, node)
            return float(v)
        if tag == "bytes":
            self.expect(type(v) is str, path, node)
            try:
                return base64.b64decode(v.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise self.error(f"invalid base64 bytes at {path}") from None
        if tag == "complex":
            self.expect(type(v) is list and len(v) == 2, path, node)
            re, im = (self.decode(x, path, depth + 1) for x in v)
            self.expect(type(re) in (int, float) and type(im) in (int, float), path, node)
            try:
                return complex(re, im)
            except OverflowError:
                raise self.error(f"the complex number at {path} is out of range") from None
        if tag == "size":
            self.expect(type(v) is list and all(_is_int(s) and 0 <= s <= sys.maxsize for s in v), path, node)
            return Size(v)
        if tag == "dtype":
            d = dt._BY_NAME.get(v) if type(v) is str else None
            self.expect(d is not None and d.name == v, path, node)
            return d
        if tag == "device":
            self.expect(type(v) is str, path, node)
            try:
                return _device(v)
            except RuntimeError:
                raise self.error(f"invalid device {v!r} at {path}") from None
        raise self.error(f"unknown node type {tag!r} at {path} (written by a newer graphc?)")

    def key(self, node, path: str, depth: int):
        k = self.decode(node, f"{path} (a key)", depth + 1)

        def hashable_plain(x) -> bool:
            if type(x) is tuple:
                return all(hashable_plain(y) for y in x)
            return x is None or type(x) in (bool, int, float, str, bytes, complex)
        if not hashable_plain(k):
            raise self.error(f"invalid dict key of type {_type_name(k)} in {path}")
        return k

    def expect(self, cond: bool, path: str, node) -> None:
        if not cond:
            raise self.error(f"malformed node at {path}: {node!r:.100}")

    def load(self):
        self.m = self.manifest()
        try:
            return self.decode(self.m["root"], "obj", 0)
        except RecursionError:
            raise self.error("the object tree nests too deeply") from None


def _restore_device(saved: str) -> _device:
    """The device a tensor saved on ``saved`` loads onto when map_location doesn't say."""
    try:
        return check_device(saved)
    except DeviceUnavailableError as e:
        raise DeviceUnavailableError(
            f"Attempting to deserialize object on a CUDA device but graphc.cuda.is_available() is False ({e}). "
            "If you are running on a CPU-only machine, please use graphc.load with "
            "map_location=graphc.device('cpu') to map your storages to the CPU.") from None


def _map_location_fn(map_location):
    """Validate map_location now; return ``place(tensor, saved location) -> tensor``, which puts a
    loaded (CPU) tensor where it belongs: the saved device unless map_location says otherwise."""
    if map_location is None:
        return lambda t, saved: t.to(_restore_device(saved))
    if isinstance(map_location, dict):
        table = {str(src): str(dst) for src, dst in map_location.items()}
        for dst in table.values():
            check_device(dst)
        return lambda t, saved: t.to(_restore_device(table.get(saved, saved)))
    if isinstance(map_location, (str, _device, int)):
        dev = check_device(map_location)
        return lambda t, saved: t.to(dev)
    if callable(map_location):
        def place(t, saved):
            r = map_location(t, saved)
            if r is None:
                return t.to(_restore_device(saved))
            if not isinstance(r, Tensor):
                raise TypeError(f"graphc.load: map_location returned {_type_name(r)}; expected a Tensor or None")
            return r
        return place
    raise TypeError(f"graphc.load: map_location must be a str, graphc.device, dict or callable, "
                    f"got {_type_name(map_location)}")


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args):
    """Load an object saved with :func:`graphc.save` from ``f`` (a path or a binary file object).

    Never executes code from the file: ``weights_only`` is accepted for PyTorch compatibility and
    is always effectively True; ``pickle_module``, ``mmap`` and extra keyword arguments are ignored.
    Tensors load onto the device they were saved from, unless ``map_location`` says otherwise: a
    device ('cpu', 'cuda:0', a graphc.device) for every tensor, a dict mapping saved locations to
    new ones ({'cuda:0': 'cpu'}), or a callable ``fn(tensor, saved_location)`` given the tensor on
    the CPU and returning a tensor or None (None: the saved location). A GPU that isn't here
    raises ``DeviceUnavailableError``. Invalid files raise :class:`CheckpointError`."""
    remap = _map_location_fn(map_location)
    src = _describe(f)
    if isinstance(f, (str, bytes, os.PathLike)):
        with open(f, "rb") as fh:
            return _load_from(fh, src, remap)
    if not hasattr(f, "read"):
        raise TypeError(f"graphc.load: f must be a path (str or os.PathLike) or a binary file object, got {_type_name(f)}")
    seekable = False
    try:
        seekable = bool(f.seekable()) if hasattr(f, "seekable") else hasattr(f, "seek") and hasattr(f, "tell")
    except (OSError, ValueError):
        pass
    if not seekable:
        data = f.read()
        if isinstance(data, str):
            raise TypeError("graphc.load: the file object is in text mode; open it in binary mode ('rb')")
        return _load_from(io.BytesIO(data), src, remap)
    return _load_from(f, src, remap)


def _load_from(fh, src: str, remap):
    pos = fh.tell()
    head = fh.read(16)
    if isinstance(head, str):
        raise TypeError("graphc.load: the file object is in text mode; open it in binary mode ('rb')")
    fh.seek(pos)
    if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        _sniff(head, src)
    try:
        zf = zipfile.ZipFile(fh, "r")
    except (*_ZIP_ERRORS, RuntimeError) as e:
        raise CheckpointError(f"{src} is not a readable zip archive ({e}): the file is truncated or corrupted") from None
    with zf:
        names = zf.NameToInfo
        first = min((info.header_offset for info in zf.infolist()), default=pos)
        if first != pos:
            # zipfile reads an archive from its end: a second archive after this one would be
            # read instead of the one at the current position.
            raise CheckpointError(f"{src}: the zip archive found starts at byte {first}, not at the current "
                                  f"position {pos}; graphc.load reads one checkpoint per file, and more data "
                                  "(another archive?) follows the one at the current position")
        if MANIFEST_NAME not in names:
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                raise CheckpointError(f"{src} is a PyTorch checkpoint (torch.save's zip archive around a pickle), "
                                      f"not a graphc checkpoint. {_NOT_PICKLE}")
            raise CheckpointError(f"{src} is a zip archive but not a graphc checkpoint (it has no {MANIFEST_NAME})")
        try:
            size = fh.seek(0, io.SEEK_END)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{src}: cannot determine the file's size ({e})") from None
        return _Reader(zf, src, remap, size).load()


# ---------------------------------------------------------------------------------------------
# torch.serialization compatibility: graphc never unpickles, so "safe globals" have no effect.
# These exist so code that registers them runs unchanged.
# ---------------------------------------------------------------------------------------------

_safe_globals: list = []


def add_safe_globals(safe_globals: list) -> None:
    """Accepted for PyTorch compatibility. graphc never unpickles, so this changes nothing."""
    _safe_globals.extend(safe_globals)


def get_safe_globals() -> list:
    return list(_safe_globals)


def clear_safe_globals() -> None:
    _safe_globals.clear()


class safe_globals:
    """Context manager form of :func:`add_safe_globals` (no effect on graphc.load)."""

    def __init__(self, safe_globals: list) -> None:
        self.safe_globals = list(safe_globals)

    def __enter__(self):
        self._n = len(_safe_globals)
        _safe_globals.extend(self.safe_globals)
        return self

    def __exit__(self, *exc) -> None:
        del _safe_globals[self._n:]
