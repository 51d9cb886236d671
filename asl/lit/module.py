"""The one LightningModule for every model: loss, metrics, optimizer groups, class masking.

Hyper-parameters are saved as plain dicts, lists and numbers (torch ≥ 2.6 loads checkpoints with
``weights_only=True``), so a checkpoint alone rebuilds the model, its classes and preprocessing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from pytorch_lightning.utilities import rank_zero_only  # noqa: E402
from torchmetrics.classification import (  # noqa: E402
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

import asl  # noqa: E402
from asl import ASLError, brief  # noqa: E402
from asl.data.transforms import on_images  # noqa: E402
from asl.hands.features import INPUT_DIM  # noqa: E402
from asl.hands.prepare import assemble  # noqa: E402
from asl.inputs import InputSpec  # noqa: E402
from asl.models import architecture, create_model, recalibrate_batchnorm  # noqa: E402
from asl.targets import OPTIMIZERS, SCHEDULERS, build, check_targets  # noqa: E402

# asl's loggers reach the run's train.log (Lightning's rank_zero_info reached the terminal only)
log = logging.getLogger(__name__)


class ASLClassifier(pl.LightningModule):
    """Image (or landmark) classifier over ``len(class_names)`` outputs.

    ``active_mask`` marks the classes currently being learnt (a curriculum stage): the logits of
    the others are set to -inf, so they get zero probability in the loss and the prediction.
    """

    def __init__(
        self,
        model: dict[str, Any],
        class_names: list[str],
        spec: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        asl_version: str = asl.__version__,
        load_weights: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["load_weights"], logger=False)  # the loggers get the whole config (asl.runs.train)
        self.spec = InputSpec.from_dict(spec)
        arch = architecture(model)
        if not load_weights:  # rebuilding from a checkpoint: its state dict holds the weights
            arch.update(pretrained=None, weights_path=None)
        arch["input_size"] = self.spec.image_size
        self.net = create_model(num_classes=len(class_names), **arch)
        self.class_names = list(class_names)
        check_targets(optimizer, "optimizer", OPTIMIZERS)
        check_targets(scheduler, "scheduler", SCHEDULERS)
        self.optimizer_cfg, self.scheduler_cfg = dict(optimizer), (dict(scheduler) if scheduler else None)
        self.label_smoothing = label_smoothing
        self.unfreeze = _parse_unfreeze(model.get("unfreeze_at_epoch"))
        self.backbone_lr_mult = float(model.get("backbone_lr_mult", 1.0))
        self.channels_last = bool(model.get("channels_last", False))
        self.cache_features = _parse_cache_features(model.get("cache_features"))
        self.fed_features = False  # batches hold cached frozen features, not images (asl.lit.features)
        n = len(class_names)
        self.register_buffer("active_mask", torch.ones(n, dtype=torch.bool), persistent=False)
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        # uint8 images are normalised here, on the device (see normalize); not saved: hparams hold the spec
        for name, values in (("pixel_mean", self.spec.mean), ("pixel_std", self.spec.std)):
            self.register_buffer(name, 255 * torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc_active = MulticlassAccuracy(n, average="micro")  # curriculum: images of active classes only
        self.planned_steps: int | None = None  # the LR schedule's length when the trainer cannot know it (curriculum)
        self.val_f1 = MulticlassF1Score(n, average="macro")
        self.test_acc = MulticlassAccuracy(n, average="micro")
        self.test_acc_macro = MulticlassAccuracy(n, average="macro")
        self.test_f1 = MulticlassF1Score(n, average="macro")
        self.test_per_class = MulticlassAccuracy(n, average=None)
        self.test_confusion = MulticlassConfusionMatrix(n)
        self.test_results: dict[str, Any] = {}
        self.test_correct = np.zeros(0, bool)  # after a test: per test image (loader order), right or wrong
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if model.get("compile"):
            self.net = torch.compile(self.net)
        else:  # one input for the layer summary's FLOPs and sizes (asl.lit.summary); compiling for it would cost minutes
            x = assemble(torch.zeros(1, 3, self.spec.image_size, self.spec.image_size), torch.zeros(1, INPUT_DIM), self.spec)
            self.example_input_array = [x] if isinstance(x, tuple) else x  # Lightning unpacks a tuple into arguments

    # -- forward -------------------------------------------------------------------------
    def set_active_classes(self, classes: list[int] | None) -> None:
        """Mask all but these class indices (``None`` → all active)."""
        mask = torch.zeros_like(self.active_mask)
        mask[list(range(len(mask))) if classes is None else list(classes)] = True
        self.active_mask.copy_(mask)

    def normalize(self, x: torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]):
        """uint8 images (what the training loader sends) → floats normalised with the run's mean/std.

        Done here, on the device, so loader workers skip it and a batch moves a quarter of the bytes;
        float images arrive normalised already (eval, predict, export), and landmarks pass unchanged.
        """
        def scale(images: torch.Tensor) -> torch.Tensor:
            return (images.float() - self.pixel_mean) / self.pixel_std if images.dtype == torch.uint8 else images

        return on_images(scale, x)

    def prepare(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """A batch as the network reads it: normalised, in the run's memory layout."""
        x = self.normalize(x)
        if self.channels_last and isinstance(x, torch.Tensor) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``x``: images (B, 3, H, W; uint8 or normalised floats), landmark rows (B, asl.hands.features.INPUT_DIM), or (images,
        landmarks) for fusion."""
        return self.net(self.prepare(x))

    def logits(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """A batch's logits: the whole network on images, or the head alone on cached frozen features
        (``fed_features``, set by :func:`asl.lit.features.use_cached_features`)."""
        return self.net.head(x) if self.fed_features else self(x)

    def masked_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if bool(self.active_mask.all()):
            return logits
        return logits.masked_fill(~self.active_mask, float("-inf"))

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the active classes only (label smoothing spreads over those alone)."""
        if not bool(self.active_mask.all()):
            active = self.active_mask.nonzero().squeeze(1)
            position = torch.cumsum(self.active_mask.long(), 0) - 1  # class index → index among active
            logits, y = logits[:, active], position[y]
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    # -- steps ---------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.masked_logits(self.logits(x))
        loss = self.loss(logits, y)
        self.images_seen += y.shape[0]
        self.train_acc(logits, y)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/acc", self.train_acc, prog_bar=True, on_step=False, on_epoch=True)
        self.log("images_seen", self.images_seen.float(), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        """``val/*``: all classes, unmasked, like the test; ``val/acc_active``: the active classes' images, masked."""
        x, y = batch
        logits = self.logits(x)
        self.val_acc(logits, y)
        self.val_f1(logits, y)
        active = self.active_mask[y]
        if bool(active.any()):
            self.val_acc_active(self.masked_logits(logits[active]), y[active])
        self.log("val/loss", F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), sync_dist=True)  # DDP: mean over processes
        self.log("val/acc", self.val_acc, prog_bar=True)
        self.log("val/acc_active", self.val_acc_active)
        self.log("val/f1_macro", self.val_f1)

    def test_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self.logits(x)  # all classes, always
        for metric in (self.test_acc, self.test_acc_macro, self.test_f1, self.test_per_class, self.test_confusion):
            metric.update(logits, y)
        predicted = logits.argmax(-1)
        self._test_correct.append((predicted == y).cpu())
        self._test_predicted.append(predicted.cpu())

    def on_test_epoch_start(self) -> None:
        for metric in (self.test_acc, self.test_acc_macro, self.test_f1, self.test_per_class, self.test_confusion):
            metric.reset()
        self._test_correct: list[torch.Tensor] = []
        self._test_predicted: list[torch.Tensor] = []

    def on_test_epoch_end(self) -> None:
        scalars = {
            "test/acc": self.test_acc.compute(),
            "test/acc_macro": self.test_acc_macro.compute(),
            "test/f1_macro": self.test_f1.compute(),
        }
        self.log_dict(scalars)
        confusion = self.test_confusion.compute().cpu()
        per_class = self.test_per_class.compute().cpu()
        support = confusion.sum(1)
        self.test_results = {
            **{k: float(v) for k, v in scalars.items()},
            "per_class_acc": {c: (float(a) if s > 0 else None) for c, a, s in zip(self.class_names, per_class, support, strict=True)},
            "support": {c: int(s) for c, s in zip(self.class_names, support, strict=True)},
            "confusion": confusion.tolist(),
            "num_images": int(support.sum()),
        }
        self.test_correct = torch.cat(self._test_correct).numpy() if self._test_correct else np.zeros(0, bool)  # per image
        self.test_predicted = torch.cat(self._test_predicted).numpy() if self._test_predicted else np.zeros(0, int)
        logger = self.logger
        if logger is not None and hasattr(logger.experiment, "add_figure"):
            logger.experiment.add_figure("test/confusion_matrix", confusion_figure(confusion, self.class_names), self.global_step)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self.logits(x).softmax(-1)

    # -- schedule ------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """``model.pretrained_bn=recalibrate``: before the first step of a fresh run (not a resume), every
        BatchNorm is re-expressed with its input statistics on up to 256 training images, its
        eval-mode output unchanged (:func:`asl.models.recalibrate_batchnorm`)."""
        if getattr(self.net, "pretrained_bn", None) != "recalibrate" or self.trainer.ckpt_path or self.global_step:
            return
        ds = self.trainer.datamodule.dataset("train", train_transform=False)  # normalised, unaugmented
        rows = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:256].tolist()
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, rows), batch_size=64)
        moved = (self.transfer_batch_to_device(x, self.device, 0) for x, _ in loader)
        n = recalibrate_batchnorm(self, moved)
        if rank_zero_only.rank == 0:  # DDP: one process says it
            log.info("model.pretrained_bn=recalibrate: %d BatchNorm(s) re-expressed on %d training images", n, len(rows))

    def on_train_epoch_start(self) -> None:
        stages = self.unfreeze.get(self.current_epoch)
        if stages is not None:
            self.net.set_trainable_stages(stages)
            if rank_zero_only.rank == 0:
                log.info("epoch %d: training the last %s backbone stage(s)", self.current_epoch, self.net.trainable_stages)

    def configure_optimizers(self):
        """``optimizer`` (a ``_partial_`` config) over two groups: the head at ``lr``, the backbone at
        ``lr * model.backbone_lr_mult``; ``scheduler`` steps per optimizer step over the whole run."""
        head = list(self.net.head.parameters())
        head_ids = {id(p) for p in head}
        rest = [p for p in self.parameters() if id(p) not in head_ids]
        lr = float(self.optimizer_cfg.get("lr", 1e-3))
        groups = [{"params": head, "lr": lr}, {"params": rest, "lr": lr * self.backbone_lr_mult}]
        opt = call(build(self.optimizer_cfg, "optimizer", OPTIMIZERS), "optimizer", groups)
        if self.scheduler_cfg is None:
            return opt
        total = max(1, int(self.planned_steps or self.trainer.estimated_stepping_batches))
        steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        make = build(self.scheduler_cfg, "scheduler", SCHEDULERS)
        scheduler = call(make, "scheduler", opt, total_steps=total, steps_per_epoch=steps_per_epoch)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def call(factory, key: str, *args, **kwargs):
    """A built ``_partial_`` config called with its run-time arguments; a wrong option is one line naming ``key``."""
    try:
        return factory(*args, **kwargs)
    except TypeError as e:
        raise ASLError(f"{key}: {e}") from None


def _parse_unfreeze(spec) -> dict[int, int | str]:
    """``K`` → all stages train from epoch K; ``{epoch: stages}`` → as given; ``None`` → never changes."""
    if spec is None:
        return {}
    if isinstance(spec, int):
        return {int(spec): "all"}
    if isinstance(spec, dict):
        return {int(k): v for k, v in spec.items()}
    raise ASLError(f"model.unfreeze_at_epoch: expected an epoch number or {{epoch: stages}}, got {spec!r}")


def _parse_cache_features(value: Any) -> bool:
    """``auto`` → use cached frozen features when they are exact; ``false`` or absent → never."""
    if value not in ("auto", False, None):
        raise ASLError(f"model.cache_features: expected auto or false, got {value!r}")
    return value == "auto"


def confusion_figure(confusion: torch.Tensor, class_names: list[str], about: str | None = None):
    """Row-normalised confusion matrix (rows: true letter) with counts written in the cells; ``about``
    (the data and the checkpoint, for an evaluation) goes under the title.

    (torchmetrics' ``plot()`` colours raw counts and writes every cell, zeros included: at 24 letters
    a wall of numbers, so this one stays.)"""
    cm = confusion.float()
    norm = cm / cm.sum(1, keepdim=True).clamp(min=1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.38 * n + 2, 0.38 * n + 1.5))
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if cm[i, j] > 0:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    acc = float(cm.diag().sum() / cm.sum().clamp(min=1))
    ax.set_title(f"confusion matrix (accuracy {acc:.3f}, {int(cm.sum())} images)" + (f"\n{about}" if about else ""),
                 wrap=True)
    fig.tight_layout()
    return fig


def load_classifier_hparams(path: Path) -> dict[str, Any]:
    """An asl checkpoint's hyper-parameters (with its state dict under ``state_dict``), with clear errors for a wrong file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ASLError(f"ckpt_path: {path} does not exist. Pass a run's checkpoints/best.ckpt (or last.ckpt).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ASLError(f"ckpt_path: {path} is not a readable PyTorch checkpoint ({type(e).__name__}: {brief(e)})") from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not hp or "class_names" not in hp or "model" not in hp or "spec" not in hp or "state_dict" not in ckpt:
        raise ASLError(f"ckpt_path: {path} is not an asl checkpoint (no asl hyper-parameters); pass a checkpoint written by asl-train.")
    return {**hp, "state_dict": ckpt["state_dict"]}


def load_classifier(ckpt_path: str | Path, map_location: str = "cpu") -> ASLClassifier:
    """Rebuild a trained classifier from a checkpoint, with clear errors for a wrong file."""
    path = Path(ckpt_path).expanduser()
    hp = load_classifier_hparams(path)
    state = hp.pop("state_dict")
    try:
        module = ASLClassifier(**hp, load_weights=False)
    except (ASLError, TypeError) as e:
        raise ASLError(f"ckpt_path: {path} describes a model this version of asl cannot build: {e}") from None
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ASLError(f"ckpt_path: {path} does not match the model it describes ({hp['model'].get('name')}): {brief(e)}") from None
    return module.to(map_location).eval()
