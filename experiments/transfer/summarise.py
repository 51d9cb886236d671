"""Table of experiments/transfer/run.sh: mean ± sample std over seeds per row x set-up, and the times.

    python experiments/transfer/summarise.py [OUT=experiments/transfer/runs/pilot] [CACHE_DIR=.cache/asl]

The runs keep photos without a detected hand whole (data.no_hand=keep), so the measured accuracy
classifies them from the whole photo. The issue counts them wrong: "strict" re-scores each run so.
It finds the test photos without a hand through the detector cache, predicts them with the run's
best checkpoint (asl.runs.predict, the same preparation as evaluation), removes those predictions
from the test confusion matrix and counts them wrong: strict accuracy = (correct - correct without a
hand) / all; strict macro-F1 takes recall over all photos of a letter and precision over the
predictions still made.

A second table gives each row's mean over the three set-ups (accuracy, no hand = wrong), the figure
recipes are chosen by. Times come from each run: fit_seconds (metrics.json: the head's training,
plus the frozen features when this run computed them), and from train.log's time stamps the
feature computation (the seed that computed them) and the evaluation on the other set (whole
network on every photo).
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

SETUPS = {"signer": None, "massey2room": "room", "room2massey": "massey"}
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def log_lines(job: Path) -> list[tuple[datetime, str]]:
    out = []
    for line in (job / "train.log").read_text(errors="replace").splitlines():
        m = STAMP.match(line)
        if m:
            out.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), line))
    return out


def seconds_before(lines: list[tuple[datetime, str]], needle: str) -> float | None:
    """Seconds between the line holding ``needle`` and the line before it."""
    for (t0, _), (t1, line) in zip(lines, lines[1:], strict=False):
        if needle in line:
            return (t1 - t0).total_seconds()
    return None


def f1_macro(conf: np.ndarray, support: np.ndarray) -> float:
    """Macro-F1 from a confusion matrix (rows true, columns predicted); recall over ``support``."""
    diag = np.diag(conf).astype(float)
    pred = conf.sum(0).astype(float)
    recall = np.divide(diag, support, out=np.zeros_like(diag), where=support > 0)
    precision = np.divide(diag, pred, out=np.zeros_like(diag), where=pred > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(diag), where=precision + recall > 0)
    return float(f1[support > 0].mean())


def run_path(job: Path, value: str) -> Path:
    """A path from a run's config as the run read it: a relative one against the directory the run was
    started in (Hydra records it), or against this one where it is not found there (a removed checkout)."""
    import yaml

    path = Path(value)
    started_in = Path(yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"]["cwd"])
    return started_in / path if not path.is_absolute() and (started_in / path).exists() else path


def test_photos(job: Path, setup: str, cfg: dict) -> tuple[list[Path], list[str]]:
    """The photos the reported metric was measured on, and their letters."""
    if SETUPS[setup] is None:  # the run's own test split
        root = run_path(job, cfg["data"]["root"])
        rows = [r for r in csv.DictReader(open(job / "splits.csv")) if r["split"] == "test"]
        return [root / r["file"] for r in rows], [r["label"] for r in rows]
    root = run_path(job, cfg["eval_sets"][SETUPS[setup]])
    from asl.runs.predict import collect_inputs

    paths = collect_inputs(str(root))
    return paths, [p.parent.name.upper() for p in paths]


def strict(job: Path, setup: str, cache_dir: str) -> dict:
    """Photos without a detected hand counted wrong (see the module docstring)."""
    import yaml  # noqa: I001  (asl and its dependencies only here: the timing table needs none)
    from asl.hands.prepare import find_hands
    from asl.runs.predict import load_predictor, predict_files

    cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    name = SETUPS[setup]
    metrics = json.loads((job / "eval" / name / "metrics.json").read_text()) if name else json.loads((job / "metrics.json").read_text())
    acc = metrics["test/acc"]
    f1 = metrics["test/f1_macro"]
    paths, labels = test_photos(job, setup, cfg)
    model = load_predictor(job / "checkpoints" / "best.ckpt")
    hands = find_hands(paths, model.spec, cache_dir)
    missing = [(p, y) for p, y, h in zip(paths, labels, hands, strict=True) if h is None]
    out = {"n": len(paths), "no_hand": len(missing), "acc": acc, "f1": f1, "strict_acc": acc, "strict_f1": f1}
    if not missing:
        return out
    rows = predict_files(model, [p for p, _ in missing], top_k=1, cache_dir=cache_dir)
    assert all(r.get("hand") is False for r in rows), "predict found a hand the cache lists as missing"
    preds = [r["top"][0][0] for r in rows]
    correct = sum(p == y for p, (_, y) in zip(preds, missing, strict=True))
    out["strict_acc"] = (acc * len(paths) - correct) / len(paths)
    conf = metrics.get("confusion")
    if conf is None:
        out["strict_f1"] = None
        return out
    conf = np.asarray(conf)
    names = list(model.class_names)
    support = conf.sum(1)
    assert conf.sum() == len(paths), f"{job}: {conf.sum()} tested, {len(paths)} photos listed"
    assert abs(f1_macro(conf, support) - f1) < 1e-3, f"{job}: macro-F1 from the confusion matrix differs"
    for pred, (_, y) in zip(preds, missing, strict=True):
        conf[names.index(y), names.index(pred)] -= 1
    assert (conf >= 0).all(), f"{job}: predict and eval disagree on a photo without a hand"
    out["strict_f1"] = f1_macro(conf, support)
    return out


def cell(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main(out: str = "experiments/transfer/runs/pilot", cache_dir: str = ".cache/asl") -> None:
    root = Path(out)
    table, times = [], []
    for row in sorted(p for p in root.iterdir() if p.is_dir()):
        for setup in SETUPS:
            jobs = sorted((j for j in (row / setup).glob("*") if (j / "metrics.json").exists()), key=lambda j: j.name)
            if not jobs:
                continue
            s = [strict(j, setup, cache_dir) for j in jobs]
            table.append((row.name, setup, len(jobs), s))
            for j in jobs:
                m = json.loads((j / "metrics.json").read_text())
                lines = log_lines(j)
                feat = seconds_before(lines, "the head trains on cached frozen features")
                reused = any("Frozen features: reusing" in line for _, line in lines)
                ev = seconds_before(lines, "eval set ") if SETUPS[setup] else None
                cached = "reused" if reused else ("–" if feat is None else feat)  # "–": the backbone trained, no cache
                times.append((row.name, setup, j.name, m["fit_seconds"], cached, m["split_sizes"], ev,
                              s[jobs.index(j)]["n"]))
    print("| backbone | set-up | seeds | accuracy % | macro-F1 % | photos without a hand | accuracy %, no hand = wrong | macro-F1 %, no hand = wrong |")
    print("|---|---|---|---|---|---|---|---|")
    for name, setup, n, s in table:
        print(f"| {name} | {setup} | {n} | {cell([x['acc'] for x in s])} | {cell([x['f1'] for x in s])} | "
              f"{s[0]['no_hand']} of {s[0]['n']} | {cell([x['strict_acc'] for x in s])} | {cell([x['strict_f1'] for x in s])} |")
    # The figure recipes are chosen by: the mean over the three set-ups of the strict accuracy's seed means
    print("\nAccuracy %, no hand = wrong, mean over seeds:\n")
    print("| backbone | " + " | ".join(SETUPS) + " | mean of the three |")
    print("|---|" + "---|" * (len(SETUPS) + 1))
    for name in dict.fromkeys(name for name, *_ in table):
        means = {setup: statistics.mean(x["strict_acc"] for x in s) * 100 for n, setup, _, s in table if n == name}
        cells = [f"{means[setup]:.1f}" if setup in means else "–" for setup in SETUPS]
        mean = f"{statistics.mean(means.values()):.1f}" if len(means) == len(SETUPS) else "–"
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    print("\n| backbone | set-up | seed run | fit_seconds | of which frozen features (s, images/s) | train images | eval on the other set (s, images/s) |")
    print("|---|---|---|---|---|---|---|")
    for name, setup, job, fit, feat, sizes, ev, n in times:
        store = sum(sizes.values())
        f = feat if isinstance(feat, str) else f"{feat:.0f} s, {store / feat:.0f}/s"
        e = "–" if ev is None else f"{ev:.0f} s, {n / ev:.0f}/s"
        print(f"| {name} | {setup} | {job} | {fit:.1f} | {f} | {sizes['train']} | {e} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
