"""Hand-detection rate per set and detector settings (the first PER_CLASS photos of each letter).

    python experiments/hands/detection_rates.py [DATA] [PER_CLASS]

Uses and fills the same cache as training (paths.cache_dir, default .cache/asl), one cache file
per setting. The default setting on every photo is what ``asl-prepare hands`` prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

from asl import LETTERS
from asl.data.folder import discover
from asl.hands.detect import detect_files, detection_rates

SETTINGS = {
    "no padding, no retry": {"padding": 0.0, "retry": []},
    "25 % padding, no retry": {"padding": 0.25, "retry": []},
    "25 % padding, retry mirrored + 2x": {"padding": 0.25, "retry": ["mirror", "upscale"]},
    "+ retry lite 75 % padding, full 100 % padding (default)": {},
}


def main(data: str = "../shared/data", per_class: int = 10) -> None:
    print(f"| set (first {per_class} photos per letter) | " + " | ".join(SETTINGS) + " |")
    print("|---|" + "---|" * len(SETTINGS))
    for name in ("asl_massey_black", "asl_alphabet_room"):
        table = discover(Path(data) / name, list(LETTERS))
        keep = [i for i, lab in enumerate(table.labels) if table.labels[:i].count(lab) < per_class]
        paths, labels = [table.paths[i] for i in keep], [table.labels[i] for i in keep]
        cells = []
        for settings in SETTINGS.values():
            rates = detection_rates(detect_files(paths, settings, ".cache/asl", progress=False), labels, LETTERS)
            cells.append(f"{rates['all']:.1%}")
        print(f"| {name} ({len(paths)}) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["../shared/data"]), *(int(a) for a in sys.argv[2:3]))
