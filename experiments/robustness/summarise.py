"""Tables of experiments/robustness/run.sh: accuracy over all photos (no hand = wrong) per row and set-up,
mean ± sample std over seeds. First the leave-one-set-out set-ups and the unseen signer (issue 26, how
rows are chosen now): as trained, and after each adaptation both unchecked and as the label-free check
(asl/runs/adaptation.py) leaves it, the mean of the four set-ups with its 95 % interval over seeds, the
worst letter, the paired difference from the row before the preset; then the check's signals per set-up
beside the change adaptation made. Then issue 19's tables (the two transfers and the signer); per row
and transfer, the worst letters, the most frequent confusions and the letter pairs that differ only by
where the hand points (G/Q, H/U, K/P), from the confusion matrices summed over the seeds (photos with a
hand).

    python experiments/robustness/summarise.py [OUT=experiments/robustness/runs]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np

from asl.runs.evaluate import error_table
from asl.runs.stats import mean_interval, paired_difference

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


LOSO = ("to_grey", "to_room", "to_massey", "signer")  # how rows are chosen (experiments/setups.sh)
ADAPTED = (("adapted", "AdaBN"), ("self_trained", "self-training + AdaBN"), ("self_trained_confident",
           "self-training (issue 19's labels) + AdaBN"), ("self_trained_no_adabn", "self-training"))
BASELINES = ("robust_best", "robust_handedness")  # paired differences against the preset and the one before issue 26
POINTING = "GHPQRMN"  # the letters held pointing down or sideways that failed for other people (issue 26)


TRANSFERS = ("massey2room", "room2massey", "massey2grey", "grey2massey", "room2grey", "grey2room")  # one set to another
EVAL_NAME = {"massey2room": "room", "room2massey": "massey"}  # the eval set's name in training (else "other")


def as_trained(run: Path, setup: str) -> tuple[float, dict[str, float]] | None:
    """(accuracy over all photos, per-letter accuracy) of a run as trained on the set-up's scored photos."""
    report = run / ("metrics.json" if setup == "signer" else f"eval/{EVAL_NAME.get(setup, 'other')}/metrics.json")
    if not report.exists():
        return None
    r = json.loads(report.read_text())
    return r["test/acc_all_photos"], r["per_class_acc"]


def scored(run: Path, setup: str, folder: str | None, checked: bool) -> tuple[float, dict[str, float]] | None:
    """The run as trained (``folder`` None) or adapted (its asl-eval folder), unchecked or as the label-free
    check leaves it (as asl-eval's keep_adapted=check does): the adapted model where the check passed, else the
    model as trained; self-training with AdaBN only where AdaBN alone passed (else the run's self-training
    without it, self_trained_no_adabn)."""
    base = as_trained(run, setup)
    if folder is None or base is None:
        return base
    adabn = run / "adapted" / "metrics.json"
    if checked and folder == "self_trained" and adabn.exists() and not json.loads(adabn.read_text())["adaptation"]["passed"]:
        folder = "self_trained_no_adabn"
    report = run / folder / "metrics.json"
    if not report.exists():
        return None
    r = json.loads(report.read_text())
    if checked and not r["adaptation"]["passed"]:
        return base
    return r["test/acc_all_photos"], r["per_class_acc"]


def table(rows: list[Path], setups: tuple[str, ...], header: str) -> dict[tuple[str, str], list[float]]:
    """Print one line per row and way of scoring it (as trained; each adaptation unchecked and checked) over
    ``setups``: mean ± std per set-up, the mean over them with its 95 % interval over seeds, the worst
    letter; return each line's per-seed means over the set-ups (for paired differences)."""
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    per_seed: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        runs = {s: sorted((row / s).glob("[0-9]*")) for s in setups}
        for folder, name in ((None, "as trained"), *ADAPTED):
            for checked in ((False,) if folder is None else (False, True)):
                results = {s: [scored(r, s, folder, checked) for r in runs[s]] for s in setups}
                if not all(results.values()) or any(None in v for v in results.values()):
                    continue
                cells = [cell([a for a, _ in results[s]]) for s in setups]
                seeds = min(len(v) for v in results.values())
                means = [statistics.mean(results[s][i][0] for s in setups) for i in range(seeds)]
                low, high = mean_interval(means)
                letters = {(L, s): statistics.mean(p[L] for _, p in results[s]) for s in setups for L in results[s][0][1]}
                (letter, setup), worst = min(letters.items(), key=lambda kv: kv[1])
                label = name if folder is None else f"{name}, {'checked' if checked else 'unchecked'}"
                per_seed[(row.name, label)] = means
                print(f"| {row.name} | {label} | {' | '.join(cells)} | {100 * statistics.mean(means):.1f} "
                      f"[{100 * low:.1f}, {100 * high:.1f}] | {letter} {100 * worst:.0f} ({setup}) | {seeds} |")
    return per_seed


def transfers(out: Path) -> None:
    rows = [p for p in sorted(out.iterdir()) if p.is_dir() and all((p / s).is_dir() for s in TRANSFERS)]
    if rows:
        print("\nThe six transfers from one set to another (the second table):\n")
        table(rows, TRANSFERS, "| row | scored after | massey → room | room → massey | massey → grey | grey → massey "
                               "| room → grey | grey → room | mean of the six [95 % interval] | worst letter (set-up) | seeds |")


def leave_one_out(out: Path) -> None:
    rows = [p for p in sorted(out.iterdir()) if p.is_dir() and any((p / s).is_dir() for s in LOSO[:3])]
    if not rows:
        return
    per_seed = table(rows, LOSO, "| row | scored after | to grey_wall | to room | to massey | unseen signer "
                                 "| mean of the four [95 % interval] | worst letter (set-up) | seeds |")
    for base in BASELINES:
        # every other row against the preset; the preset against the one before it
        against = (lambda r: r not in BASELINES) if base == BASELINES[0] else (lambda r: r == BASELINES[0])
        pairs = [(key, per_seed[(base, key[1])]) for key in per_seed if against(key[0]) and (base, key[1]) in per_seed]
        if not pairs:
            continue
        print(f"\nPaired by seed (same split and initialisation) against {base}, mean of the four set-ups, points:\n")
        for (row, label), before in pairs:
            d = paired_difference(per_seed[(row, label)], before)
            lo, hi = d["t_interval"]
            print(f"- {row} − {base}, {label}: {100 * d['mean']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] (paired t, "
                  f"p = {d['p_t']:.3f}; probability of improvement {d['probability_of_improvement']:.2f})")
        print("\n(3 pairs: a sign-flip test's smallest p is 0.25, so it cannot show a difference; the t-test's p assumes "
              "normal differences)")
    print("\nPer letter, as trained (photos with a hand, mean over seeds, %): the letters held pointing down or sideways\n")
    print(f"| row | set-up | {' | '.join(POINTING)} | worst letter |")
    print("|---|---|" + "---|" * (len(POINTING) + 1))
    for row in rows:
        for setup in LOSO:
            results = [as_trained(r, setup) for r in sorted((row / setup).glob("[0-9]*"))]
            if not results or None in results:
                continue
            per = {L: statistics.mean(p[L] for _, p in results) for L in results[0][1]}
            worst = min(per, key=per.get)
            print(f"| {row.name} | {setup} | {' | '.join(f'{100 * per[L]:.0f}' for L in POINTING)} | {worst} {100 * per[worst]:.0f} |")
    print("\n| row | adaptation | set-up | kept by the check (seeds) | change unchecked, points (per seed) | prior gap before → after "
          "| agreement | letters lost | reverse validation before → after, % | reasons not kept |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for folder, name in ADAPTED:
            for setup in LOSO:
                runs = [r for r in sorted((row / setup).glob("[0-9]*")) if (r / folder / "metrics.json").exists()]
                if not runs:
                    continue
                reports = [json.loads((r / folder / "metrics.json").read_text()) for r in runs]
                checks = [r["adaptation"] for r in reports]
                change = [100 * (r["test/acc_all_photos"] - as_trained(run, setup)[0]) for r, run in zip(reports, runs, strict=True)]
                gaps = ", ".join(f"{c['prior_gap_before']:.2f} → {c['prior_gap_after']:.2f}" for c in checks)
                agreement = ", ".join(f"{c['agreement']:.2f}" for c in checks)
                letters = list(reports[0]["per_class_acc"])
                lost = "".join(sorted({letters[i] for c in checks for i in c["lost_letters"]})) or "–"
                why = "; ".join(sorted({c["reason"].split(" (")[0] for c in checks if not c["passed"]})) or "–"
                reverse = ", ".join(f"{100 * c['reverse_acc_before']:.0f} → {100 * c['reverse_acc_after']:.0f}"
                                    for c in checks if "reverse_acc_before" in c) or "–"  # self-training only
                print(f"| {row.name} | {name} | {setup} | {sum(c['passed'] for c in checks)}/{len(checks)} | "
                      f"{', '.join(f'{v:+.1f}' for v in change)} | {gaps} | {agreement} | {lost} | {reverse} | {why} |")


def main(out: str = "experiments/robustness/runs") -> None:
    leave_one_out(Path(out))
    transfers(Path(out))
    if not any(any(Path(out).glob(f"*/{s}")) for s in KEYS if s != "signer"):
        return
    print("\nIssue 19's set-ups (the two transfers between massey and room, and the signer):\n")
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
