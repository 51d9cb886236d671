"""Grad-CAM overlays, the mistakes grid and the hand share, on a tiny model trained in-process."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from asl.cli import explain as explain_cli
from asl.lit.module import load_classifier
from asl.runs.evaluate import datamodule_for, evaluate
from asl.runs.gradcam import (
    background_reliance,
    cam_stage,
    confident_mistakes,
    explain_images,
    gradcam,
    hand_share,
    mistakes_figure,
)

from .conftest import TINY_TRAIN, classifier, make_photo_folder, train_in_process


@functools.cache
def tiny_run(base: Path) -> Path:
    """A run folder trained in-process (small CNN, 32 px, 1 epoch), as asl-train writes it."""
    run = base / "explain-run"
    return train_in_process(run, [*TINY_TRAIN, "trainer.max_epochs=1", "model.input_size=32", "logger=none",
                                  "+trainer.enable_progress_bar=false", "~callbacks.progress_bar"])


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_gradcam_maps_every_backbone_at_input_size(name):
    torch.manual_seed(0)  # an untrained model: one map in ten is all zero (ReLU of negative evidence), so use 8
    module = classifier({"name": name, "trainable_stages": 1}, list("ABC"), image_size=32).eval()
    assert cam_stage(module, 32) == 2  # 4×4 there; the last stage is 1×1 at 32 px
    cams = gradcam(module, torch.randn(8, 3, 32, 32), [i % 3 for i in range(8)])
    assert cams.shape == (8, 32, 32) and np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    assert cams.reshape(8, -1).std(1).max() > 0  # not all constant


def test_hand_share_is_the_mass_inside_the_mask():
    cams = np.zeros((2, 4, 4))
    cams[0, :2] = 1  # all mass in the top half
    cams[1] = 1  # spread evenly
    masks = np.zeros((2, 4, 4), np.uint8)
    masks[:, :2] = 255
    assert hand_share(cams, masks) == pytest.approx([1.0, 0.5])


def test_overlays_mistakes_and_hand_share_on_a_trained_run(run, tmp_path, tiny_synthetic):
    ckpt = run / "checkpoints" / "best.ckpt"
    module = load_classifier(ckpt)
    photos = sorted(tiny_synthetic.glob("A/*.png"))[:1] + sorted(tiny_synthetic.glob("B/*.png"))[:1]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    rows = explain_images(module, [*[p for p in photos if not p.name.endswith(".mask.png")], bad], tmp_path / "ov")
    assert "error" in rows[-1] and all(Path(r["overlay"]).stat().st_size > 1000 for r in rows[:-1])

    dm = datamodule_for(module, ckpt, None, {"eval_batch_size": 32, "num_workers": 0}, str(tmp_path / "cache"))
    mistakes = confident_mistakes(module, dm, per_class=2)
    assert mistakes and all(m["true"] != m["pred"] and 0 < m["prob"] <= 1 for m in mistakes)
    assert max(sum(m["true"] == t for m in mistakes) for t in {m["true"] for m in mistakes}) <= 2
    mistakes_figure(module, dm, mistakes).savefig(tmp_path / "m.png")

    share = background_reliance(module, dm)
    assert share["images"] == 24 and 0 <= share["hand_share"] <= 1 and 0 < share["hand_area"] < 1
    assert set(share["hand_share_per_class"]) == set(module.class_names)

    r = evaluate(ckpt, output_dir=tmp_path / "eval", loader={"num_workers": 0}, accelerator="cpu")
    assert r["background_reliance"]["hand_share"] == pytest.approx(share["hand_share"], abs=1e-6)
    assert "background_reliance" in json.loads((tmp_path / "eval" / "metrics.json").read_text())


def test_no_masks_no_hand_share(run, tmp_path):
    ckpt = run / "checkpoints" / "best.ckpt"
    module = load_classifier(ckpt)
    photos = make_photo_folder(tmp_path / "photos", letters="AB", per_class=2)
    dm = datamodule_for(module, ckpt, str(photos), {"eval_batch_size": 32, "num_workers": 0}, None)
    assert background_reliance(module, dm) is None


def test_explain_cli_writes_overlays_mistakes_and_report(run, tmp_path, tiny_synthetic, capsys, monkeypatch):
    out = tmp_path / "explain"
    photo = sorted(tiny_synthetic.glob("C/*[0-9].png"))[0]
    monkeypatch.setattr(sys, "argv", ["asl-explain", f"ckpt_path={run}/checkpoints/best.ckpt", f"inputs={photo}",
                                      f"output_dir={out}", "mistakes_per_class=1", "hand_share=false"])
    explain_cli.main()
    printed = capsys.readouterr().out
    assert f"written to {out}" in printed and "confident mistake(s)" in printed
    report = json.loads((out / "explain.json").read_text())
    assert len(report["overlays"]) == 1 and (out / "mistakes.png").stat().st_size > 1000
    assert len(list((out / "overlays").glob("*.png"))) == 1
