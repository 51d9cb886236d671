"""Library code behind ``asl-compare``: summarise Hydra multiruns as mean ± std per setting.

A job is a folder with ``metrics.json`` and ``.hydra/overrides.yaml``. Jobs that differ only in
``seed`` form one setting; each setting is named by the overrides that differ between settings.
"""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from asl import ASLError  # noqa: E402
from asl.runs.run_folder import RunFolder  # noqa: E402

DEFAULT_METRICS = ("test/acc", "test/f1_macro")
#: Overrides that never distinguish settings: the seed (what is averaged over) and where things go.
IGNORED_KEYS = ("seed", "paths.", "hydra.", "data.num_workers")
CURVE_TAG = "val/acc"           # validation accuracy on all classes
IMAGES_TAG = "images_seen"      # logged by the module every few training steps


@dataclass
class Job:
    """One finished run of a multirun."""

    path: Path
    overrides: list[str]
    metrics: dict[str, Any]
    setting: str = ""
    seed: str | None = None
    curve: dict[str, np.ndarray] = field(default_factory=dict)


def find_jobs(dirs: Sequence[str | Path]) -> tuple[list[Job], list[Path]]:
    """Every job under ``dirs`` (searched recursively), and job folders that have no metrics.json (failed or running)."""
    jobs: list[Job] = []
    unfinished: list[Path] = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise ASLError(f"{root}: not a folder. Pass a multirun folder, e.g. multirun/<date>/<time>.")
        found = [RunFolder(d) for d in sorted(p.parent.parent for p in root.rglob(".hydra/overrides.yaml"))]
        for job in found:
            if not job.metrics_file.exists():
                unfinished.append(job.path)
                continue
            try:
                metrics = json.loads(job.metrics_file.read_text())
            except json.JSONDecodeError as e:
                raise ASLError(f"{job.metrics_file}: not valid JSON ({e}); delete the job folder or re-run it.") from None
            overrides = [str(o) for o in OmegaConf.load(job.overrides_file)]
            seed = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+~") == "seed"), None)
            jobs.append(Job(job.path, overrides, metrics, seed=seed))
    if not jobs:
        where = ", ".join(str(d) for d in dirs)
        hint = f" ({len(unfinished)} job folder(s) have no metrics.json: failed or still running)" if unfinished else ""
        raise ASLError(f"{where}: no finished runs found (folders with metrics.json and .hydra/overrides.yaml){hint}. "
                       f"Pass a multirun folder, e.g. multirun/<date>/<time>.")
    name_settings(jobs)
    return jobs, unfinished


def why_unfinished(job_dir: Path) -> str:
    failed = RunFolder(job_dir).failed_file
    return f"FAILED: {failed.read_text().strip()}" if failed.exists() else "no metrics.json (still running, or killed)"


def name_settings(jobs: list[Job]) -> None:
    """Name each job's setting by its overrides minus the seed, keeping only keys whose values differ (if any do)."""
    def relevant(job: Job) -> dict[str, str]:
        pairs = (o.lstrip("+~").split("=", 1) for o in job.overrides)
        return {k: v for k, v in (p if len(p) == 2 else (p[0], "") for p in pairs)
                if not any(k == i or (i.endswith(".") and k.startswith(i)) for i in IGNORED_KEYS)}

    per_job = [relevant(j) for j in jobs]
    keys = sorted({k for r in per_job for k in r})
    differing = [k for k in keys if len({r.get(k) for r in per_job}) > 1] or keys  # one setting: name it in full
    for job, r in zip(jobs, per_job, strict=True):
        job.setting = ",".join(f"{k}={r.get(k, '(default)')}" for k in differing) or "(all runs)"


def metric_value(metrics: dict[str, Any], key: str) -> float | None:
    """``metrics[key]`` for a flat key (``test/acc``), else a nested path (``eval`` → ``room`` → ``acc``)."""
    value: Any = metrics.get(key)
    if value is None and "/" in key:
        value = metrics
        for part in key.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def summarise(jobs: list[Job], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per setting: for each metric the mean, sample std and number of runs that have it."""
    for m in metrics:
        if all(metric_value(j.metrics, m) is None for j in jobs):
            numeric = sorted(k for k, v in jobs[0].metrics.items() if isinstance(v, int | float) and not isinstance(v, bool))
            raise ASLError(f"--metrics: {m!r} is in no run's metrics.json; numeric keys there: {', '.join(numeric)}")
    rows = []
    for setting in sorted({j.setting for j in jobs}):
        group = [j for j in jobs if j.setting == setting]
        row: dict[str, Any] = {"setting": setting, "runs": len(group), "seeds": sorted(str(j.seed) for j in group)}
        for m in metrics:
            values = [v for v in (metric_value(j.metrics, m) for j in group) if v is not None]
            row[m] = {
                "mean": statistics.fmean(values) if values else math.nan,
                "std": statistics.stdev(values) if len(values) > 1 else math.nan,
                "n": len(values),
                "values": values,
            }
        rows.append(row)
    return rows


def format_cell(stat: dict[str, Any]) -> str:
    if stat["n"] == 0:
        return "—"
    std = "—" if math.isnan(stat["std"]) else f"{stat['std']:.4f}"
    return f"{stat['mean']:.4f} ± {std} (n={stat['n']})"


def markdown_table(rows: list[dict[str, Any]], metrics: Sequence[str]) -> str:
    head = "| setting | " + " | ".join(metrics) + " |"
    sep = "|---|" + "---|" * len(metrics)
    body = [f"| {r['setting']} | " + " | ".join(format_cell(r[m]) for m in metrics) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def read_scalars(job_dir: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Every scalar in a job's TensorBoard event files (``tb/``): tag → {step: (value, wall time)}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, dict[int, tuple[float, float]]] = {}
    for f in sorted((job_dir / "tb").rglob("events.out.tfevents.*")) if (job_dir / "tb").is_dir() else []:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            scalars.setdefault(tag, {}).update({e.step: (e.value, e.wall_time) for e in acc.Scalars(tag)})
    return scalars


def read_curve(job_dir: Path) -> dict[str, np.ndarray]:
    """Validation accuracy per validation step, with the images seen and wall time (s) at that step."""
    scalars = read_scalars(job_dir)
    val = scalars.get(CURVE_TAG)
    if not val:
        return {}
    images = {s: v for s, (v, _) in scalars.get(IMAGES_TAG, {}).items()}
    images.update({s: v for s, (v, _) in scalars.get("progress/images_seen", {}).items()})  # exact, at validation
    steps = np.array(sorted(val))
    wall = np.array([val[s][1] for s in steps])
    if images:
        known = np.array(sorted(images))
        seen = np.interp(steps, known, [images[s] for s in known])  # images_seen is logged every few steps
    else:
        seen = steps.astype(float)
    logged_wall = scalars.get("progress/wall_s", {})  # seconds since training started, at validation
    wall_s = np.array([logged_wall[s][0] for s in steps]) if all(s in logged_wall for s in steps) else wall - wall[0]
    return {"step": steps, "val_acc": np.array([val[s][0] for s in steps]), "images_seen": seen, "wall_s": wall_s}


def curves_figure(jobs: list[Job]):
    """Validation accuracy (all classes) against training images seen: one colour per setting, one line per seed."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    settings = sorted({j.setting for j in jobs})
    colours = plt.get_cmap("tab10")
    for i, setting in enumerate(settings):
        for k, job in enumerate(j for j in jobs if j.setting == setting):
            if job.curve:
                ax.plot(job.curve["images_seen"], job.curve["val_acc"], color=colours(i % 10), alpha=0.8,
                        marker=".", label=textwrap.fill(setting, 70) if k == 0 else None)
    ax.set_xlabel("training images seen")
    ax.set_ylabel("validation accuracy (all classes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def compare(dirs: Sequence[str | Path], metrics: Sequence[str] = DEFAULT_METRICS, out: str | Path | None = None) -> dict[str, Any]:
    """Summarise the multirun folder(s) ``dirs``; write compare.md and compare.png into ``out`` (default: the first dir)."""
    jobs, unfinished = find_jobs(dirs)
    metrics = list(metrics) or list(DEFAULT_METRICS)
    rows = summarise(jobs, metrics)
    out_dir = Path(out if out is not None else dirs[0]).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        job.curve = read_curve(job.path)
    table = markdown_table(rows, metrics)
    per_job = ["| job | setting | seed | " + " | ".join(metrics) + " | images seen | fit seconds |",
               "|---|---|---|" + "---|" * (len(metrics) + 2)]
    for j in jobs:
        vals = [metric_value(j.metrics, m) for m in metrics]
        per_job.append(f"| {j.path.name} | {j.setting} | {j.seed} | " + " | ".join("—" if v is None else f"{v:.4f}" for v in vals)
                       + f" | {j.metrics.get('images_seen', '—')} | {j.metrics.get('fit_seconds', '—')} |")
    notes = [f"- {p}: {why_unfinished(p)}; left out" for p in unfinished]
    md = "\n".join([
        f"# Comparison of {len(jobs)} runs in {', '.join(str(d) for d in dirs)}", "",
        "Mean ± sample standard deviation over seeds (n = runs).", "", table, "",
        "## Runs", "", *per_job, "", *notes, "",
        "![validation accuracy against images seen](compare.png)", "",
    ])
    (out_dir / "compare.md").write_text(md)
    png = None
    if any(j.curve for j in jobs):
        fig = curves_figure(jobs)
        png = out_dir / "compare.png"
        fig.savefig(png, dpi=120)
        plt.close(fig)
    return {"rows": rows, "table": table, "jobs": jobs, "unfinished": unfinished,
            "markdown": out_dir / "compare.md", "png": png}
