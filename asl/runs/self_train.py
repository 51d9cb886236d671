"""Self-training: adapt a landmark model to a new setting from its photos alone (``asl-eval self_train=[...]``).

A model trained in one studio misreads about one photo in four of a new room
(experiments/robustness/README.md), yet it is right on most of the photos it is sure of. Each round
labels the new photos with the current model's predictions, keeps the most confident share of each
predicted letter (class-balanced, so no letter swallows the rest), and retrains a fresh model with the
run's own recipe on its training photos plus those. The new photos' labels are never read for this
(they are only reported, as the share of pseudo-labels that were right). Landmark models only: they
retrain in seconds on a CPU, where an image model would take an hour per round.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from torch.utils.data import DataLoader, TensorDataset

from asl import ASLError
from asl.hands.features import present
from asl.lit.datamodule import ASLDataModule
from asl.lit.module import ASLClassifier
from asl.models.batchnorm import adapt_batchnorm

log = logging.getLogger(__name__)


def are_shares(keep: Any) -> bool:
    """Whether ``keep`` is a list of shares in (0, 1], one per round ([] = off): ``self_train``, ``eval_self_train``."""
    return (isinstance(keep, Sequence) and not isinstance(keep, str)
            and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1 for v in keep))


def check_keep(keep: Any) -> list[float]:
    """``self_train``'s shares as floats, or one line saying what is allowed."""
    if not are_shares(keep):
        raise ASLError(f"self_train: expected a list of shares in (0, 1], one per round (e.g. [0.3,0.6,0.9]; [] = off), "
                       f"got {keep!r}")
    return [float(v) for v in keep]


def check_self_trainable(module: ASLClassifier, key: str) -> None:
    """Only landmark models retrain fast enough to self-train: others are refused in one line naming ``key``."""
    if module.spec.inputs != "landmarks":
        raise ASLError(f"{key}: only landmark models can be self-trained (model=landmark_mlp, experiment=robust_best); "
                       f"for an image model use AdaBN alone (asl-eval adapt_bn=true, eval_adapt_bn=true in training)")


def rows(dm: ASLDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``split``'s landmark rows and labels, photos without a hand left out."""
    idx = dm.indices(split)
    x = torch.from_numpy(dm.landmarks[dm.store_index[idx]])
    y = torch.from_numpy(dm.labels[idx])
    found = present(x)
    return x[found], y[found]


@torch.no_grad()
def probabilities(module: ASLClassifier, x: torch.Tensor, adapt_bn: bool, batch_size: int = 512) -> torch.Tensor:
    """Class probabilities of rows ``x`` (after AdaBN on them, with ``adapt_bn``)."""
    batches = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    module = module.cpu()
    if adapt_bn:
        adapt_batchnorm(module, batches)
    module.eval()
    return torch.cat([module(b).softmax(-1) for b in batches])


def most_confident(probs: torch.Tensor, share: float) -> torch.Tensor:
    """(N,) bool: in each predicted class, its ``share`` most confident rows (at least one)."""
    confidence, predicted = probs.max(1)
    keep = torch.zeros(len(probs), dtype=torch.bool)
    for c in predicted.unique():
        members = (predicted == c).nonzero().squeeze(1)
        ranked = members[confidence[members].argsort(descending=True)]
        keep[ranked[:max(1, math.floor(share * len(members)))]] = True
    return keep


def self_train(module: ASLClassifier, source: ASLDataModule, target: ASLDataModule, keep: Sequence[float],
               adapt_bn: bool, epochs: int, batch_size: int, seed: int, accelerator: str = "auto") -> tuple[ASLClassifier, list[dict[str, Any]]]:
    """A model retrained ``len(keep)`` times on ``source``'s training rows plus ``target``'s test rows it is
    most sure of (round r keeps ``keep[r]`` of each predicted letter), and one record per round.

    ``epochs``, ``batch_size`` and ``seed``: the run's recipe (its ``trainer.max_epochs``, ``data.batch_size``,
    ``seed``); each round starts from fresh weights (seed + round). The returned model is not adapted to the
    target's BatchNorm statistics (the caller does that, as for any model, with ``adapt_bn``).
    """
    check_self_trainable(module, "self_train")
    xs, ys = rows(source, "train")
    xt, yt = rows(target, "test")
    if len(xt) < 2:
        raise ASLError(f"self_train: {len(xt)} photo(s) with a detected hand to adapt to; it needs a folder of photos of the new setting")
    hparams = dict(module.hparams)
    history = []
    for r, share in enumerate(keep, 1):
        probs = probabilities(module, xt, adapt_bn)
        chosen = most_confident(probs, share)
        pseudo = probs.argmax(1)[chosen]
        record = {"round": r, "keep": share, "pseudo_labelled": int(chosen.sum()), "photos": len(xt),
                  "pseudo_label_acc": float((pseudo == yt[chosen]).float().mean())}
        log.info("self_train round %d/%d: %d of %d new photos pseudo-labelled (%.1f%% of them right, by the folder "
                 "names, which training does not read); retraining on them + %d training photos",
                 r, len(keep), record["pseudo_labelled"], len(xt), 100 * record["pseudo_label_acc"], len(xs))
        pl.seed_everything(seed + r, workers=True, verbose=False)
        module = ASLClassifier(**hparams, load_weights=False)
        data = TensorDataset(torch.cat([xs, xt[chosen]]), torch.cat([ys, pseudo]))
        loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=len(data) % batch_size == 1)
        trainer = pl.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, logger=False,  # tqdm, as training
                             enable_checkpointing=False, enable_model_summary=False, callbacks=[TQDMProgressBar()])
        with warnings.catch_warnings():  # no validation here, by design: Lightning's note about it is noise
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`")
            trainer.fit(module, train_dataloaders=loader)
        history.append(record)
    return module.cpu().eval(), history


def pseudo_label_summary(history: list[dict[str, Any]]) -> str:
    return "; ".join(f"round {h['round']}: {h['pseudo_labelled']} of {h['photos']} ({100 * h['pseudo_label_acc']:.1f}% right)"
                     for h in history)

