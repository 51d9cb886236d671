"""Table of experiments/hands/run.sh: accuracy per model row and setup, mean ± std over seeds.

"all" counts photos without a detected hand as wrong (models trained with data.no_hand=drop drop
them, so all = accuracy × tested / (tested + dropped)); "detected" is the accuracy on the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def scores(run: Path, setup: str) -> tuple[float, float] | None:
    if setup == "signer":
        m = run / "metrics.json"
        if not m.exists():
            return None
        metrics = json.loads(m.read_text())
        acc, n = metrics["test/acc"], metrics["num_test_images"]
        skipped = run / "skipped_files.csv"
        dropped = sum("hand5_" in line for line in skipped.read_text().splitlines()) if skipped.exists() else 0
    else:
        m = run / "transfer" / "metrics.json"
        if not m.exists():
            return None
        metrics = json.loads(m.read_text())
        acc, n, dropped = metrics["test/acc"], metrics["num_images"], metrics["skipped_files"]
    return acc * n / (n + dropped), acc


def main(out: str) -> None:
    root = Path(out)
    setups = ["massey2room", "room2massey", "signer"]
    print("| model | " + " | ".join(f"{s}: all | {s}: detected" for s in setups) + " |")
    print("|---|" + "---|---|" * len(setups))
    for row in sorted(p for p in root.iterdir() if p.is_dir()):
        cells = []
        for setup in setups:
            found = [s for r in sorted((row / setup).glob("*/")) if (s := scores(r, setup))] if (row / setup).is_dir() else []
            if not found:
                cells += ["–", "–"]
                continue
            a = np.array(found) * 100
            cells += [f"{a[:, k].mean():.1f} ± {a[:, k].std():.1f} (n={len(a)})" for k in (0, 1)]
        print(f"| {row.name} | " + " | ".join(cells) + " |")
    print("\nWhat limits each transfer (confusion matrices summed over seeds; rows = true letter):")
    for row in sorted(p for p in root.iterdir() if p.is_dir()):
        for setup in setups[:2]:
            mats = [json.loads(m.read_text()) for m in sorted((row / setup).glob("*/transfer/metrics.json"))]
            if mats:
                print(f"- {row.name}, {setup}: {limits(mats)}")


def limits(metrics: list[dict], k: int = 6) -> str:
    """The k lowest letters and the k most frequent confusions, summed over runs."""
    letters = list(metrics[0]["per_class_acc"])
    conf = np.sum([np.asarray(m["confusion"]) for m in metrics], axis=0)
    acc = conf.diagonal() / conf.sum(1).clip(min=1)
    off = conf - np.diag(conf.diagonal())
    pairs = sorted(((off[i, j], i, j) for i in range(len(letters)) for j in range(len(letters)) if off[i, j]), reverse=True)[:k]
    return ("lowest " + ", ".join(f"{letters[i]} {acc[i]:.0%}" for i in np.argsort(acc)[:k])
            + "; confused " + ", ".join(f"{letters[i]}→{letters[j]} {n}" for n, i, j in pairs))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/hands/runs")
