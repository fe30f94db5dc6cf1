"""Read and write the safetensors format (https://github.com/huggingface/safetensors), with numpy
and json only (no dependency on the ``safetensors`` package).

File layout, as the format specifies:

* 8 bytes: ``N``, the header's length, an unsigned little-endian 64-bit integer;
* ``N`` bytes: the header, UTF-8 JSON: ``{"__metadata__": {str: str}, name: {"dtype": "F32",
  "shape": [2, 3], "data_offsets": [begin, end]}, ...}`` (``__metadata__`` optional), padded with
  spaces so that the data starts at an 8-byte boundary;
* the data: each tensor's little-endian C-order bytes, at ``data_offsets`` relative to the start
  of the data; the tensors tile the data exactly, with no gaps, overlaps or trailing bytes.

The API follows ``safetensors.torch``: :func:`save_file`, :func:`load_file`, :func:`save`,
:func:`load` and :func:`safe_open`. Writing matches the reference implementation byte for byte
(tensors ordered by dtype size, largest first, then name; compact JSON; space padding), except
that non-contiguous tensors are saved as contiguous copies instead of being refused. Reading
validates the header (size limit, UTF-8, JSON object, unique names, known dtype, shape within numpy's
limits and agreeing with the byte length, offsets tiling the data) and raises :class:`SafetensorError` on any problem.
"""
from __future__ import annotations

import io
import json
import math
import os
import sys

import numpy as np

from graphc.ir import dtypes as dt

from .device import check_device
from .serialization import CheckpointError, _DuplicateKey, _shape_error, _strict_json
from .tensors import Tensor, host_array

__all__ = ["save", "save_file", "load", "load_with_metadata", "load_file", "safe_open", "SafetensorError"]

MAX_HEADER_SIZE = 100_000_000  # the reference implementation's limit

# safetensors dtype code -> graphc dtype, in the reference implementation's dtype order (its
# writer sorts tensors by this order, descending, then by name).
_DTYPE_ORDER = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
                "F64", "I64", "U64")
_RANK = {code: i for i, code in enumerate(_DTYPE_ORDER)}
_TO_GRAPHC = {"BOOL": dt.bool_, "U8": dt.uint8, "I8": dt.int8, "I16": dt.int16, "F16": dt.float16,
              "I32": dt.int32, "F32": dt.float32, "F64": dt.float64, "I64": dt.int64}
_FROM_GRAPHC = {d.name: code for code, d in _TO_GRAPHC.items()}


class SafetensorError(CheckpointError):
    """Invalid safetensors data (bad header, offsets, dtype ...)."""


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _prepare(tensors, metadata) -> tuple[bytes, list[np.ndarray]]:
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors must be a dict of str -> Tensor, got {type(tensors).__name__}")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata must be a dict of str -> str")
    items = []
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__} ({name!r})")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved by the safetensors format and cannot name a tensor")
        if not isinstance(t, Tensor):
            raise TypeError(f"tensor {name!r}: expected a graphc.Tensor, got {type(t).__name__}")
        arr = host_array(t._data)  # a GPU tensor's bytes are copied to the host
        code = _FROM_GRAPHC[dt.from_numpy_dtype(arr.dtype).name]
        flat = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).reshape(-1).view(np.uint8)
        items.append((name, code, [int(s) for s in arr.shape], flat))
    items.sort(key=lambda it: (-_RANK[it[1]], it[0]))
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, code, shape, flat in items:
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + flat.nbytes]}
        offset += flat.nbytes
    hb = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    return len(hb).to_bytes(8, "little") + hb, [it[3] for it in items]


def _write(fh, tensors, metadata) -> None:
    head, blobs = _prepare(tensors, metadata)
    fh.write(head)
    for flat in blobs:
        fh.write(memoryview(flat))


def save(tensors: dict, metadata: dict | None = None) -> bytes:
    """Serialize ``{name: tensor}`` (plus optional ``{str: str}`` metadata) to safetensors bytes."""
    buf = io.BytesIO()
    _write(buf, tensors, metadata)
    return buf.getvalue()


def save_file(tensors: dict, filename, metadata: dict | None = None) -> None:
    """Write ``{name: tensor}`` (plus optional ``{str: str}`` metadata) to a .safetensors file."""
    _prepare(tensors, metadata)  # validate before truncating an existing file
    with open(filename, "wb") as fh:
        _write(fh, tensors, metadata)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def _parse_header(n: int, header: bytes, data_len: int, src: str):
    """Validate a header; return ({name: (graphc dtype, shape, begin, end)} in file order, metadata)."""
    def err(msg: str) -> SafetensorError:
        return SafetensorError(f"{src}: {msg}")
    try:
        h = _strict_json(header)
    except _DuplicateKey as e:
        raise err(f"invalid header: the name {e.key!r} appears twice") from None
    except UnicodeDecodeError as e:
        raise err(f"invalid UTF-8 in header ({e})") from None
    except RecursionError:
        raise err("invalid JSON in header (nested too deeply)") from None
    except ValueError as e:
        raise err(f"invalid JSON in header ({e})") from None
    if not isinstance(h, dict):
        raise err(f"invalid header: expected a JSON object, got {type(h).__name__}")
    metadata = h.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        raise err("invalid header: __metadata__ must map strings to strings")
    entries = []
    for name, info in h.items():
        if not isinstance(info, dict):
            raise err(f"invalid header entry for tensor {name!r}: {info!r:.100}")
        code, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(code, str) or code not in _RANK:
            raise err(f"tensor {name!r} has unknown dtype {code!r}")
        if code not in _TO_GRAPHC:
            raise err(f"tensor {name!r} has dtype {code}, which graphc does not support "
                      f"(supported: {', '.join(_TO_GRAPHC)})")
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            raise err(f"tensor {name!r} has an invalid shape {shape!r:.200}")
        problem = _shape_error(shape, _TO_GRAPHC[code].itemsize)
        if problem is not None:
            raise err(f"tensor {name!r} ({code}) {problem}")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(type(o) is int and o >= 0 for o in offs)
                or offs[0] > offs[1]):
            raise err(f"tensor {name!r} has invalid data_offsets {offs!r}")
        d = _TO_GRAPHC[code]
        if math.prod(shape) * d.itemsize != offs[1] - offs[0]:
            raise err(f"tensor {name!r}: shape {shape} of {code} needs {math.prod(shape) * d.itemsize} bytes, "
                      f"but data_offsets {offs} span {offs[1] - offs[0]}")
        entries.append((name, d, tuple(shape), offs[0], offs[1]))
    entries.sort(key=lambda e: (e[3], e[4]))
    end = 0
    for name, _, _, b, e in entries:
        if b != end:
            what = "overlaps the previous tensor" if b < end else "leaves a gap before it"
            raise err(f"tensor {name!r} has invalid data_offsets [{b}, {e}]: it {what} (expected begin {end})")
        end = e
    if end != data_len:
        if end > data_len:
            raise err(f"the data is truncated: the header describes {end} bytes of tensor data, the file has {data_len}")
        raise err(f"the header describes {end} bytes of tensor data but the file has {data_len}: "
                  "incomplete metadata, file not fully covered")
    return {name: (d, shape, b, e) for name, d, shape, b, e in entries}, metadata


def _header_len(prefix: bytes, total: int, src: str) -> int:
    if len(prefix) < 8:
        raise SafetensorError(f"{src}: header too small ({total} bytes in all; a safetensors file starts with an "
                              "8-byte header length)")
    n = int.from_bytes(prefix[:8], "little")
    if n > MAX_HEADER_SIZE:
        raise SafetensorError(f"{src}: header too large ({n} bytes; the limit is {MAX_HEADER_SIZE}); "
                              "this is not a safetensors file, or it is corrupted")
    if 8 + n > total:
        raise SafetensorError(f"{src}: invalid header length {n}: the file has only {total} bytes "
                              "(truncated, or not a safetensors file)")
    return n


def _to_tensor(raw, d: dt.DType, shape: tuple) -> Tensor:
    """raw: a writable buffer (bytearray) holding exactly the tensor's bytes."""
    arr = np.frombuffer(raw, dtype=d.np.newbyteorder("<")).reshape(shape)
    if d is dt.bool_:
        arr = arr.view(np.uint8) != 0  # normalize: any nonzero byte is True
    elif sys.byteorder != "little":
        arr = arr.astype(d.np)
    return Tensor._make(arr)


def load(data: bytes) -> dict:
    """Deserialize safetensors bytes to ``{name: tensor}`` (sorted by name, as safetensors does)."""
    return load_with_metadata(data)[0]


def load_with_metadata(data: bytes) -> tuple[dict, dict | None]:
    """:func:`load`, plus the header's ``__metadata__`` (None when it has none)."""
    mv = memoryview(data).cast("B")
    n = _header_len(bytes(mv[:8]), mv.nbytes, "safetensors data")
    entries, metadata = _parse_header(n, bytes(mv[8:8 + n]), mv.nbytes - 8 - n, "safetensors data")
    base = 8 + n
    return ({name: _to_tensor(bytearray(mv[base + b:base + e]), d, shape)
             for name, (d, shape, b, e) in sorted(entries.items())}, metadata)


class safe_open:
    """Lazy reader: ``with safe_open(path, framework="pt") as f: f.keys(), f.get_tensor(name),
    f.metadata()``. Only the header is read up front."""

    def __init__(self, filename, framework: str = "pt", device="cpu") -> None:
        self._device = check_device(device)
        self._src = repr(os.fsdecode(filename))
        self._fh = open(filename, "rb")
        try:
            total = os.fstat(self._fh.fileno()).st_size
            n = _header_len(self._fh.read(8), total, self._src)
            header = self._fh.read(n)
            if len(header) != n:
                raise SafetensorError(f"{self._src}: the file is truncated inside the header")
            self._entries, self._metadata = _parse_header(n, header, total - 8 - n, self._src)
            self._base = 8 + n
        except BaseException:
            self._fh.close()
            raise

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def offset_keys(self) -> list[str]:
        return list(self._entries)

    def metadata(self) -> dict | None:
        return None if self._metadata is None else dict(self._metadata)

    def get_tensor(self, name: str) -> Tensor:
        if name not in self._entries:
            raise SafetensorError(f"{self._src}: no tensor named {name!r}")
        d, shape, b, e = self._entries[name]
        self._fh.seek(self._base + b)
        raw = bytearray(e - b)
        if self._fh.readinto(raw) != len(raw):
            raise SafetensorError(f"{self._src}: the file is truncated inside tensor {name!r}")
        return _to_tensor(raw, d, shape).to(self._device)


def load_file(filename, device="cpu") -> dict:
    """Read a .safetensors file to ``{name: tensor}`` (sorted by name, as safetensors does), the
    tensors on ``device``."""
    with safe_open(filename, device=device) as f:
        return {name: f.get_tensor(name) for name in f.keys()}
