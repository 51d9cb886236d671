"""data.device_transforms: kornia augmentation of whole training batches on the training device."""

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from asl import ASLError
from asl.data.transforms import DeviceAugment, build_pipeline

from .conftest import CONFIG_PATH, classifier, datamodule
from .test_reproduce import RUN, comparable
from .test_reproduce import train_in_process as train_metrics


def device_recipe() -> list[dict]:
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=["data/augment=device"])
    assert list(cfg.data.train_transforms) == []  # the workers no longer augment
    return list(cfg.data.device_transforms)


def test_the_shipped_recipe_draws_per_image_keeps_uint8_and_repeats_with_the_seed():
    aug = DeviceAugment(device_recipe())
    x = torch.full((8, 3, 32, 32), 200, dtype=torch.uint8)
    x[:, 0, 8:24, 10:20] = 40  # the same picture eight times
    torch.manual_seed(0)
    first = aug(x)
    torch.manual_seed(0)
    assert torch.equal(aug(x), first)
    assert first.dtype == torch.uint8 and first.shape == x.shape
    distinct = {first[i].numpy().tobytes() for i in range(8)}
    assert len(distinct) >= 6, "images of one batch should get their own random draws"
    assert (first != x).any(dim=(1, 2, 3)).sum() >= 6


def test_training_batches_are_augmented_after_transfer_and_validation_batches_are_not(photo_folder, tmp_path):
    dm = datamodule(root=str(photo_folder), classes="ABC", image_size=32, batch_size=4,
                       split={"fractions": [0.5, 0.25, 0.25]}, train_transforms=[], device_transforms=device_recipe(),
                       cache_dir=str(tmp_path / "cache"), audit=False)
    dm.setup()
    raw_train = next(iter(dm.train_dataloader()))  # epoch 0's first batch, before the device step
    raw_val = next(iter(dm.val_dataloader()))
    seen = {}

    class Capture(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault("train", batch)

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.setdefault("val", batch)

    module = classifier({"name": "small_cnn"}, dm.classes, image_size=32)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[Capture()], accelerator="cpu")
    trainer.fit(module, datamodule=dm)
    x, y = seen["train"]
    assert torch.equal(y, raw_train[1]) and x.dtype == torch.uint8
    assert not torch.equal(x, raw_train[0])
    assert torch.equal(seen["val"][0], raw_val[0])


def test_a_run_with_device_augmentation_crashed_and_resumed_equals_the_uninterrupted_run(tmp_path):
    """kornia draws from torch's generator, which EpochSeed reseeds each epoch: resuming repeats the draws."""
    run_cfg = [*RUN, "trainer.max_epochs=3", "data/augment=device"]
    full = train_metrics(run_cfg, tmp_path / "full")
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="crash at epoch 2"):
        train_metrics([*run_cfg, "+callbacks.crash._target_=tests.test_reproduce.CrashAtEpoch", "+callbacks.crash.epoch=2"], run)
    assert comparable(train_metrics([*run_cfg, "ckpt_path=last"], run)) == comparable(full)


def test_bad_device_transforms_name_the_key(photo_folder):
    with pytest.raises(ASLError, match="data.device_transforms: cannot build kornia.augmentation.RandomNope"):
        datamodule(root=str(photo_folder), device_transforms=[{"_target_": "kornia.augmentation.RandomNope"}])
    with pytest.raises(ASLError, match="data.device_transforms: albumentations.Affine is not a kornia augmentation"):
        datamodule(root=str(photo_folder), device_transforms=[{"_target_": "albumentations.Affine"}])
    with pytest.raises(ASLError, match="kornia.augmentation.RandomAffine is not an albumentations transform"):
        build_pipeline(device_recipe(), 32)  # the two lists swapped
    with pytest.raises(ASLError, match="data.device_transforms: this model reads landmarks only"):
        datamodule(root=str(photo_folder), inputs="landmarks", device_transforms=device_recipe())

