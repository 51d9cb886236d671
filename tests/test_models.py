"""Backbones through the one registry: the model protocol, shapes, trainable stages, frozen BatchNorm,
offline weights."""

import pytest
import torch
import torchvision

from asl import ASLError
from asl.hands.features import INPUT_DIM
from asl.models import ASLModel, available_models, create_model
from asl.models.torchvision import resolve_weights, torchvision_names, weights_cache_file

from .conftest import classifier, datamodule

# (name, input size small enough for CPU tests, number of stages)
BACKBONES = [("small_cnn", 32, 5), ("vgg16", 32, 5), ("vgg16_bn", 32, 5), ("resnet18", 32, 5), ("resnet34", 32, 5),
             ("resnet50", 32, 5), ("mobilenet_v2", 32, 5), ("efficientnet_lite0", 32, 5)]

TINY_CNN = {"name": "small_cnn", "widths": [4, 4, 8, 8, 8]}
# Every model registered outside torchvision, at a tiny size; then one torchvision model per way of splitting.
TINY = {
    "small_cnn": {"widths": [4, 4, 8, 8, 8], "input_size": 32},
    "landmark_mlp": {"hidden": [16]},
    "fusion": {"input_size": 32, "image": TINY_CNN, "landmarks": {"hidden": [16]}},
    "efficientnet_lite0": {"input_size": 32},
    "resnet18": {"input_size": 32},
    "vgg11": {"input_size": 32},
    "mobilenet_v2": {"input_size": 32},
}


def test_every_own_model_is_in_the_protocol_test():
    assert set(available_models()) - set(torchvision_names()) <= set(TINY)
    assert {"resnet50", "convnext_tiny", "mobilenet_v3_small"} <= set(available_models())


def tiny_input(name):
    images, lm = torch.randn(2, 3, 32, 32), torch.rand(2, INPUT_DIM)
    return {"landmark_mlp": lm, "fusion": (images, lm)}.get(name, images)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_model_follows_the_protocol(name):
    m = create_model(name, 5, **TINY[name])
    assert isinstance(m, ASLModel) and isinstance(m.stages, torch.nn.ModuleList) and m.pretrained_bn is None
    assert m(tiny_input(name)).shape == (2, 5)
    m.forward_features(tiny_input(name))
    m.set_trainable_stages(0)
    assert m.trainable_stages == 0
    head = {id(p) for p in m.head.parameters()}
    assert {id(p) for p in m.parameters() if p.requires_grad} == head
    m.train()
    assert all(not bn.training for bn in m.modules() if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm))
    m.set_trainable_stages("all")
    assert m.trainable_stages == len(m.stages) and all(p.requires_grad for p in m.parameters())


@pytest.mark.parametrize("name,size,stages", BACKBONES)
def test_output_shape(name, size, stages):
    m = create_model(name, 24, input_size=size)
    assert len(m.stages) == stages
    assert m(torch.zeros(2, 3, size, size)).shape == (2, 24)


def trainable_names(m):
    return {n for n, p in m.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name,size,stages", BACKBONES)
def test_trainable_stages_exact_sets(name, size, stages):
    m = create_model(name, 24, input_size=size, trainable_stages=0)
    assert trainable_names(m) == {n for n, _ in m.named_parameters() if n.startswith("head.")}
    m.set_trainable_stages(1)
    last = f"stages.{stages - 1}."
    assert trainable_names(m) == {n for n, _ in m.named_parameters() if n.startswith(("head.", last))}
    m.set_trainable_stages("all")
    assert trainable_names(m) == {n for n, _ in m.named_parameters()}


def test_frozen_weights_and_batchnorm_stay_put():
    m = create_model("resnet18", 24, input_size=32, trainable_stages=1, head={"type": "linear"})
    m.train()
    frozen_bn = m.stages[0][1]
    assert not frozen_bn.training and m.stages[4][0].bn1.training
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    stats = frozen_bn.running_mean.clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(m(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    for n, p in m.named_parameters():
        changed = not torch.equal(before[n], p)
        assert changed == (n.startswith(("head.", "stages.4."))), n
    assert torch.equal(stats, frozen_bn.running_mean)


def test_mlp_head_reproduces_keras_layout():
    m = create_model("vgg16", 24, input_size=64, head={"type": "mlp", "pool": "flatten", "hidden": 512, "dropout": 0.5})
    kinds = [type(x).__name__ for x in m.head]
    assert kinds == ["Dropout", "Flatten", "Dropout", "Linear", "ReLU", "Linear"]
    assert m.head[3].in_features == 512 * 2 * 2 and m.head[5].out_features == 24


def test_pretrained_weights_missing_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = weights_cache_file(resolve_weights("resnet18", "imagenet"))
    assert expected.parent == tmp_path / "hub" / "checkpoints"
    with pytest.raises(ASLError, match=rf"{expected.name} is not in the torch cache.*Copy it to {expected}"):
        create_model("resnet18", 24, pretrained="imagenet", input_size=32)


def test_pretrained_weights_load_from_torch_home_cache(tmp_path, monkeypatch):
    """The cache path, with a (random) weights file the test writes itself: no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.resnet18(weights=None)
    path = weights_cache_file(resolve_weights("resnet18", "imagenet"))
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    m = create_model("resnet18", 24, pretrained="imagenet", input_size=32)
    assert torch.equal(m.stages[1][0].conv1.weight, reference.layer1[0].conv1.weight)
    # and from an explicit file
    m2 = create_model("resnet18", 24, weights_path=str(path), input_size=32)
    assert torch.equal(m2.stages[0][0].weight, reference.conv1.weight)


def test_wrong_weights_file_and_unknown_names(tmp_path):
    bad = tmp_path / "vgg.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), bad)
    with pytest.raises(ASLError, match="is not a vgg11 state dict"):
        create_model("vgg11", 24, weights_path=str(bad), input_size=32)
    with pytest.raises(ASLError, match=r"unknown backbone 'resnet9000' \(closest: resnet\d+"):
        create_model("resnet9000", 24)
    with pytest.raises(ASLError, match=r"unexpected option\(s\) \['depth'\] for model resnet18"):
        create_model("resnet18", 24, depth=3)
    with pytest.raises(ASLError, match="trainable_stages must be 0..5"):
        create_model("small_cnn", 24, trainable_stages=7)


def tiny_datamodule(root, size=32):
    dm = datamodule(root=str(root), image_size=size, batch_size=16, split={"fractions": [0.5, 0.25, 0.25]})
    dm.setup()
    return dm


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "resnet18"])
def test_one_epoch_fit_on_tiny_synthetic(name, tiny_synthetic):
    import pytorch_lightning as pl

    dm = tiny_datamodule(tiny_synthetic)
    module = classifier(model={"name": name, "trainable_stages": 1, "head": {"type": "linear"}}, class_names=dm.classes,
                           image_size=32)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm, verbose=False)
    assert module.test_results["num_images"] == 24 and 0 <= module.test_results["test/acc"] <= 1


def test_gradual_unfreezing_and_backbone_lr(tiny_synthetic, caplog):
    import logging
    from unittest import mock

    module = classifier(model={"name": "small_cnn", "trainable_stages": 0, "unfreeze_at_epoch": {1: 2, 3: "all"},
                                  "backbone_lr_mult": 0.1}, class_names=list("ABC"), image_size=32,
                           optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.5})
    assert module.net.trainable_stages == 0
    for epoch, expected in ((0, 0), (1, 2), (2, 2), (3, 5)):
        with mock.patch.object(type(module), "current_epoch", new_callable=mock.PropertyMock, return_value=epoch), \
                caplog.at_level(logging.INFO, logger="asl"):
            module.on_train_epoch_start()
        assert module.net.trainable_stages == expected
    # through asl's logger, so that the run's train.log records when each stage began to train
    assert [r.getMessage() for r in caplog.records if r.name == "asl.lit.module"] == [
        "epoch 1: training the last 2 backbone stage(s)", "epoch 3: training the last 5 backbone stage(s)"]
    opt = module.configure_optimizers()
    head_group, backbone_group = opt.param_groups
    assert head_group["lr"] == 0.5 and backbone_group["lr"] == pytest.approx(0.05)
    assert {id(p) for p in head_group["params"]} == {id(p) for p in module.net.head.parameters()}


def test_adapt_batchnorm_takes_the_new_photos_statistics_and_keeps_the_weights():
    """AdaBN: running statistics become the new data's (each layer after the previous one adapted);
    learned weights stay; a model without BatchNorm is told so in one line."""
    from torch import nn

    from asl.models.batchnorm import adapt_batchnorm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(4))
    weights = [p.clone() for p in model.parameters()]
    new = torch.randn(320, 3) * 2 + 5  # another setting, five equal batches (the average is per batch)
    batches = [new[i:i + 64] for i in range(0, 320, 64)] + [new[:1]]  # a batch of one is skipped
    assert adapt_batchnorm(model, batches) == 2 and not model.training
    with torch.no_grad():
        h = model[0](new)
        torch.testing.assert_close(model[1].running_mean, h.mean(0), atol=1e-4, rtol=0)
        per_batch_var = torch.stack([h[i:i + 64].var(0) for i in range(0, 320, 64)]).mean(0)
        torch.testing.assert_close(model[1].running_var, per_batch_var, atol=1e-4, rtol=1e-4)
        z = model[2](model[1](h))  # the second BatchNorm measured what the adapted first one gives (normalised
        torch.testing.assert_close(model[4].running_mean, z.mean(0), atol=0.02, rtol=0)  # by batch statistics then)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters(), strict=True))
    assert model[1].momentum == 0.1
    with pytest.raises(ASLError, match="adapt_bn: this model has no BatchNorm"):
        adapt_batchnorm(nn.Linear(3, 2), batches)
