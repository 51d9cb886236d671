import numpy as np

from asl import LETTERS
from asl.data import synthetic
from asl.data.folder import load_image, load_mask


def test_render_shapes_and_keypoints_inside_image():
    rng = np.random.default_rng(0)
    for letter in LETTERS:
        image, mask, kp = synthetic.render(letter, rng, 48)
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 48) and set(np.unique(mask)) <= {0, 255}
        assert kp.shape == (21, 3)
        assert (kp[:, :2] > -0.05).all() and (kp[:, :2] < 1.05).all()
        # the hand covers a real part of the image but not all of it
        assert 0.05 < (mask > 0).mean() < 0.8


def test_keypoints_follow_mediapipe_order():
    kp = synthetic.pose_keypoints(synthetic.POSES["B"], np.random.default_rng(0), jitter=0)
    wrist, middle_tip = kp[0], kp[12]
    # open hand: fingertips are farther from the wrist than their knuckles
    for mcp, tip in ((5, 8), (9, 12), (13, 16), (17, 20)):
        assert np.linalg.norm(kp[tip, :2] - wrist[:2]) > np.linalg.norm(kp[mcp, :2] - wrist[:2])
    assert middle_tip[1] > 1.5  # up, in palm widths


def test_generate_is_deterministic_and_cached(tmp_path):
    a = synthetic.generate(tmp_path / "a", per_class=2, image_size=32, seed=5, classes=["A", "B"])
    b = synthetic.generate(tmp_path / "b", per_class=2, image_size=32, seed=5, classes=["A", "B"])
    for name in ("A/A_00000.png", "B/B_00001.png", "A/A_00001.mask.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    mtime = (a / "A/A_00000.png").stat().st_mtime_ns
    assert synthetic.generate(tmp_path / "a", per_class=2, image_size=32, seed=5, classes=["A", "B"]) == a
    assert (a / "A/A_00000.png").stat().st_mtime_ns == mtime
    kps = synthetic.read_keypoints(a)
    assert set(kps) == {"A/A_00000.png", "A/A_00001.png", "B/B_00000.png", "B/B_00001.png"}
    c = synthetic.generate(tmp_path / "c", per_class=2, image_size=32, seed=6, classes=["A", "B"])
    assert (a / "A/A_00000.png").read_bytes() != (c / "A/A_00000.png").read_bytes()


def test_mask_matches_image_foreground(tiny_synthetic):
    image = load_image(tiny_synthetic / "C" / "C_00000.png")
    mask = load_mask(tiny_synthetic / "C" / "C_00000.mask.png")
    assert image.shape[:2] == mask.shape
    fg, bg = image[mask > 0].astype(float), image[mask == 0].astype(float)
    assert np.abs(fg.mean(0) - bg.mean(0)).sum() > 10  # the hand differs from the plain background
