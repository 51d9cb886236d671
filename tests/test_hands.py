"""Hand detection cache, crops, no_hand policies and predict-time drawing, with a stub detector
(MediaPipe does not see hands in random test images); one real-MediaPipe test on ../shared/data."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from asl import ASLError
from asl.cli import CONFIG_PATH
from asl.hands import detect
from asl.hands.crop import crop, crop_hand, hand_box
from asl.hands.draw import draw_hand
from asl.runs.run_folder import write_skipped

from .conftest import SHARED_DATA, datamodule, make_photo_folder, run_cli


def _hand(x0=0.25, y0=0.25, x1=0.5, y1=0.75) -> dict:
    lm = np.zeros((21, 3))
    lm[:, 0] = np.linspace(x0, x1, 21)
    lm[:, 1] = np.linspace(y1, y0, 21)
    return {"landmarks": lm.tolist(), "handedness": "Right", "score": 0.9, "box": [x0, y0, x1, y1]}


class StubDetector:
    """Finds a hand in every photo whose top-left pixel is not black; counts its calls."""

    calls = 0

    def __init__(self, settings=None):
        self.settings = settings

    def __call__(self, rgb):
        StubDetector.calls += 1
        return None if rgb[0, 0].sum() == 0 else _hand()

    def close(self):
        pass


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setattr(detect, "MediaPipeDetector", StubDetector)
    StubDetector.calls = 0
    return StubDetector


@pytest.fixture
def photos(tmp_path):
    root = make_photo_folder(tmp_path / "photos", letters="ABC", per_class=4, size=40)
    img = np.asarray(Image.open(root / "A" / "img0.png")).copy()
    img[0, 0] = 0  # the stub finds no hand here
    Image.fromarray(img).save(root / "A" / "img0.png")
    return root


def test_cache_hits_misses_and_invalidation(photos, tmp_path, stub):
    """(In this process: the stub counts its calls.)"""
    paths = sorted(photos.rglob("*.png"))
    cache = tmp_path / "cache"
    first = detect.detect_files(paths, cache_dir=cache, progress=False, workers=1)
    assert stub.calls == len(paths) and first[0] is None and all(r is not None for r in first[1:])
    assert detect.detect_files(paths, cache_dir=cache, progress=False, workers=1) == first and stub.calls == len(paths)  # all hits
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same content: found by content
    copies = shutil.copytree(photos, tmp_path / "copied")  # a copied folder (new paths and times): the same
    moved = [copies / p.relative_to(photos) for p in paths]
    assert detect.detect_files(paths + moved, cache_dir=cache, progress=False, workers=1) == first + first
    assert stub.calls == len(paths)
    changed = np.asarray(Image.open(paths[1])).copy()
    changed[5, 5] = 255 - changed[5, 5]
    Image.fromarray(changed).save(paths[1])  # a changed file is detected again
    detect.detect_files(paths, cache_dir=cache, progress=False, workers=1)
    assert stub.calls == len(paths) + 1
    detect.detect_files(paths, {"padding": 0.1}, cache_dir=cache, progress=False, workers=1)  # other settings: own cache
    assert stub.calls == 2 * len(paths) + 1
    saved = json.loads(detect.cache_file(cache, detect.check_detector({"padding": 0.1})).read_text())
    assert saved["settings"]["padding"] == 0.1 and len(saved["files"]) == len(paths)
    with pytest.raises(ASLError, match="hands.retry"):
        detect.check_detector({"retry": ["sideways"]})


def test_two_jobs_filling_one_cache_keep_each_others_results(photos, tmp_path, stub):
    """Each job saves what it found; the file keeps both jobs' photos (merged under a lock)."""
    paths = sorted(photos.rglob("*.png"))
    cache = tmp_path / "cache"
    detect.detect_files(paths[:2], cache_dir=cache, progress=False)  # job 1
    settings = detect.check_detector({})
    detect._save(detect.cache_file(cache, settings), settings, {"/elsewhere/x.png": {"stamp": [1, 2], "result": None}})  # job 2
    saved = json.loads(detect.cache_file(cache, settings).read_text())["files"]
    assert {str(p.resolve()) for p in paths[:2]} | {"/elsewhere/x.png"} == set(saved)


def test_retries_run_in_order_until_a_hand_is_found(monkeypatch):
    """A mapping retry runs the detector again with those settings; retries stop at the first hand."""
    pytest.importorskip("mediapipe")
    det = detect.MediaPipeDetector({"retry": ["mirror", {"model_complexity": 0, "padding": 0.75}, {"padding": 1.0}]})
    tried = []

    def run(rgb, **override):
        tried.append(override)
        return _hand() if override.get("padding") == 0.75 else None

    monkeypatch.setattr(det, "_run", run)
    res = det(np.zeros((40, 40, 3), np.uint8))
    det.close()
    assert tried == [{}, {}, {"model_complexity": 0, "padding": 0.75}] and res["box"] is not None
    for bad, key in (({"depth": 1},), "hands.retry"), (({"padding": 3},), "hands.retry.padding"), \
                    (({"model_complexity": 2},), "hands.retry.model_complexity"):
        with pytest.raises(ASLError, match=key):
            detect.check_detector({"retry": list(bad)})


def test_missing_mediapipe_names_the_install_command(monkeypatch, photos, tmp_path):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ASLError, match=r"pip install -e '\.\[hands\]'"):
        detect.detect_files(sorted(photos.rglob("*.png")), cache_dir=tmp_path / "c", progress=False)


def test_crop_box_is_square_in_pixels_and_pads_outside_the_photo():
    box = hand_box(_hand(), margin=0.0, aspect=2.0)  # a 2:1 photo: 0.25 wide = 0.5 high in pixels
    w_px, h_px = (box[2] - box[0]) * 200, (box[3] - box[1]) * 100
    assert w_px == pytest.approx(h_px) == pytest.approx(50)
    assert hand_box(None, 0.2) is None
    img = np.full((100, 100, 3), 7, np.uint8)
    out = crop(img, [-0.5, -0.5, 0.5, 0.5])  # three quarters outside: padded with black, not shrunk
    assert out.shape == (100, 100, 3) and (out[50:, 50:] == 7).all() and (out[:50] == 0).all() and (out[:, :50] == 0).all()
    # A box that fits in the photo is moved inside it rather than padded; a larger one stays centred.
    edge = {"box": [0.0, 0.8, 0.2, 1.0]}  # a hand in the bottom-left corner
    assert hand_box(edge, margin=0.25) == pytest.approx([0.0, 0.7, 0.3, 1.0])
    assert hand_box(edge, margin=2.5) == pytest.approx([-0.5, 0.3, 0.7, 1.5])
    assert crop_hand(img, None, 0.2, 32).shape == (32, 32, 3)  # no hand: the whole photo, resized
    drawn = draw_hand(img, _hand(), label="A 0.9")
    assert drawn.shape == img.shape and (drawn != img).any() and (img == 7).all()


def test_hand_blank_paints_outside_the_widened_landmark_hull_the_mean_colour():
    from asl.hands.crop import blank_outside_hand

    lm = np.zeros((21, 3))
    lm[:, :2] = np.random.default_rng(0).uniform(0.4, 0.6, (21, 2))
    lm[:4, :2] = [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6]]  # the hull is the square [0.4, 0.6]²
    hand = {"landmarks": lm.tolist(), "box": [0.4, 0.4, 0.6, 0.6]}
    image = np.full((100, 100, 3), 9, np.uint8)
    fill = [124.0, 116.0, 104.0]
    tight = blank_outside_hand(image, hand, [0, 0, 1, 1], 0.0, fill)
    assert (tight[45:56, 45:56] == 9).all() and (tight[:35] == fill).all() and (tight[:, 65:] == fill).all()
    wide = blank_outside_hand(image, hand, [0, 0, 1, 1], 0.25, fill)  # widened by 5 pixels (a quarter of 20)
    assert (wide[37:64, 37:64] == 9).all() and (wide[:30] == fill).all() and (wide == 9).sum() > (tight == 9).sum()
    half = blank_outside_hand(image[:50], hand, [0, 0.5, 1, 1], 0.0, fill)  # a crop of the bottom half, resized to 50 × 100
    assert (half[:, 45:56][0:5] == 9).all() and (half[15:, 45:56] == fill).all()


def test_hand_blank_is_part_of_the_crop_cache_and_refuses_what_it_cannot_do(photos, tmp_path, stub):
    from asl.hands.crop import read_pixels

    args = dict(root=str(photos), classes="ABC", image_size=24, hand_crop=True, audit=False, hands={"source": "detector"},
                cache_dir=str(tmp_path / "cache"), split={"fractions": [0.5, 0.25, 0.25]})
    plain, blanked = datamodule(**args), datamodule(**args, hand_blank=0.1)
    plain.setup()
    blanked.setup()  # the same cache folder: the blanked crops must not be the plain ones
    i = next(i for i, r in enumerate(blanked.hands.results) if r is not None)
    assert not np.array_equal(plain.store.image(i), blanked.store.image(i))
    assert np.array_equal(blanked.store.image(i), read_pixels(blanked.store.paths[i], blanked.hands.results[i], blanked.spec))
    with pytest.raises(ASLError, match=r"data.hand_blank .*data.hand_crop=true"):
        datamodule(**{**args, "hand_crop": False}, hand_blank=0.1)
    with pytest.raises(ASLError, match=r"data.hand_blank: a widening in \[0, 1\]"):
        datamodule(**args, hand_blank=2)
    with pytest.raises(ASLError, match="set data/background=none or data.hand_blank=null"):
        datamodule(**args, hand_blank=0.1, background={"_target_": "asl.data.backgrounds.BackgroundComposite"})


@pytest.mark.parametrize("policy", ["keep", "drop", "fail"])
def test_no_hand_policies(photos, tmp_path, stub, policy):
    dm = datamodule(root=str(photos), classes="ABC", image_size=16, hand_crop=True, no_hand=policy,
                       cache_dir=str(tmp_path / "cache"), split={"fractions": [0.5, 0.25, 0.25]}, audit=False)
    if policy == "fail":
        with pytest.raises(ASLError, match="no_hand=fail.*A/img0.png"):
            dm.setup()
        return
    dm.setup()
    write_skipped(dm.table.skipped, tmp_path / "skipped.csv")
    skipped = len(dm.table.skipped)
    assert len(dm.labels) == (12 if policy == "keep" else 11)
    assert skipped == (0 if policy == "keep" else 1)
    if policy == "drop":
        assert "A/img0.png" in (tmp_path / "skipped.csv").read_text()
    # The crop is part of the decoded-image cache key: the crop folder differs from a plain run's.
    assert "handcrop-" in str(dm.store.folder)
    image = dm.store.image(1)
    assert image.shape == (16, 16, 3)


def test_landmark_model_predicts_and_draws_with_the_detector(photos, tmp_path, stub):
    from asl.runs.train import train

    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=["data=folder", f"data.root={photos}", "data.classes=ABC", "model=landmark_mlp",
                                          "data.no_hand=drop", "trainer.max_epochs=1", "logger=none",
                                          "data.audit=false", "data.num_workers=0",
                                          f"paths.output_dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"])
        metrics = train(cfg)
    assert metrics["skipped_files"] == 1
    from asl.lit.module import load_classifier
    from asl.runs.predict import predict_files
    paths = sorted(photos.rglob("*.png"))[:3]
    rows = predict_files(load_classifier(metrics["best_checkpoint"]), paths, top_k=2,
                         cache_dir=tmp_path / "cache", draw_dir=tmp_path / "drawn")
    assert [r["hand"] for r in rows] == [False, True, True]
    assert all(len(r["top"]) == 2 for r in rows) and len(list((tmp_path / "drawn").glob("*.png"))) == 3

    # asl-eval on the folder (the detector cache is full: no detector needed): the photo without a hand
    # counts wrong over all photos, and the report says how many photos there were and which letters fail.
    out = run_cli("asl.cli.eval", f"ckpt_path={metrics['best_checkpoint']}", f"data.root={photos}", "data.num_workers=0",
                  f"paths.cache_dir={tmp_path}/cache", f"output_dir={tmp_path}/eval", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    r = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert r["num_images"] == 11 and r["photos"] == {"all": 12, "without_hand": 1, "without_hand_dropped": 1}
    assert r["test/acc_all_photos"] == pytest.approx(r["test/acc"] * 11 / 12)
    assert r["test/acc_with_hand"] == pytest.approx(r["test/acc"])
    assert [c for w in r["worst_letters"] for c in w["letters"]] == sorted(r["per_class_acc"], key=r["per_class_acc"].get)
    assert sum(c["count"] for c in r["top_confusions"]) == round(11 * (1 - r["test/acc"]))
    assert "12 photos" in out.stdout and "1 without a detected hand, counted wrong" in out.stdout
    assert "worst letters: " in out.stdout and "most frequent confusions: " in out.stdout
    # AdaBN: the statistics of the evaluated photos, the same accounting
    from asl.runs.evaluate import evaluate
    adapted = evaluate(metrics["best_checkpoint"], str(photos), tmp_path / "adapted", {"num_workers": 0},
                       str(tmp_path / "cache"), accelerator="cpu", adapt_bn=True)
    assert adapted["adapt_bn"] is True and adapted["photos"] == r["photos"]


@pytest.mark.skipif(not (SHARED_DATA / "asl_massey_black" / "A").is_dir(), reason="../shared/data not present")
def test_real_mediapipe_finds_hands_in_massey_photos(tmp_path):
    paths = sorted((SHARED_DATA / "asl_massey_black" / "B").iterdir())[:2]
    results = detect.detect_files(paths, cache_dir=tmp_path, progress=False)
    assert all(r is not None for r in results)
    for r in results:
        assert len(r["landmarks"]) == 21 and r["handedness"] in ("Left", "Right")
        x0, y0, x1, y1 = r["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


@pytest.mark.parametrize("inputs,hand_crop,hand_blank", [("image", False, None), ("image", True, None), ("image", True, 0.1),
                                                         ("image+landmarks", True, None), ("landmarks", False, None)])
def test_predict_prepares_a_photo_into_the_same_input_as_evaluation(photos, tmp_path, stub, inputs, hand_crop, hand_blank):
    """One input contract, one road: the tensor asl-predict feeds the model equals the test loader's."""
    from asl.hands.prepare import find_hands, input_transform
    from asl.runs.predict import prepare_photos

    dm = datamodule(root=str(photos), classes="ABC", image_size=24, inputs=inputs, hand_crop=hand_crop, audit=False,
                    hand_blank=hand_blank, hands={"source": "detector"}, cache_dir=str(tmp_path / "cache"),
                    split={"fractions": [0.5, 0.25, 0.25]})
    dm.setup()
    ds = dm.dataset("test")
    for i in range(len(ds)):
        path = dm.store.paths[int(ds.indices[i])]
        x, ok, errors = prepare_photos([path], find_hands([path], dm.spec, tmp_path / "cache"), dm.spec, input_transform(dm.spec))
        assert ok and not errors
        want = ds[i][0]
        for got, expected in zip(x if isinstance(x, tuple) else (x,), want if isinstance(want, tuple) else (want,), strict=True):
            assert torch.equal(got[0], expected), path


def test_asl_prepare_hands_composes_the_detector_group_alone_and_fills_the_cache(photos, tmp_path, stub, monkeypatch, capsys):
    from asl.cli import prepare

    monkeypatch.setattr(sys, "argv", ["asl-prepare", "hands", f"data.root={photos}", "data.classes=ABC", "data.hands.padding=0.1",
                                      f"paths.cache_dir={tmp_path / 'cache'}"])
    prepare.main()
    out = capsys.readouterr().out
    assert "hand found in 91.7% of 12 photos (padding 0.1" in out
    settings = detect.check_detector({"padding": 0.1})
    assert len(json.loads(detect.cache_file(tmp_path / "cache", settings).read_text())["files"]) == 12


def test_parallel_detection_gives_the_single_process_results(photos, tmp_path, stub):
    paths = sorted(photos.rglob("*.png"))
    one = detect.detect_files(paths, {}, None, workers=1, progress=False)
    two = detect.detect_files(paths, {}, tmp_path / "cache", workers=2, progress=False)  # two processes, one cache
    assert detect.processes(2, len(paths)) == 2 and one == two
    assert detect.detect_files(paths, {}, tmp_path / "cache", workers=2, progress=False) == one  # all from the cache


class CrashingStub(StubDetector):
    """Crashes (as a detector may on a strange photo) where the plain stub finds no hand."""

    def __call__(self, rgb):
        if rgb[0, 0].sum() == 0:
            raise RuntimeError("segfault-like failure inside the detector")
        return super().__call__(rgb)


def test_a_photo_that_crashes_the_detector_is_a_miss_with_its_reason(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(detect, "MediaPipeDetector", CrashingStub)
    dm = datamodule(root=str(photos), classes="ABC", image_size=16, hand_crop=True, no_hand="drop", audit=False,
                    hands={"source": "detector", "workers": 2}, cache_dir=str(tmp_path / "cache"),
                    split={"fractions": [0.5, 0.25, 0.25]})
    dm.setup()  # the run goes on
    (bad, reason), = dm.table.skipped
    assert bad.endswith("A/img0.png") and "the hand detector failed on it (RuntimeError: segfault-like" in reason


class PatchStub(StubDetector):
    """Finds the one non-black patch of a photo and reports fixed landmarks inside it as MediaPipe
    does: x as a fraction of the photo's width, y of its height, z on the scale of x."""

    PIXELS = np.random.default_rng(0).uniform(0, 30, (21, 3))  # (x, y, z) in pixels from the patch's corner

    def __call__(self, rgb):
        ys, xs = np.nonzero(rgb.sum(-1))
        h, w = rgb.shape[:2]
        px = self.PIXELS + [xs.min(), ys.min(), 0]
        return {"landmarks": (px / [w, h, w]).tolist(), "handedness": "Right", "score": 1.0,
                "box": [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]}


def test_the_same_hand_in_a_wide_and_a_tall_photo_gives_the_same_features_and_crop(tmp_path, monkeypatch):
    """Landmarks are stored as fractions of width and height; the feature row and the crop must
    undo that, or a 4:3 webcam frame stretches the hand before distances and angles are taken."""
    from asl.hands.features import features
    from asl.hands.prepare import find_hands, landmark_row
    from asl.inputs import resolve_input_spec

    monkeypatch.setattr(detect, "MediaPipeDetector", PatchStub)
    patch = np.random.default_rng(1).integers(60, 255, (36, 32, 3), dtype=np.uint8)
    paths = []
    for name, (h, w) in {"square": (90, 90), "wide": (90, 160), "tall": (160, 90)}.items():
        canvas = np.zeros((h, w, 3), np.uint8)
        canvas[20:56, 30:62] = patch  # the same hand, padded to other shapes
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(canvas).save(paths[-1])
    spec = resolve_input_spec({"name": "landmark_mlp", "input_size": 32}, {"hand_crop": True, "hands": {"workers": 1}})
    hands = find_hands(paths, spec, tmp_path / "cache")
    assert [h["size"] for h in hands] == [[90, 90], [160, 90], [90, 160]]
    rows = torch.from_numpy(np.stack([landmark_row(h) for h in hands]))
    feats = features(rows)
    torch.testing.assert_close(feats[1], feats[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(feats[2], feats[0], atol=1e-5, rtol=0)
    crops = [crop_hand(np.asarray(Image.open(p)), h, margin=0.1, size=24) for p, h in zip(paths, hands, strict=True)]
    assert np.array_equal(crops[1], crops[0]) and np.array_equal(crops[2], crops[0])


def test_accuracy_over_all_photos_counts_photos_without_a_hand_wrong_under_keep_and_drop():
    """keep: a hand-less photo classified from the whole photo is wrong over all photos, even when right;
    drop: dropped photos join the count. A model that uses no hands: all three accuracies agree."""
    from types import SimpleNamespace

    from asl.runs.evaluate import photo_accounting

    module = SimpleNamespace(test_correct=np.array([True, True, False, True]))  # 4 classified photos
    keep = SimpleNamespace(hand_found=lambda split: np.array([True, True, True, False]), dropped_without_hand=lambda split: 0)
    r = photo_accounting(module, keep)
    assert r["test/acc_all_photos"] == 2 / 4 and r["test/acc_with_hand"] == 2 / 3
    assert r["photos"] == {"all": 4, "without_hand": 1, "without_hand_dropped": 0}
    drop = SimpleNamespace(hand_found=lambda split: np.ones(4, bool), dropped_without_hand=lambda split: 2)
    r = photo_accounting(module, drop)
    assert r["test/acc_all_photos"] == 3 / 6 and r["test/acc_with_hand"] == 3 / 4 and r["photos"]["without_hand"] == 2
    plain = SimpleNamespace(hand_found=lambda split: None)
    assert photo_accounting(module, plain)["test/acc_all_photos"] == photo_accounting(module, plain)["test/acc_with_hand"] == 3 / 4
