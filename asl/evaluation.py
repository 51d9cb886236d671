"""Library code behind ``asl-eval``: a checkpoint on its run's test split, or on any folder of photos."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import OmegaConf

from asl import ASLError, resolve_cache_dir
from asl.data.datamodule import ASLDataModule
from asl.module import ASLClassifier, load_classifier
from asl.training import save_confusion_png

log = logging.getLogger(__name__)


def run_dir_of(ckpt_path: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to (``RUN/checkpoints/x.ckpt`` → ``RUN``), if it has a saved config."""
    run = Path(ckpt_path).expanduser().resolve().parent.parent
    return run if (run / ".hydra" / "config.yaml").exists() else None


def datamodule_for(module: ASLClassifier, ckpt_path: str | Path, root: str | None, batch_size: int,
                   num_workers: int, cache: bool, cache_dir: str | None, unknown_folders: str = "error") -> ASLDataModule:
    """The run's own test split (from its ``splits.csv``), or every image under ``root``."""
    hp = module.hparams
    common = dict(classes=module.class_names, image_size=hp.image_size, mean=hp.mean, std=hp.std,
                  eval_batch_size=batch_size, num_workers=num_workers, cache=cache, cache_dir=cache_dir,
                  **(hp.get("hands") or {}))  # the model's inputs, hand crops and detector settings
    if root is not None:
        return ASLDataModule(root=root, unknown_folders=unknown_folders, all_images_are="test", **common)
    run = run_dir_of(ckpt_path)
    if run is None or not (run / "splits.csv").exists():
        raise ASLError(f"{ckpt_path}: no run folder (.hydra/config.yaml, splits.csv) beside this checkpoint, so its "
                       f"test split is unknown. Pass data.root=/path/to/photos to evaluate on a folder.")
    data = OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml").data, resolve=False)
    synthetic = data.get("synthetic")
    if synthetic is not None:
        synthetic = {**synthetic, "cache_dir": resolve_cache_dir(cache_dir)}
    split = {"manifest": str(run / "splits.csv")}
    return ASLDataModule(root=data.get("root"), synthetic=synthetic, split=split, **common)


def evaluate(ckpt_path: str | Path, root: str | None = None, output_dir: str | Path | None = None,
             batch_size: int = 256, num_workers: int = 2, cache: bool = True, cache_dir: str | None = None,
             unknown_folders: str = "error", accelerator: str = "auto", hand_share: bool = True) -> dict[str, Any]:
    """Test metrics (accuracy, macro-F1, per-class accuracy, confusion matrix) written to ``output_dir``.

    With ``hand_share`` and data with hand masks, also ``background_reliance``: the share of the
    Grad-CAM mass inside the hand (see :mod:`asl.explain`).
    """
    module = load_classifier(ckpt_path)
    dm = datamodule_for(module, ckpt_path, root, batch_size, num_workers, cache, cache_dir, unknown_folders)
    dm.setup("test")
    if output_dir is None:
        base = run_dir_of(ckpt_path) or Path(ckpt_path).expanduser().resolve().parent
        name = Path(root).expanduser().resolve().name if root else "test"
        output_dir = base / "eval" / f"{name}_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer = pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                         enable_model_summary=False)
    trainer.test(module, datamodule=dm, verbose=False)
    results = dict(module.test_results)
    results.update(checkpoint=str(ckpt_path), data=str(root or "the run's test split"),
                   skipped_files=len(dm.table.skipped))
    if hand_share and dm.store.has_masks and dm.inputs == "image":
        from asl.explain import background_reliance  # grad-cam is needed only for data with masks

        results["background_reliance"] = background_reliance(module, dm, batch_size)
    save_confusion_png(results, module.class_names, out / "confusion_matrix.png")
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    dm.write_skipped(out / "skipped_files.csv")
    results["output_dir"] = str(out)
    return results


def background_shift(ckpt_path: str | Path, families: list[str] | None = None, batch_size: int = 256,
                     num_workers: int = 2, cache: bool = True, cache_dir: str | None = None,
                     accelerator: str = "auto", seed: int = 0) -> dict[str, Any]:
    """The run's test images as they are, then with their backgrounds swapped for held-out families.

    The hand stays where it is; only the backdrop changes, so the accuracy drop measures how much
    the model still reads the background. ``families`` defaults to the run's
    ``data.background.holdout`` (for a run without background randomisation: the families the
    procedural recipe holds out, so that runs with and without it are compared on the same
    backgrounds). Masks come from the run's ``data.masks`` setting.
    """
    from asl.data.backgrounds import SHIFT_FAMILIES  # imported here: only this report needs it

    run = run_dir_of(ckpt_path)
    if run is None:
        raise ASLError(f"{ckpt_path}: background_shift needs the run folder (.hydra/config.yaml, splits.csv) around it")
    data = OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml").data, resolve=False)
    bg = data.get("background") or {}
    families = list(families or bg.get("holdout") or ([] if bg else SHIFT_FAMILIES))
    if not families:
        raise ASLError("background_shift: the run held out no background family (data.background.holdout: []); "
                       "name some with shift_families=[stripes, ...]")
    spec = {"_target_": "asl.data.backgrounds.BackgroundComposite", "families": families, "scale": None,
            "feather": bg.get("feather", 1.0)}
    module = load_classifier(ckpt_path)
    trainer = pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                         enable_model_summary=False)
    acc = {}
    for name, transforms in (("original", []), ("heldout", [spec])):
        pl.seed_everything(seed, verbose=False)
        dm = datamodule_for(module, ckpt_path, None, batch_size, num_workers, cache, cache_dir)
        dm.masks, dm.mask_key, dm.eval_transforms = data.get("masks", "auto"), data.get("mask_key"), transforms
        dm.setup("test")
        if not dm.store.has_masks:
            raise ASLError(f"background_shift: the run's images have no masks (data.masks={dm.masks}); it needs mask "
                           f"files or a key colour (data.masks=key_black|key_white|key_green)")
        trainer.test(module, datamodule=dm, verbose=False)
        acc[name] = module.test_results["test/acc"]
    return {"background_shift/acc_original": acc["original"], "background_shift/acc_heldout": acc["heldout"],
            "background_shift/drop": acc["original"] - acc["heldout"], "background_shift/families": families}
