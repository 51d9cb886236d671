"""Late fusion of a landmark run and an image run (issue 19: a pretrained image branch as fusion partner,
calibrated and weighted fusion, and the image branch as fallback for photos without a detected hand).

For each set-up and seed it loads two finished runs of the same set-up and seed:
- the landmark model of ``experiments/robustness/run.sh`` row ``robust_best`` (as trained, and as
  self-trained on the new set with AdaBN: ``<run>/self_trained/self_trained.ckpt``), and
- an image model of ``experiments/transfer/run.sh`` (default row ``mnv2_last2``: pretrained MobileNetV2 on
  128 px hand crops, its last two stages fine-tuned),
predicts every test photo with each (``asl.runs.predict``, the same preparation as evaluation) and scores,
over ALL photos (a photo neither branch can classify counts wrong):
- ``landmarks``: the landmark model alone (photos without a hand wrong; must equal the run's own figure);
- ``+ fallback``: the image model classifies the photos without a hand;
- ``sum``: log-probabilities summed (weight 1, no calibration), image alone without a hand;
- ``calibrated``: each branch's logits divided by its temperature, fitted on its own run's validation split
  (labels of the training set only), then summed;
- ``weighted``: calibrated, the image branch weighted by w chosen on the validation photos both runs share
  (grid 0-2); nothing of the test set is used to choose;
- ``oracle w``: the best weight on the test photos themselves: an upper bound, not a recipe.

    python experiments/robustness/fusion.py [IMAGE_ROW=mnv2_last2] [--seeds 0 1 2]

Predictions are cached per run in ``<image run>/fusion_probs.npz`` and ``<landmark run>/fusion_probs*.npz``.
Prints one markdown table (mean ± sample std over seeds, %).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from asl.runs.predict import load_predictor, predict_files  # noqa: E402

LANDMARKS = Path("experiments/robustness/runs/robust_best")
IMAGES = Path("experiments/transfer/runs/pilot")
DATA = Path(os.environ.get("DATA", "../shared/data"))
SETUPS = {"massey2room": "asl_alphabet_room", "room2massey": "asl_massey_black", "signer": None}  # → the test set
SOURCE = {"massey2room": "asl_massey_black", "room2massey": "asl_alphabet_room", "signer": "asl_massey_black"}
WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0]


def split_files(run: Path, setup: str, split: str) -> list[Path]:
    """The run's photos of one split (its splits.csv)."""
    rows = [r for r in csv.DictReader(open(run / "splits.csv")) if r["split"] == split]
    return [DATA / SOURCE[setup] / r["file"] for r in rows]


def landmark_checkpoint(run: Path, landmark: str) -> Path:
    """The landmark run's model as trained (``as_trained``) or self-trained with AdaBN (``self_trained``)."""
    return run / ("self_trained/self_trained.ckpt" if landmark == "self_trained" else "checkpoints/best.ckpt")


def test_files(setup: str, lm_run: Path) -> list[Path]:
    """Every photo of the other set (transfers), or the landmark run's test split (signer)."""
    if SETUPS[setup]:
        return sorted(p for p in (DATA / SETUPS[setup]).glob("*/*") if p.is_file() and not p.name.endswith(".json"))
    return split_files(lm_run, setup, "test")


def log_probs(ckpt: Path, files: list[Path], cache: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(log-probabilities (n, 24), whether the photo was classified, class names), cached in ``cache``."""
    key = np.asarray([str(f) for f in files])
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if np.array_equal(z["files"], key):
            return z["logp"], z["ok"], list(z["classes"])
    model = load_predictor(ckpt)
    rows = predict_files(model, files, top_k=len(model.class_names), cache_dir=".cache/asl")
    index = {c: i for i, c in enumerate(model.class_names)}
    logp = np.full((len(files), len(index)), -np.inf, np.float64)
    ok = np.zeros(len(files), bool)
    for i, row in enumerate(rows):
        if "top" not in row or (model.spec.inputs == "landmarks" and row.get("hand") is False):
            continue  # unreadable, or a landmark model without landmarks: cannot classify it
        for c, p in row["top"]:
            logp[i, index[c]] = np.log(max(p, 1e-12))
        ok[i] = True
    np.savez(cache, files=key, logp=logp, ok=ok, classes=np.asarray(model.class_names))
    return logp, ok, list(model.class_names)


def temperature(logp: np.ndarray, ok: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the validation NLL (log-probabilities are logits up to a constant)."""
    z, y = torch.tensor(logp[ok]), torch.tensor(labels[ok])
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 200))
    nll = [torch.nn.functional.cross_entropy(z / t, y).item() for t in grid]
    return float(grid[int(np.argmin(nll))])


def fuse(lm: np.ndarray, lm_ok: np.ndarray, im: np.ndarray, im_ok: np.ndarray, w: float, t_lm: float = 1.0,
         t_im: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class and whether any branch classified it: calibrated log-softmax of each, summed with
    the image branch weighted by w; the image branch alone where the landmarks are missing."""
    a = torch.log_softmax(torch.tensor(np.where(lm_ok[:, None], lm, 0.0)) / t_lm, -1).numpy()
    b = torch.log_softmax(torch.tensor(np.where(im_ok[:, None], im, 0.0)) / t_im, -1).numpy()
    score = np.where(lm_ok[:, None], a + w * np.where(im_ok[:, None], b, 0.0), b)
    return score.argmax(1), lm_ok | im_ok


def accuracy(pred: np.ndarray, ok: np.ndarray, labels: np.ndarray) -> float:
    return float(((pred == labels) & ok).mean())


def labels_of(files: list[Path], classes: list[str]) -> np.ndarray:
    index = {c.upper(): i for i, c in enumerate(classes)}
    return np.asarray([index[Path(f).parent.name.upper()] for f in files])


def one(setup: str, seed: int, image_row: str, landmark: str) -> dict[str, float]:
    lm_run, im_run = LANDMARKS / setup / str(seed), IMAGES / image_row / setup / str(seed)
    lm_ckpt = landmark_checkpoint(lm_run, landmark)
    files = test_files(setup, lm_run)
    lm, lm_ok, classes = log_probs(lm_ckpt, files, lm_run / f"fusion_probs_{landmark}.npz")
    im, im_ok, im_classes = log_probs(im_run / "checkpoints/best.ckpt", files, im_run / "fusion_probs.npz")
    assert classes == im_classes, (classes, im_classes)
    y = labels_of(files, classes)
    # validation: each branch's own (temperatures), and the photos both share (the weight)
    lm_val, im_val = split_files(lm_run, setup, "val"), split_files(im_run, setup, "val")
    lv, lv_ok, _ = log_probs(lm_ckpt, lm_val, lm_run / f"fusion_val_{landmark}.npz")
    iv, iv_ok, _ = log_probs(im_run / "checkpoints/best.ckpt", im_val, im_run / "fusion_val.npz")
    t_lm, t_im = temperature(lv, lv_ok, labels_of(lm_val, classes)), temperature(iv, iv_ok, labels_of(im_val, classes))
    lm_at, im_at = {f: i for i, f in enumerate(lm_val)}, {f: i for i, f in enumerate(im_val)}
    shared = sorted(set(lm_at) & set(im_at))
    li, ii = [lm_at[f] for f in shared], [im_at[f] for f in shared]
    ys = labels_of(shared, classes)
    val_acc = {w: accuracy(*fuse(lv[li], lv_ok[li], iv[ii], iv_ok[ii], w, t_lm, t_im), ys) for w in WEIGHTS}
    w_val = max(WEIGHTS, key=lambda w: (val_acc[w], -w))  # ties: the smaller image weight
    test_acc = {w: accuracy(*fuse(lm, lm_ok, im, im_ok, w, t_lm, t_im), y) for w in WEIGHTS}
    return {
        "landmarks": accuracy(lm.argmax(1), lm_ok, y),
        "image": accuracy(im.argmax(1), im_ok, y),
        "+ fallback": accuracy(*fuse(lm, lm_ok, im, im_ok, 0.0), y),
        "sum": accuracy(*fuse(lm, lm_ok, im, im_ok, 1.0), y),
        "calibrated": test_acc[1.0],
        "weighted": test_acc[w_val],
        "oracle w": max(test_acc.values()),
        "w (val)": w_val, "T landmarks": t_lm, "T image": t_im, "shared val photos": len(shared),
        "without hand": int((~lm_ok).sum()), "photos": len(files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image_row", nargs="?", default="mnv2_last2")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cols = ["landmarks", "image", "+ fallback", "sum", "calibrated", "weighted", "oracle w"]
    print(f"image branch: {args.image_row}; % of all photos, mean ± sample std over seeds {args.seeds}\n")
    print("| landmark model | set-up | " + " | ".join(cols) + " | w (val) | T landmarks / image |")
    print("|---" * (len(cols) + 4) + "|")
    for landmark in ("as_trained", "self_trained"):
        for setup in args.setups:
            rs = [one(setup, s, args.image_row, landmark) for s in args.seeds]
            cell = [f"{100 * np.mean([r[c] for r in rs]):.1f} ± {100 * np.std([r[c] for r in rs], ddof=1):.1f}" for c in cols]
            ws = ", ".join(str(r["w (val)"]) for r in rs)
            ts = ", ".join(f"{r['T landmarks']:.2f}/{r['T image']:.2f}" for r in rs)
            print(f"| {landmark} | {setup} | " + " | ".join(cell) + f" | {ws} | {ts} |")
        print(f"\n(without a hand, of the photos: {[ (r['without hand'], r['photos']) for r in rs]}; "
              f"shared val photos: {[r['shared val photos'] for r in rs]})")


if __name__ == "__main__":
    main()
