"""Library code behind ``asl-eval``: a checkpoint on its run's test split, or on any folder of photos."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import TQDMProgressBar

from asl import ASLError, resolve_cache_dir
from asl.lit.datamodule import ASLDataModule
from asl.lit.module import ASLClassifier, load_classifier
from asl.models.batchnorm import adapt_batchnorm
from asl.runs import adaptation
from asl.runs.run_folder import RunFolder
from asl.runs.schema import SCHEMA
from asl.runs.self_train import check_keep, check_labels, class_prior, self_train

log = logging.getLogger(__name__)


def datamodule_for(module: ASLClassifier, ckpt_path: str | Path, root: str | None, loader: Mapping[str, Any],
                   cache_dir: str | None, unknown_folders: str = "error", masks: Mapping[str, Any] | None = None,
                   eval_transforms: list | None = None) -> ASLDataModule:
    """The run's own test split (from its ``splits.csv``), or every image under ``root``, prepared as the
    checkpoint's input contract says. ``cache_dir`` None: no cache."""
    common = dict(loader=loader, masks=masks, augment={"eval_transforms": eval_transforms}, cache_dir=cache_dir)
    source = {"classes": module.class_names, "unknown_folders": unknown_folders}
    if root is not None:
        return ASLDataModule(module.spec, {**source, "root": root}, evaluate_all=True, **common)
    run = RunFolder.of_checkpoint(ckpt_path)
    if run is None or not run.splits_file.exists():
        raise ASLError(f"{ckpt_path}: no run folder (.hydra/config.yaml, splits.csv) beside this checkpoint, so its "
                       f"test split is unknown. Pass data.root=/path/to/photos to evaluate on a folder.")
    data = OmegaConf.to_container(run.config().data, resolve=True)  # hydra saves it unresolved
    synthetic = data.get("synthetic")
    if synthetic is not None:
        synthetic = {**synthetic, "cache_dir": resolve_cache_dir(cache_dir)}
    return ASLDataModule(module.spec, {**source, "root": data.get("root"), "synthetic": synthetic},
                         split={"manifest": str(run.splits_file)}, **common)


def photo_accounting(module: ASLClassifier, dm: ASLDataModule, split: str = "test") -> dict[str, Any]:
    """Accuracy over all photos and over the photos with a hand, after a test of ``split``.

    ``test/acc`` scores the photos the model classified: under ``data.no_hand=drop`` those with a hand
    only, so on a set where 8 % of hands are missed it can print 0.80 where 0.74 of all photos are
    right. ``test/acc_all_photos`` counts every photo, a photo without a detected hand as wrong
    (dropped, or classified from the whole photo under ``keep``); ``test/acc_with_hand`` scores the
    photos with one. A model that uses no hands has no such photos: both equal ``test/acc``.
    """
    correct = np.asarray(module.test_correct, bool)
    found = dm.hand_found(split)
    if found is None:
        acc = float(correct.mean()) if correct.size else 0.0
        return {"test/acc_all_photos": acc, "test/acc_with_hand": acc,
                "photos": {"all": int(correct.size), "without_hand": None}}
    dropped = dm.dropped_without_hand(split)
    total = correct.size + dropped
    right = int(correct[found].sum())
    return {"test/acc_all_photos": right / total if total else 0.0,
            "test/acc_with_hand": right / int(found.sum()) if found.any() else 0.0,
            "photos": {"all": total, "without_hand": dropped + int((~found).sum()), "without_hand_dropped": dropped}}


def error_table(confusion: Any, class_names: list[str], top: int = 5) -> dict[str, Any]:
    """From a confusion matrix (rows true, columns predicted): the worst letters, the lowest accuracies
    first, until ``top`` letters are named (letters at the same accuracy form one group, so that a tie
    is never cut alphabetically; letters without photos left out), and the most frequent confusions
    (true → predicted, count): what to photograph next."""
    conf = np.array(confusion)
    support = conf.sum(1)
    acc = np.divide(np.diag(conf), support, out=np.zeros(len(conf)), where=support > 0)
    worst: list[dict[str, Any]] = []
    for a in np.unique(acc[support > 0]):
        if sum(len(w["letters"]) for w in worst) >= top:
            break
        tied = np.flatnonzero((support > 0) & (acc == a))
        worst.append({"acc": float(a), "letters": [class_names[i] for i in tied], "photos": int(support[tied].sum())})
    np.fill_diagonal(conf, 0)
    pairs = [np.unravel_index(k, conf.shape) for k in np.argsort(-conf, axis=None, kind="stable")[:top]]
    return {"worst_letters": worst,
            "top_confusions": [{"true": class_names[t], "predicted": class_names[p], "count": int(conf[t, p])}
                               for t, p in pairs if conf[t, p] > 0]}


def describe_worst(worst_letters: list[dict[str, Any]]) -> str:
    """``worst_letters`` for a reader: ``19 letters at 0 % (ABCDEFGHIKLMNOPQRST, 38 photos), K 50 % (of 2)``."""
    return ", ".join(f"{len(w['letters'])} letters at {100 * w['acc']:.0f} % ({''.join(w['letters'])}, {w['photos']} photos)"
                     if len(w["letters"]) > 1 else f"{w['letters'][0]} {100 * w['acc']:.0f} % (of {w['photos']})"
                     for w in worst_letters)


def trainer_for(accelerator: str) -> pl.Trainer:
    """A test-only trainer, with training's progress bar (tqdm; Lightning would pick Rich where it is installed)."""
    return pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, callbacks=[TQDMProgressBar()])


@torch.no_grad()
def test_probabilities(module: ASLClassifier, dm: ASLDataModule) -> torch.Tensor:
    """(N, C) class probabilities of the test photos with a detected hand (all photos for a model without hands)."""
    module = module.cpu().eval()
    probs = torch.cat([module(x).softmax(-1) for x, _ in dm.test_dataloader()])
    found = dm.hand_found("test")
    return probs if found is None else probs[torch.as_tensor(found, dtype=torch.bool)]


def evaluate(ckpt_path: str | Path, root: str | None = None, output_dir: str | Path | None = None,
             loader: Mapping[str, Any] | None = None, cache_dir: str | None = None, unknown_folders: str = "error",
             accelerator: str = "auto", hand_share: bool = True, adapt_bn: bool = False,
             self_train_keep: Sequence[float] = (), self_train_labels: str = "balanced",
             prior: Mapping[str, float] | None = None, keep_adapted: str = "check") -> dict[str, Any]:
    """Test metrics (accuracy over the classified photos, over all photos and over those with a hand
    (:func:`photo_accounting`), macro-F1, per-class accuracy, confusion matrix, the worst letters and
    confusions) written to ``output_dir``.

    With ``hand_share`` and data with hand masks, also ``background_reliance``: the share of the
    Grad-CAM mass inside the hand (see :mod:`asl.runs.gradcam`). With ``adapt_bn``, the BatchNorm
    statistics are first re-estimated on the evaluated photos, labels unused (AdaBN,
    :func:`asl.models.batchnorm.adapt_batchnorm`). With ``self_train_keep`` (one share per round), a landmark
    model is first self-trained on the evaluated photos, labels unused (:mod:`asl.runs.self_train`), and
    the adapted model is saved as ``self_trained.ckpt`` beside the metrics; its pseudo-labels are balanced
    against ``prior`` ({letter: weight}; None: equal) unless ``self_train_labels="confident"``.

    An adapted model is scored only if the label-free check of :mod:`asl.runs.adaptation` keeps it
    (``keep_adapted="check"``; ``"always"`` skips the check); else the model as trained is, and metrics.json's
    ``adaptation`` says why. Under the check, self-training uses AdaBN only where AdaBN alone passes it
    (``adaptation.adapt_bn_refused``: why not; ``adapt_bn`` in the results then false).
    """
    keep = check_keep(self_train_keep)
    check_labels(self_train_labels)
    if keep_adapted not in adaptation.KEEP_ADAPTED:
        raise ASLError(f"keep_adapted: {keep_adapted!r} is not one of {list(adaptation.KEEP_ADAPTED)}")
    module = load_classifier(ckpt_path)
    letters_prior = class_prior(module.class_names, prior)
    dm = datamodule_for(module, ckpt_path, root, loader or {}, cache_dir, unknown_folders)
    dm.setup("test")
    history, trained, check, adabn_refused, reverse = None, None, None, None, {}
    if keep or adapt_bn:
        trained = copy.deepcopy(module)
        before = test_probabilities(trained, dm)
    if keep and adapt_bn and keep_adapted == "check":  # self-training adapts every round with AdaBN: not where AdaBN fails
        alone = copy.deepcopy(trained)
        adapt_batchnorm(alone, (x for x, _ in dm.test_dataloader()))
        passed, why = adaptation.decide(adaptation.signals(before, test_probabilities(alone, dm), letters_prior),
                                        module.class_names)
        if not passed:
            log.info("adapt_bn alone fails the adaptation check (%s): self-training without it", why)
            adapt_bn, adabn_refused = False, why
    if keep:
        module, history, reverse = _self_train(module, ckpt_path, dm, root is None, keep, adapt_bn, loader or {}, cache_dir,
                                      accelerator, self_train_labels, letters_prior)
    if adapt_bn:
        n = adapt_batchnorm(module, (x for x, _ in dm.test_dataloader()))
        log.info("adapt_bn: %d BatchNorm(s) re-estimated on %d unlabelled photos", n, len(dm.dataset("test")))
    if trained is not None:
        check = {**adaptation.signals(before, test_probabilities(module, dm), letters_prior), **reverse}
        kept, why = adaptation.decide(check, module.class_names)
        check.update(kept=kept or keep_adapted == "always", passed=kept, reason=why, keep_adapted=keep_adapted,
                     adapt_bn_refused=adabn_refused)
        log.info("adaptation %s: %s", "kept" if check["kept"] else "not kept (scoring the model as trained)", why)
        if not check["kept"]:
            module = trained
    if output_dir is None:
        run = RunFolder.of_checkpoint(ckpt_path) or RunFolder(Path(ckpt_path).expanduser().resolve().parent)
        output_dir = run.eval_dir("eval", Path(root).expanduser().resolve().name if root else "test")
    out = Path(output_dir)
    trainer_for(accelerator).test(module, datamodule=dm, verbose=False)
    results = dict(module.test_results)
    results.update(photo_accounting(module, dm))
    results.update(error_table(results["confusion"], module.class_names))
    results.update(checkpoint=str(ckpt_path), data=str(root or "the run's test split"),
                   skipped_files=len(dm.table.skipped), adapt_bn=adapt_bn)
    if history is not None:
        results["self_train"] = history
    if check is not None:
        results["adaptation"] = check
    if hand_share and dm.store.has_masks and dm.spec.inputs == "image":
        from asl.runs.gradcam import background_reliance  # noqa: I001  (grad-cam: only for data with masks)

        results["background_reliance"] = background_reliance(module, dm, dm.eval_batch_size)
    report = RunFolder(out)
    report.write_results(results, module.class_names, dm.table.skipped, f"{results['data']}, checkpoint {ckpt_path}")
    report.write_predictions(dm, module.test_predicted)
    report.write_metrics(results)
    if history is not None and check["kept"]:  # what load_classifier reads: asl-eval / asl-predict ckpt_path=<output_dir>/self_trained.ckpt
        torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, out / "self_trained.ckpt")
    results["output_dir"] = str(out)
    return results


def _self_train(module: ASLClassifier, ckpt_path: str | Path, target: ASLDataModule, target_is_run_split: bool,
                keep: list[float], adapt_bn: bool, loader: Mapping[str, Any], cache_dir: str | None,
                accelerator: str, labels: str, prior: torch.Tensor) -> tuple[ASLClassifier, list[dict[str, Any]], dict[str, float]]:
    """:func:`asl.runs.self_train.self_train` with the run's own training photos (its splits.csv: ``target``
    itself when that is the run's test split) and recipe (its saved config, checked as training checks it)."""
    run = RunFolder.of_checkpoint(ckpt_path)
    if run is None or not run.splits_file.exists():
        raise ASLError(f"self_train: {ckpt_path} has no run folder beside it (.hydra/config.yaml, splits.csv); "
                       f"self-training retrains on the run's training photos with its recipe")
    cfg = run.config()
    recipe = {}
    for arg, key in (("epochs", "trainer.max_epochs"), ("batch_size", "data.batch_size"), ("seed", "seed")):
        allowed, ok = SCHEMA[key]
        value = OmegaConf.select(cfg, key, default=None)
        if not ok(value):
            raise ASLError(f"self_train: {run.config_file} has {key}={value!r}, not {allowed}; is it a run folder asl-train wrote?")
        recipe[arg] = value
    source = target if target_is_run_split else datamodule_for(module, ckpt_path, None, loader, cache_dir)
    source.setup("fit")
    return self_train(module, source, target, keep, adapt_bn, accelerator=accelerator, labels=labels, prior=prior, **recipe)


def background_shift(ckpt_path: str | Path, families: list[str] | None = None, loader: Mapping[str, Any] | None = None,
                     cache_dir: str | None = None, accelerator: str = "auto", seed: int = 0) -> dict[str, Any]:
    """The run's test images as they are, then with their backgrounds swapped for held-out families.

    The hand stays where it is; only the backdrop changes, so the accuracy drop measures how much
    the model still reads the background. ``families`` defaults to the run's
    ``data.background.holdout`` (for a run without background randomisation: the families the
    procedural recipe holds out, so that runs with and without it are compared on the same
    backgrounds). Masks come from the run's ``data.masks`` setting.
    """
    from asl.data.backgrounds import SHIFT_FAMILIES  # imported here: only this report needs it

    run = RunFolder.of_checkpoint(ckpt_path)
    if run is None:
        raise ASLError(f"{ckpt_path}: background_shift needs the run folder (.hydra/config.yaml, splits.csv) around it")
    data = OmegaConf.to_container(run.config().data, resolve=True)  # hydra saves it unresolved
    bg = data.get("background") or {}
    families = list(families or bg.get("holdout") or ([] if bg else SHIFT_FAMILIES))
    if not families:
        raise ASLError("background_shift: the run held out no background family (data.background.holdout: []); "
                       "name some with shift_families=[stripes, ...]")
    spec = {"_target_": "asl.data.backgrounds.BackgroundComposite", "families": families, "scale": None,
            "feather": bg.get("feather", 1.0)}
    masks = {"masks": data.get("masks", "auto"), "mask_key": data.get("mask_key")}
    module = load_classifier(ckpt_path)
    trainer = trainer_for(accelerator)
    acc = {}
    for name, transforms in (("original", []), ("heldout", [spec])):
        pl.seed_everything(seed, verbose=False)
        dm = datamodule_for(module, ckpt_path, None, loader or {}, cache_dir, masks=masks, eval_transforms=transforms)
        dm.setup("test")
        if not dm.store.has_masks:
            raise ASLError(f"background_shift: the run's images have no masks (data.masks={masks['masks']}); it needs mask "
                           f"files or a key colour (data.masks=key_black|key_white|key_green)")
        trainer.test(module, datamodule=dm, verbose=False)
        acc[name] = module.test_results["test/acc"]
    return {"background_shift/acc_original": acc["original"], "background_shift/acc_heldout": acc["heldout"],
            "background_shift/drop": acc["original"] - acc["heldout"], "background_shift/families": families}
