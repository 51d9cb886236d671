"""Landmark features, augmentation and the landmark/fusion models, on the synthetic set's keypoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from asl import ASLError
from asl.cli import CONFIG_PATH
from asl.data import synthetic
from asl.hands.features import (
    HANDEDNESS,
    INPUT_DIM,
    POINTS,
    augment,
    encode,
    feature_dim,
    features,
    normalise,
    present,
)
from asl.lit.module import load_classifier
from asl.models import create_model
from asl.runs.train import train
from tests.conftest import datamodule


@pytest.fixture(scope="module")
def rows(tiny_synthetic) -> torch.Tensor:
    kp = synthetic.read_keypoints(tiny_synthetic)
    return torch.from_numpy(np.stack([encode(kp[n], "Right") for n in sorted(kp)]))


def _move(x: torch.Tensor, shift=(0.1, -0.2), scale=1.0, mirror=False) -> torch.Tensor:
    """The same hands elsewhere in the photo, larger or smaller, or mirrored (world landmarks mirror too)."""
    lm = x[:, :POINTS].reshape(-1, 21, 3).clone()
    world = x[:, HANDEDNESS + 1:].reshape(-1, 21, 3).clone()
    if mirror:
        lm[..., 0] = 1 - lm[..., 0]
        world[..., 0] = -world[..., 0]
    lm[..., :2] = lm[..., :2] * scale + torch.tensor(shift)
    lm[..., 2] = lm[..., 2] * scale
    hand = x[:, HANDEDNESS:HANDEDNESS + 1]
    return torch.cat([lm.flatten(1), -hand if mirror else hand, world.flatten(1)], 1)


def _with_world(rows: torch.Tensor, turn: torch.Tensor | None = None) -> torch.Tensor:
    """Rows given world landmarks (the image landmarks as metres about the wrist), turned by ``turn`` (3 × 3)."""
    lm = rows[:, :POINTS].reshape(-1, 21, 3)
    world = (lm - lm[:, :1]) * 0.1
    if turn is not None:
        world = world @ turn.T
    return torch.cat([rows[:, :HANDEDNESS + 1], world.flatten(1)], 1)


def test_features_ignore_position_and_size_and_mirror_left_hands(rows):
    f = features(rows)
    assert f.shape == (len(rows), feature_dim())
    assert torch.allclose(features(_move(rows, scale=0.5)), f, atol=1e-4)
    assert torch.allclose(features(_move(rows, shift=(0.3, 0.3), scale=1.7)), f, atol=1e-4)
    # A mirrored photo of a left hand looks like the right hand once mirrored back.
    assert torch.allclose(features(_move(rows, mirror=True)), f, atol=1e-4)
    assert torch.allclose(features(_move(rows, mirror=True), mirror="geometry"), features(rows, mirror="geometry"), atol=1e-4)
    assert not torch.allclose(features(_move(rows, mirror=True), mirror="none"), features(rows, mirror="none"), atol=1e-3)
    lm = normalise(rows)
    assert torch.allclose(lm[:, 0], torch.zeros(3))  # wrist at the origin
    assert torch.allclose(lm[:, 9, :2].norm(dim=1), torch.ones(len(rows)))  # palm size 1


def _foreshortened(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The same hands with their palm's length in the photo shrunk ``factor`` times (the wrist moved towards the
    middle-finger knuckle), as when the palm points at the camera; fingers unchanged."""
    lm = x[:, :POINTS].reshape(-1, 21, 3).clone()
    lm[:, 0, :2] = lm[:, 9, :2] + (lm[:, 0, :2] - lm[:, 9, :2]) / factor
    return torch.cat([lm.flatten(1), x[:, HANDEDNESS:]], 1)


def test_the_spread_scale_ignores_position_and_size_and_a_foreshortened_palm_barely_moves_it(rows):
    """Issue 26: ``model.scale=spread`` divides by the whole hand's size, not the palm's length in the photo,
    which a palm pointing at the camera shrinks (grey_wall's P and Q: palm length / width 0.4-0.8 against 2.4-4.6
    side-on, experiments/robustness/viewpoint.py), blowing every coordinate up."""
    f = features(rows, scale="spread")
    assert torch.allclose(features(_move(rows, shift=(0.3, 0.3), scale=1.7), scale="spread"), f, atol=1e-4)
    assert torch.allclose(features(_move(rows, mirror=True), scale="spread"), f, atol=1e-4)
    short = _foreshortened(rows, 4)

    def tips(x, scale):  # index → little fingertip in hand sizes: the fingers did not change, only the palm's length
        lm = normalise(x, scale=scale)
        return (lm[:, 8, :2] - lm[:, 20, :2]).norm(dim=1)

    palm, spread = tips(short, "palm") / tips(rows, "palm"), tips(short, "spread") / tips(rows, "spread")
    torch.testing.assert_close(palm, torch.full_like(palm, 4.0), rtol=1e-3, atol=0)  # blown up as the palm shrank
    assert spread.max() < 2 and spread.median() < 1.5
    with pytest.raises(ASLError, match="model.scale: 'wrist' is not one of"):
        features(rows, scale="wrist")


def _from_behind(x: torch.Tensor) -> torch.Tensor:
    """The same hands turned half round about the vertical axis through the wrist (x and z negated about it),
    as a hand held sideways shows the camera its back instead of its palm: MediaPipe's handedness, which names
    the hand and not the view, stays."""
    lm = x[:, :POINTS].reshape(-1, 21, 3).clone()
    wrist = lm[:, :1].clone()
    lm[..., 0], lm[..., 2] = 2 * wrist[..., 0] - lm[..., 0], 2 * wrist[..., 2] - lm[..., 2]
    return torch.cat([lm.flatten(1), x[:, HANDEDNESS:]], 1)


def test_a_hand_seen_from_its_back_reads_as_from_its_palm_when_mirrored_by_its_geometry(rows):
    """Issue 26: a G or H held sideways shows one signer's camera the palm and another's the back. Its 2-D
    projection is then the mirror image, with the same handedness label, so mirroring by handedness leaves two
    mirror-image families of one letter (G and H 0 % across sets); mirroring by the palm's winding in the image
    (``geometry``) maps both views onto one: the same 2-D coordinates, distances and joint angles (only the
    relative depth z, the side facing the camera, differs)."""
    back = _from_behind(rows)
    assert not torch.allclose(normalise(back)[..., :2], normalise(rows)[..., :2], atol=1e-3)  # handedness: mirror images
    torch.testing.assert_close(normalise(back, "geometry")[..., :2], normalise(rows, "geometry")[..., :2], atol=1e-5, rtol=0)
    torch.testing.assert_close(normalise(back, "geometry")[..., 2], -normalise(rows, "geometry")[..., 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(features(back, ["distances", "angles"], "geometry"),
                               features(rows, ["distances", "angles"], "geometry"), atol=1e-5, rtol=0)
    torch.testing.assert_close(features(back, ["coords"], "geometry", use_z=False),
                               features(rows, ["coords"], "geometry", use_z=False), atol=1e-5, rtol=0)
    # A mirrored photo with the label flipped, as the detector gives it, reads the same under both rules.
    torch.testing.assert_close(features(_move(back, mirror=True), mirror="geometry"), features(back, mirror="geometry"),
                               atol=1e-5, rtol=0)
    # Where the hand points in the image stays in the coordinates (K/P, G/Q, H/U differ only there); distances
    # and angles do not see an in-plane turn.
    turned = augment(rows, rotate=90, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(features(turned, ["coords"], "geometry"), features(rows, ["coords"], "geometry"), atol=1e-2)
    torch.testing.assert_close(features(turned, ["distances", "angles"], "geometry"),
                               features(rows, ["distances", "angles"], "geometry"), atol=1e-4, rtol=0)


def test_no_hand_rows_stay_zero_and_augmentation_changes_only_hands(rows):
    x = torch.cat([rows[:4], torch.zeros(2, INPUT_DIM)])
    assert present(x).tolist() == [True] * 4 + [False] * 2
    assert torch.all(features(x)[4:] == 0)
    g = torch.Generator().manual_seed(0)
    a = augment(x, rotate=10, scale=0.1, jitter=0.01, finger_length=0.1, generator=g)
    assert torch.all(a[4:] == 0) and not torch.allclose(a[:4], x[:4])
    assert torch.allclose(augment(x), x)  # all amounts zero → unchanged
    # Wrist stays put under rotation and scale (no jitter, no finger changes).
    b = augment(x[:4], rotate=30, scale=0.2, generator=g)
    assert torch.allclose(b[:, :3], x[:4, :3], atol=1e-5)
    # Tilt turns the hand rigidly about the wrist: 3-D distances to the wrist stay, the 2-D view changes.
    c = augment(x[:4], tilt=40, generator=g)
    d3 = lambda r: (r[:, :POINTS].reshape(-1, 21, 3) - r[:, :3].reshape(-1, 1, 3)).norm(dim=-1)  # noqa: E731
    assert torch.allclose(d3(c), d3(x[:4]), atol=1e-5) and not torch.allclose(c, x[:4])
    # World landmarks, where present, turn with the image landmarks: their 3-D distances stay too.
    w = _with_world(x[:4])
    e = augment(w, tilt=40, rotate=30, generator=g)
    d3w = lambda r: (r[:, HANDEDNESS + 1:].reshape(-1, 21, 3) - r[:, HANDEDNESS + 1:HANDEDNESS + 4].reshape(-1, 1, 3)).norm(dim=-1)  # noqa: E731
    assert torch.allclose(d3w(e), d3w(w), atol=1e-5) and not torch.allclose(e[:, HANDEDNESS + 1:], w[:, HANDEDNESS + 1:])


def test_palm_frame_features_ignore_how_the_hand_is_turned_and_orientation_keeps_it(rows):
    """canonical and distances3d describe the handshape whatever way the hand is turned in 3-D (a side-on
    D reads like a frontal one); orientation changes with the turn (G/Q, H/U, K/P differ only there);
    without world landmarks the image landmarks stand in."""
    kinds = ["canonical", "distances3d"]
    angle = torch.tensor(0.9)
    turn = torch.tensor([[1.0, 0, 0], [0, torch.cos(angle), -torch.sin(angle)], [0, torch.sin(angle), torch.cos(angle)]])
    front, side = _with_world(rows), _with_world(rows, turn)
    torch.testing.assert_close(features(side, kinds), features(front, kinds), atol=1e-4, rtol=0)
    assert not torch.allclose(features(side, ["orientation"]), features(front, ["orientation"]), atol=1e-2)
    torch.testing.assert_close(features(_move(front, mirror=True), kinds), features(front, kinds), atol=1e-4, rtol=0)
    torch.testing.assert_close(features(rows, kinds), features(_move(rows, scale=0.5), kinds), atol=1e-4, rtol=0)
    assert features(front, ["coords", "distances", "angles"]).equal(features(rows))  # the default set reads no world


def test_fusion_falls_back_to_the_image_branch_without_a_hand():
    net = create_model(name="fusion", num_classes=5, input_size=32, image={"name": "small_cnn", "widths": [4, 4, 8, 8, 8]},
                       landmarks={"hidden": [16]}).eval()
    images, lm = torch.rand(3, 3, 32, 32), torch.zeros(3, INPUT_DIM)
    lm[0, :POINTS] = torch.rand(POINTS)
    out = net((images, lm))
    image_only = net.image(images).log_softmax(-1)
    assert torch.allclose(out[1:], image_only[1:]) and not torch.allclose(out[0], image_only[0])


@pytest.mark.slow
def test_landmark_mlp_and_fusion_train_with_the_same_module(tmp_path):
    """Synthetic keypoints (no detector): the landmark MLP learns, checkpoints rebuild, fusion trains on crops."""
    base = ["data.synthetic.per_class=12", "data.synthetic.image_size=32", "logger=none",
            "data.num_workers=0", "data.audit=false"]
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=[*base, "model=landmark_mlp", "trainer.max_epochs=25", f"paths.output_dir={tmp_path}/lm"])
        metrics = train(cfg)
        assert metrics["test/acc"] > 0.5  # chance is 1/24
        module = load_classifier(metrics["best_checkpoint"])
        assert module.spec.inputs == "landmarks"
        cfg = compose("train", overrides=[*base, "model=fusion", "model.input_size=32", "data.hand_crop=true",
                                          "model.image.widths=[8,8,16,16,16]", "trainer.max_epochs=2",
                                          f"model.from_checkpoints.landmarks={metrics['best_checkpoint']}",
                                          f"paths.output_dir={tmp_path}/fusion"])
        fused = train(cfg)
    assert fused["test/acc"] > 0.3
    assert load_classifier(fused["best_checkpoint"]).spec.hand_crop is True


def test_fusion_takes_any_image_model_config_as_its_branch():
    """A branch composed from a model YAML (here _torchvision's keys, cache_features included) builds: fusion
    strips the run's keys with the same list as the LightningModule (asl.models.architecture)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        image = OmegaConf.to_container(compose("train", overrides=["model=resnet18", "paths.output_dir=/tmp/x"]).model,
                                       resolve=True)
    net = create_model("fusion", 24, image=image, landmarks={"name": "landmark_mlp"}, input_size=32)
    assert net((torch.zeros(2, 3, 32, 32), torch.zeros(2, 64))).shape == (2, 24)


def test_most_confident_keeps_a_share_of_each_predicted_letter():
    from asl.runs.self_train import most_confident

    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.7, 0.3], [0.45, 0.55], [0.2, 0.8]])
    # class 0 predicted 4 times (0.9, 0.6, 0.8, 0.7), class 1 twice (0.55, 0.8): half of each, most confident first
    assert most_confident(probs, 0.5).tolist() == [True, False, True, False, False, True]
    assert most_confident(probs, 0.1).sum() == 2  # at least one per predicted letter
    assert most_confident(probs, 1.0).all()


def test_balanced_pseudo_labels_give_a_letter_its_share_where_every_photo_is_predicted_as_another():
    """Issue 26: on a grey-wall set every M was predicted P, so a quota per predicted letter kept none for M and
    self-training taught M→P round after round. Balanced against the prior (Sinkhorn), the photos most like M
    become M's, each letter holding its prior share."""
    from asl.runs.self_train import balanced, class_prior, pseudo_labels

    # 6 photos, 3 letters; the model calls all of letters 0 and 1 "0" (photos 3–5 a little more like 1).
    probs = torch.tensor([[0.90, 0.01, 0.09], [0.89, 0.02, 0.09], [0.88, 0.02, 0.10],
                          [0.80, 0.15, 0.05], [0.75, 0.20, 0.05], [0.78, 0.17, 0.05]])
    probs = torch.cat([probs, torch.tensor([[0.1, 0.0, 0.9], [0.05, 0.05, 0.9]])])  # and 2 photos of letter 2
    prior = class_prior(["A", "B", "C"], {"A": 3, "B": 3, "C": 2})
    torch.testing.assert_close(prior, torch.tensor([3 / 8, 3 / 8, 2 / 8]))
    q = balanced(probs, prior)
    torch.testing.assert_close(q.sum(1), torch.ones(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(q.sum(0), 8 * prior, atol=1e-3, rtol=0)
    _, confident = pseudo_labels(probs, 1.0, prior, "confident")
    assert (confident == 1).sum() == 0  # the old quota: letter B never appears
    kept, labels = pseudo_labels(probs, 1.0, prior, "balanced")
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2] and kept.all()
    kept, labels = pseudo_labels(probs, 0.34, prior)  # a third of each pseudo-label, most confident first
    assert kept.tolist() == [True, False, False, False, True, False, True, False]
    assert class_prior(["A", "B"]).tolist() == [0.5, 0.5]
    from asl import ASLError

    for bad in ({"Z": 1}, {"A": -1}, {"A": 0}):
        with pytest.raises(ASLError, match="class_prior"):
            class_prior(["A", "B"], bad)
    with pytest.raises(ASLError, match=r"self_train_labels: 'nosuch' is not one of \['balanced', 'confident'\]"):
        pseudo_labels(probs, 1.0, prior, "nosuch")


def test_the_adaptation_check_keeps_what_corrects_and_refuses_what_collapses_or_drifts():
    from asl.runs.adaptation import decide, signals

    names = ["A", "B", "C", "D"]
    prior = torch.full((4,), 0.25)
    onehot = lambda labels: torch.nn.functional.one_hot(torch.tensor(labels), 4).float()  # noqa: E731
    before = onehot([0, 0, 1, 1, 2, 2, 3, 0])  # D under-predicted: one D photo called A
    fixed = onehot([0, 0, 1, 1, 2, 2, 3, 3])
    s = signals(before, fixed, prior)
    assert s["prior_gap_after"] == 0 and s["agreement"] == 7 / 8 and decide(s, names)[0]
    collapsed = onehot([0, 0, 1, 1, 1, 1, 3, 0])  # every C now B
    keep, why = decide(signals(before, collapsed, prior), names)
    assert not keep and "C collapsed" in why
    s = signals(onehot([0, 1, 2, 3, 0, 1, 2, 3]), onehot([0, 1, 2, 3, 0, 1, 0, 0]), prior)
    assert s["prior_gap_after"] > s["prior_gap_before"] and not s["lost_letters"]
    assert "moved away from the prior" in decide(s, names)[1]
    s = signals(onehot([0, 1, 2, 3, 0, 1, 2, 3]), onehot([1, 2, 3, 0, 1, 2, 3, 0]), prior)
    keep, why = decide(s, names)
    assert not keep and "changed 100% of the predictions" in why


def test_self_training_adapts_a_landmark_model_without_reading_labels(tmp_path, monkeypatch, tiny_synthetic):
    """asl-eval self_train: one retraining per round on the run's training rows + pseudo-labelled test rows, the
    labels of the evaluated photos unread; the adapted model is saved and loads; training's eval_self_train scores
    an eval set the same way; bad values are one line."""
    from asl import ASLError
    from asl.runs import self_train as st
    from asl.runs.evaluate import evaluate
    from tests.conftest import run_cli, train_in_process

    run = train_in_process(tmp_path / "run", ["model=landmark_mlp", "data.synthetic.per_class=12",
                                              "data.synthetic.image_size=32", "trainer.max_epochs=15", "logger=none",
                                              "data.num_workers=0", "data.audit=false", f"paths.cache_dir={tmp_path}/cache",
                                              f"+eval_sets.again={tiny_synthetic}", "eval_self_train=[1.0]"])
    ckpt = run / "checkpoints" / "best.ckpt"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["eval/again/self_train/acc_all_photos"] <= 1
    trained = json.loads((run / "eval" / "again" / "self_train" / "metrics.json").read_text())
    assert [h["keep"] for h in trained["self_train"]] == [1.0] and trained["adapt_bn"] is False
    assert trained["adaptation"]["keep_adapted"] == "check" and trained["adaptation"]["reason"]
    # the adapted model is written only where the check kept it
    assert (run / "eval" / "again" / "self_train" / "self_trained.ckpt").exists() == trained["adaptation"]["kept"]
    seen = []
    real_fit = st.pl.Trainer.fit

    def fit(trainer, module, train_dataloaders):  # record what each round trains on
        x, y = train_dataloaders.dataset.tensors
        seen.append((len(y), y.clone()))
        return real_fit(trainer, module, train_dataloaders=train_dataloaders)

    monkeypatch.setattr(st.pl.Trainer, "fit", fit)
    r = evaluate(ckpt, None, tmp_path / "eval", {"num_workers": 0}, str(tmp_path / "cache"), accelerator="cpu",
                 adapt_bn=True, self_train_keep=[0.5, 1.0], keep_adapted="always")
    monkeypatch.undo()
    rounds = r["self_train"]
    assert [h["round"] for h in rounds] == [1, 2] and rounds[1]["pseudo_labelled"] == rounds[1]["photos"] == r["num_images"]
    train_rows = seen[0][0] - rounds[0]["pseudo_labelled"]
    assert train_rows > 0 and [n for n, _ in seen[:2]] == [train_rows + h["pseudo_labelled"] for h in rounds]
    # then reverse validation: a model on the new photos alone (the last round's share), before and after
    assert [n for n, _ in seen[2:]] == [rounds[-1]["pseudo_labelled"]] * 2
    assert all(0 <= r["adaptation"][f"reverse_acc_{w}"] <= 1 for w in ("before", "after"))
    module = load_classifier(tmp_path / "eval" / "self_trained.ckpt")  # the adapted model, as asl-predict reads it
    assert module.spec.inputs == "landmarks"
    assert 0 <= r["test/acc_all_photos"] <= 1 and all(0 <= h["pseudo_label_acc"] <= 1 for h in rounds)
    assert rounds[0]["agreement"] is None and 0 <= rounds[1]["agreement"] <= 1 and r["adaptation"]["kept"]
    # Under the check, self-training adapts with AdaBN only where AdaBN alone passes it.
    from asl.runs import adaptation

    verdicts = iter([(False, "stub: AdaBN alone fails")])
    real_decide = adaptation.decide
    monkeypatch.setattr(adaptation, "decide", lambda s, names: next(verdicts, None) or real_decide(s, names))
    used_bn = []
    real_probabilities = st.probabilities
    monkeypatch.setattr(st, "probabilities", lambda m, x, bn: used_bn.append(bn) or real_probabilities(m, x, bn))
    r = evaluate(ckpt, None, tmp_path / "eval_checked", {"num_workers": 0}, str(tmp_path / "cache"), accelerator="cpu",
                 adapt_bn=True, self_train_keep=[1.0])
    monkeypatch.undo()
    assert used_bn == [False] * 2 and r["adapt_bn"] is False  # the round, then the final model for reverse validation
    assert r["adaptation"]["adapt_bn_refused"] == "stub: AdaBN alone fails" and r["adaptation"]["keep_adapted"] == "check"

    # Reverse validation sees consistently wrong pseudo-labels: every letter read as the next one teaches that back.
    dm = datamodule(inputs="landmarks", root=str(tiny_synthetic), split={"fractions": [0.5, 0.25, 0.25]})
    dm.setup("fit")
    (xt, _), (xv, yv) = st.rows(dm, "train"), st.rows(dm, "val")
    prior = st.class_prior(module.class_names)
    probs = st.probabilities(module, xt, False)
    honest = st.reverse_accuracy(probs, xt, xv, yv, 1.0, prior, "confident", module.hparams, 15, 16, 0, "cpu")
    shifted = st.reverse_accuracy(probs.roll(1, dims=1), xt, xv, yv, 1.0, prior, "confident", module.hparams, 15, 16, 0, "cpu")
    assert shifted < honest

    with pytest.raises(ASLError, match="self_train: expected a list of shares"):
        st.check_keep([0, 0.5])
    out = run_cli("asl.cli.eval", f"ckpt_path={ckpt}", "self_train=[1.5]", cwd=tmp_path)
    assert out.returncode != 0 and "self_train: expected a list of shares in (0, 1]" in out.stderr
    assert "Traceback" not in out.stderr
    image_run = ["data.synthetic.per_class=4", "data.synthetic.image_size=32", "logger=none", "eval_self_train=[0.5]"]
    with pytest.raises(ASLError, match="eval_self_train: only landmark models"):
        train_in_process(tmp_path / "image_run", image_run)
    with pytest.raises(ASLError, match=r"eval_self_train=\['a'\]: must be a list of shares"):
        train_in_process(tmp_path / "bad_run", ["model=landmark_mlp", "eval_self_train=[a]"])
