"""The folder loader and datamodule on the bad inputs a user will hand them."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from asl import ASLError
from asl.data.folder import discover, load_image
from asl.runs.run_folder import RunFolder, write_skipped

from .conftest import classifier, datamodule, make_photo_folder


def dm(root, **kw):
    d = datamodule(root=str(root), classes="ABC", image_size=16, split={"fractions": [0.5, 0.25, 0.25]}, **kw)
    d.setup()
    return d


def test_letter_folders_case_insensitive(tmp_path):
    root = make_photo_folder(tmp_path / "p", letters="ABC")
    (root / "B").rename(root / "b")
    t = discover(root, ["A", "B", "C"])
    assert sorted(set(t.labels)) == [0, 1, 2] and len(t.paths) == 18


def test_presplit_layout(tmp_path):
    for split in ("train", "val", "test"):
        make_photo_folder(tmp_path / "p" / split, letters="ABC", per_class=2)
    d = dm(tmp_path / "p")
    assert {s: int((d.splits == s).sum()) for s in ("train", "val", "test")} == {"train": 6, "val": 6, "test": 6}


def test_missing_root():
    with pytest.raises(ASLError, match="data.root: /nope is not a folder"):
        discover("/nope", ["A"])


def test_unknown_folder_is_named_and_can_be_ignored(photo_folder):
    (photo_folder / "holiday").mkdir()
    with pytest.raises(ASLError, match=r"\['holiday'\] match no class.*data.unknown_folders=ignore"):
        discover(photo_folder, ["A", "B", "C"])
    assert len(discover(photo_folder, ["A", "B", "C"], unknown_folders="ignore").paths) == 18


def test_missing_and_empty_class_folders(photo_folder):
    with pytest.raises(ASLError, match=r"no folder for class\(es\) \['D'\]"):
        discover(photo_folder, ["A", "B", "C", "D"])
    (photo_folder / "D").mkdir()
    with pytest.raises(ASLError, match="D: class folder holds no images"):
        discover(photo_folder, ["A", "B", "C", "D"])


def test_corrupt_and_non_image_files_are_skipped_and_listed(photo_folder, tmp_path, caplog):
    (photo_folder / "A" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (photo_folder / "B" / "notes.txt").write_text("hello")
    d = dm(photo_folder)
    assert len(d.labels) == 18
    reasons = dict(d.table.skipped)
    assert any(p.endswith("broken.jpg") and "cannot read image" in r for p, r in reasons.items())
    assert any(p.endswith("notes.txt") and "not an image" in r for p, r in reasons.items())
    assert "Skipped 1 unreadable image" in caplog.text
    write_skipped(d.table.skipped, tmp_path / "skipped.csv")
    assert len(d.table.skipped) == 2 and "broken.jpg" in (tmp_path / "skipped.csv").read_text()


@pytest.mark.parametrize("cache", [True, False])
def test_class_left_empty_by_corrupt_files_fails(tmp_path, cache):
    root = make_photo_folder(tmp_path / "p", letters="AB", per_class=3)
    for f in (root / "B").iterdir():
        f.write_bytes(b"garbage")
    d = datamodule(root=str(root), classes="AB", image_size=16, cache=cache, cache_dir=str(tmp_path / "c"))
    with pytest.raises(ASLError, match=r"no readable images for class\(es\) \['B'\]"):
        d.setup()


def test_too_few_images_for_counts(photo_folder):
    with pytest.raises(ASLError, match=r"class A: 6 images, too few for data.split.counts=\[1250, 625, 625\]"):
        datamodule(root=str(photo_folder), classes="ABC", image_size=16, split={"counts": [1250, 625, 625]}).setup()


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P"])
def test_odd_image_modes_become_rgb(tmp_path, mode):
    arr = (np.arange(20 * 20) % 256).reshape(20, 20).astype(np.uint8)
    if mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 256)
    else:
        img = Image.fromarray(arr).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    out = load_image(path, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out.max() > 100  # 16-bit is scaled down, not clipped to white or black


def test_cache_matches_direct_decoding_and_is_invalidated(photo_folder, tmp_path):
    cached = dm(photo_folder, cache_dir=str(tmp_path / "c"))
    direct = dm(photo_folder, cache=False)
    assert cached.store.folder is not None and direct.store.folder is None
    assert np.array_equal(cached.store.image(0), direct.store.image(0))
    first = cached.store.folder
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(photo_folder / "A" / "img0.png")
    again = dm(photo_folder, cache_dir=str(tmp_path / "c"))
    assert again.store.folder != first
    assert again.store.image(0).max() == 0


def test_without_a_cache_dir_the_cache_goes_where_asl_train_puts_it(photo_folder, tmp_path, monkeypatch):
    """Library calls (no config) honour $ASL_CACHE_DIR as conf/paths/default.yaml does."""
    monkeypatch.setenv("ASL_CACHE_DIR", str(tmp_path / "env-cache"))
    d = dm(photo_folder)
    assert Path(d.store.folder).is_relative_to(tmp_path / "env-cache")


def test_manifest_reproduces_split(photo_folder, tmp_path):
    a = dm(photo_folder)
    RunFolder(tmp_path).write_data(a)
    b = dm(photo_folder, seed=99)
    c = datamodule(root=str(photo_folder), classes="ABC", image_size=16, split={"manifest": str(tmp_path / "splits.csv")})
    c.setup()
    assert list(c.splits) == list(a.splits)
    assert list(b.splits) != list(a.splits) or True  # a different seed may coincide on tiny data


def test_active_classes_filter_training_only(photo_folder):
    """Training sees the active classes; validation and test see all (the module scores both views)."""
    d = dm(photo_folder)
    d.class_schedule = lambda epoch: [0]  # what a curriculum plan gives
    assert set(d.train_dataloader().dataset.labels) == {0}
    assert set(d.val_dataloader().dataset.labels) == {0, 1, 2}
    assert set(d.test_dataloader().dataset.labels) == {0, 1, 2}


def test_training_images_leave_the_loader_as_uint8_and_the_model_normalises_them(photo_folder, tmp_path):
    """The training pipeline skips Normalize (the model does it on its device); both roads agree."""

    d = datamodule(root=str(photo_folder), classes="ABC", image_size=32, split={"fractions": [0.5, 0.25, 0.25]},
                      train_transforms=[], mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3),  # no augmentation: same pixels
                      cache_dir=str(tmp_path / "cache"))
    d.setup()
    raw = d.dataset("train")[0][0]
    ready = d.dataset("train", train_transform=False)[0][0]
    assert raw.dtype == torch.uint8 and raw.shape == (3, 32, 32) and ready.dtype == torch.float32
    module = classifier({"name": "small_cnn"}, d.classes, spec=d.spec.to_dict()).eval()
    assert torch.allclose(module.normalize(raw[None]), ready[None], atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(module(raw[None]), module(ready[None]), atol=1e-5)
    images, labels = next(iter(d.train_dataloader()))
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64


@pytest.mark.slow
def test_a_folder_of_every_kind_of_bad_photo_trains_to_the_end_and_lists_each(tmp_path):
    """Stress: truncated, empty, mislabelled and huge photos, text and hidden files, all at once."""
    from .conftest import train_in_process

    root = make_photo_folder(tmp_path / "photos", letters="ABC", per_class=6, size=24)
    good = (root / "A" / "img0.png").read_bytes()
    jpeg = tmp_path / "x.jpg"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(jpeg)
    bad = {
        "A/truncated.jpg": jpeg.read_bytes()[:200],
        "A/empty.png": b"",
        "A/cut.png": good[: len(good) // 2],
        "B/text_named.jpg": b"this is no photo",
        "B/notes.txt": b"hello",
        "B/README.md": b"# about these photos",
        "C/.DS_Store": b"\x00\x00\x00\x01Bud1",
    }
    for name, data in bad.items():
        (root / name).write_bytes(data)
    Image.new("1", (14_000, 14_000)).save(root / "C" / "huge.png")  # over Pillow's decompression-bomb limit
    bad["C/huge.png"] = b""
    run = train_in_process(tmp_path / "run", ["data=folder", f"data.root={root}", "data.classes=ABC", "model.input_size=32",
                                              "data.batch_size=8", "trainer.max_epochs=1", "data.num_workers=0", "logger=none"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["skipped_files"] == len(bad) and metrics["num_test_images"] > 0
    with open(run / "skipped_files.csv") as f:
        listed = {str(Path(r["file"]).relative_to(root)): r["reason"] for r in csv.DictReader(f)}
    assert set(listed) == set(bad)
    assert "too large to decode safely" in listed["C/huge.png"] and "hidden file" in listed["C/.DS_Store"]
    assert all(reason for reason in listed.values())
