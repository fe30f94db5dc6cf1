"""graphc.utils.tensorboard.SummaryWriter, read back with TensorBoard's own event reader."""
import glob
import io
import os

import numpy as np
import pytest

pytest.importorskip("tensorboard")  # an optional extra (in .[dev]); without it the module says how to install it

import graphc as torch
import graphc.nn as nn
from graphc.utils.tensorboard import SummaryWriter
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def _reader(path) -> EventAccumulator:
    ea = EventAccumulator(str(path), size_guidance={"images": 0, "histograms": 0, "tensors": 0, "scalars": 0})
    ea.Reload()
    return ea


def test_scalars_histogram_image_text(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalar("loss", torch.tensor(1.0 / (step + 1)), step)
        w.add_scalar("lr", 0.5, global_step=7)
        w.add_histogram("weights", torch.from_numpy(values), 0)
        w.add_histogram("counts", np.arange(10), 1, bins=5)
        chw = torch.zeros(3, 4, 6)
        chw[0, :, :3] = 1.0  # left half red
        w.add_image("img", chw, 2)
        w.add_image("gray_hwc", np.full((5, 7, 1), 128, np.uint8), dataformats="HWC")
        w.add_images("batch", torch.rand(5, 1, 4, 4), 0)
        w.add_text("notes", "hello **tensorboard**", 3)
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) == 1
    ea = _reader(tmp_path)
    loss = ea.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in loss], [1.0, 0.5, 1 / 3], rtol=1e-6)
    assert ea.Scalars("lr")[0].step == 7 and ea.Scalars("lr")[0].value == 0.5

    h = ea.Histograms("weights")[0].histogram_value
    assert h.num == 1000 and sum(h.bucket) == 1000
    np.testing.assert_allclose([h.min, h.max, h.sum], [values.min(), values.max(), values.astype(np.float64).sum()],
                               rtol=1e-5)
    counts = ea.Histograms("counts")[0].histogram_value
    assert list(counts.bucket) == [2, 2, 2, 2, 2] and counts.max == 9

    from PIL import Image
    img = ea.Images("img")[0]
    assert (img.step, img.height, img.width) == (2, 4, 6)
    pixels = np.asarray(Image.open(io.BytesIO(img.encoded_image_string)))
    assert pixels.shape == (4, 6, 3)
    assert (pixels[:, :3] == [255, 0, 0]).all() and (pixels[:, 3:] == 0).all()
    gray = np.asarray(Image.open(io.BytesIO(ea.Images("gray_hwc")[0].encoded_image_string)))
    assert gray.shape == (5, 7) and (gray == 128).all()
    batch = ea.Images("batch")[0]
    assert (batch.height, batch.width) == (8, 12)  # 5 images in a 3-column grid of 2 rows

    text = ea.Tensors("notes/text_summary")[0]
    assert text.step == 3 and text.tensor_proto.string_val[0].decode() == "hello **tensorboard**"
    assert ea.SummaryMetadata("notes/text_summary").plugin_data.plugin_name == "text"


def test_add_scalars_writes_one_run_per_curve(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(2):
            w.add_scalars("acc", {"train": 0.5 + step, "test": 0.25 * step}, step)
    train = _reader(tmp_path / "acc_train").Scalars("acc")
    test = _reader(tmp_path / "acc_test").Scalars("acc")
    assert [e.value for e in train] == [0.5, 1.5] and [e.value for e in test] == [0.0, 0.25]


def test_hparams(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2
    with SummaryWriter(tmp_path) as w:
        w.add_hparams({"lr": 0.01, "optimizer": "adam", "amsgrad": True, "layers": 3}, {"hparam/accuracy": 0.9},
                      run_name="run1")
    ea = _reader(tmp_path / "run1")
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.01 and start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["amsgrad"].bool_value is True and start.hparams["layers"].number_value == 3
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {h.name for h in exp.hparam_infos} == {"lr", "optimizer", "amsgrad", "layers"}
    assert [m.name.tag for m in exp.metric_infos] == ["hparam/accuracy"]
    assert ea.Scalars("hparam/accuracy")[0].value == pytest.approx(0.9)


def test_add_graph_draws_the_traced_ir(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with SummaryWriter(tmp_path) as w:
        w.add_graph(model, torch.randn(3, 4))
    gd = _reader(tmp_path).Graph()
    nodes = {n.name: n for n in gd.node}
    assert {"input/x0", "0/weight", "0/bias", "2/weight", "2/bias", "output/output.0"} <= set(nodes)
    linear0 = [n for n in gd.node if n.name.startswith("0/linear_")]
    relu = [n for n in gd.node if n.op == "relu"]
    assert len(linear0) == 1 and len(relu) == 1
    assert list(linear0[0].input) == ["input/x0", "0/weight", "0/bias"]
    assert list(relu[0].input) == [linear0[0].name]
    assert nodes["0/weight"].op == "Parameter"
    assert [d.size for d in linear0[0].attr["_output_shapes"].list.shape[0].dim] == [3, 8]
    assert b"= composite(" in linear0[0].attr["attr"].s


def test_default_log_dir_purge_step_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_exp", purge_step=5)
    assert w.get_logdir().startswith("runs" + os.sep) and w.get_logdir().endswith("_exp")
    w.close()
    assert glob.glob(os.path.join(w.get_logdir(), "events.out.tfevents.*"))
    with pytest.raises(RuntimeError, match="closed"):
        w.add_scalar("x", 1.0)
    with SummaryWriter(tmp_path / "e") as w2:
        with pytest.raises(ValueError, match="dataformats"):
            w2.add_image("bad", np.zeros((4, 4)), dataformats="CHW")
        with pytest.raises(ValueError, match="one element"):
            w2.add_scalar("bad", torch.ones(2))


def test_digits_example_logs_loss_and_accuracy(tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    import digits_classifier  # needs scikit-learn, which the dev extra installs
    acc = digits_classifier.main(["--model", "mlp", "--epochs", "2", "--batch-size", "512", "--quiet",
                                  "--tensorboard", str(tmp_path)])
    curves = {(what, split): _reader(tmp_path / f"{what}_{split}").Scalars(what)
              for what in ("loss", "accuracy") for split in ("train", "test")}
    for (what, split), events in curves.items():
        assert [e.step for e in events] == [1, 2], (what, split)
    assert curves["accuracy", "test"][-1].value == pytest.approx(acc)
    assert all(0.0 <= e.value <= 1.0 for e in curves["accuracy", "train"])
    assert curves["loss", "test"][1].value < curves["loss", "test"][0].value  # it learns
