"""Test-time augmentation for the landmark model (issue 19): is the mean prediction over augmented copies of
each hand better than the prediction of the hand as seen?

For each set-up and seed of ``experiments/robustness/run.sh`` row ``robust_best`` (as trained, and as
self-trained on the new set with AdaBN), every test photo's landmark row (``asl.hands.prepare``, the same
as evaluation) is classified as is and as the mean softmax over itself plus N copies moved by the model's own
training augmentation (``model.augment``: rotation, scale, jitter, finger lengths; fixed generator), and
with N copies of twice that augmentation. Scored over ALL photos (no hand = wrong); mean ± sample std, %.

    python experiments/robustness/tta.py [--copies 15] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from fusion import LANDMARKS, labels_of, landmark_checkpoint, test_files  # noqa: E402

from asl.hands.features import augment  # noqa: E402
from asl.hands.prepare import find_hands, landmark_row  # noqa: E402
from asl.lit.module import load_classifier  # noqa: E402


@torch.no_grad()
def scores(ckpt: Path, files: list[Path], variants: list[tuple[int, float]]) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """For each (copies, strength) variant the mean softmax over the row and ``copies`` copies moved by
    ``strength`` × the model's augmentation; whether a hand was found; the class names."""
    module = load_classifier(ckpt).eval()
    hands = find_hands(files, module.spec, ".cache/asl")
    x = torch.from_numpy(np.stack([landmark_row(h) for h in hands])).float()
    seen = module(x).softmax(-1)
    out = []
    for copies, strength in variants:
        settings = {k: v * strength for k, v in module.net.augment.items()}
        g = torch.Generator().manual_seed(0)
        probs = seen.clone()
        for _ in range(copies):
            probs += module(augment(x, **settings, generator=g)).softmax(-1)
        out.append(probs.numpy())
    return out, np.asarray([h is not None for h in hands]), list(module.class_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=15)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--setups", nargs="+", default=["massey2room", "room2massey", "signer"])
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cols = {"as seen": (0, 1.0), f"TTA ×{args.copies}": (args.copies, 1.0), f"TTA ×{args.copies}, 2× augmentation": (args.copies, 2.0)}
    print(f"% of all photos (no hand = wrong), mean ± sample std over seeds {args.seeds}\n")
    print("| landmark model | set-up | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for landmark in ("as_trained", "self_trained"):
        for setup in args.setups:
            acc = {c: [] for c in cols}
            for seed in args.seeds:
                run = LANDMARKS / setup / str(seed)
                files = test_files(setup, run)
                probs, ok, classes = scores(landmark_checkpoint(run, landmark), files, list(cols.values()))
                y = labels_of(files, classes)
                for c, p in zip(cols, probs, strict=True):
                    acc[c].append(float(((p.argmax(1) == y) & ok).mean()))
            cells = [f"{100 * np.mean(v):.1f} ± {100 * np.std(v, ddof=1):.1f}" for v in acc.values()]
            print(f"| {landmark} | {setup} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
