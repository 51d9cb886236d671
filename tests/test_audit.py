"""Data audit: exact and near-duplicates, cluster-preserving split, unreadable files, asl-audit."""

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from asl.data import duplicates as audit
from asl.data.cache import ImageStore
from asl.data.split import SPLITS, merge_groups, split_by_cluster

from .conftest import datamodule


def smooth_image(rng, size=96):
    """A photo-like image: low-frequency structure that a perceptual hash can see."""
    small = rng.integers(30, 200, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.BICUBIC)


@pytest.fixture
def dup_folder(tmp_path):
    """A/orig.png, its resized, recompressed and brightened copies, an exact copy; B/ unrelated images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    orig = smooth_image(rng)
    orig.save(root / "A" / "orig.png")
    orig.save(root / "A" / "exact.png")
    orig.resize((70, 70)).save(root / "A" / "resized.png")
    buf = io.BytesIO()
    orig.save(buf, "JPEG", quality=40)
    (root / "A" / "recompressed.jpg").write_bytes(buf.getvalue())
    ImageEnhance.Brightness(orig).enhance(1.2).save(root / "A" / "brighter.png")
    for i in range(5):
        smooth_image(rng).save(root / "B" / f"other{i}.png")
    return root


def facts_of(root, tmp_path):
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    store = ImageStore(paths, 64, cache_dir=tmp_path / "cache")
    return paths, store, audit.file_facts(store, tmp_path / "cache")


def test_exact_and_near_duplicates_are_found_and_different_images_are_not(dup_folder, tmp_path):
    paths, store, facts = facts_of(dup_folder, tmp_path)
    names = [p.name for p in paths]
    cid = audit.clusters(len(paths), audit.near_pairs(facts["phash"], 6))
    a = {n: c for n, c in zip(names, cid, strict=True) if not n.startswith("other")}
    assert len(set(a.values())) == 1, a  # every copy joins the original
    others = [c for n, c in zip(names, cid, strict=True) if n.startswith("other")]
    assert len(set(others)) == 5 and not set(others) & set(a.values())
    sha = dict(zip(names, facts["sha1"], strict=True))
    assert sha["orig.png"] == sha["exact.png"] != sha["resized.png"]
    again = audit.file_facts(store, tmp_path / "cache")  # from the cache
    assert (again["phash"] == facts["phash"]).all()


def test_different_letters_are_not_merged(tiny_synthetic):
    dm = datamodule(root=str(tiny_synthetic), image_size=32, split={"fractions": [0.5, 0.25, 0.25]}, cache=False)
    dm.setup()
    s = dm.audit_summary
    assert s["images"] == 96 and s["exact_duplicates"]["groups"] == 0
    assert s["near_duplicates"]["look_alikes_across_classes"] == 0
    assert set(s["leakage"]) == {"val", "test"}


def test_cluster_split_keeps_every_cluster_in_one_split():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 40)
    clusters = rng.integers(0, 60, len(labels))
    splits = split_by_cluster(labels, clusters, list("ABCD"), [0.5, 0.25, 0.25], seed=3)
    for c in np.unique(clusters):
        assert len(set(splits[clusters == c])) == 1
    shares = [np.mean(splits == s) for s in SPLITS]
    assert shares == pytest.approx([0.5, 0.25, 0.25], abs=0.12)
    merged = merge_groups(["h1", "h1", "h2", "h3"], [0, 1, 1, 2])
    assert merged[0] == merged[1] == merged[2] != merged[3]


def test_dedupe_split_removes_the_leak(dup_folder):
    for i in range(5):
        smooth_image(np.random.default_rng(10 + i)).save(dup_folder / "A" / f"own{i}.png")
    kw = dict(root=str(dup_folder), classes="AB", image_size=32, cache=False)
    leaky = [datamodule(split={"fractions": [0.5, 0.25, 0.25], "seed": s}, **kw) for s in range(6)]
    for dm in leaky:
        dm.setup()
    assert max(dm.audit_summary["leakage"]["test"]["with_train_twin"] for dm in leaky) > 0
    for s in range(6):
        dm = datamodule(split={"fractions": [0.5, 0.25, 0.25], "seed": s, "dedupe": True}, **kw)
        dm.setup()
        assert dm.audit_summary["leakage"]["test"]["with_train_twin"] == 0
        assert dm.audit_summary["leakage"]["val"]["with_train_twin"] == 0


def test_unreadable_files_are_reported_by_name(dup_folder, tmp_path, monkeypatch, capsys):
    (dup_folder / "B" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "audit"
    monkeypatch.setattr(sys, "argv", ["asl-audit", f"data.root={dup_folder}", "data.classes=AB",
                                      f"hydra.run.dir={out}", "data.split.fractions=[0.6,0.2,0.2]"])
    from asl.cli.audit import main

    main()
    report = json.loads((out / "audit.json").read_text())
    assert [u["file"].endswith("broken.jpg") for u in report["unreadable"]] == [True]
    assert "cannot read image" in report["unreadable"][0]["reason"]
    assert (out / "near_duplicates.png").stat().st_size > 1000
    captured = capsys.readouterr()
    text = captured.out
    assert "1 unreadable" in text and "broken.jpg" in text
    assert (captured.out + captured.err).count("exact duplicates:") == 1  # the summary, once


def clustered_hashes(rng, n=600, labels=6):
    """64-bit hashes in look-alike families (a base with a few bits flipped), families spread over labels."""
    base = rng.integers(0, 2**64 - 1, n // 6, dtype=np.uint64, endpoint=True)
    flips = np.zeros(n, np.uint64)
    for _ in range(4):
        flips |= (rng.random(n) < 0.5).astype(np.uint64) << rng.integers(0, 64, n).astype(np.uint64)
    return base[rng.integers(0, len(base), n)] ^ flips, rng.integers(0, labels, n)


@pytest.mark.parametrize("distance", [0, 3, 6, 10, 30, 64])
def test_near_pairs_index_equals_all_pairs_and_within_letter_equals_same_letter_pairs(distance):
    rng = np.random.default_rng(distance)
    hashes, labels = clustered_hashes(rng)
    everything = np.argwhere(np.triu(audit.hamming(hashes, hashes) <= distance, 1))  # all pairs, sorted
    assert len(everything) > 0
    assert np.array_equal(audit.near_pairs(hashes, distance), everything)
    same = everything[labels[everything[:, 0]] == labels[everything[:, 1]]]
    assert np.array_equal(audit.near_pairs(hashes, distance, labels), same)
    assert np.array_equal(audit.same_class_pairs(everything, labels), same)


def test_nearest_train_twin_is_the_closest_same_letter_train_image():
    rng = np.random.default_rng(7)
    hashes, labels = clustered_hashes(rng, n=300)
    splits = np.array(["train", "val", "test"], dtype=object)[rng.integers(0, 3, len(hashes))]
    splits[(labels == 5) & (splits == "train")] = "val"  # a letter without train images
    dist, twin = audit.nearest_train(hashes, splits, labels)
    d = audit.hamming(hashes, hashes).astype(int)
    usable = (splits[None, :] == "train") & (labels[None, :] == labels[:, None]) & ~np.eye(len(hashes), dtype=bool)
    d[~usable] = 255
    assert np.array_equal(dist, d.min(1))
    has = dist < 255
    assert np.array_equal(twin[has], d.argmin(1)[has]) and (twin[~has] == -1).all() and (~has[labels == 5]).all()
