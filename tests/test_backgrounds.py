"""Background randomisation: key-colour masks, compositing, determinism, held-out families, reports."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from asl import LETTERS, ASLError
from asl.data import synthetic
from asl.data.backgrounds import FAMILIES, BackgroundComposite, composite, render_background
from asl.data.masks import key_colour_mask
from asl.data.transforms import build_pipeline
from asl.runs.evaluate import background_shift

from .conftest import CONFIG_PATH, TINY_TRAIN, datamodule, make_photo_folder, train_in_process

KEYS = {"black": (0, 0, 0), "white": (255, 255, 255), "green": (0, 177, 64)}


def hands_on(colour: tuple[int, int, int], count: int = 24, size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic hands (one per letter) pasted onto a pure backdrop, with their true masks."""
    rng = np.random.default_rng(1)
    out = []
    for letter in LETTERS[:count]:
        img, mask, _ = synthetic.render(letter, rng, size)
        fg = (mask > 127)[..., None]
        out.append((np.where(fg, img, np.array(colour, np.uint8)).astype(np.uint8), mask))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 127, b > 127
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("colour", sorted(KEYS))
def test_key_colour_masks_match_the_true_masks(colour):
    scores = [iou(key_colour_mask(img, colour), mask) for img, mask in hands_on(KEYS[colour])]
    assert min(scores) >= 0.95, (colour, min(scores))


def test_key_masks_are_computed_once_into_the_cache(tmp_path):
    root = tmp_path / "black"
    for i, (img, _) in enumerate(hands_on(KEYS["black"], count=6, size=32)):
        letter = "ABC"[i % 3]
        (root / letter).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / letter / f"{i}.png")
    dm = datamodule(root=str(root), classes="ABC", image_size=32, masks="key_black", cache_dir=str(tmp_path / "c"),
                       split={"fractions": [0.5, 0.0, 0.5]}, audit=False)
    dm.setup()
    assert (dm.store.folder / "masks.npy").exists()
    img = dm.store.image(0)
    assert np.array_equal(dm.store.mask(0), key_colour_mask(img, "black"))
    with pytest.raises(ASLError, match="data.masks=files"):
        datamodule(root=str(root), classes="ABC", image_size=32, masks="files", cache=False, audit=False).setup()
    with pytest.raises(ASLError, match="data.masks"):
        datamodule(root=str(root), classes="ABC", image_size=32, masks="blue", cache=False, audit=False).setup()


def test_compositing_keeps_the_hand_pixels_beyond_the_feathered_edge():
    img, mask, _ = synthetic.render("B", np.random.default_rng(0), 64)
    bg = render_background("clutter", np.random.default_rng(1), 64, 64)
    out = composite(img, mask, bg, feather=1.5)
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 127  # 4 px inside: past 2 sigma (3 px) of feathering
    assert np.array_equal(out[inner], img[inner])
    outer = cv2.dilate(mask, np.ones((9, 9), np.uint8)) <= 127
    assert np.array_equal(out[outer], bg[outer])
    # the transform itself, keeping the hand in place: same guarantee
    t = A.Compose([BackgroundComposite(scale=None, feather=1.5)], seed=0)
    for _ in range(5):
        res = t(image=img, mask=mask)
        assert np.array_equal(res["image"][inner], img[inner])
        assert np.array_equal(res["mask"], mask)


def test_replaced_hand_keeps_its_shape_and_stays_in_the_canvas():
    img, mask, _ = synthetic.render("L", np.random.default_rng(0), 64)
    t = A.Compose([BackgroundComposite(scale=(0.3, 0.6))], seed=0)
    for _ in range(10):
        m = t(image=img, mask=mask)["mask"]
        ys, xs = np.nonzero(m)
        side = max(np.ptp(xs), np.ptp(ys)) + 1
        assert 0.25 * 64 <= side <= 0.65 * 64


def test_extend_arm_draws_a_forearm_to_the_bottom_edge():
    img, mask, _ = synthetic.render("A", np.random.default_rng(0), 48)
    mask[40:] = 0  # a hand cut at the wrist, touching the bottom edge
    mask[40:, 20:28] = 255
    t = A.Compose([BackgroundComposite(scale=(0.3, 0.5), extend_arm=True)], seed=0)
    for _ in range(5):
        m = t(image=img, mask=mask)["mask"]
        assert m[-1].any() and (m.sum(axis=1) > 0).sum() > 0.3 * 48


def test_augmentation_is_deterministic_under_a_seed():
    img, mask, _ = synthetic.render("C", np.random.default_rng(0), 48)

    def run(seed):
        t = A.Compose([BackgroundComposite(), A.GaussNoise(p=0.5)], seed=seed)
        return [t(image=img, mask=mask)["image"] for _ in range(6)]

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_held_out_families_are_never_drawn():
    img, mask, _ = synthetic.render("D", np.random.default_rng(0), 32)
    t = BackgroundComposite(holdout=["stripes", "noise"])
    t.set_random_seed(0)
    drawn = {t.get_params_dependent_on_data({}, {"image": img, "mask": mask})["family"] for _ in range(300)}
    assert drawn == set(FAMILIES) - {"stripes", "noise"}
    with pytest.raises(ASLError, match="held out"):
        BackgroundComposite(families=["noise"], holdout=["noise"])
    with pytest.raises(ASLError, match="unknown background families"):
        BackgroundComposite(families=["plaid"])


def test_images_without_mask_pass_unchanged():
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    t = A.Compose([BackgroundComposite()], seed=0)
    assert np.array_equal(t(image=img, mask=np.full((32, 32), 255, np.uint8))["image"], img)
    assert np.array_equal(t(image=img)["image"], img)


def test_every_recipe_part_composes():
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        for bg, aug in (("none", []), ("procedural_inplace", ["data/augment=photometric"]),
                        ("none", ["data/augment=maskfree"]), ("procedural", ["data/augment=viewpoint"])):
            cfg = compose("train", overrides=["data=folder", "data.root=x", f"data/background={bg}", *aug])
            assert cfg.data.train_transforms and (cfg.data.background is None) == (bg == "none")
            build_pipeline(([cfg.data.background] if cfg.data.background else []) + list(cfg.data.train_transforms), 32)
        best = compose("train", overrides=["experiment=background_best"])
        assert best.data.background.holdout and best.data.hand_crop and best.data.background.hand_brightness
        build_pipeline([best.data.background, *best.data.train_transforms], 32)


@functools.cache
def tiny_run(base: Path) -> Path:
    """A synthetic run with procedural backgrounds, tested afterwards on a second photo folder."""
    run = base / "bg-run"
    second = make_photo_folder(base / "second", letters="ABC", per_class=3, size=24)
    return train_in_process(run, [*TINY_TRAIN, "trainer.max_epochs=1", "data.classes=ABC", "logger=tensorboard",
                                  "data/background=procedural", "data/augment=photometric",
                                  f"+eval_sets.second={second}", "background_shift=true", "eval_adapt_bn=true",
                                  "+trainer.enable_progress_bar=false", "~callbacks.progress_bar"])


@pytest.mark.slow
def test_training_reports_extra_sets_background_shift_and_logs_a_grid(tmp_path_factory):
    run = tiny_run(tmp_path_factory.getbasetemp())
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("eval/second/acc", "eval/second/f1_macro", "eval/second/acc_all_photos",
                "eval/second/adapt_bn/acc", "eval/second/adapt_bn/acc_all_photos", "background_shift/acc_original",
                "background_shift/acc_heldout", "background_shift/drop"):
        assert isinstance(metrics[key], float), key
    second = json.loads((run / "eval" / "second" / "metrics.json").read_text())
    assert second["num_images"] == 9 and set(second["per_class_acc"]) == {"A", "B", "C"}
    adapted = json.loads((run / "eval" / "second" / "adapt_bn" / "metrics.json").read_text())
    assert adapted["adapt_bn"] is True and adapted["num_images"] == 9 and second["adapt_bn"] is False
    assert (run / "eval" / "second" / "confusion_matrix.png").exists()
    assert (run / "augmented_samples.png").exists()
    events = list((run / "tb").rglob("events.out.tfevents*"))
    assert any(b"train/augmented" in e.read_bytes() for e in events)
    # the shift test on explicit families, from the run folder alone
    s = background_shift(run / "checkpoints" / "best.ckpt", ["noise"], {"num_workers": 0}, accelerator="cpu")
    assert s["background_shift/families"] == ["noise"]
    assert s["background_shift/acc_original"] == pytest.approx(metrics["background_shift/acc_original"])


def test_hand_relighting_changes_the_hand_alone_within_its_range():
    img, mask, _ = synthetic.render("B", np.random.default_rng(0), 48)
    t = A.Compose([BackgroundComposite(scale=None, feather=1.0, hand_brightness=(0.2, 0.5), hand_saturation=(0.0, 0.0))],
                  seed=0)
    inner = cv2.erode(mask, np.ones((7, 7), np.uint8)) > 127
    grey = img.astype(np.float32).mean(axis=2)[inner]
    for _ in range(5):
        out = t(image=img, mask=mask)["image"].astype(np.float32)[inner]
        assert np.ptp(out, axis=1).max() <= 1  # saturation 0: grey
        ratio = out[:, 0].sum() / grey.sum()
        assert 0.19 <= ratio <= 0.51  # darker by a factor drawn from the range
    with pytest.raises(ASLError, match="hand_brightness"):
        BackgroundComposite(hand_brightness=(0.0, 1.0))
