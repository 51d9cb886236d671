"""Leak rate of a random per-class split vs the deduplicated split (no training: seconds).

    python experiments/leakage/leak_rates.py [DATA] [--seeds 0 1 2] [--distance 6]
"""

import argparse
import logging

import numpy as np

from asl.inputs import InputSpec
from asl.lit.datamodule import ASLDataModule

SETS = ("asl_alphabet_room", "asl_massey_black")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="../shared/data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--distance", type=int, default=6)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"| data set | split | test leak rate (mean ± sd over seeds {a.seeds}) | val leak rate | train/val/test |")
    print("|---|---|---|---|---|")
    for name in SETS:
        for dedupe in (False, True):
            test, val = [], []
            for seed in a.seeds:
                dm = ASLDataModule(InputSpec(image_size=a.size), source={"root": f"{a.data}/{name}"}, seed=seed,
                                   audit={"near_duplicate_distance": a.distance},
                                   split={"fractions": [0.5, 0.25, 0.25], "dedupe": dedupe}, cache_dir=".cache/asl")
                dm.setup()
                leak = dm.audit_summary["leakage"]
                test.append(leak["test"]["leak_rate"])
                val.append(leak["val"]["leak_rate"])
                sizes = "/".join(str(int((dm.splits == s).sum())) for s in ("train", "val", "test"))
            print(f"| {name} | {'dedupe (clusters)' if dedupe else 'random per class'} | "
                  f"{np.mean(test):.1%} ± {np.std(test):.1%} | {np.mean(val):.1%} ± {np.std(val):.1%} | {sizes} |")


if __name__ == "__main__":
    main()
