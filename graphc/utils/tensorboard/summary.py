"""Summary protos for TensorBoard, built from graphc tensors with the ``tensorboard`` package's
own protos (``tensorboard.compat.proto``, the plugins' ``plugin_data_pb2``), as PyTorch's
``torch.utils.tensorboard.summary`` builds them, so TensorBoard shows them the same way."""
from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

from ...tensors import Tensor


def to_numpy(x: Any, what: str) -> np.ndarray:
    """A tensor, numpy array or number as a host numpy array."""
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return np.asarray(x)
    raise TypeError(f"{what}: expected a tensor, a numpy array or a number, got {type(x).__name__}")


def scalar_value(x: Any, what: str) -> float:
    arr = to_numpy(x, what)
    if arr.size != 1:
        raise ValueError(f"{what}: a scalar must have one element, got shape {list(arr.shape)}")
    return float(arr.reshape(()))


def scalar(tag: str, value: Any, new_style: bool = False, double_precision: bool = False) -> Summary:
    v = scalar_value(value, "add_scalar")
    if not new_style:
        return Summary(value=[Summary.Value(tag=tag, simple_value=v)])
    # the scalars plugin's tensor form (PyTorch's new_style=True)
    if double_precision:
        tensor = TensorProto(dtype="DT_DOUBLE", double_val=[v], tensor_shape=TensorShapeProto())
    else:
        tensor = TensorProto(dtype="DT_FLOAT", float_val=[v], tensor_shape=TensorShapeProto())
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=meta)])


def histogram(tag: str, values: Any, bins: Any = "tensorflow", max_bins: int | None = None) -> Summary:
    arr = to_numpy(values, "add_histogram").astype(np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError("add_histogram: the values are empty")
    if not np.isfinite(arr).all():
        raise ValueError("add_histogram: the values contain NaN or infinity")
    if bins == "tensorflow":
        edges = _tensorflow_edges(arr)
    else:
        edges = np.histogram_bin_edges(arr, bins=bins)
    counts, edges = np.histogram(arr, bins=edges)
    if max_bins is not None and len(counts) > max_bins:  # merge neighbours, as PyTorch does
        k = math.ceil(len(counts) / max_bins)
        pad = (-len(counts)) % k
        counts = np.pad(counts, (0, pad)).reshape(-1, k).sum(axis=1)
        edges = np.concatenate([edges[:-1:k], edges[-1:]])
    proto = HistogramProto(min=float(arr.min()), max=float(arr.max()), num=int(arr.size), sum=float(arr.sum()),
                           sum_squares=float(np.dot(arr, arr)), bucket_limit=edges[1:].tolist(),
                           bucket=counts.astype(np.float64).tolist())
    return Summary(value=[Summary.Value(tag=tag, histo=proto)])


def _tensorflow_edges(arr: np.ndarray) -> np.ndarray:
    """TensorFlow's default bucket limits: +-1e-12 * 1.1**k, limited to the data's range (plus one
    bucket each side), so a histogram reads the same as one TensorFlow or PyTorch writes."""
    pos = 1e-12 * 1.1 ** np.arange(0, 775)
    pos = pos[pos < 1e20]
    limits = np.concatenate([-pos[::-1], [0.0], pos])
    lo = max(np.searchsorted(limits, arr.min(), side="left") - 1, 0)
    hi = min(np.searchsorted(limits, arr.max(), side="right") + 1, len(limits))
    return limits[lo:hi]


def _to_hwc(arr: np.ndarray, dataformats: str) -> np.ndarray:
    fmt = dataformats.upper()
    if sorted(fmt) != sorted(set(fmt)) or not set(fmt) <= set("CHW") or not {"H", "W"} <= set(fmt):
        raise ValueError(f"add_image: dataformats must be letters from CHW with H and W (such as 'CHW', 'HWC', "
                         f"'HW'), got {dataformats!r}")
    if arr.ndim != len(fmt):
        raise ValueError(f"add_image: dataformats {dataformats!r} needs a {len(fmt)}-d image, got shape "
                         f"{list(arr.shape)}")
    if "C" not in fmt:
        arr, fmt = arr[..., None], fmt + "C"
    arr = arr.transpose([fmt.index(c) for c in "HWC"])
    if arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"add_image: an image has 1, 3 or 4 channels, got {arr.shape[2]}")
    return arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """float images are in [0, 1] (scaled by 255), uint8 ones in [0, 255], as in PyTorch."""
    if arr.dtype == np.uint8:
        return arr
    return np.clip(arr.astype(np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def image(tag: str, img: Any, dataformats: str = "CHW") -> Summary:
    return _image(tag, _to_uint8(_to_hwc(to_numpy(img, "add_image"), dataformats)))


def images(tag: str, imgs: Any, dataformats: str = "NCHW") -> Summary:
    """A batch of images, drawn as one grid (as many columns as rows, roughly)."""
    arr = to_numpy(imgs, "add_images")
    fmt = dataformats.upper()
    if "N" not in fmt:
        raise ValueError(f"add_images: dataformats must have an N (batch) axis, got {dataformats!r}")
    arr = np.moveaxis(arr, fmt.index("N"), 0)
    one = [_to_hwc(a, fmt.replace("N", "")) for a in arr]
    if not one:
        raise ValueError("add_images: the batch is empty")
    h, w, c = one[0].shape
    cols = math.ceil(math.sqrt(len(one)))
    rows = math.ceil(len(one) / cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=one[0].dtype)
    for i, a in enumerate(one):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = a
    return _image(tag, _to_uint8(grid))


def _image(tag: str, hwc: np.ndarray) -> Summary:
    from PIL import Image  # a dependency of the tensorboard package
    h, w, c = hwc.shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    buf = io.BytesIO()
    Image.fromarray(hwc[..., 0] if c == 1 else hwc, mode=mode).save(buf, format="PNG")
    img = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=buf.getvalue())
    return Summary(value=[Summary.Value(tag=tag, image=img)])


def text(tag: str, text_string: str) -> Summary:
    from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
    if not isinstance(text_string, str):
        raise TypeError(f"add_text: text_string must be a str, got {type(text_string).__name__}")
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf-8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=tensor)])


def hparams(hparam_dict: dict, metric_dict: dict, hparam_domain_discrete: dict | None = None) -> list[Summary]:
    """The hparams plugin's experiment, session-start and session-end summaries."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName, Status
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo, SessionStartInfo
    if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
        raise TypeError("add_hparams: hparam_dict and metric_dict must be dictionaries")
    domains = hparam_domain_discrete or {}
    if not isinstance(domains, dict):
        raise TypeError("add_hparams: hparam_domain_discrete must be a dictionary")
    for k, v in domains.items():
        if k not in hparam_dict or not isinstance(v, list) or not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same type as hparam_dict[{k}].")
    start = SessionStartInfo()
    infos = []
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, Tensor):
            v = scalar_value(v, "add_hparams")
        if isinstance(v, bool):  # before int: a bool is an int
            start.hparams[k].bool_value, kind, field = v, "DATA_TYPE_BOOL", "bool_value"
        elif isinstance(v, (int, float)):
            start.hparams[k].number_value, kind, field = v, "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(v, str):
            start.hparams[k].string_value, kind, field = v, "DATA_TYPE_STRING", "string_value"
        else:
            raise ValueError(f"add_hparams: hparam {k!r} is a {type(v).__name__}; values must be int, float, str, "
                             "bool or a one-element tensor")
        domain = None
        if k in domains:
            domain = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: d}) for d in domains[k]])
        infos.append(HParamInfo(name=k, type=DataType.Value(kind), domain_discrete=domain))

    def summary(tag: str, data: HParamsPluginData) -> Summary:
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()))
        return Summary(value=[Summary.Value(tag=tag, metadata=meta)])

    version = metadata.PLUGIN_DATA_VERSION
    experiment = Experiment(hparam_infos=infos, metric_infos=[MetricInfo(name=MetricName(tag=k)) for k in metric_dict])
    return [summary(metadata.EXPERIMENT_TAG, HParamsPluginData(experiment=experiment, version=version)),
            summary(metadata.SESSION_START_INFO_TAG, HParamsPluginData(session_start_info=start, version=version)),
            summary(metadata.SESSION_END_INFO_TAG, HParamsPluginData(
                session_end_info=SessionEndInfo(status=Status.Value("STATUS_SUCCESS")), version=version))]
