"""Table of experiments/robustness/run.sh: accuracy over all photos (no hand = wrong) per row and set-up,
mean ± sample std over seeds, and the mean of the three set-ups (how rows are chosen); then, per row
and transfer, the worst letters, the most frequent confusions and the letter pairs that differ only
by where the hand points (G/Q, H/U, K/P), from the confusion matrices summed over the seeds (photos
with a hand).

    python experiments/robustness/summarise.py [OUT=experiments/robustness/runs]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np

from asl.runs.evaluate import error_table

PAIRS = (("G", "Q"), ("H", "U"), ("K", "P"))  # same handshape, another direction
# set-up → the metrics.json keys of (all photos, photos with a hand)
KEYS = {"massey2room": ("eval/room/acc_all_photos", "eval/room/acc_with_hand"),
        "room2massey": ("eval/massey/acc_all_photos", "eval/massey/acc_with_hand"),
        "signer": ("test/acc_all_photos", "test/acc_with_hand")}


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def main(out: str = "experiments/robustness/runs") -> None:
    print("| row | massey → room: all photos | with a hand | + AdaBN | room → massey: all photos | with a hand | + AdaBN "
          "| unseen signer: all photos | + AdaBN | mean of the three | + AdaBN | seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in sorted(p for p in Path(out).iterdir() if p.is_dir() and p.name != "aspect"):
        cells, means, adapted_means, seeds = [], [], [], set()
        for setup, (all_key, hand_key) in KEYS.items():
            runs = [json.loads(m.read_text()) for m in sorted((row / setup).glob("*/metrics.json"))]
            all_photos = [r[all_key] for r in runs if all_key in r]
            seeds.add(len(all_photos))
            cells.append(cell(all_photos))
            if setup != "signer":
                cells.append(cell([r[hand_key] for r in runs if hand_key in r]))
            adapted = [json.loads(m.read_text())["test/acc_all_photos"] for m in sorted((row / setup).glob("*/adapted/metrics.json"))]
            cells.append(cell(adapted))
            means.append(statistics.mean(all_photos) if all_photos else None)
            adapted_means.append(statistics.mean(adapted) if adapted else None)
        mean = f"{100 * statistics.mean(means):.1f}" if None not in means else "–"
        adapted_mean = f"{100 * statistics.mean(adapted_means):.1f}" if None not in adapted_means else "–"
        print(f"| {row.name} | {' | '.join(cells)} | {mean} | {adapted_mean} | {'/'.join(str(s) for s in sorted(seeds))} |")
    self_training(out)
    print("\n| row | transfer | worst letters (accuracy %) | most frequent confusions (true→predicted, photos) "
          "| G/Q, H/U, K/P mixed up (photos, both ways) |")
    print("|---|---|---|---|---|")
    for row in sorted(p for p in Path(out).iterdir() if p.is_dir() and p.name != "aspect"):
        for setup, name in (("massey2room", "room"), ("room2massey", "massey")):
            reports = [json.loads(m.read_text()) for m in sorted((row / setup).glob(f"*/eval/{name}/metrics.json"))]
            if not reports:
                continue
            letters = list(reports[0]["per_class_acc"])
            conf = sum(np.asarray(r["confusion"]) for r in reports)
            errors = error_table(conf, letters)  # what asl-eval prints, over the seeds' summed matrix
            worst = ", ".join(f"{''.join(w['letters'])} {100 * w['acc']:.0f}" for w in errors["worst_letters"])
            confused = ", ".join(f"{c['true']}→{c['predicted']} {c['count']}" for c in errors["top_confusions"])
            pairs = ", ".join(f"{a}/{b} {conf[letters.index(a), letters.index(b)] + conf[letters.index(b), letters.index(a)]}"
                              for a, b in PAIRS)
            print(f"| {row.name} | {setup} | {worst} | {confused} | {pairs} |")


def self_training(out: str) -> None:
    """Rows scored after self-training (run.sh's SELF_TRAIN_ROWS): all photos, no hand = wrong, beside AdaBN alone."""
    kinds = (("adapted", "AdaBN"), ("self_trained", "self-training + AdaBN"), ("self_trained_no_adabn", "self-training"))
    rows = [p for p in sorted(Path(out).iterdir()) if p.is_dir() and any(p.glob("*/*/self_trained/metrics.json"))]
    if not rows:
        return
    print("\n| row | scored after | massey → room | room → massey | unseen signer | mean of the three | pseudo-labels right "
          "(rounds 1, 2, 3; massey → room / room → massey / signer) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for folder, name in kinds:
            if not any(row.glob(f"*/*/{folder}/metrics.json")):
                continue
            cells, means, right = [], [], []
            for setup in KEYS:
                reports = [json.loads(m.read_text()) for m in sorted((row / setup).glob(f"*/{folder}/metrics.json"))]
                values = [r["test/acc_all_photos"] for r in reports]
                cells.append(cell(values))
                means.append(statistics.mean(values) if values else None)
                rounds = [[h["pseudo_label_acc"] for h in r["self_train"]] for r in reports if "self_train" in r]
                if rounds:
                    right.append(", ".join(f"{100 * v:.0f}" for v in np.mean(rounds, axis=0)))
            mean = f"{100 * statistics.mean(means):.1f}" if None not in means else "–"
            print(f"| {row.name} | {name} | {' | '.join(cells)} | {mean} | {' / '.join(right) or '–'} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
