"""Copies of a photo set padded to another aspect ratio: the same hands in non-square frames.

    python experiments/robustness/pad_photos.py SRC DEST --aspect 4:3 [--match hand5_]

Each photo is centred on a black canvas of the asked width:height (``4:3`` wide, ``3:4`` tall) that
contains it: the hand's pixels are unchanged, only the frame's shape differs. ``--match`` keeps only
files whose name contains that text (e.g. ``hand5_``: massey's unseen signer). The copies go to
DEST/<LETTER>/ as PNG; never into the project.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def pad_to(image: np.ndarray, aspect: float) -> np.ndarray:
    """``image`` centred on the smallest black canvas of width / height = ``aspect`` that holds it."""
    h, w = image.shape[:2]
    W, H = (round(h * aspect), h) if w / h < aspect else (w, round(w / aspect))
    out = np.zeros((H, W, 3), image.dtype)
    y, x = (H - h) // 2, (W - w) // 2
    out[y:y + h, x:x + w] = image
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--aspect", default="4:3", help="width:height of the padded frame")
    ap.add_argument("--match", default="", help="only files whose name contains this")
    a = ap.parse_args()
    w, h = (float(v) for v in a.aspect.split(":"))
    n = 0
    for letter in sorted(p for p in a.src.iterdir() if p.is_dir()):
        (a.dest / letter.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(letter.iterdir()):
            if a.match not in photo.name or photo.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            rgb = np.asarray(Image.open(photo).convert("RGB"))
            Image.fromarray(pad_to(rgb, w / h)).save(a.dest / letter.name / f"{photo.stem}.png")
            n += 1
    print(f"{n} photos padded to {a.aspect} in {a.dest}")


if __name__ == "__main__":
    main()
