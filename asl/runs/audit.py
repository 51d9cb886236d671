"""The data audit's report: ``audit.json``, ``near_duplicates.png`` and the terminal summary
(the facts themselves are computed in :mod:`asl.data.duplicates`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from omegaconf import DictConfig, OmegaConf

from asl.data.cache import ImageStore
from asl.data.duplicates import nearest_train
from asl.inputs import InputSpec
from asl.lit.datamodule import ASLDataModule
from asl.runs.run_folder import RunFolder


def twin_examples(facts: dict[str, np.ndarray], rows: np.ndarray, splits: np.ndarray, labels: np.ndarray,
                  distance: int, k: int = 8) -> list[tuple[int, int, int]]:
    """Up to ``k`` (test-or-val row, train row, distance) same-class twins, the closest first."""
    dist, twin = nearest_train(facts["phash"][rows], splits, labels)
    cand = np.flatnonzero(np.isin(splits, ["test", "val"]) & (dist <= distance))
    cand = cand[np.argsort(dist[cand], kind="stable")][:k]
    return [(int(i), int(twin[i]), int(dist[i])) for i in cand]


def pairs_figure(store: ImageStore, rows: np.ndarray, examples: list[tuple[int, int, int]],
                 names: Sequence[str], splits: np.ndarray):
    """A grid of example near-twins: each row shows a val/test image beside its train twin, each titled
    with its split and its name (the letter folder kept, a long name shortened in the middle)."""
    n = max(len(examples), 1)
    fig, axes = plt.subplots(n, 2, figsize=(5.6, 2.6 * n), squeeze=False)
    for r, (i, j, d) in enumerate(examples):
        for ax, k in zip(axes[r], (i, j), strict=True):
            ax.imshow(store.image(int(rows[k])))
            ax.set_title(f"{splits[k]}" + (f" (d={d} bits)" if k == j else "") + f"\n{short_name(names[k])}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    if not examples:
        axes[0, 0].set_title("no val/test image has a near-twin in train", fontsize=8)
    fig.tight_layout()
    return fig


def short_name(name: str, width: int = 34) -> str:
    """A file name relative to the data root, at most ``width`` characters, its first folder (the letter) kept."""
    if len(name) <= width:
        return name
    head, _, rest = name.partition("/")
    keep = width - len(head) - 2  # "<head>/…<tail>"
    return f"{head}/…{rest[-keep:]}" if rest and keep > 0 else f"…{name[-(width - 1):]}"


def write_report(summary: dict[str, Any], folder: Path) -> None:
    """``audit.json`` into a run (or audit) folder."""
    (folder / "audit.json").write_text(json.dumps(summary, indent=2))


def describe(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    nd, ex = summary["near_duplicates"], summary["exact_duplicates"]
    counts = summary["class_counts"]
    lines = [
        f"{summary['images']} readable images in {len(counts)} classes "
        f"({min(counts.values())}–{max(counts.values())} per class); {len(summary['unreadable'])} unreadable",
        f"sizes: {summary['image_sizes']}   modes: {summary['image_modes']}",
        f"exact duplicates: {ex['images']} images in {ex['groups']} groups",
        f"near-duplicates (phash ≤ {nd['distance']} bits): {nd['pairs']} same-class pairs "
        f"(+{nd['look_alikes_across_classes']} look-alikes across classes), "
        f"{nd['images_in_clusters']} images in {nd['clusters']} clusters, largest {nd['largest_cluster']}",
    ]
    for s, v in summary.get("leakage", {}).items():
        if v["images"]:
            lines.append(f"{s}: {v['with_train_twin']} of {v['images']} images ({v['leak_rate']:.1%}) have a near-twin in train")
    for u in summary["unreadable"][:5]:
        lines.append(f"unreadable: {u['reason']}")
    return "\n".join(lines)


def write(dm: ASLDataModule, folder: Path) -> None:
    """``audit.json`` and ``near_duplicates.png`` (val/test images beside their train twins) of a set-up datamodule."""
    write_report(dm.audit_summary, folder)
    distance = dm.audit["near_duplicate_distance"]
    examples = twin_examples(dm.facts, dm.store_index, dm.splits, dm.labels, distance)
    fig = pairs_figure(dm.store, dm.store_index, examples, dm.relative_names(), dm.splits)
    fig.savefig(folder / "near_duplicates.png", dpi=100)
    plt.close(fig)


def audit_folder(cfg: DictConfig) -> dict[str, Any]:
    """``asl-audit``: set up the data as training would (split included) and write the audit into the run folder."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    dm = ASLDataModule.from_config({**data, "audit": True}, InputSpec(image_size=int(cfg.image_size)), int(cfg.seed))
    dm.prepare_data()
    dm.setup("fit")
    RunFolder(cfg.paths.output_dir).write_data(dm)
    write(dm, Path(cfg.paths.output_dir))
    return dm.audit_summary
