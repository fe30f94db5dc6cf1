"""graphc.onnx.export: every exported model passes onnx.checker and runs in ONNX Runtime (CPU) with
graphc eager's results, also at another batch size when the batch axis is dynamic."""
from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.onnx
from graphc.ir import PRIMITIVES

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _leaves(out) -> list:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _leaves(o)]
    return [out]


def _run(data: bytes, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _export(model, args, **kw) -> tuple[bytes, "onnx.ModelProto"]:
    buf = io.BytesIO()
    graphc.onnx.export(model, args, buf, **kw)
    data = buf.getvalue()
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)  # full_check: ONNX's own shape inference too
    return data, proto


def _check(model, args, runs=None, rtol=1e-5, atol=1e-5, **kw):
    """Export ``model`` on ``args``; ONNX Runtime's outputs on each tuple of ``runs`` (default:
    ``args``) equal graphc eager's. Returns the model proto."""
    args = args if isinstance(args, tuple) else (args,)
    data, proto = _export(model, args, **kw)
    names = [i.name for i in proto.graph.input]
    for inputs in runs or [args]:
        want = [t.detach().numpy() for t in _leaves(model(*inputs))]
        got = _run(data, {n: t.numpy() for n, t in zip(names, _leaves(list(inputs)))})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return proto


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


# ---- the table keyed by primitive -----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_has_an_onnx_builder_or_a_reason(name):
    from graphc.onnx.ops import ONNX_OPS, UNSUPPORTED
    prim = PRIMITIVES[name]
    assert (prim in ONNX_OPS) + (prim in UNSUPPORTED) == 1, name
    if prim in UNSUPPORTED:
        assert len(UNSUPPORTED[prim]) > 20


def test_an_op_with_no_onnx_form_is_named_in_the_error():
    class Solver(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return torch.linalg.inv(self.fc(x))

    with pytest.raises(graphc.onnx.UnsupportedOperatorError,
                       match=r"'inv' \(at .*test_onnx_export.py:\d+\), which can't be exported to ONNX: .*matrix "
                             r"inverse \(linalg.inv\)"):
        graphc.onnx.export(Solver(), torch.randn(2, 3, 3))


def test_data_dependent_python_is_a_clear_error():
    def f(x):
        return x * 2 if x.sum() > 0 else x

    with pytest.raises(graphc.onnx.OnnxExporterError, match="can't be traced into one graph.*bool"):
        graphc.onnx.export(f, torch.randn(3))


def test_missing_onnx_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'graphc\[onnx\]'"):
        graphc.onnx.export(nn.Linear(2, 2), torch.randn(1, 2))


# ---- models --------------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return F.log_softmax(self.fc2(F.gelu(self.fc1(x))), dim=-1)


def test_mlp_to_a_path_with_parameters_named_by_module_path(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    x = torch.randn(5, 8)
    path = tmp_path / "mlp.onnx"
    program = graphc.onnx.export(model, x, str(path), input_names=["features"], output_names=["logp"])  # args: a tensor
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    params = {i.name for i in proto.graph.initializer if not i.name.startswith("const")}  # constants: const_N
    assert params == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    w = next(i for i in proto.graph.initializer if i.name == "fc1.weight")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(w), model.fc1.weight.detach().numpy())
    assert [i.name for i in proto.graph.input] == ["features"] and [o.name for o in proto.graph.output] == ["logp"]
    assert _dims(proto.graph.input[0]) == [5, 8]  # static without dynamic_axes
    got = _run(path.read_bytes(), {"features": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(program(x)[0].numpy(), got)  # the returned program runs the same model
    assert program.model_proto.SerializeToString() == path.read_bytes()
    matmuls = [n for n in proto.graph.node if n.op_type == "MatMul"]  # each node names the line that made it
    assert len(matmuls) == 2 and all("test_onnx_export.py:" in n.doc_string for n in matmuls)
    compiled = graphc.onnx.export(torch.compile(model), x).model_proto  # a compiled module exports its module
    assert [i.name for i in compiled.graph.initializer] == [i.name for i in proto.graph.initializer]


def test_weights_as_inputs_and_dropout_in_training_mode():
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(4, 500), nn.Dropout(0.5))
    x = torch.randn(3, 4)
    data, proto = _export(model.eval(), (x,), export_params=False)  # weights are inputs, not initializers
    assert [i.name for i in proto.graph.input] == ["input", "0.weight", "0.bias"] and not proto.graph.initializer
    feeds = {"input": x.numpy(), "0.weight": model[0].weight.detach().numpy(), "0.bias": model[0].bias.detach().numpy()}
    np.testing.assert_allclose(_run(data, feeds)[0], model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    _, proto = _export(model, (x,), keep_initializers_as_inputs=True)
    assert [i.name for i in proto.graph.input] == ["input", "0.weight", "0.bias"]
    assert [i.name for i in proto.graph.initializer] == ["0.weight", "0.bias"]
    data, proto = _export(model.train(), (x,))  # dropout: ONNX Runtime draws the mask
    got = _run(data, {"input": x.numpy()})[0]
    kept = got != 0
    assert 0.4 < 1 - kept.mean() < 0.6
    np.testing.assert_allclose(got[kept], 2 * model[0](x).detach().numpy()[kept], rtol=1e-5, atol=1e-6)


def test_default_names_come_from_forward_and_f_may_be_a_file_object():
    class TwoIn(nn.Module):
        def forward(self, image, scale):
            return image * scale, image.sum()

    buf = io.BytesIO()
    graphc.onnx.export(TwoIn(), (torch.randn(2, 3), torch.randn(3)), buf)
    proto = onnx.load_from_string(buf.getvalue())
    assert [i.name for i in proto.graph.input] == ["image", "scale"]
    assert [o.name for o in proto.graph.output] == ["output_0", "output_1"]


class CNN(nn.Module):
    def __init__(self, pool_to: int = 2):
        super().__init__()
        self.pool_to = pool_to  # 2: windows of 3 pixels overlap (PyTorch's exporter can't do that one)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * pool_to * pool_to, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)             # 12 -> 6
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 3, stride=1, padding=1, count_include_pad=False)
        x = F.adaptive_avg_pool2d(x, self.pool_to)
        return self.fc(torch.flatten(x, 1))


def _trained_statistics(model, x):
    """A few training-mode calls so that BatchNorm's running statistics are not 0 and 1."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)


def test_cnn_with_batchnorm_and_pooling_eval_mode_dynamic_batch():
    torch.manual_seed(1)
    model = CNN()
    _trained_statistics(model, torch.randn(6, 3, 12, 12) * 2 + 1)
    model.eval()
    proto = _check(model, torch.randn(4, 3, 12, 12), runs=[(torch.randn(4, 3, 12, 12),), (torch.randn(7, 3, 12, 12),)],
                   input_names=["x"], dynamic_axes={"x": {0: "batch"}, "output": {0: "batch"}})
    assert _dims(proto.graph.input[0]) == ["batch", 3, 12, 12]
    assert _dims(proto.graph.output[0]) == ["batch", 5]
    ops = [n.op_type for n in proto.graph.node]  # ONNX Runtime's own operators for these composites
    assert ops.count("Conv") == 2 and ops.count("MaxPool") == 1 and ops.count("AveragePool") == 1
    names = {i.name for i in proto.graph.initializer}
    assert {"bn1.running_mean", "bn1.running_var", "conv1.weight", "bn2.bias"} <= names


def test_convolutional_dynamic_image_size():
    """Stride-1 convolutions keep the sizes polynomial (h - 4); a stride or a pooling makes them
    h // 2, which ONNX's Conv and MaxPool compute themselves (the output's dimension is left
    unnamed). Only a number the graph needs, such as Flatten's reshape target, is refused."""
    torch.manual_seed(10)
    axes = {"input": {0: "n", 2: "h", 3: "w"}}
    runs = [(torch.randn(*s),) for s in [(2, 1, 12, 12), (1, 1, 9, 15)]]
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, dilation=2, padding=2),
                          nn.Tanh(), nn.Conv2d(4, 1, 5))
    proto = _check(model, runs[0], runs=runs, dynamic_axes=axes)
    assert _dims(proto.graph.output[0]) == ["n", 1, "h - 4", "w - 4"]
    strided = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, stride=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(4, 2, 3, padding=1), nn.AvgPool2d(2))
    proto = _check(strided, runs[0], runs=runs + [(torch.randn(3, 1, 17, 40),)], dynamic_axes=axes)
    assert _dims(proto.graph.output[0]) == ["n", 2, 0, 0]  # 0: a dimension with no name or value
    with pytest.raises(graphc.onnx.OnnxExporterError, match="reshape node .* can't express"):
        graphc.onnx.export(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Flatten()), runs[0], dynamic_axes=axes)


def test_training_mode_exports_batch_statistics_and_leaves_the_model_unchanged():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    _trained_statistics(model, torch.randn(8, 2, 6, 6) + 3)
    x = torch.randn(5, 2, 6, 6)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_data, _ = _export(model, (x,), verify=True)  # verify: ONNX Runtime == eager on x, checked by export
    for k, v in model.state_dict().items():  # export (and verify's eager run) left the running stats alone
        assert torch.equal(v, before[k]), k
    model.eval()
    eval_data, _ = _export(model, (x,))
    got_train = _run(train_data, {"input": x.numpy()})[0]
    got_eval = _run(eval_data, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got_eval, model(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    model.train()
    with torch.no_grad():
        want_train = model(x).numpy()
    np.testing.assert_allclose(got_train, want_train, rtol=1e-5, atol=1e-5)
    assert np.abs(got_train - got_eval).max() > 0.1  # the two modes really differ here


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_recurrent_multilayer_dynamic_batch(cell, batch_first):
    torch.manual_seed(3)
    model = getattr(nn, cell)(5, 7, num_layers=2, batch_first=batch_first)
    ax = 0 if batch_first else 1

    def seq(batch):
        return torch.randn(batch, 3, 5) if batch_first else torch.randn(3, batch, 5)

    proto = _check(model, seq(3), runs=[(seq(3),), (seq(6),)], input_names=["x"],
                   dynamic_axes={"x": {ax: "batch"}})
    out = proto.graph.output
    assert _dims(out[0]) == (["batch", 3, 7] if batch_first else [3, "batch", 7])
    assert _dims(out[1]) == [2, "batch", 7]  # h_n: the zero initial state follows the batch too


def test_lstm_with_given_initial_state():
    torch.manual_seed(4)
    model = nn.LSTM(3, 4, num_layers=2)
    x, h0, c0 = torch.randn(5, 2, 3), torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    proto = _check(model, (x, (h0, c0)))
    assert [i.name for i in proto.graph.input] == ["input", "hx_0", "hx_1"]


class CausalLM(nn.Module):
    """Token and position embeddings, a causal nn.TransformerEncoder, a vocabulary head."""

    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(20, 16), nn.Embedding(12, 16)
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.head = nn.Linear(16, 20)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(t))
        mask = nn.Transformer.generate_square_subsequent_mask(t)  # made from numpy: rebuilt at each size
        return self.head(self.encoder(x, mask=mask, is_causal=True))


def test_transformer_encoder_dynamic_batch_and_time():
    torch.manual_seed(5)
    model = CausalLM().eval()
    runs = [(torch.randint(0, 20, s),) for s in [(2, 5), (3, 9), (1, 1)]]
    proto = _check(model, runs[0], runs=runs, rtol=1e-4, atol=1e-5, input_names=["ids"],
                   dynamic_axes={"ids": {0: "batch", 1: "time"}})
    assert _dims(proto.graph.output[0]) == ["batch", "time", 20]


def test_data_made_in_forward_that_export_cant_rebuild_is_refused():
    def f(x):
        return x * torch.from_numpy(np.arange(x.shape[0], dtype=np.float32) ** 2)

    with pytest.raises(graphc.onnx.OnnxExporterError, match="not one repeated value.*an arange or a triangular mask"):
        graphc.onnx.export(f, torch.randn(4), dynamic_axes={"x": [0]})


def test_digits_classifier_example():
    sys.path.insert(0, EXAMPLES)
    try:
        import digits_classifier
    finally:
        sys.path.remove(EXAMPLES)
    _, test = digits_classifier.load_digits_split()
    images = torch.stack([test[i][0] for i in range(16)])
    torch.manual_seed(6)
    for model in (digits_classifier.CNN(), digits_classifier.MLP()):
        _trained_statistics(model, images)
        model.eval()
        data, proto = _export(model, (images[:4],), input_names=["images"], dynamic_axes={"images": [0]})
        assert _dims(proto.graph.input[0]) == ["images_dynamic_axes_1", 1, 8, 8]
        got = _run(data, {"images": images.numpy()})[0]  # 16 images, exported with 4
        want = model(images).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert (got.argmax(1) == want.argmax(1)).all()


# ---- dynamic axes --------------------------------------------------------------------------

def test_shape_dependent_constants_follow_the_dynamic_axes():
    """Reshape targets, slice bounds, a mean's divisor and a zeros() size all follow the batch
    (and a second named axis), so another size gives eager's results."""
    def f(x, y):
        b, t, c = x.shape
        z = x.reshape(b * t, c).mean(0)                     # divisor b * t
        h = torch.zeros(b, 2)                               # a constant of the batch's size
        last = x[:, -1, :]                                  # slice bounds of a dynamic axis
        scaled = y * (1.0 / b) + torch.full((b, 1), float(t))  # a reciprocal and a fill value of the sizes
        return torch.cat([last + z, h], dim=1), y.view(-1, 2).sum(0), x.transpose(0, 1)[t - 1], scaled

    args = (torch.randn(3, 4, 5), torch.randn(3, 8))
    runs = [args, (torch.randn(6, 7, 5), torch.randn(6, 8)), (torch.randn(2, 1, 5), torch.randn(2, 8))]
    proto = _check(f, args, runs=runs, dynamic_axes={"x": {0: "batch", 1: "time"}, "y": {0: "batch"}})
    assert _dims(proto.graph.output[0]) == ["batch", 7]


def test_a_size_the_export_cant_express_is_refused():
    def f(x):
        return x[: x.shape[0] // 2] * 2   # a slice bound of batch // 2

    with pytest.raises(graphc.onnx.OnnxExporterError, match="dynamic axes in a way ONNX export can't express"):
        graphc.onnx.export(f, torch.randn(4, 3), dynamic_axes={"x": {0: "n"}})


def test_a_model_that_fixes_the_batch_size_is_refused_with_the_reason():
    def f(x):
        return x.view(4, 3) * 2

    with pytest.raises(graphc.onnx.OnnxExporterError, match="fails with the dynamic axes at other sizes.*n=7"):
        graphc.onnx.export(f, torch.randn(4, 3), dynamic_axes={"x": {0: "n"}})


def test_an_unrolled_loop_over_a_dynamic_axis_is_refused():
    with pytest.raises(graphc.onnx.OnnxExporterError, match="traced graph changes with the size of a dynamic axis"):
        graphc.onnx.export(nn.GRU(2, 3), torch.randn(2, 1, 2), dynamic_axes={"input": {0: "time"}})


def test_verify_reports_an_export_that_computes_something_else(monkeypatch):
    from graphc.ir import prims as P
    from graphc.onnx import ops
    monkeypatch.setitem(ops.ONNX_OPS, P.relu, ops._pointwise("Abs"))  # a wrong builder
    with pytest.raises(graphc.onnx.OnnxExporterError, match="verify=True: output 0 .* differs from graphc eager's"):
        graphc.onnx.export(nn.Sequential(nn.Linear(3, 8), nn.ReLU()), torch.randn(4, 3), verify=True)


def test_bad_arguments():
    m = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="no input or output name"):
        graphc.onnx.export(m, torch.randn(1, 2), dynamic_axes={"y": {0: "b"}})
    with pytest.raises(ValueError, match="opset_version must be an int from 13"):
        graphc.onnx.export(m, torch.randn(1, 2), opset_version=9)
    with pytest.raises(ValueError, match="2 input_names for 1 input tensors"):
        graphc.onnx.export(m, torch.randn(1, 2), input_names=["a", "b"])
    with pytest.raises(ValueError, match=r"the model is in training mode.*call model.eval\(\)"):
        graphc.onnx.export(m.train(), torch.randn(1, 2), training=graphc.onnx.TrainingMode.EVAL)
    with pytest.raises(NotImplementedError, match="standard ONNX operators only"):
        graphc.onnx.export(m, torch.randn(1, 2), operator_export_type=graphc.onnx.OperatorExportTypes.ONNX_ATEN)
    # the options of PyTorch's tutorials that change nothing here are accepted
    proto = graphc.onnx.export(m.eval(), torch.randn(1, 2), export_params=True, do_constant_folding=True,
                               training=graphc.onnx.TrainingMode.EVAL, verify=True).model_proto
    assert len(proto.graph.node) == 3


# ---- opsets and single ops -------------------------------------------------------------------

@pytest.mark.parametrize("opset", [13, 17, 18, 20])
def test_opset_version_is_honoured(opset):
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Softmax(-1))
    proto = _check(model, torch.randn(2, 1, 7, 7), opset_version=opset, input_names=["x"],
                   dynamic_axes={"x": [0]})
    assert proto.opset_import[0].version == opset
    _check(lambda a: (F.relu(a), a.amax(1), a.prod(0)), _i, opset_version=opset)  # integer relu, reductions


def test_fold_needs_opset_18():
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)
    with pytest.raises(graphc.onnx.OnnxExporterError, match="Col2Im.*opset 18.*opset_version=18"):
        graphc.onnx.export(m, torch.randn(1, 2, 4, 4), opset_version=17)


_x = torch.randn(3, 4)
_i = torch.tensor([[3, -7, 5, 0], [2, 9, -4, 1], [-6, 8, 7, -3]])
OPS = {
    "unary float": (lambda x: torch.stack([x.trunc(), torch.exp2(x), torch.expm1(x), torch.log1p(x.abs()),
                                           torch.log2(x.abs() + 1), torch.log10(x.abs() + 1), torch.rsqrt(x.abs() + 1),
                                           x.round(), x.floor(), x.ceil(), x.sign(), torch.erf(x),
                                           x.reciprocal()]), (_x,)),
    "atan2 and pow": (lambda x, y: torch.atan2(x, y) + torch.pow(x.abs(), y), (_x, torch.randn(3, 4))),
    "int arithmetic": (lambda a: (a // 3, a % 3, a // -2, a % -2, -a, a.abs(), a * 2 + 1, (a > 0) & (a < 5),
                                  a.to(torch.int8) + 1000), (_i,)),
    "float remainder": (lambda x: (torch.remainder(x, 0.7), torch.floor_divide(x, 0.3)), (_x,)),
    "bitwise": (lambda a: (a & 6, a | 1, a ^ 3, ~a, ~(a > 0), (a > 0) ^ (a < 3)), (_i,)),
    "tests": (lambda x: (torch.isnan(x), torch.isinf(x), torch.isfinite(x), torch.isfinite(_i)),
              (torch.tensor([1.0, float("nan"), float("inf"), -float("inf")]),)),
    "where and clamp": (lambda x: (torch.where(x > 0, x, 0.5), x.clamp(-0.5, 0.5), torch.maximum(x, -x),
                                   torch.minimum(x, x * 0.5)), (_x,)),
    "reductions": (lambda x: (x.sum(), x.prod(1), x.amax(0, keepdim=True), x.amin(1), x.argmax(), x.argmin(1),
                              x.max(1), x.std(0), x.logsumexp(1), x.norm(), x.mean((0, 1))), (_x,)),
    "int reductions widen": (lambda a: (a.sum(1), a.to(torch.int32).sum(), a.cumsum(0)), (_i,)),
    "cumsum": (lambda x: (x.cumsum(1), x.cumprod(0)), (_x,)),
    "sort with ties": (lambda a: (a.sort(1), a.argsort(0, descending=True), a.float().topk(2, dim=1)),
                       (torch.tensor([[3, 1, 3, 0, 1], [2, 2, 2, 5, 2]]),)),
    "indexing": (lambda x, i: (x[i], x[:, [0, 3, 1]], x[-1], x[1:, ::2], x.flip(1), x[..., None]),
                 (_x, torch.tensor([2, 0, -1]))),
    "gather and scatter": (lambda x, i: (torch.gather(x, 1, i), x.scatter(1, i, 9.0), x.scatter(1, i, -x),
                                         x.scatter_add(0, i[:2] % 3, x[:2])),
                           (_x, torch.tensor([[0, 1], [3, 2], [1, 1]]))),
    "index_add": (lambda x, s: x.index_add(0, torch.tensor([2, 0, 2]), s), (_x, torch.randn(3, 4))),
    "index assignment": (lambda x, s: _assign(x, s), (_x, torch.randn(3, 2))),
    "searchsorted": (lambda s, v: (torch.searchsorted(s, v), torch.searchsorted(s, v, right=True),
                                   torch.bucketize(v, s)),
                     (torch.tensor([0.0, 1.0, 1.0, 3.0]), torch.tensor([[-1.0, 1.0, 2.0], [3.0, 4.0, 0.0]]))),
    "pad and cat": (lambda x, a: (F.pad(x, (1, 2, 0, 1), value=-1.0), F.pad(x, (-1, 1)), torch.cat([x, a]),
                                  F.pad(x[None], (1, 1), mode="replicate")),
                    (_x, torch.tensor([[1, 2, 3, 4]]))),
    "creation": (lambda x: (x + torch.arange(4), torch.ones_like(x) * x, torch.full((2, 2), 7), torch.eye(3),
                            torch.linspace(0, 1, 5)), (_x,)),
    "pooling variants": (lambda x: (F.avg_pool2d(x, 3, 2, ceil_mode=True), F.avg_pool2d(x, 2, divisor_override=3),
                                    F.max_pool2d(x, 3, 2, padding=1, dilation=2, ceil_mode=True),
                                    F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                                    F.max_pool1d(x[0], 2), F.conv2d(x, x[:1, :1].expand(3, 2, 7, 7)[..., :3, :3],
                                                                    stride=2, padding=(2, 1), groups=1)),
                         (torch.randn(2, 2, 7, 7),)),
    "embedding": (lambda w, i: (F.embedding(i, w), F.embedding(i, w, padding_idx=1)),
                  (torch.randn(5, 3), torch.tensor([[0, 4], [1, 1]]))),
    "det": (lambda a: (torch.det(a), torch.linalg.slogdet(a)), (torch.randn(2, 3, 3),)),
    "conv1d, conv_transpose2d": (lambda x, w, y, wt: (F.conv1d(x, w, padding=2, dilation=2),
                                                      F.conv_transpose2d(y, wt, stride=2, padding=1)),
                                 (torch.randn(2, 3, 9), torch.randn(4, 3, 3), torch.randn(1, 2, 4, 4),
                                  torch.randn(2, 3, 3, 3))),
    "activations": (lambda x: (F.silu(x), F.elu(x), F.leaky_relu(x, 0.2), F.softplus(x), F.hardswish(x), F.mish(x),
                               F.gelu(x, approximate="tanh"), torch.sigmoid(x), torch.tanh(x)), (_x,)),
    "losses": (lambda x, t: (F.cross_entropy(x, t), F.mse_loss(x, x * 0.5), F.nll_loss(F.log_softmax(x, 1), t)),
               (_x, torch.tensor([0, 3, 1]))),
    "bool and casts": (lambda x: ((x > 0).float(), (x > 0).sum(), x.to(torch.int64), x.double() * 2,
                                  (x > 0) | (x < -1), torch.logical_xor(x > 0, x < 1), ~(x > 0)), (_x,)),
}


def _assign(x, s):
    y = x.clone()
    y[:, 1:3] = s
    y[0] = 0.0
    y[1:, ::2] = -s[1:]    # a strided slice
    return y


@pytest.mark.parametrize("case", sorted(OPS))
def test_ops_match_eager(case):
    fn, args = OPS[case]
    _check(fn, args, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("step", [1, 2])
def test_slice_scatter_builder(step):
    """slice_scatter comes from autodiff, not from forward code: its builder is checked on an IR
    graph, against the reference interpreter."""
    from graphc.ir import dtypes as dt
    from graphc.ir import prims as P
    from graphc.ir.graph import Graph
    from graphc.ir.interpret import interpret
    from graphc.ir.primitive import TensorType
    from graphc.onnx.capture import Captured
    from graphc.onnx.exporter import _to_onnx
    g = Graph("g")
    x = g.add_input(TensorType((4, 6), dt.float32))
    index = ((1, 3, 1), (0, 6, step))
    src = g.add_input(TensorType(P.slice.infer(x, index=index).shape, dt.float32))
    g.set_outputs([g.add_node(P.slice_scatter, [x, src], {"index": index})])
    proto = _to_onnx(onnx, Captured(g, {}, {}), ["x", "src"], ["y"], {}, {}, 18, True, False)
    onnx.checker.check_model(proto, full_check=True)
    arrays = [np.random.default_rng(step).standard_normal(v.shape).astype(np.float32) for v in g.inputs]
    got = _run(proto.SerializeToString(), {"x": arrays[0], "src": arrays[1]})[0]
    np.testing.assert_array_equal(got, interpret(g, arrays)[0])


def test_matches_torch_onnx_numerics():
    """The same CNN exported by graphc and by PyTorch's exporter gives the same numbers (not the
    same graph) in ONNX Runtime."""
    t = pytest.importorskip("torch")
    torch.manual_seed(8)
    model = CNN(pool_to=1)
    _trained_statistics(model, torch.randn(6, 3, 12, 12))
    model.eval()
    ref = t.nn.Module()
    ref.conv1, ref.bn1 = t.nn.Conv2d(3, 8, 3, padding=1), t.nn.BatchNorm2d(8)
    ref.conv2, ref.bn2 = t.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2), t.nn.BatchNorm2d(8)
    ref.fc = t.nn.Linear(8, 5)
    ref.load_state_dict({k: t.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    tf = t.nn.functional
    ref.forward = lambda x: ref.fc(t.flatten(tf.adaptive_avg_pool2d(tf.avg_pool2d(
        tf.relu(ref.bn2(ref.conv2(tf.max_pool2d(tf.relu(ref.bn1(ref.conv1(x))), 2)))), 3, stride=1, padding=1,
        count_include_pad=False), 1), 1))
    ref.eval()
    x = np.random.default_rng(0).standard_normal((4, 3, 12, 12)).astype(np.float32)
    buf = io.BytesIO()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.onnx.export(ref, (t.from_numpy(x),), buf, dynamo=False, input_names=["x"])
    theirs = _run(buf.getvalue(), {"x": x})[0]
    data, _ = _export(model, (torch.from_numpy(x),), input_names=["x"])
    ours = _run(data, {"x": x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_readme_snippet_runs(tmp_path, monkeypatch, capsys):
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## ONNX export", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # it writes digits.onnx
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102  (the repository's own README)
    assert scope["logits"].shape == (32, 10) and (tmp_path / "digits.onnx").exists()
    assert float(capsys.readouterr().out) < 1e-5
