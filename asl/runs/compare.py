"""Library code behind ``asl-compare``: summarise Hydra multiruns per setting, with how sure each figure is.

A job is a folder with ``metrics.json`` and ``.hydra/overrides.yaml``. Jobs that differ only in
``seed`` form one setting; each setting is named by the overrides that differ between settings.
Per setting: mean, std, n and 95 % intervals (over seeds; over photos where the jobs saved
``predictions.csv``); against a baseline setting, the differences paired by seed, with their tests
(:mod:`asl.runs.stats`).
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
from asl.runs import stats  # noqa: E402
from asl.runs.run_folder import RunFolder, read_hits  # noqa: E402

DEFAULT_METRICS = ("test/acc", "test/f1_macro")
#: Overrides that never distinguish settings: the seed (what is averaged over) and where things go.
IGNORED_KEYS = ("seed", "paths.", "hydra.", "data.num_workers")
CURVE_TAG = "val/acc"           # validation accuracy on all classes
IMAGES_TAG = "images_seen"      # logged by the module every few training steps
SEED_MARKERS = "osD^vPX*<>"     # one marker per seed in compare.png


@dataclass
class Job:
    """One finished run of a multirun."""

    path: Path
    overrides: list[str]
    metrics: dict[str, Any]
    setting: str = ""
    seed: str | None = None
    curve: dict[str, np.ndarray] = field(default_factory=dict)
    _hits: dict[str, dict[str, bool] | None] = field(default_factory=dict, repr=False)

    def hits(self, metric: str) -> dict[str, bool] | None:
        """Per photo, whether this job got it right, behind an accuracy ``metric`` (from its predictions.csv);
        None when the job saved none for it."""
        if metric not in self._hits:
            path = RunFolder(self.path).predictions_for(metric)
            self._hits[metric] = read_hits(path) if path is not None and path.exists() else None
        return self._hits[metric]


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
    """One row per setting: for each metric the mean, sample std, number of runs that have it, the 95 %
    interval of the mean over seeds (percentile bootstrap) and, where every run saved its per-photo
    predictions, over photos (stratified by seed)."""
    for m in metrics:
        if all(metric_value(j.metrics, m) is None for j in jobs):
            numeric = sorted(k for k, v in jobs[0].metrics.items() if isinstance(v, int | float) and not isinstance(v, bool))
            raise ASLError(f"--metrics: {m!r} is in no run's metrics.json; numeric keys there: {', '.join(numeric)}")
    rows = []
    for setting in sorted({j.setting for j in jobs}):
        group = [j for j in jobs if j.setting == setting]
        row: dict[str, Any] = {"setting": setting, "runs": len(group), "seeds": sorted(str(j.seed) for j in group)}
        for m in metrics:
            have = [j for j in group if metric_value(j.metrics, m) is not None]
            values = [metric_value(j.metrics, m) for j in have]
            hits = [j.hits(m) for j in have]
            row[m] = {
                "mean": statistics.fmean(values) if values else math.nan,
                "std": statistics.stdev(values) if len(values) > 1 else math.nan,
                "n": len(values),
                "values": values,
                "seeds": [j.seed for j in have],
                "interval": stats.mean_interval(values),
                "photo_interval": (stats.photo_interval([(np.fromiter(h.values(), bool), None) for h in hits])
                                   if hits and all(hits) else None),
            }
        rows.append(row)
    return rows


def interval_text(interval: tuple[float, float] | None) -> str:
    return "—" if interval is None or math.isnan(interval[0]) else f"[{interval[0]:.4f}, {interval[1]:.4f}]"


def format_cell(stat: dict[str, Any]) -> str:
    if stat["n"] == 0:
        return "—"
    std = "—" if math.isnan(stat["std"]) else f"{stat['std']:.4f}"
    photos = f" photos {interval_text(stat['photo_interval'])}" if stat["photo_interval"] else ""
    return f"{stat['mean']:.4f} ± {std} (n={stat['n']}) {interval_text(stat['interval'])}{photos}"


TABLE_KEY = ("Each cell: mean ± sample standard deviation over seeds (n = runs), then the 95 % interval of the "
             "mean: [bootstrap over seeds (percentile); with 3 seeds it spans little more than their range, read it "
             "as their spread], and, where the runs saved predictions.csv, photos [bootstrap over test photos, "
             "stratified by seed, as rliable does: how much the test set's sampling alone moves the mean].")


def markdown_table(rows: list[dict[str, Any]], metrics: Sequence[str]) -> str:
    head = "| setting | " + " | ".join(metrics) + " |"
    sep = "|---|" + "---|" * len(metrics)
    body = [f"| {r['setting']} | " + " | ".join(format_cell(r[m]) for m in metrics) + " |" for r in rows]
    return "\n".join([head, sep, *body])


PAIRED_KEY = (
    "Differences from the baseline, paired by seed (the same seed: the same split and initialisation). "
    "95 % CI and p (paired t): the paired t-test, which assumes normally distributed differences. "
    "p (sign-flip): the exact paired permutation test, which assumes nothing, but with n pairs its smallest "
    "two-sided p is 2/2^n (0.25 for 3 seeds: it needs 6 seeds to reach 0.05). Photos, where both runs of each "
    "seed scored the same photos (predictions.csv): the 95 % interval of the difference from a bootstrap over "
    "photos stratified by seed, and McNemar's exact test (a binomial test on the photos only one of the two "
    "runs got right, pooled over seeds); it asks whether these trained models differ on these photos, not "
    "whether another seed would. P(improvement): the share of (setting run, baseline run) pairs in which the "
    "setting scored higher, ties counting half (rliable).")


def baseline_setting(jobs: list[Job], baseline: str) -> str:
    """``baseline`` as a setting's name, or as one of the folders compared whose jobs are all one setting
    (so that a README's command can name a row's sweep folder)."""
    settings = sorted({j.setting for j in jobs})
    if baseline in settings:
        return baseline
    folder = Path(baseline).expanduser().resolve()
    under = sorted({j.setting for j in jobs if j.path.resolve().is_relative_to(folder)})
    if len(under) == 1:
        return under[0]
    if under:
        raise ASLError(f"--baseline {baseline}: its jobs are {len(under)} settings; name one of them: {'; '.join(under)}")
    raise ASLError(f"--baseline {baseline!r}: no such setting, nor a folder of the jobs compared; the settings are: "
                   f"{'; '.join(settings)}")


def paired(jobs: list[Job], metrics: Sequence[str], baseline: str) -> list[dict[str, Any]]:
    """Each other setting against ``baseline`` (:func:`baseline_setting`), per metric: the difference paired by
    seed with its tests (:func:`asl.runs.stats.paired_difference`), and photo by photo where both runs saved
    predictions."""
    baseline = baseline_setting(jobs, baseline)
    settings = sorted({j.setting for j in jobs})
    by_seed: dict[str, dict[str, Job]] = {s: {} for s in settings}
    for j in jobs:
        by_seed[j.setting].setdefault(str(j.seed), j)  # a seed run twice (two folders): the first one
    base = by_seed[baseline]
    rows = []
    for m in metrics:
        for s in (s for s in settings if s != baseline):
            seeds = sorted(k for k, j in by_seed[s].items() if k in base and metric_value(j.metrics, m) is not None
                           and metric_value(base[k].metrics, m) is not None)
            x = [metric_value(by_seed[s][k].metrics, m) for k in seeds]
            y = [metric_value(base[k].metrics, m) for k in seeds]
            rows.append({"setting": s, "metric": m, "seeds": seeds, **stats.paired_difference(x, y),
                         **photo_comparison([(by_seed[s][k], base[k]) for k in seeds], m)})
    return rows


def photo_comparison(pairs: list[tuple[Job, Job]], metric: str) -> dict[str, Any]:
    """Where both runs of every pair scored the same photos: McNemar's exact test and the stratified
    bootstrap interval of the difference; otherwise why not (``photo_note``)."""
    strata = []
    for a, b in pairs:
        ha, hb = a.hits(metric), b.hits(metric)
        if ha is None or hb is None:
            return {"mcnemar": None, "photo_interval": None, "photo_note": "no predictions.csv for this metric"}
        if ha.keys() != hb.keys():
            return {"mcnemar": None, "photo_interval": None, "photo_note": f"seed {a.seed}: the runs scored different photos"}
        files = sorted(ha)
        strata.append((np.array([ha[f] for f in files]), np.array([hb[f] for f in files])))
    if not strata:
        return {"mcnemar": None, "photo_interval": None, "photo_note": "no pairs"}
    return {"mcnemar": stats.mcnemar(strata), "photo_interval": stats.photo_interval(strata), "photo_note": ""}


def paired_table(rows: list[dict[str, Any]], baseline: str) -> str:
    def p(v: float) -> str:
        return "—" if math.isnan(v) else f"{v:.3g}"

    head = (f"| setting − {baseline} | metric | pairs | difference | 95 % CI (paired t) | p (paired t) | p (sign-flip) "
            f"| photos: 95 % CI | photos: McNemar p (only setting / only baseline right) | P(improvement) | note |")
    body = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mc = r["mcnemar"]
        mcnemar_text = f"{p(mc['p'])} ({mc['only_a']} / {mc['only_b']} of {mc['photos']})" if mc else "—"
        unclear = r["n"] >= 3 and not r["p_t"] < 1 - stats.CONFIDENCE  # under 3 pairs the note says so already
        notes = [n for n in (r["note"], "not significant at 0.05 (paired t)" if unclear else "", r["photo_note"]) if n]
        diff = "—" if math.isnan(r["mean"]) else f"{r['mean']:+.4f}"
        body.append(f"| {r['setting']} | {r['metric']} | {r['n']} | {diff} | {interval_text(r['t_interval'])} | {p(r['p_t'])} "
                    f"| {p(r['p_sign_flip'])} | {interval_text(r['photo_interval'])} | {mcnemar_text} "
                    f"| {p(r['probability_of_improvement'])} | {'; '.join(notes)} |")
    return "\n".join(body)


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


def seed_marker(jobs: list[Job]) -> dict[str | None, str]:
    """One marker per seed, the same in both panels of compare.png."""
    seeds = sorted({j.seed for j in jobs}, key=str)
    return {s: SEED_MARKERS[i % len(SEED_MARKERS)] for i, s in enumerate(seeds)}


def compare_figure(jobs: list[Job], rows: list[dict[str, Any]], metric: str):
    """``metric`` per setting (mean, its 95 % interval over seeds, each seed a marker of its own) and, where
    the jobs have TensorBoard curves, validation accuracy (all classes) against training images seen:
    one colour per setting, one line and marker per seed."""
    curves = any(j.curve for j in jobs)
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(13 if curves else 7, max(4.5, 0.45 * len(rows) + 2)),
                             squeeze=False)
    markers, colours = seed_marker(jobs), plt.get_cmap("tab10")
    ax = axes[0][0]
    for i, r in enumerate(rows):
        stat = r[metric]
        if stat["n"]:
            lo, hi = stat["interval"]
            err = None if math.isnan(lo) else [[stat["mean"] - lo], [hi - stat["mean"]]]
            ax.errorbar(stat["mean"], i, xerr=err, fmt="|", markersize=14, capsize=5, color=colours(i % 10))
        for seed, v in zip(stat["seeds"], stat["values"], strict=True):
            ax.scatter(v, i, marker=markers[seed], color=colours(i % 10), alpha=0.7, zorder=3)
    for seed, marker in markers.items():
        ax.scatter([], [], marker=marker, color="grey", label=f"seed {seed}")
    ax.set_yticks(range(len(rows)), [textwrap.fill(r["setting"], 40) for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first setting on top
    ax.set_xlabel(f"{metric}: mean (bar), 95 % interval over seeds, each seed")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    if curves:
        ax = axes[0][1]
        settings = [r["setting"] for r in rows]
        for job in jobs:
            if job.curve:
                i = settings.index(job.setting)
                ax.plot(job.curve["images_seen"], job.curve["val_acc"], color=colours(i % 10), alpha=0.8,
                        marker=markers[job.seed], markersize=4, label=textwrap.fill(f"{job.setting}, seed {job.seed}", 60))
        ax.set_xlabel("training images seen")
        ax.set_ylabel("validation accuracy (all classes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    n = sum(r[metric]["n"] for r in rows)
    fig.suptitle(f"{metric} of {n} runs in {len(rows)} setting(s)" + (": and their validation curves" if curves else ""))
    fig.tight_layout()
    return fig


def compare(dirs: Sequence[str | Path], metrics: Sequence[str] = DEFAULT_METRICS, out: str | Path | None = None,
            baseline: str | None = None) -> dict[str, Any]:
    """Summarise the multirun folder(s) ``dirs``, and each setting against ``baseline`` (a setting's name) if
    given; write compare.md and compare.png into ``out`` (default: the first dir)."""
    jobs, unfinished = find_jobs(dirs)
    metrics = list(metrics) or list(DEFAULT_METRICS)
    rows = summarise(jobs, metrics)
    if baseline is not None:
        baseline = baseline_setting(jobs, baseline)
    pairs = paired(jobs, metrics, baseline) if baseline is not None else []
    differences = paired_table(pairs, baseline) if baseline is not None else ""
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
    against = ["## Against the baseline", "", PAIRED_KEY, "", differences, ""] if baseline is not None else []
    md = "\n".join([
        f"# Comparison of {len(jobs)} runs in {', '.join(str(d) for d in dirs)}", "",
        TABLE_KEY, "", table, "", *against,
        "## Runs", "", *per_job, "", *notes, "",
        f"![{metrics[0]} per setting, and validation accuracy against images seen](compare.png)", "",
    ])
    (out_dir / "compare.md").write_text(md)
    fig = compare_figure(jobs, rows, metrics[0])
    png = out_dir / "compare.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return {"rows": rows, "table": table, "baseline": baseline, "paired": pairs, "paired_table": differences, "jobs": jobs,
            "unfinished": unfinished, "markdown": out_dir / "compare.md", "png": png}
