"""Every nn layer and loss runs under graphc.compile (as one graph: fullgraph=True) and equals eager:
outputs, input and parameter gradients, and buffers written during the call."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.tensors import Tensor


def _r(*shape, seed=0, lo=-1.0, hi=1.0):
    rng = np.random.default_rng(seed + sum(shape))
    return graphc.from_numpy(np.asarray(rng.random(shape) * (hi - lo) + lo, dtype=np.float64))


def _idx(high, *shape, seed=1):
    return graphc.from_numpy(np.random.default_rng(seed).integers(0, high, shape).astype(np.int64))


def _leaves(obj):
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _leaves(o)]
    return []


LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), lambda: (_r(2, 4),)),
    "DataParallel": (lambda: nn.DataParallel(nn.Linear(4, 3)), lambda: (_r(2, 4),)),  # one device: transparent
    "Bilinear": (lambda: nn.Bilinear(3, 4, 2), lambda: (_r(2, 3), _r(2, 4))),
    "Identity": (lambda: nn.Identity(), lambda: (_r(2, 3),)),
    "Flatten": (lambda: nn.Flatten(), lambda: (_r(2, 3, 4),)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 2)), lambda: (_r(3, 4),)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1), lambda: (_r(2, 2, 7),)),
    "Conv2d-groups-stride": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), lambda: (_r(2, 2, 7, 7),)),
    "Conv2d-same-dilation": (lambda: nn.Conv2d(2, 3, 3, padding="same", dilation=2), lambda: (_r(1, 2, 6, 6),)),
    "Conv2d-reflect": (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect", bias=False),
                       lambda: (_r(1, 2, 5, 5),)),
    "Conv3d": (lambda: nn.Conv3d(1, 2, 2), lambda: (_r(1, 1, 4, 4, 4),)),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2), lambda: (_r(2, 2, 5),)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
                        lambda: (_r(2, 2, 4, 4),)),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), lambda: (_r(2, 3, 8),)),
    "MaxPool2d-ceil": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), lambda: (_r(2, 3, 7, 7),)),
    "MaxPool3d": (lambda: nn.MaxPool3d(2), lambda: (_r(1, 2, 4, 4, 4),)),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, 2, 1), lambda: (_r(2, 3, 8),)),
    "AvgPool2d-nopad": (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), lambda: (_r(2, 3, 7, 7),)),
    "AvgPool3d": (lambda: nn.AvgPool3d(2), lambda: (_r(1, 2, 4, 4, 4),)),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(3), lambda: (_r(2, 3, 7),)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((3, 2)), lambda: (_r(2, 3, 7, 5),)),
    "AdaptiveAvgPool3d": (lambda: nn.AdaptiveAvgPool3d(2), lambda: (_r(1, 2, 4, 4, 4),)),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(2), lambda: (_r(2, 3, 5, 5),)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), lambda: (_r(5, 4),)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), lambda: (_r(4, 3, 5, 5),)),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(2), lambda: (_r(2, 2, 3, 3, 3),)),
    # outside a job of several processes SyncBatchNorm is BatchNorm (in one, its all-reduce breaks the graph)
    "SyncBatchNorm": (lambda: nn.SyncBatchNorm(3), lambda: (_r(4, 3, 5),)),
    "LayerNorm": (lambda: nn.LayerNorm((5,)), lambda: (_r(3, 4, 5),)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), lambda: (_r(3, 4, 5),)),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3, affine=True), lambda: (_r(2, 3, 4, 4),)),
    "RMSNorm": (lambda: nn.RMSNorm(5), lambda: (_r(3, 5),)),
    "Embedding": (lambda: nn.Embedding(10, 4, padding_idx=0), lambda: (_idx(10, 3, 5),)),
    "RNN": (lambda: nn.RNN(4, 5, num_layers=2, bidirectional=True, batch_first=True), lambda: (_r(2, 3, 4),)),
    "LSTM": (lambda: nn.LSTM(4, 5, num_layers=2), lambda: (_r(3, 2, 4),)),
    "GRU": (lambda: nn.GRU(4, 5, bidirectional=True), lambda: (_r(3, 2, 4),)),
    "RNNCell": (lambda: nn.RNNCell(4, 5), lambda: (_r(2, 4), _r(2, 5))),
    "LSTMCell": (lambda: nn.LSTMCell(4, 5), lambda: (_r(2, 4),)),
    "GRUCell": (lambda: nn.GRUCell(4, 5), lambda: (_r(2, 4), _r(2, 5))),
    "MultiheadAttention": (lambda: nn.MultiheadAttention(8, 2, batch_first=True),
                           lambda: (_r(2, 3, 8), _r(2, 4, 8, seed=3), _r(2, 4, 8, seed=4))),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                lambda: (_r(2, 3, 8),)),
    "TransformerEncoder": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2),
                           lambda: (_r(3, 2, 8),)),
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=True),
                                lambda: (_r(3, 2, 8), _r(4, 2, 8, seed=5))),
    "Transformer": (lambda: nn.Transformer(8, 2, 1, 1, 16, dropout=0.0),
                    lambda: (_r(4, 2, 8), _r(3, 2, 8, seed=6))),
    "PReLU": (lambda: nn.PReLU(3), lambda: (_r(2, 3, 4),)),
    "GLU": (lambda: nn.GLU(), lambda: (_r(2, 6),)),
}
LAYERS.update({
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(3), lambda: (_r(2, 3, 7),)),
    "AdaptiveMaxPool3d": (lambda: nn.AdaptiveMaxPool3d(2), lambda: (_r(1, 2, 4, 5, 4),)),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), lambda: (_r(2, 4, 3, 3),)),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), lambda: (_r(1, 2, 2, 3, 2),)),
    "CosineSimilarity": (lambda: nn.CosineSimilarity(dim=1), lambda: (_r(3, 4), _r(3, 4, seed=2))),
    "PairwiseDistance": (lambda: nn.PairwiseDistance(), lambda: (_r(3, 4), _r(3, 4, seed=2))),
    "TransformerDecoder": (lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2),
                           lambda: (_r(3, 2, 8), _r(4, 2, 8, seed=5))),
    "Fold": (lambda: nn.Fold((4, 5), (2, 2)), lambda: (_r(2, 12, 12),)),
    "Unfold": (lambda: nn.Unfold((2, 3), padding=1, stride=2), lambda: (_r(2, 3, 5, 6),)),
    "Hardshrink": (lambda: nn.Hardshrink(0.3), lambda: (_r(3, 4),)),
    "Softshrink": (lambda: nn.Softshrink(0.3), lambda: (_r(3, 4),)),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), lambda: (_r(2, 3, 6),)),
    "InstanceNorm3d": (lambda: nn.InstanceNorm3d(2), lambda: (_r(2, 2, 3, 3, 3),)),
    "LPPool1d": (lambda: nn.LPPool1d(2, 3, stride=2), lambda: (_r(2, 3, 8, lo=0.1, hi=1),)),
    "LPPool2d": (lambda: nn.LPPool2d(2, 2), lambda: (_r(2, 3, 4, 4, lo=0.1, hi=1),)),
    "LPPool3d": (lambda: nn.LPPool3d(2, 2), lambda: (_r(1, 2, 4, 4, 4, lo=0.1, hi=1),)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3), lambda: (_r(2, 5, 3, 3),)),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), lambda: (_r(2, 8, 3, 3),)),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), lambda: (_r(2, 2, 4, 6),)),
    "Softmax2d": (lambda: nn.Softmax2d(), lambda: (_r(2, 3, 4, 4),)),
    "Upsample-bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), lambda: (_r(1, 2, 3, 4),)),
    "UpsamplingBilinear2d": (lambda: nn.UpsamplingBilinear2d(size=(5, 6)), lambda: (_r(1, 2, 3, 4),)),
    "UpsamplingNearest2d": (lambda: nn.UpsamplingNearest2d(scale_factor=2), lambda: (_r(1, 2, 3, 4),)),
})
for _name, _cls, _shape in [("ConstantPad", nn.ConstantPad1d, (2, 3, 5)), ("ZeroPad", nn.ZeroPad1d, (2, 3, 5)),
                            ("ReflectionPad", nn.ReflectionPad1d, (2, 3, 5)),
                            ("ReplicationPad", nn.ReplicationPad1d, (2, 3, 5)),
                            ("CircularPad", nn.CircularPad1d, (2, 3, 5))]:
    for _d in (1, 2, 3):
        _c = getattr(nn, f"{_name}{_d}d")
        _pad = tuple((1, 2) * _d)
        _args = (_pad, 0.5) if _name == "ConstantPad" else (_pad,)
        LAYERS[f"{_name}{_d}d"] = ((lambda c=_c, a=_args: c(*a)),
                                   (lambda d=_d: (_r(2, 3, *([4] * d)),)))
for _name, _cls, _args in [("ReLU", nn.ReLU, ()), ("ReLU6", nn.ReLU6, ()), ("LeakyReLU", nn.LeakyReLU, (0.1,)),
                           ("ELU", nn.ELU, ()), ("CELU", nn.CELU, ()), ("SELU", nn.SELU, ()), ("GELU", nn.GELU, ()),
                           ("GELU-tanh", nn.GELU, ("tanh",)), ("SiLU", nn.SiLU, ()), ("Mish", nn.Mish, ()),
                           ("Sigmoid", nn.Sigmoid, ()), ("Tanh", nn.Tanh, ()), ("Softmax", nn.Softmax, (1,)),
                           ("Softmin", nn.Softmin, (1,)), ("LogSoftmax", nn.LogSoftmax, (1,)),
                           ("Softplus", nn.Softplus, ()), ("Softsign", nn.Softsign, ()), ("Hardtanh", nn.Hardtanh, ()),
                           ("Hardsigmoid", nn.Hardsigmoid, ()), ("Hardswish", nn.Hardswish, ()),
                           ("LogSigmoid", nn.LogSigmoid, ()), ("Tanhshrink", nn.Tanhshrink, ()),
                           ("Threshold", nn.Threshold, (0.1, 20.0))]:
    LAYERS[_name] = ((lambda c=_cls, a=_args: c(*a)), (lambda: (_r(3, 4, lo=-3, hi=3),)))

LOSSES = {
    "MSELoss": (lambda: nn.MSELoss(), lambda: (_r(3, 4), _r(3, 4, seed=2))),
    "L1Loss": (lambda: nn.L1Loss(reduction="sum"), lambda: (_r(3, 4), _r(3, 4, seed=2))),
    "SmoothL1Loss": (lambda: nn.SmoothL1Loss(beta=0.5), lambda: (_r(3, 4), _r(3, 4, seed=2))),
    "HuberLoss": (lambda: nn.HuberLoss(delta=0.3), lambda: (_r(3, 4), _r(3, 4, seed=2))),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=2),
                         lambda: (_r(5, 4), _idx(4, 5))),
    "CrossEntropyLoss-probs": (lambda: nn.CrossEntropyLoss(), lambda: (_r(5, 4), _r(5, 4, lo=0, hi=1).softmax(1))),
    "LinearCrossEntropyLoss": (lambda: nn.LinearCrossEntropyLoss(4, 3, bias=True, label_smoothing=0.1),
                               lambda: (_r(5, 4), _idx(3, 5))),
    "LinearCrossEntropyLoss-kdim": (lambda: nn.LinearCrossEntropyLoss(4, 3, out_features=(2,)),
                                    lambda: (_r(5, 4), _idx(3, 5, 2))),
    "NLLLoss": (lambda: nn.NLLLoss(weight=_r(4, lo=0.5, hi=1.5)), lambda: (_r(5, 4).log_softmax(1), _idx(4, 5))),
    "BCELoss": (lambda: nn.BCELoss(), lambda: (_r(3, 4, lo=0.05, hi=0.95), _r(3, 4, lo=0, hi=1, seed=2))),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(pos_weight=_r(4, lo=0.5, hi=2)),
                          lambda: (_r(3, 4, lo=-5, hi=5), _r(3, 4, lo=0, hi=1, seed=2))),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"),
                  lambda: (_r(3, 4).log_softmax(1), _r(3, 4, seed=2).softmax(1))),
    "PoissonNLLLoss": (lambda: nn.PoissonNLLLoss(), lambda: (_r(3, 4), _r(3, 4, lo=0, hi=3, seed=2))),
    "MarginRankingLoss": (lambda: nn.MarginRankingLoss(0.1),
                          lambda: (_r(5), _r(5, seed=2), graphc.tensor([1., -1., 1., 1., -1.], dtype=graphc.float64))),
    "CosineEmbeddingLoss": (lambda: nn.CosineEmbeddingLoss(0.2),
                            lambda: (_r(4, 3), _r(4, 3, seed=2), graphc.tensor([1., -1., 1., -1.], dtype=graphc.float64))),
    "GaussianNLLLoss": (lambda: nn.GaussianNLLLoss(), lambda: (_r(3, 4), _r(3, 4, seed=2), _r(3, 4, lo=0.5, hi=2, seed=3))),
    "HingeEmbeddingLoss": (lambda: nn.HingeEmbeddingLoss(0.5),
                           lambda: (_r(5), graphc.tensor([1., -1., 1., -1., 1.], dtype=graphc.float64))),
    "MultiLabelSoftMarginLoss": (lambda: nn.MultiLabelSoftMarginLoss(),
                                 lambda: (_r(3, 4), _idx(2, 3, 4).double())),
    "MultiMarginLoss": (lambda: nn.MultiMarginLoss(), lambda: (_r(3, 4), _idx(4, 3))),
    "SoftMarginLoss": (lambda: nn.SoftMarginLoss(), lambda: (_r(3, 4), _idx(2, 3, 4).double() * 2 - 1)),
    "TripletMarginLoss": (lambda: nn.TripletMarginLoss(), lambda: (_r(3, 4), _r(3, 4, seed=2), _r(3, 4, seed=3))),
    "TripletMarginWithDistanceLoss": (lambda: nn.TripletMarginWithDistanceLoss(),
                                      lambda: (_r(3, 4), _r(3, 4, seed=2), _r(3, 4, seed=3))),
}

# Layers that draw random numbers in training mode (compared in eval mode; see the dropout test)
RANDOM = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "RReLU"}
# Containers and abstract bases: covered through the layers and models they hold
STRUCTURAL = {"Module", "ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential", "RNNBase",
              "RNNCellBase"}
for _d in (1, 2, 3):
    LAYERS[f"MaxUnpool{_d}d"] = ((lambda d=_d: getattr(nn, f"MaxUnpool{d}d")(2)),
                                 (lambda d=_d: getattr(nn, f"MaxPool{d}d")(2, return_indices=True)(_r(1, 2, *([4] * d)))))

# These read tensor values in Python (sequence lengths, bag offsets, -1-terminated label lists),
# so compiling them is a graph break: the call falls back to eager and must still agree.
BREAK_CASES = {
    "CTCLoss": (lambda: nn.CTCLoss(), lambda: (_r(6, 2, 5).log_softmax(2), graphc.tensor([[1, 2, 2], [3, 1, 4]]),
                                              graphc.tensor([6, 5]), graphc.tensor([3, 2]))),
    "EmbeddingBag": (lambda: nn.EmbeddingBag(10, 4, mode="mean"), lambda: (_idx(10, 3, 4),)),
    "MultiLabelMarginLoss": (lambda: nn.MultiLabelMarginLoss(),
                             lambda: (_r(2, 4), graphc.tensor([[3, 0, -1, 1], [1, 2, 3, -1]]))),
    # the first call draws the initial weights (random numbers: a break); later calls compile as Linear
    "LazyLinear": (lambda: nn.LazyLinear(3), lambda: (_r(2, 4),)),
    "LazyConv1d": (lambda: nn.LazyConv1d(3, 2), lambda: (_r(2, 2, 5),)),
    "LazyConv2d": (lambda: nn.LazyConv2d(3, 2), lambda: (_r(2, 2, 4, 4),)),
    "LazyConv3d": (lambda: nn.LazyConv3d(2, 2), lambda: (_r(1, 2, 3, 3, 3),)),
    "LazyConvTranspose1d": (lambda: nn.LazyConvTranspose1d(3, 2), lambda: (_r(2, 2, 5),)),
    "LazyConvTranspose2d": (lambda: nn.LazyConvTranspose2d(3, 2), lambda: (_r(2, 2, 4, 4),)),
    "LazyConvTranspose3d": (lambda: nn.LazyConvTranspose3d(2, 2), lambda: (_r(1, 2, 3, 3, 3),)),
    # the window starts are computed on the host from the random samples
    "FractionalMaxPool2d": (lambda: nn.FractionalMaxPool2d(2, output_size=3, _random_samples=graphc.rand(1, 2, 2)),
                            lambda: (_r(1, 2, 6, 6),)),
    "FractionalMaxPool3d": (lambda: nn.FractionalMaxPool3d(2, output_ratio=0.5, _random_samples=graphc.rand(1, 2, 3)),
                            lambda: (_r(1, 2, 6, 6, 6),)),
    # the rows of each cluster are found with nonzero
    "AdaptiveLogSoftmaxWithLoss": (lambda: nn.AdaptiveLogSoftmaxWithLoss(4, 6, [2, 4], div_value=2.0),
                                   lambda: (_r(5, 4), graphc.tensor([0, 1, 2, 3, 5]))),
}
for _d in (1, 2, 3):  # the first call of a lazy module initializes it (and removes its hook: a break)
    BREAK_CASES[f"LazyBatchNorm{_d}d"] = ((lambda d=_d: getattr(nn, f"LazyBatchNorm{d}d")()),
                                         (lambda d=_d: (_r(3, 2, *([3] * d)),)))
    BREAK_CASES[f"LazyInstanceNorm{_d}d"] = ((lambda d=_d: getattr(nn, f"LazyInstanceNorm{d}d")()),
                                            (lambda d=_d: (_r(3, 2, *([3] * d)),)))
BREAKS = set(BREAK_CASES)


def test_every_nn_module_class_is_covered():
    import inspect
    classes = {n for n in dir(nn) if inspect.isclass(getattr(nn, n)) and issubclass(getattr(nn, n), nn.Module)}
    covered = {k.split("-")[0] for k in list(LAYERS) + list(LOSSES)} | RANDOM | STRUCTURAL | BREAKS
    assert not classes - covered, f"nn layers without a compiled-vs-eager case: {sorted(classes - covered)}"


def _compare(factory, make_inputs, train: bool):
    graphc.manual_seed(0)
    eager_m = factory().double()
    compiled_src = copy.deepcopy(eager_m)
    eager_m.train(train)
    compiled_src.train(train)
    compiled = graphc.compile(compiled_src, fullgraph=True)
    xs_e = [x.clone().requires_grad_(x.dtype.is_floating_point) for x in make_inputs()]
    xs_c = [x.detach().clone().requires_grad_(x.dtype.is_floating_point) for x in xs_e]
    out_e, out_c = _leaves(eager_m(*xs_e)), _leaves(compiled(*xs_c))
    assert len(out_e) == len(out_c)
    for a, b in zip(out_e, out_c):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-9, atol=1e-12)
    weights = [_r(*o.shape, seed=9) for o in out_e]
    diff_e = [(o * w).sum() for o, w in zip(out_e, weights) if o.requires_grad]
    diff_c = [(o * w).sum() for o, w in zip(out_c, weights) if o.requires_grad]
    if diff_e:
        sum(diff_e).backward()
        sum(diff_c).backward()
    for a, b in zip(xs_e, xs_c):
        if a.grad is not None or b.grad is not None:
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), (_, q) in zip(eager_m.named_parameters(), compiled_src.named_parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    for (name, a), (_, b) in zip(eager_m.named_buffers(), compiled_src.named_buffers()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_layer_compiled_equals_eager(name, train):
    _compare(*LAYERS[name], train)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_compiled_equals_eager(name):
    _compare(*LOSSES[name], True)


@pytest.mark.parametrize("name", sorted(BREAK_CASES))
def test_layers_with_a_graph_break_fall_back_and_equal_eager(name):
    factory, make_inputs = BREAK_CASES[name]
    graphc.manual_seed(0)
    m = factory().double()
    xs = make_inputs()
    with pytest.warns(UserWarning, match="graph break"):
        got = _leaves(graphc.compile(m)(*xs))
    expected = _leaves(m(*xs))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.FeatureAlphaDropout])
def test_dropout_compiles_and_draws_fresh_masks(cls):
    m = cls(0.5)
    cm = graphc.compile(m, fullgraph=True)
    x = graphc.ones(8, 4, 6)
    a, b = cm(x), cm(x)
    assert not graphc.equal(a, b)  # a new key every call
    m.eval()
    assert graphc.equal(cm(x), x)  # identity in eval mode (a recompile on the training flag)
