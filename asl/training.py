"""Library code behind ``asl-train``: config → datamodule + module + trainer → a self-describing run folder."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

import asl
from asl import ASLError
from asl.curriculum import setup_curriculum
from asl.data.datamodule import ASLDataModule
from asl.module import ASLClassifier, confusion_figure
from asl.reproduce import AtomicCheckpointIO, EpochSeed

log = logging.getLogger(__name__)

# Keys of the trainer config that are not Trainer arguments: how asl feeds the trainer.
TRAINER_EXTRAS = ("num_workers", "pin_memory", "channels_last", "compile")


def split_trainer_cfg(trainer_cfg: DictConfig | dict) -> tuple[dict, dict]:
    cfg = OmegaConf.to_container(trainer_cfg, resolve=True) if isinstance(trainer_cfg, DictConfig) else dict(trainer_cfg)
    extras = {k: cfg.pop(k) for k in TRAINER_EXTRAS if k in cfg}
    return cfg, extras


def build_datamodule(data_cfg: DictConfig | dict, seed: int, extras: dict | None = None, **overrides: Any) -> ASLDataModule:
    cfg = OmegaConf.to_container(data_cfg, resolve=True) if isinstance(data_cfg, DictConfig) else dict(data_cfg)
    extras = extras or {}
    cfg.update(num_workers=extras.get("num_workers", 0), pin_memory=extras.get("pin_memory", False))
    cfg.update(overrides)
    return ASLDataModule(seed=seed, **cfg)


def build_module(cfg: DictConfig, dm: ASLDataModule, extras: dict) -> ASLClassifier:
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["channels_last"] = bool(extras.get("channels_last", False))
    module = ASLClassifier(
        model=model_cfg,
        class_names=dm.classes,
        image_size=dm.image_size,
        mean=list(dm.mean),
        std=list(dm.std),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
        label_smoothing=float(cfg.label_smoothing),
        hands=hand_options(dm),
    )
    if extras.get("compile"):
        module.net = torch.compile(module.net)
    return module


def hand_options(dm: ASLDataModule) -> dict[str, Any]:
    """What eval and predict must repeat: the model's inputs, hand crops and the detector settings."""
    return {"inputs": dm.inputs, "hand_crop": dm.hand_crop, "no_hand": dm.no_hand, "hands": dict(dm.hands)}


def environment_record() -> dict[str, Any]:
    """What a result depends on beyond the config: versions, git commit, hardware."""
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    repo = Path(__file__).resolve().parent.parent

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
        "packages": {p: version(p) for p in ("torch", "torchvision", "pytorch-lightning", "hydra-core", "albumentations",
                                              "kornia", "torchmetrics", "numpy", "opencv-python-headless", "mediapipe")},
    }


def save_confusion_png(results: dict, class_names: list[str], path: Path) -> None:
    fig = confusion_figure(torch.tensor(results["confusion"]), class_names)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test on the best checkpoint, and write the run folder. Returns metrics.json's content."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    trainer_kwargs, extras = split_trainer_cfg(cfg.trainer)
    main_process = rank_zero_only.rank == 0  # DDP: every process runs this; one writes the run folder
    if main_process:
        (out / "environment.json").write_text(json.dumps(environment_record(), indent=2))

    dm = build_datamodule(cfg.data, cfg.seed, extras)
    module = build_module(cfg, dm, extras)  # before the data: a config mistake fails in seconds
    dm.prepare_data()
    dm.setup("fit")
    if main_process:
        dm.write_manifest(out / "splits.csv")
        dm.write_audit(out)
    skipped = dm.write_skipped(out / "skipped_files.csv")

    loggers = [instantiate(c) for c in cfg.get("logger", {}).values() if c is not None]
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c is not None]
    if not loggers:  # logger=none: the learning-rate monitor has nowhere to write (Lightning would stop)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    curriculum_cb, plan = setup_curriculum(cfg, dm, module, trainer_kwargs)
    callbacks.append(curriculum_cb)
    callbacks.append(EpochSeed(cfg.seed))  # an epoch depends on (seed, epoch) only: exact resume
    trainer = pl.Trainer(**trainer_kwargs, callbacks=callbacks, logger=loggers or False, default_root_dir=str(out),
                         plugins=[AtomicCheckpointIO()])
    if main_process:
        log_augmentation_grid(dm, loggers, out / "augmented_samples.png")
    ckpt_path = resolve_resume(cfg.get("ckpt_path"), out)
    start = time.time()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    fit_seconds = time.time() - start
    images_seen = int(module.images_seen)  # test() below loads the best checkpoint, and its count
    if trainer.interrupted:
        raise ASLError(f"training was interrupted; resume with ckpt_path=last and hydra.run.dir={out}")

    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)
    results = dict(module.test_results)
    save_confusion_png(results, dm.classes, out / "confusion_matrix.png")
    metrics = {
        **{k: results[k] for k in ("test/acc", "test/acc_macro", "test/f1_macro")},
        "per_class_acc": results["per_class_acc"],
        "num_test_images": results["num_images"],
        "best_val_acc": float(ckpt_cb.best_model_score) if best and ckpt_cb.best_model_score is not None else None,
        "best_checkpoint": best,
        "epochs": trainer.current_epoch,
        "images_seen": images_seen,
        "budget": {"unit": plan.unit, "epochs": plan.epochs, "epoch_images": plan.epoch_images},
        "curriculum": plan.describe(dm.classes),
        "fit_seconds": round(fit_seconds, 1),
        "skipped_files": skipped,
        "split_sizes": {s: int((dm.splits == s).sum()) for s in ("train", "val", "test")},
        "leak_rate": leak_rates(dm.audit_summary),
    }
    if not trainer.is_global_zero:
        return metrics
    metrics.update(evaluate_sets(cfg, best or (ckpt_cb.last_model_path if ckpt_cb else None), out, extras))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for lg in trainer.loggers:
        if hasattr(lg, "log_hyperparams"):
            lg.log_hyperparams(flat_params(cfg), {k: metrics[k] for k in ("test/acc", "test/acc_macro", "test/f1_macro")})
            lg.log_metrics({f"audit/leak_rate_{s}": v for s, v in (metrics["leak_rate"] or {}).items() if v is not None})
            lg.save()
    return metrics


def log_augmentation_grid(dm: ASLDataModule, loggers: list, path: Path, count: int = 32) -> None:
    """32 training images as the model sees them (augmented, denormalised): check a recipe by eye.

    Written to the run folder and, with TensorBoard, under IMAGES ``train/augmented``.
    """
    if dm.inputs == "landmarks":
        return
    ds = dm.dataset("train")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:count]
    images = [ds[int(i)][0] for i in order]
    images = torch.stack([x[0] if isinstance(x, tuple) else x for x in images])  # uint8 training images
    with torch.random.fork_rng(devices=[]):  # data.device_transforms too, without moving training's random stream
        images = dm.augment_on_device(images).float() / 255
    grid = make_grid(images, nrow=8, padding=1)
    save_image(grid, path)
    for lg in loggers:
        if hasattr(getattr(lg, "experiment", None), "add_image"):
            lg.experiment.add_image("train/augmented", grid, 0)


def evaluate_sets(cfg: DictConfig, ckpt: str | None, out: Path, extras: dict) -> dict[str, float]:
    """``eval_sets: {name: folder}``: the final model on each folder, as flat ``eval/<name>/<metric>`` keys;
    with ``background_shift``, also the test accuracy on held-out backgrounds (``background_shift/*``).

    Full reports (per-class accuracy, confusion matrix) go to ``<run>/eval/<name>/``.
    """
    sets = cfg.get("eval_sets") or {}
    if not sets and not cfg.get("background_shift"):
        return {}
    if ckpt is None:
        raise ASLError("eval_sets, background_shift: need a checkpoint of the run; keep callbacks.model_checkpoint on")
    from asl.evaluation import background_shift, evaluate  # evaluation imports this module

    flat: dict[str, float] = {}
    if cfg.get("background_shift"):
        shift = background_shift(ckpt, None, cfg.data.eval_batch_size, extras.get("num_workers", 0), cfg.data.cache,
                                 cfg.paths.cache_dir, cfg.trainer.get("accelerator", "auto"), cfg.seed)
        flat.update({k: v for k, v in shift.items() if k != "background_shift/families"})
    for name, root in sets.items():
        r = evaluate(ckpt, str(root), out / "eval" / str(name), batch_size=cfg.data.eval_batch_size,
                     num_workers=extras.get("num_workers", 0), cache=cfg.data.cache, cache_dir=cfg.paths.cache_dir,
                     unknown_folders="ignore", accelerator=cfg.trainer.get("accelerator", "auto"))
        flat.update({f"eval/{name}/{k}": r[f"test/{k}"] for k in ("acc", "acc_macro", "f1_macro")})
        log.info("eval set %s (%s): accuracy %.4f, macro-F1 %.4f", name, root, r["test/acc"], r["test/f1_macro"])
    return flat


def leak_rates(summary: dict[str, Any] | None) -> dict[str, float | None] | None:
    """Share of val and test images with a near-twin in train (from the data audit), or None when off."""
    if summary is None or "leakage" not in summary:
        return None
    return {s: v["leak_rate"] for s, v in summary["leakage"].items()}


def resolve_resume(ckpt_path: str | None, out: Path) -> str | None:
    """``last`` → this run folder's checkpoints/last.ckpt; a path must exist."""
    if not ckpt_path:
        return None
    path = out / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.exists():
        raise ASLError(f"ckpt_path: {path} does not exist. To resume, run again with hydra.run.dir=<the run folder> ckpt_path=last.")
    return str(path)


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """The config flattened to dotted keys with primitive values, for TensorBoard's HPARAMS tab."""
    flat: dict[str, Any] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            value = node if isinstance(node, int | float | str | bool) else str(node)
            flat[prefix[:-1]] = value

    container = OmegaConf.to_container(cfg, resolve=True)
    for key in ("seed", "data", "model", "optimizer", "scheduler", "label_smoothing", "trainer"):
        if key in container:
            walk(container[key], f"{key}.")
    return {k: v for k, v in flat.items()
            if not k.startswith(("data.train_transforms", "data.eval_transforms", "data.device_transforms"))}
