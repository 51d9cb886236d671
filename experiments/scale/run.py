"""The pipeline at the user's scale: every per-photo stage on the synthetic set at several sizes.

    python experiments/scale/run.py [--sizes 250 1000 2500] [--out /tmp/asl-scale] [--stages ...] [--batches 50]
                                    [--override trainer=gpu data.num_workers=8 ...]
    python experiments/scale/run.py --report [--out ...]    # the tables measured so far (results.json)

Per size (photos per letter; 24 letters; ``data.split.counts=[1250,625,625]`` at 2,500, the shares
50/25/25 otherwise) each stage runs in a fresh Python process, with its own cache removed first
(cold), so its wall time, peak resident memory and cache disk are its own. Stages, in order:

    render     the synthetic set rendered (data=synthetic, 64 px) ........ asl.data.synthetic.generate
    cache      the decoded-image cache at 64 px (ASLDataModule.setup, audit off: discover, cache, split)
    hash       the audit's hashing (SHA-1 + phash per photo) ................. asl.data.duplicates.file_facts
    neardup    the audit's summary: near-duplicates, clusters, leak rate, and the twins shown in
               near_duplicates.png ................ asl.data.duplicates.audit, asl.runs.audit.twin_examples
    split      the per-class split ............................................. asl.data.split.make_splits
    cnn        one epoch (train + validation) of model=small_cnn at 64 px, CPU, data.num_workers=2
    cache128   the decoded-image cache at 128 px (the 64-px set upsampled: the training cost per
               photo depends on the input size only)
    mobilenet  one epoch of model=mobilenet_v2 (shared ImageNet weights, fine-tuned) at 128 px
    features   the frozen-feature cache of MobileNetV2 at 128 px (trainable_stages=0, no augmentation),
               then one epoch of the head on the cached features

Training stages time a real epoch when it has at most ``--batches`` training batches; otherwise
they time ``--batches`` training batches and validation batches in proportion, and extrapolate the
epoch from the per-batch time after the first batch (the output says "extrapolated").
Peak RSS counts file pages of the memory-mapped caches that a process touched (written or read;
the kernel can drop them), so the anonymous part (heap) is given beside it; a loader worker's RSS
counts the pages it shares with the process it was forked from. Caches go under
``--out`` (never the checkout).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from asl.lit.datamodule import ASLDataModule
    from asl.lit.module import ASLClassifier

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2_imagenet_bnfolded.pth"
STAGES = ("render", "cache", "hash", "neardup", "split", "cnn", "cache128", "mobilenet", "features")
#: What each stage builds in the cache folder (removed before the stage runs, so it runs cold).
BUILDS = {"render": "synthetic-*", "cache": "images-64px-*", "hash": "audit-*", "cache128": "images-128px-*",
          "features": "features-*"}
MOBILENET = ["model=mobilenet_v2", "model.input_size=128", "data.synthetic.image_size=64"]
OVERRIDES = {"cache128": MOBILENET, "mobilenet": [*MOBILENET, f"model.weights_path={WEIGHTS}"],
             "features": [*MOBILENET, f"model.weights_path={WEIGHTS}", "model.trainable_stages=0", "data.train_transforms=[]"]}


# -- the child: one stage in this process ---------------------------------------------------
def compose(size: int, cache: Path, *overrides: str) -> DictConfig:
    """The train config at ``size`` photos per letter, caches in ``cache``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from asl.cli import CONFIG_PATH

    split = ["data.split.counts=[1250,625,625]", "data.split.fractions=null"] if size == 2500 else []
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        return hydra_compose("train", overrides=[f"data.synthetic.per_class={size}", f"paths.cache_dir={cache}",
                                                 "paths.output_dir=/tmp/unused", "data.audit=false", *split,
                                                 *overrides])


def datamodule(cfg: DictConfig) -> ASLDataModule:
    """The run's datamodule, set up (the audit is off in the config: it has its own stages)."""
    from asl.runs.train import build_datamodule

    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    return dm


class Clock:
    """Wall time of what runs inside ``with``."""

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def epoch(cfg: DictConfig, dm: ASLDataModule, module: ASLClassifier, batches: int) -> dict[str, Any]:
    """One epoch of training and validation (or ``batches`` training batches and validation in proportion,
    extrapolated to the epoch from the time per batch after the first)."""
    import pytorch_lightning as pl

    from asl.runs.train import plain

    class Times(pl.Callback):
        def __init__(self) -> None:
            self.t: dict[str, float] = {}

        def on_train_epoch_start(self, *_: Any) -> None:
            self.t["train"] = time.perf_counter()

        def on_train_batch_end(self, *_: Any) -> None:
            self.t.setdefault("first", time.perf_counter())

        def on_validation_epoch_start(self, *_: Any) -> None:
            self.t["val"] = time.perf_counter()

        def on_validation_epoch_end(self, *_: Any) -> None:
            self.t["end"] = time.perf_counter()

    n_train = len(dm.dataset("train"))
    n_val = len(dm.dataset("val"))
    full = n_train // dm.batch_size if n_train > dm.batch_size else 1  # the loader drops a last partial batch
    limit = min(batches, full)
    val_full = math.ceil(n_val / dm.eval_batch_size)
    val_limit = val_full if limit == full else max(1, round(val_full * limit / full))
    kwargs = {**plain(cfg.trainer), "max_epochs": 1, "logger": False, "enable_checkpointing": False,
              "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0,
              "limit_train_batches": limit, "limit_val_batches": val_limit}
    times = Times()
    pl.Trainer(**kwargs, callbacks=[times]).fit(module, datamodule=dm)
    t = times.t
    train_s = t["val"] - t["train"]
    val_s = t["end"] - t["val"]
    extrapolated = limit < full
    if extrapolated:  # the first batch carries the loader workers' start
        train_s = (t["first"] - t["train"]) + (t["val"] - t["first"]) / (limit - 1) * (full - 1)
        val_s = val_s / val_limit * val_full
    return {"photos": n_train, "seconds": train_s + val_s, "train_s": train_s, "val_s": val_s, "val_photos": n_val,
            "rate": n_train / train_s, "extrapolated": extrapolated, "timed_batches": limit, "epoch_batches": full}


def run_stage(stage: str, size: int, cache: Path, batches: int, extra: list[str]) -> list[dict[str, Any]]:
    """Rows (stage, photos, seconds, ...) of one stage; the set-up it needs but does not measure runs first."""
    import torch

    from asl.data import duplicates
    from asl.data.split import make_splits
    from asl.lit.features import use_cached_features
    from asl.runs import audit as audit_report
    from asl.runs.train import build_datamodule, build_module

    cfg = compose(size, cache, *OVERRIDES.get(stage, []), *extra)
    if stage == "render":
        dm = build_datamodule(cfg)
        with Clock() as c:
            dm.prepare_data()
        return [{"stage": "render the synthetic set (64 px)", "photos": 24 * size, "seconds": c.seconds}]
    if stage in ("cache", "cache128"):
        build_datamodule(cfg).prepare_data()
        with Clock() as c:
            dm = datamodule(cfg)
        return [{"stage": f"decoded-image cache, {dm.spec.image_size} px (setup: discover, decode, split)",
                 "photos": len(dm.labels), "seconds": c.seconds}]
    dm = datamodule(cfg)
    n = len(dm.labels)
    if stage == "hash":
        with Clock() as c:
            duplicates.file_facts(dm.store, dm.cache_dir)
        return [{"stage": "audit: hashing (SHA-1 + phash)", "photos": n, "seconds": c.seconds}]
    if stage == "neardup":
        facts = duplicates.file_facts(dm.store, dm.cache_dir)
        distance = dm.audit["near_duplicate_distance"]
        with Clock() as c:
            summary = duplicates.audit(dm.store.paths, dm.labels, dm.classes, dm.splits, facts, dm.store_index,
                                       dm.store.unreadable, distance)
            audit_report.twin_examples(facts, dm.store_index, dm.splits, dm.labels, distance)
        nd = summary["near_duplicates"]
        note = (f"{nd['pairs']} same-letter pairs, {nd['look_alikes_across_classes']} across letters, "
                f"test leak {summary['leakage']['test']['leak_rate']:.1%}")
        return [{"stage": "audit: near-duplicates, clusters, leak rate", "photos": n, "seconds": c.seconds, "note": note}]
    if stage == "split":
        names = [dm.table.relative(i) for i in range(n)]
        with Clock() as c:
            splits = make_splits(dm.labels, names, dm.classes, dm.split_cfg, dm.seed, None)
        counts = "/".join(str(int((splits == s).sum())) for s in ("train", "val", "test"))
        return [{"stage": "split (per class)", "photos": n, "seconds": c.seconds, "note": counts}]
    module = build_module(cfg, dm)
    if stage == "features":
        with Clock() as c:
            assert use_cached_features(module, dm, torch.device("cpu")), "the features were not cached"
        shape = "x".join(map(str, dm.features.shape[1:]))
        return [{"stage": "frozen-feature cache, MobileNetV2 128 px", "photos": n, "seconds": c.seconds,
                 "note": f"{shape} float32 per photo"},
                {"stage": "one epoch of the head on cached features", **epoch(cfg, dm, module, batches=10**9)}]
    name = {"cnn": "one epoch: small CNN, 64 px", "mobilenet": "one epoch: MobileNetV2 (ImageNet, fine-tuned), 128 px"}
    return [{"stage": name[stage], **epoch(cfg, dm, module, batches)}]


class AnonPeak(threading.Thread):
    """The peak of this process's anonymous memory (RssAnon: heap, not the pages of mapped cache files),
    sampled every 50 ms (Linux; None elsewhere)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop, self.peak = threading.Event(), None

    def run(self) -> None:
        status = Path("/proc/self/status")
        while status.exists() and not self.stop.wait(0.05):
            kb = next(int(x.split()[1]) for x in status.read_text().splitlines() if x.startswith("RssAnon:"))
            self.peak = max(self.peak or 0, kb / 1024)


def child(stage: str, size: int, cache: Path, batches: int, extra: list[str]) -> None:
    """Run one stage and print its rows, with this process's and its workers' peak RSS (and the RSS after
    the imports), as one JSON line."""
    import logging
    import warnings

    import pytorch_lightning  # noqa: F401  (the start-up memory is counted apart from the stage's)
    import torch  # noqa: F401

    import asl.runs.train  # noqa: F401

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # import torch runs a helper process
    anon = AnonPeak()
    anon.start()
    rows = run_stage(stage, size, cache, batches, extra)
    anon.stop.set()
    anon.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    for r in rows:
        r.update(start_rss_mb=start_rss, peak_rss_mb=peak, peak_anon_mb=anon.peak,
                 workers_rss_mb=children / 1024 if children > start_children else None)
    print("SCALE-ROWS " + json.dumps(rows), flush=True)


# -- the parent: sizes × stages, each in a fresh process -----------------------------------
def disk_mb(path: Path) -> float:
    """Bytes of the files under ``path``, in MiB."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.exists() else 0.0


def measure(stage: str, size: int, cache: Path, batches: int, extra: list[str]) -> list[dict[str, Any]]:
    """Remove what the stage builds, run it in a fresh process, and add the cache disk it added."""
    for old in cache.glob(BUILDS.get(stage, "-")):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    before = disk_mb(cache)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", stage, "--sizes", str(size), "--out", str(cache.parent),
                           "--batches", str(batches), "--override", *extra], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    lines = [x for x in proc.stdout.splitlines() if x.startswith("SCALE-ROWS ")]
    if proc.returncode or not lines:
        raise SystemExit(f"stage {stage} at {size}/letter failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rows = json.loads(lines[-1][len("SCALE-ROWS "):])
    rows[0].update(disk_mb=disk_mb(cache) - before, process_s=wall)
    return [{**r, "key": stage} for r in rows]


def table(size: int, rows: list[dict[str, Any]]) -> str:
    """A size's rows as a markdown table."""
    out = [f"\n### {size} photos per letter ({24 * size:,} photos)\n",
           "| stage | photos | wall s | photos/s | peak RSS MB (after imports) | of which anonymous | workers' peak RSS MB "
           "| cache disk MB | note |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        note = r.get("note", "")
        if "train_s" in r:
            how = (f"extrapolated from {r['timed_batches']} of {r['epoch_batches']} batches" if r["extrapolated"]
                   else "a whole epoch")
            note = (f"train {r['train_s']:.1f} s ({r['photos']} photos), validation {r['val_s']:.1f} s "
                    f"({r['val_photos']} photos); {how}")
        rate = r.get("rate", r["photos"] / r["seconds"] if r["seconds"] else float("inf"))
        disk = f"{r['disk_mb']:.0f}" if "disk_mb" in r and r["disk_mb"] >= 0.5 else ""
        workers = f"{r['workers_rss_mb']:.0f}" if r["workers_rss_mb"] else ""
        out.append(f"| {r['stage']} | {r['photos']:,} | {r['seconds']:.2f} | {rate:,.0f} | {r['peak_rss_mb']:.0f} "
                   f"({r['start_rss_mb']:.0f}) | {r['peak_anon_mb'] or 0:.0f} | {workers} | {disk} | {note} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 2500], help="photos per letter")
    ap.add_argument("--out", type=Path, default=Path("/tmp/asl-scale"), help="caches and results (not in the repo)")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--batches", type=int, default=50, help="training batches timed when an epoch has more")
    ap.add_argument("--override", nargs="*", default=[], help="more Hydra overrides, e.g. trainer=gpu data.num_workers=8")
    ap.add_argument("--report", action="store_true", help="print the tables saved in --out, run nothing")
    ap.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.batches < 2:
        ap.error("--batches: at least 2 (the first batch is timed apart)")
    out = a.out.expanduser().resolve()
    if out == REPO or REPO in out.parents:
        raise SystemExit(f"--out {out}: inside the checkout; caches must stay out of it")
    if a.child:
        child(a.child, a.sizes[0], out / "cache", a.batches, a.override)
        return
    stages = [s for s in STAGES if s in a.stages]
    if not WEIGHTS.exists() and {"mobilenet", "features"} & set(stages):
        print(f"(no {WEIGHTS}: skipping mobilenet and features)")
        stages = [s for s in stages if s not in ("mobilenet", "features")]
    saved = out / "results.json"  # every size's rows, saved as each size ends (a stage re-measured replaces its rows)
    results = json.loads(saved.read_text()) if saved.exists() else {}
    if a.report:
        for size, rows in results.items():
            print(table(int(size), rows))
        return
    for size in a.sizes:
        cache = out / f"n{size}" / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        rows = []
        for stage in stages:
            rows += measure(stage, size, cache, a.batches, a.override)
            print(f"  {size}/letter {stage}: {rows[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        print(table(size, rows), flush=True)
        rows += [r for r in results.get(str(size), []) if r["key"] not in stages]
        results[str(size)] = sorted(rows, key=lambda r: STAGES.index(r["key"]))
        saved.write_text(json.dumps(results, indent=1))
    print(f"\nrows as JSON: {saved}")


if __name__ == "__main__":
    main()
