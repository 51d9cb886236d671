"""Classifiers other than the MLP on the same landmark features (issue 19's avenue): logistic regression, an RBF
SVM, k nearest neighbours, extra trees and gradient boosting (scikit-learn, installed with the dev extra), each
trained on exactly the training photos of the robust_best runs (their splits.csv) and scored like them: over all
photos of the other set (massey -> room, room -> massey) or of the unseen signer's test split, a photo without a
detected hand counted wrong. Features: asl.hands.features.features (the preset's coords, distances, angles),
standardised; no landmark augmentation (the MLP has it), no AdaBN.

    python experiments/robustness/classifiers.py [OUT=experiments/robustness/runs] [NAMES...]
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from asl.hands.features import FEATURES, features
from asl.lit.module import load_classifier
from asl.runs.evaluate import datamodule_for
from asl.runs.self_train import rows

DATA = Path("../shared/data")
OTHER = {"massey2room": DATA / "asl_alphabet_room", "room2massey": DATA / "asl_massey_black", "signer": None}
CLASSIFIERS = {
    "logistic_regression": lambda seed: LogisticRegression(C=1.0, max_iter=2000),
    "svm_rbf": lambda seed: SVC(C=10, gamma="scale"),
    "knn_5": lambda seed: KNeighborsClassifier(5),
    "extra_trees": lambda seed: ExtraTreesClassifier(500, random_state=seed),
    "gradient_boosting": lambda seed: HistGradientBoostingClassifier(max_iter=200, random_state=seed),
}


def data(run: Path) -> tuple:
    """(train x, train y, scored x, scored y, photos scored in all) of one robust_best run."""
    ckpt = run / "checkpoints" / "best.ckpt"
    module = load_classifier(ckpt)
    loader = {"num_workers": 0}
    source = datamodule_for(module, ckpt, None, loader, ".cache/asl")
    source.setup("fit")
    other = OTHER[run.parent.name]
    target = source if other is None else datamodule_for(module, ckpt, str(other), loader, ".cache/asl")
    target.setup("test")
    xt, yt = rows(target, "test")
    total = len(target.indices("test")) + target.dropped_without_hand("test")
    return *rows(source, "train"), xt, yt, total


def main(out: str = "experiments/robustness/runs", *names: str) -> None:
    logging.disable(logging.WARNING)
    runs = {setup: sorted((Path(out) / "robust_best" / setup).glob("[0-9]*")) for setup in OTHER}
    sets = {setup: [data(r) for r in rs] for setup, rs in runs.items()}
    print("| classifier | massey → room | room → massey | unseen signer | mean of the three | fit + predict, s |")
    print("|---|---|---|---|---|---|")
    for name in names or CLASSIFIERS:
        start, cells, means = time.time(), [], []
        for seeds in sets.values():
            acc = []
            for seed, (xs, ys, xt, yt, total) in enumerate(seeds):
                scale = StandardScaler().fit(features(xs, FEATURES).numpy())
                model = CLASSIFIERS[name](seed).fit(scale.transform(features(xs, FEATURES).numpy()), ys.numpy())
                right = (model.predict(scale.transform(features(xt, FEATURES).numpy())) == yt.numpy()).sum()
                acc.append(float(right) / total)
            cells.append(f"{100 * statistics.mean(acc):.1f} ± {100 * statistics.stdev(acc):.1f}")
            means.append(statistics.mean(acc))
        print(f"| {name} | {' | '.join(cells)} | {100 * statistics.mean(means):.1f} | {time.time() - start:.0f} |", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
