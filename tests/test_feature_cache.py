"""Cached frozen features (model.cache_features): exact logits, only the head trains, a new weights file
computes new features while the same one reuses them, and ``auto`` says why it declines."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torchvision

from asl import ASLError
from asl.lit import features as feature_cache
from asl.lit.datamodule import ImageDataset
from asl.lit.features import use_cached_features
from asl.lit.module import load_classifier

from .conftest import TINY_TRAIN, classifier, datamodule, train_in_process

FROZEN = {"name": "small_cnn", "widths": [8, 8, 16, 16, 16], "trainable_stages": 0, "channels_last": True,
          "cache_features": "auto"}


def frozen_datamodule(root: Path, cache_dir: Path | None, **data):
    dm = datamodule(root=str(root), image_size=32, train_transforms=[], audit=False, batch_size=16,
                    cache=cache_dir is not None, cache_dir=str(cache_dir) if cache_dir else None, **data)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("cached", [True, False], ids=["cache_dir", "in_memory"])
def test_cached_features_give_the_networks_logits_and_only_the_head_trains(tiny_synthetic, tmp_path, cached):
    dm = frozen_datamodule(tiny_synthetic, tmp_path / "cache" if cached else None)
    module = classifier(FROZEN, dm.classes, image_size=32)
    assert use_cached_features(module, dm) and module.fed_features
    module.eval()
    fed = dm.dataset("test")
    photos = ImageDataset(dm.store, fed.indices, fed.labels, dm.eval_tf, None, dm.spec)
    with torch.no_grad():
        from_features = module.logits(torch.stack([fed[i][0] for i in range(len(fed))]))
        from_images = module(torch.stack([photos[i][0] for i in range(len(photos))]))
    torch.testing.assert_close(from_features, from_images, atol=1e-5, rtol=0)

    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(module, datamodule=dm)
    changed = {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith("net.head.") for k in changed - {"images_seen"}), changed


def test_a_new_weights_file_computes_new_features_the_same_one_reuses_them(tiny_synthetic, tmp_path, monkeypatch):
    dm = frozen_datamodule(tiny_synthetic, tmp_path / "cache")
    computed = []
    compute = feature_cache._compute
    monkeypatch.setattr(feature_cache, "_compute", lambda *a: computed.append(1) or compute(*a))
    weights = tmp_path / "mobilenet_v2.pth"

    def features_from(seed: int) -> Path:
        torch.manual_seed(seed)
        torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), weights)  # one path, new content
        module = classifier({"name": "mobilenet_v2", "weights_path": str(weights), "trainable_stages": 0,
                             "cache_features": "auto"}, dm.classes, image_size=32)
        assert use_cached_features(module, dm)
        return Path(dm.features.filename)

    first = features_from(0)
    written = first.stat().st_mtime_ns
    assert features_from(0) == first and first.stat().st_mtime_ns == written and len(computed) == 1
    other = features_from(1)
    assert other.parent != first.parent and len(computed) == 2
    assert not np.array_equal(dm.features[dm.store_index], np.load(first)[dm.store_index])
    assert json.loads((other.parent / "meta.json").read_text())["images"] == dm.store.folder.name
    assert not list(other.parent.parent.glob("features-*.tmp*"))  # written atomically: no temporary folder left


def test_auto_declines_and_says_why(tmp_path, caplog):
    flip = [{"_target_": "albumentations.HorizontalFlip", "p": 0.5}]
    plain, flipped = (datamodule(root=str(tmp_path), image_size=32, train_transforms=tf, cache=False)  # no data read
                      for tf in ([], flip))
    cases = {
        "data.train_transforms: random augmentation every epoch": (FROZEN, flipped),
        "model.trainable_stages=1: backbone stages train": ({**FROZEN, "trainable_stages": 1}, plain),
        "model.unfreeze_at_epoch: backbone stages train later": ({**FROZEN, "unfreeze_at_epoch": 2}, plain),
    }
    caplog.set_level(logging.INFO, logger="asl.lit.features")
    for reason, (model, data) in cases.items():
        caplog.clear()
        module = classifier(model, data.classes, image_size=32)
        assert not use_cached_features(module, data) and not module.fed_features and data.features is None
        assert [r.getMessage() for r in caplog.records] == [f"model.cache_features=auto: not used ({reason})"]
    caplog.clear()
    assert not use_cached_features(classifier({**FROZEN, "cache_features": False}, plain.classes, image_size=32), plain)
    assert not caplog.records  # off: nothing to explain
    with pytest.raises(ASLError, match="model.cache_features: expected auto or false, got 'yes'"):
        classifier({**FROZEN, "cache_features": "yes"}, plain.classes, image_size=32)


def test_asl_train_fits_the_head_on_cached_features_and_saves_a_whole_model(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="asl.lit.features")
    run = train_in_process(tmp_path / "run", [*TINY_TRAIN, "logger=none", "model.trainable_stages=0", "data.train_transforms=[]",
                                              "+model.cache_features=auto", "model.widths=[8,8,16,16,16]"])
    assert any("the head trains on cached frozen features" in r.getMessage() for r in caplog.records)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_images"] > 0 and metrics["best_checkpoint"]
    module = load_classifier(metrics["best_checkpoint"])  # an ordinary checkpoint: the whole network, on photos
    assert not module.fed_features and module(torch.zeros(2, 3, 32, 32)).shape == (2, 24)
