"""Which detector settings find the hands that a setting misses: run each candidate on a sample of
the misses and print how many it finds alone, and the best combinations of 1-3 candidates.

    python experiments/hands/retry_on_misses.py [DATA/asl_alphabet_room] [SAMPLE]

The misses are those of the full model with 25 % padding and the mirrored and 2x retries (the
earlier default), read from (or filled into) the detector cache in .cache/asl.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from asl import LETTERS
from asl.data.folder import discover, load_image
from asl.hands.detect import MediaPipeDetector, detect_files

BASE = {"padding": 0.25, "retry": ["mirror", "upscale"]}
CANDIDATES = {
    "full, no padding": {"padding": 0.0},
    "full, 5 % padding": {"padding": 0.05},
    "full, 50 % padding": {"padding": 0.5},
    "full, 75 % padding": {"padding": 0.75},
    "full, 100 % padding": {"padding": 1.0},
    "full, min confidence 0.1": {"min_confidence": 0.1},
    "lite, 25 % padding": {"model_complexity": 0},
    "lite, 75 % padding": {"model_complexity": 0, "padding": 0.75},
    "lite, 100 % padding": {"model_complexity": 0, "padding": 1.0},
}


def main(root: str = "../shared/data/asl_alphabet_room", sample: int = 200) -> None:
    table = discover(Path(root), list(LETTERS))
    results = detect_files(table.paths, BASE, ".cache/asl")
    misses = [p for p, r in zip(table.paths, results, strict=True) if r is None]
    pick = np.random.default_rng(0).choice(len(misses), min(sample, len(misses)), replace=False)
    images = [load_image(misses[i]) for i in pick]
    print(f"{root}: {len(misses)} of {len(results)} photos missed by {BASE}; trying {len(images)} of them")
    found = {}
    for name, settings in CANDIDATES.items():
        det = MediaPipeDetector({**BASE, **settings, "retry": ["mirror"]})
        found[name] = {i for i, image in enumerate(images) if det(image) is not None}
        det.close()
        print(f"| {name} | {len(found[name])} / {len(images)} |", flush=True)
    for k in (1, 2, 3):
        best = max(itertools.combinations(found, k), key=lambda c: len(set().union(*(found[n] for n in c))))
        print(f"best {k}: {' + '.join(best)} finds {len(set().union(*(found[n] for n in best)))} / {len(images)}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3]))
