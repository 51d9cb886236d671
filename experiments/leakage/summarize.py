"""Test accuracy and leak rate per data set and split, mean ± sd over seeds, from run.sh's runs.

    python experiments/leakage/summarize.py experiments/leakage/runs
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml


def main(root: str) -> None:
    rows = defaultdict(list)
    for m in sorted(Path(root).rglob("metrics.json")):
        cfg = yaml.safe_load((m.parent / ".hydra" / "config.yaml").read_text())
        metrics = json.loads(m.read_text())
        key = (Path(cfg["data"]["root"]).name, bool(cfg["data"]["split"]["dedupe"]))
        rows[key].append((metrics["test/acc"], (metrics.get("leak_rate") or {}).get("test"), cfg["seed"]))
    print("| data set | split | runs (seeds) | test accuracy | test leak rate |")
    print("|---|---|---|---|---|")
    for (name, dedupe), runs in sorted(rows.items()):
        acc = np.array([r[0] for r in runs])
        leak = np.array([r[1] for r in runs if r[1] is not None])
        print(f"| {name} | {'dedupe' if dedupe else 'random'} | {len(runs)} ({','.join(str(r[2]) for r in runs)}) | "
              f"{acc.mean():.3f} ± {acc.std():.3f} | {leak.mean():.1%} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/leakage/runs")
