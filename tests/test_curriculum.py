"""Curriculum: stage schedules under each budget, logit masking, dataloader reload at the boundary,
equal images seen between `none` and `five_then_all` under budget=images."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from asl import LETTERS, ASLError
from asl.data.sampling import repeat_to
from asl.lit.curriculum import make_plan, resolve_budget, setup_curriculum
from asl.runs.train import build_datamodule, build_module
from tests.conftest import CONFIG_PATH, TINY_TRAIN

FIVE_THEN_ALL = {"order": "alphabetical", "stages": [{"classes": 5, "fraction": 0.3}, {"classes": "all"}]}
ALL = list(range(24))


def plan(budget, curriculum=FIVE_THEN_ALL, max_epochs=10, train_images=240, batch_size=16, seed=0):
    return make_plan(curriculum, budget, list(LETTERS), max_epochs, train_images, batch_size, seed)


def test_schedule_by_epochs():
    p = plan({"unit": "epochs", "size": None})
    assert (p.epochs, p.epoch_images) == (10, None)
    assert [p.active_at(e) for e in (0, 2)] == [[0, 1, 2, 3, 4]] * 2 and p.active_at(3) == ALL
    counts = np.full(24, 10)  # 10 training images per class, batches of 16 (last partial batch dropped)
    assert p.total_steps(counts) == 3 * (50 // 16) + 7 * (240 // 16)
    with pytest.raises(ValueError):
        p.active_at_step(0)
    assert plan({"unit": "epochs", "size": 4}).epochs == 4


def test_schedule_by_images_and_steps():
    p = plan({"unit": "images", "size": None})  # 10 passes over 240 images = 150 steps of 16
    assert (p.epochs, p.epoch_images) == (10, 240)
    assert p.active_at_step(44) == [0, 1, 2, 3, 4] and p.active_at_step(45) == ALL
    assert p.total_steps(np.zeros(24)) == 150
    p = plan({"unit": "images", "size": 1000})  # 62 steps: 4 epochs of 15 steps (≤ the budget, equal for every curriculum)
    assert (p.epochs, p.epoch_images) == (4, 240) and p.stages[1].start_epoch == 1
    p = plan({"unit": "steps", "size": 100})
    assert (p.epochs, p.epoch_images) == (7, 14 * 16) and p.stages[1].start_epoch == 2
    assert resolve_budget({"unit": "steps", "size": 100}, 10, 240, 16) == resolve_budget({"unit": "images", "size": 1600}, 10, 240, 16)


def test_stage_classes_orders_and_errors():
    random = {"order": "random", "seed": 3, "stages": [{"classes": 5, "fraction": 0.5}, {"classes": "all"}]}
    first = plan({"unit": "epochs"}, random).stages[0].classes
    assert first == plan({"unit": "epochs"}, random).stages[0].classes and first != [0, 1, 2, 3, 4]
    explicit = {"order": ["Y", "V", "L"], "stages": [{"classes": 2, "fraction": 0.2},
                                                     {"classes": ["A", "B"], "fraction": 0.3}, {"classes": "all"}]}
    p = plan({"unit": "epochs"}, explicit)
    names = [[LETTERS[c] for c in s.classes] for s in p.stages]
    assert names[:2] == [["V", "Y"], ["A", "B"]] and [s.start_epoch for s in p.stages] == [0, 2, 5]
    assert plan({"unit": "epochs"}, {"stages": []}).stages[0].classes == ALL
    for bad, match in [
        ({"stages": [{"classes": 30, "fraction": 0.5}, {"classes": "all"}]}, "30 classes"),
        ({"stages": [{"classes": ["Z"], "fraction": 0.5}, {"classes": "all"}]}, "'Z' is not one of"),
        ({"stages": [{"classes": 5, "fraction": 0.8}, {"classes": 6, "fraction": 0.5}]}, "more than the whole budget"),
        ({"stages": [{"classes": 5}, {"classes": "all"}]}, "needs its share"),
        ({"order": "size", "stages": [{"classes": 5, "fraction": 0.5}, {"classes": "all"}]}, "curriculum.order"),
    ]:
        with pytest.raises(ASLError, match=match):
            plan({"unit": "epochs"}, bad)
    with pytest.raises(ASLError, match="budget.unit"):
        plan({"unit": "hours"})
    with pytest.raises(ASLError, match="at least as many epochs"):
        plan({"unit": "epochs", "size": 1})


def tiny_setup(curriculum: str, tmp_path):
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=[*TINY_TRAIN, f"curriculum={curriculum}", "budget.unit=images",
                                          "trainer.max_epochs=3", "data.batch_size=8", f"paths.output_dir={tmp_path}"])
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    dm.prepare_data()
    dm.setup("fit")
    return cfg, dm, module, kwargs


class Record(pl.Callback):
    """Labels of every training batch, per epoch, and the module's mask at each batch."""

    def __init__(self):
        self.labels: dict[int, set[int]] = {}
        self.mask_ok = True

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        y = batch[1]
        self.labels.setdefault(trainer.current_epoch, set()).update(y.tolist())
        self.mask_ok &= bool(pl_module.active_mask[y].all())


def fit(curriculum: str, tmp_path):
    pl.seed_everything(0)
    cfg, dm, module, kwargs = tiny_setup(curriculum, tmp_path)
    callback, p = setup_curriculum(cfg, dm, module, kwargs)
    record = Record()
    kwargs.update(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = pl.Trainer(**kwargs, callbacks=[callback, record])
    trainer.fit(module, datamodule=dm)
    return p, record, int(module.images_seen), module, dm


@pytest.mark.slow
def test_reload_at_boundary_and_equal_images(tmp_path):
    p, record, seen, module, dm = fit("five_then_all", tmp_path / "a")
    assert [s.start_epoch for s in p.stages] == [0, 1] and p.epoch_images == 48  # 48 training images of 24 letters
    assert record.labels[0] <= {0, 1, 2, 3, 4} and len(record.labels[2]) > 5
    assert record.mask_ok
    assert seen == 3 * 48
    assert len(dm.val_dataloader().dataset) == int((dm.splits == "val").sum())  # validation: all classes
    p0, record0, seen0, *_ = fit("none", tmp_path / "b")
    assert seen0 == seen and len(record0.labels[0]) > 5


def test_inactive_classes_get_zero_probability(tmp_path):
    _, _, module, _ = tiny_setup("none", tmp_path)
    module.set_active_classes([0, 3, 7])
    logits = module.masked_logits(torch.randn(6, 24))
    probs = logits.softmax(-1)
    inactive = [c for c in range(24) if c not in (0, 3, 7)]
    assert torch.all(probs[:, inactive] == 0) and torch.allclose(probs.sum(-1), torch.ones(6))
    assert set(logits.argmax(-1).tolist()) <= {0, 3, 7}
    y = torch.tensor([0, 3, 7, 0, 3, 7])
    expected = torch.nn.functional.cross_entropy(logits[:, [0, 3, 7]], torch.tensor([0, 1, 2, 0, 1, 2]))
    assert torch.isclose(module.loss(logits, y), expected)


def test_repeat_to_balances_a_short_dataset(tmp_path):
    _, dm, _, _ = tiny_setup("none", tmp_path)
    ds = dm.dataset("train")
    big = repeat_to(ds, 3 * len(ds) + 5, seed=0)
    assert len(big) == 3 * len(ds) + 5
    counts = np.bincount(np.searchsorted(np.sort(ds.indices), big.indices))
    assert set(counts.tolist()) <= {3, 4}
