"""Library code behind ``asl-train``: config → datamodule + module + trainer → a self-describing run folder."""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue
from pytorch_lightning.callbacks import LearningRateMonitor, ModelSummary
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

from asl import ASLError
from asl.inputs import resolve_input_spec
from asl.lit.curriculum import setup_curriculum
from asl.lit.datamodule import ASLDataModule
from asl.lit.features import use_cached_features
from asl.lit.module import ASLClassifier, load_classifier_hparams
from asl.lit.resume import AtomicCheckpointIO, EpochSeed
from asl.runs import audit as audit_report
from asl.runs.evaluate import background_shift, evaluate, photo_accounting
from asl.runs.run_folder import RunFolder, hydra_override
from asl.runs.schema import check_config
from asl.runs.self_train import check_self_trainable
from asl.targets import CALLBACKS, DEVICE_TRANSFORMS, LOGGERS, TRANSFORMS, build, check_targets

log = logging.getLogger(__name__)


def plain(node: Any) -> Any:
    """A config node as plain Python (resolved); plain values pass through. A required key left unset
    (``???``, e.g. ``data.root``) is one line naming it."""
    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True) if OmegaConf.is_config(node) else node
    except MissingMandatoryValue as e:
        key = e.full_key or "a key"
        example = " e.g. data.root=/path/to/photos (root/<LETTER>/<image>)" if key == "data.root" else ""
        raise ASLError(f"{key} is required: set it on the command line,{example}") from None


def build_datamodule(cfg: DictConfig, **overrides: Any) -> ASLDataModule:
    """The datamodule of a composed train config (``overrides``: datamodule argument groups)."""
    return ASLDataModule.from_config(plain(cfg.data), resolve_input_spec(plain(cfg.model), plain(cfg.data)),
                                     int(cfg.seed), **overrides)


def build_module(cfg: DictConfig, dm: ASLDataModule) -> ASLClassifier:
    return ASLClassifier(model=plain(cfg.model), class_names=dm.classes, spec=dm.spec.to_dict(),
                         optimizer=plain(cfg.optimizer), scheduler=plain(cfg.get("scheduler")),
                         label_smoothing=float(cfg.label_smoothing))


def train(cfg: DictConfig) -> dict[str, Any] | None:
    """Fit, test on the best checkpoint, and write the run folder. Returns metrics.json's content (None in a
    DDP process other than rank 0: it only trains).

    A run that stops on an error leaves ``FAILED`` (the error) in its folder.
    """
    run = RunFolder(cfg.paths.output_dir)
    try:
        return _train(cfg, run)
    except BaseException as e:
        if rank_zero_only.rank == 0:
            run.mark_failed(f"{type(e).__name__}: {e}")
        raise


def _train(cfg: DictConfig, run: RunFolder) -> dict[str, Any] | None:
    check_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    main_process = rank_zero_only.rank == 0  # DDP: every process runs this; one writes the run folder
    if main_process:
        run.write_environment()
        run.failed_file.unlink(missing_ok=True)  # a resumed run is no longer the one that failed
    for key in ("background", "train_transforms", "eval_transforms", "device_transforms"):  # before anything runs
        check_targets(plain(cfg.data.get(key)), f"data.{key}", TRANSFORMS + DEVICE_TRANSFORMS)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)  # before the data: a config mistake fails in seconds
    if cfg.get("eval_self_train"):
        check_self_trainable(module, "eval_self_train")
    loggers = [build(c, "logger", LOGGERS) for c in cfg.get("logger", {}).values() if c is not None]
    callbacks = [build(c, "callbacks", CALLBACKS) for c in cfg.get("callbacks", {}).values() if c is not None]
    if not loggers:  # logger=none: the learning-rate monitor has nowhere to write (Lightning would stop)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    dm.prepare_data()
    dm.setup("fit")
    if main_process:
        run.write_data(dm)
        if dm.audit_summary is not None:
            log.info("Data audit:\n%s", audit_report.describe(dm.audit_summary))
            audit_report.write(dm, run.path)

    trainer_kwargs = plain(cfg.trainer)
    if not trainer_kwargs.get("enable_model_summary", True):  # callbacks.model_summary prints it, unless turned off here
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    curriculum_cb, plan = setup_curriculum(cfg, dm, module, trainer_kwargs)
    callbacks += [curriculum_cb, EpochSeed(cfg.seed)]  # an epoch depends on (seed, epoch) only: exact resume
    trainer = pl.Trainer(**trainer_kwargs, callbacks=callbacks, logger=loggers or False, default_root_dir=str(run.path),
                         plugins=[AtomicCheckpointIO()])
    if main_process:
        log_augmentation_grid(dm, loggers, run.path / "augmented_samples.png")
    start = time.time()
    use_cached_features(module, dm, trainer.strategy.root_device)  # a frozen backbone's features once (in fit_seconds)
    trainer.fit(module, datamodule=dm, ckpt_path=resolve_resume(cfg.get("ckpt_path"), run, module))
    fit_seconds = time.time() - start
    images_seen = int(module.images_seen)  # test() below loads the best checkpoint, and its count
    if trainer.interrupted:
        raise ASLError(f"training was interrupted; resume with ckpt_path=last {shlex.quote(hydra_override('hydra.run.dir', run.path))}")

    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    tester = trainer if trainer.world_size == 1 else single_device_tester(trainer_kwargs, callbacks, loggers, run)
    if tester is None:
        return None
    tester.test(module, datamodule=dm, ckpt_path=best, verbose=False)
    results = dict(module.test_results)
    metrics = {
        **{k: results[k] for k in ("test/acc", "test/acc_macro", "test/f1_macro")},
        **photo_accounting(module, dm),
        "per_class_acc": results["per_class_acc"],
        "num_test_images": results["num_images"],
        "best_val_acc": float(ckpt_cb.best_model_score) if best and ckpt_cb.best_model_score is not None else None,
        "best_checkpoint": best,
        "epochs": trainer.current_epoch,
        "images_seen": images_seen,
        "budget": {"unit": plan.unit, "epochs": plan.epochs, "epoch_images": plan.epoch_images},
        "curriculum": plan.describe(dm.classes),
        "fit_seconds": round(fit_seconds, 1),
        "skipped_files": len(dm.table.skipped),
        "split_sizes": {s: int((dm.splits == s).sum()) for s in ("train", "val", "test")},
        "leak_rate": leak_rates(dm.audit_summary),
    }
    run.write_results(results, dm.classes, dm.table.skipped)
    run.write_predictions(dm, module.test_predicted)
    metrics.update(evaluate_sets(cfg, best or (ckpt_cb.last_model_path if ckpt_cb else None), run))
    run.write_metrics(metrics)
    log_final(trainer, flat_params(cfg), metrics)
    return metrics


def log_final(trainer: pl.Trainer, params: dict[str, Any], metrics: dict[str, Any]) -> None:
    """The run's hyper-parameters beside its final metrics (test, best validation, leak rates), to every logger.

    The only place hyper-parameters are logged (the module's are not: ``save_hyperparameters(logger=False)``),
    so a logger that refuses a changed value (MLflow) sees each key once. TensorBoard gets no experiment
    summary of its own: its HPARAMS tab then builds the table from every run in the log folder, the keys
    that differ between runs first and the constant ones after them.
    """
    final = {k: metrics[k] for k in ("test/acc", "test/acc_macro", "test/f1_macro")}
    final["val/acc_best"] = metrics["best_val_acc"]
    final.update({f"audit/leak_rate_{s}": v for s, v in (metrics["leak_rate"] or {}).items()})
    final = {k: v for k, v in final.items() if v is not None}
    for lg in trainer.loggers:
        lg.log_hyperparams(params)
        if isinstance(lg, TensorBoardLogger):  # this run's session for the HPARAMS tab, without an experiment summary
            writer = lg.experiment._get_file_writer()
            for summary in hparams(params, final)[1:]:
                writer.add_summary(summary)
        lg.log_metrics(final, step=trainer.global_step)
        lg.save()


def single_device_tester(trainer_kwargs: dict[str, Any], callbacks: list, loggers: list, run: RunFolder) -> pl.Trainer | None:
    """After a DDP fit: a Trainer on rank 0's device alone, so the test counts each photo once (DDP's
    DistributedSampler pads the test split with repeated photos to even it out across processes); None
    on the other ranks, which stop here. The process group ends first: metrics must not wait on them."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    if rank_zero_only.rank != 0:
        return None
    single = {k: v for k, v in trainer_kwargs.items() if k not in ("strategy", "devices", "num_nodes", "sync_batchnorm")}
    return pl.Trainer(**{**single, "devices": 1, "enable_model_summary": False}, callbacks=callbacks,
                      logger=loggers or False, default_root_dir=str(run.path))


def log_augmentation_grid(dm: ASLDataModule, loggers: list, path: Path, count: int = 32) -> None:
    """32 training images as the model sees them (augmented, denormalised), each under its letter:
    check a recipe by eye.

    Written to the run folder and, with TensorBoard, under IMAGES ``train/augmented``.
    """
    if dm.spec.inputs == "landmarks":
        return
    ds = dm.dataset("train")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:count]
    samples = [ds[int(i)] for i in order]
    images = torch.stack([x[0] if isinstance(x, tuple) else x for x, _ in samples])  # uint8 training images
    with torch.random.fork_rng(devices=[]):  # data.device_transforms too, without moving training's random stream
        images = dm.augment_on_device(images).float() / 255
    fig = augmentation_figure(images, [dm.classes[int(y)] for _, y in samples])
    fig.savefig(path, dpi=100)
    for lg in loggers:
        if hasattr(getattr(lg, "experiment", None), "add_figure"):
            lg.experiment.add_figure("train/augmented", fig, 0, close=False)
    plt.close(fig)


def augmentation_figure(images: torch.Tensor, letters: list[str], columns: int = 8):
    """Images (N, 3, H, W) in [0, 1] as 1.25-inch tiles (pixels kept sharp), each titled with its letter."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.25 * columns, 1.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, letter in zip(axes.flat, images, letters, strict=False):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
        ax.set_title(letter, fontsize=11)
    fig.tight_layout(pad=0.4)
    return fig


def evaluate_sets(cfg: DictConfig, ckpt: str | None, run: RunFolder) -> dict[str, float]:
    """``eval_sets: {name: folder}``: the final model on each folder, as flat ``eval/<name>/<metric>`` keys
    (with ``eval_adapt_bn`` also ``eval/<name>/adapt_bn/<metric>``: AdaBN on that folder's photos; with
    ``eval_self_train`` also ``eval/<name>/self_train/<metric>``: self-trained on them); with
    ``background_shift``, also the test accuracy on held-out backgrounds (``background_shift/*``).

    Full reports (per-class accuracy, confusion matrix) go to ``<run>/eval/<name>/`` (and ``.../adapt_bn/``,
    ``.../self_train/``).
    """
    sets = cfg.get("eval_sets") or {}
    if not sets and not cfg.get("background_shift"):
        return {}
    if ckpt is None:
        raise ASLError("eval_sets, background_shift: need a checkpoint of the run; keep callbacks.model_checkpoint on")
    loader = {"eval_batch_size": cfg.data.eval_batch_size, "num_workers": cfg.data.num_workers}
    cache_dir = cfg.data.cache_dir if cfg.data.cache else None
    accelerator = cfg.trainer.get("accelerator", "auto")
    flat: dict[str, float] = {}
    if cfg.get("background_shift"):
        shift = background_shift(ckpt, None, loader, cache_dir, accelerator, cfg.seed)
        flat.update({k: v for k, v in shift.items() if k != "background_shift/families"})
    keys = ("acc", "acc_macro", "f1_macro", "acc_all_photos", "acc_with_hand")
    adapt_bn = bool(cfg.get("eval_adapt_bn"))
    self_train = list(cfg.get("eval_self_train") or [])
    # (folder under eval/<name>, AdaBN, self-training shares)
    variants = [("", False, [])] + ([("adapt_bn", True, [])] if adapt_bn else []) + \
        ([("self_train", adapt_bn, self_train)] if self_train else [])
    for name, root in sets.items():
        for variant, adapt, keep in variants:
            key = f"eval/{name}/{variant}".rstrip("/")
            r = evaluate(ckpt, str(root), run.path / key, loader, cache_dir, unknown_folders="ignore",
                         accelerator=accelerator, adapt_bn=adapt, self_train_keep=keep)
            flat.update({f"{key}/{k}": r[f"test/{k}"] for k in keys})
            log.info("eval set %s%s (%s): accuracy %.4f (all %d photos, no hand = wrong: %.4f), macro-F1 %.4f", name,
                     f" with {variant}" if variant else "", root, r["test/acc"], r["photos"]["all"],
                     r["test/acc_all_photos"], r["test/f1_macro"])
    return flat


def leak_rates(summary: dict[str, Any] | None) -> dict[str, float | None] | None:
    """Share of val and test images with a near-twin in train (from the data audit), or None when off."""
    if summary is None or "leakage" not in summary:
        return None
    return {s: v["leak_rate"] for s, v in summary["leakage"].items()}


def resolve_resume(ckpt_path: str | None, run: RunFolder, module: ASLClassifier) -> str | None:
    """``last`` → this run folder's checkpoints/last.ckpt; a path must exist and hold the same model, classes
    and input contract as this run (else one line saying what differs)."""
    if not ckpt_path:
        return None
    path = run.last_checkpoint if ckpt_path == "last" else Path(ckpt_path)
    if not path.exists():
        raise ASLError(f"ckpt_path: {path} does not exist. To resume, run again with hydra.run.dir=<the run folder> ckpt_path=last.")
    saved = load_classifier_hparams(path)
    ours = dict(module.hparams)
    arch = ("name", "widths", "head", "features", "hidden", "image", "landmarks")
    differs = [f"model.{k}: {saved['model'].get(k)!r} there, {ours['model'].get(k)!r} here" for k in arch
               if saved["model"].get(k) != ours["model"].get(k)]
    differs += [f"input contract ({k}): {saved['spec'].get(k)!r} there, {ours['spec'].get(k)!r} here"
                for k in ours["spec"] if saved.get("spec", {}).get(k) != ours["spec"][k]]
    if saved["class_names"] != ours["class_names"]:
        differs.append(f"classes: {''.join(saved['class_names'])} there, {''.join(ours['class_names'])} here")
    if differs:
        raise ASLError(f"ckpt_path: {path} cannot be resumed by this run: {'; '.join(differs[:3])}. "
                       f"Resume with the run's own settings (asl-reproduce RUN --resume), or start a new run.")
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
