"""Self-training: adapt a landmark model to a new setting from its photos alone (``asl-eval self_train=[...]``).

A model trained in one studio misreads about one photo in four of a new room
(experiments/robustness/README.md), yet it is right on most of the photos it is sure of. Each round
labels the new photos, keeps the most confident share of each pseudo-label, and retrains a fresh model
with the run's own recipe on its training photos plus those. The new photos' labels are never read for
this (they are only reported, as the share of pseudo-labels that were right). Landmark models only: they
retrain in seconds on a CPU, where an image model would take an hour per round.

The pseudo-labels are the model's predictions balanced against the letters' prior (``balanced``, the
default): a quota per *predicted* letter (``confident``, the first version) cannot stop a letter whose
every photo is predicted as another (on a grey-wall set M→P took 211 of 211 photos, round after round),
so each photo's class probabilities are first rescaled per letter until every letter holds its prior
share of the photos (Sinkhorn–Knopp, as in optimal-transport labelling: SeLa, Asano et al. 2020).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
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

PSEUDO_LABELS = ("balanced", "confident")  # balanced against the prior (Sinkhorn) | the model's own argmax


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


def check_labels(how: str) -> str:
    """``self_train_labels`` checked: one of :data:`PSEUDO_LABELS`, or one line saying which are."""
    if how not in PSEUDO_LABELS:
        raise ASLError(f"self_train_labels: {how!r} is not one of {list(PSEUDO_LABELS)}")
    return how


def class_prior(class_names: Sequence[str], weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """(C,) the share of each letter expected among the new photos: equal (``weights`` None), or ``weights``
    ({letter: relative weight}, letters left out weigh 0) normalised; one line for a bad mapping."""
    if weights is None:
        return torch.full((len(class_names),), 1 / len(class_names))
    unknown = sorted(set(map(str, weights)) - set(class_names))
    if unknown or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in weights.values()):
        raise ASLError(f"class_prior: expected {{letter: weight >= 0}} over the model's letters {''.join(class_names)}, "
                       f"got {dict(weights)!r}" + (f" (unknown: {unknown})" if unknown else ""))
    w = torch.tensor([float(weights.get(c, 0.0)) for c in class_names])
    if w.sum() <= 0:
        raise ASLError(f"class_prior: the weights {dict(weights)!r} sum to 0; give some letter a weight > 0")
    return w / w.sum()


def balanced(probs: torch.Tensor, prior: torch.Tensor, iterations: int = 200) -> torch.Tensor:
    """(N, C) probabilities rescaled per class (Sinkhorn–Knopp) so that rows still sum to 1 and each class's
    total is ``N · prior``: a letter the model never predicts still receives the photos most like it."""
    q = probs.double().clamp_min(1e-30)
    target = prior.double() * len(q)
    for _ in range(iterations):
        q = q * (target / q.sum(0).clamp_min(1e-300))
        q = q / q.sum(1, keepdim=True)
    return q.to(probs.dtype)


def pseudo_labels(probs: torch.Tensor, share: float, prior: torch.Tensor, how: str = "balanced") -> tuple[torch.Tensor, torch.Tensor]:
    """((N,) bool: the photos kept, (N,) their pseudo-labels): ``share`` of each pseudo-label's most confident
    photos, the labels balanced against ``prior`` (:func:`balanced`) or the model's own argmax (``confident``)."""
    check_labels(how)
    q = balanced(probs, prior) if how == "balanced" else probs
    return most_confident(q, share), q.argmax(1)


def self_train(module: ASLClassifier, source: ASLDataModule, target: ASLDataModule, keep: Sequence[float],
               adapt_bn: bool, epochs: int, batch_size: int, seed: int, accelerator: str = "auto",
               labels: str = "balanced", prior: torch.Tensor | None = None
               ) -> tuple[ASLClassifier, list[dict[str, Any]], dict[str, float]]:
    """A model retrained ``len(keep)`` times on ``source``'s training rows plus ``target``'s test rows it is
    most sure of (round r keeps ``keep[r]`` of each pseudo-label, see :func:`pseudo_labels`; ``prior``: the
    letters' expected shares, equal by default), one record per round (``agreement``: the share of the
    new photos whose pseudo-label equals the previous round's, a label-free sign of stability), and the
    :func:`reverse_accuracy` on ``source``'s validation rows of the model before and after
    (``reverse_acc_before``, ``reverse_acc_after``: whether its pseudo-labels got better or worse; two more
    short trainings on the new rows alone; empty without validation rows).

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
    prior = class_prior(module.class_names) if prior is None else prior
    history, previous, first = [], None, None
    for r, share in enumerate(keep, 1):
        probs = probabilities(module, xt, adapt_bn)
        first = probs if first is None else first  # the model as trained: reverse validation's "before"
        chosen, assigned = pseudo_labels(probs, share, prior, labels)
        pseudo = assigned[chosen]
        record = {"round": r, "keep": share, "labels": labels, "pseudo_labelled": int(chosen.sum()), "photos": len(xt),
                  "pseudo_label_acc": float((pseudo == yt[chosen]).float().mean()),
                  "agreement": None if previous is None else float((assigned == previous).float().mean())}
        previous = assigned
        log.info("self_train round %d/%d: %d of %d new photos pseudo-labelled (%.1f%% of them right, by the folder "
                 "names, which training does not read); retraining on them + %d training photos",
                 r, len(keep), record["pseudo_labelled"], len(xt), 100 * record["pseudo_label_acc"], len(xs))
        module = fit_fresh(hparams, torch.cat([xs, xt[chosen]]), torch.cat([ys, pseudo]), epochs, batch_size, seed + r,
                           accelerator)
        history.append(record)
    xv, yv = rows(source, "val")
    if not len(yv):  # no labelled validation photos with a hand: nothing to score the reverse models on
        return module, history, {}
    after = probabilities(copy.deepcopy(module), xt, adapt_bn)  # a copy: the caller adapts the returned model itself
    reverse = {f"reverse_acc_{when}": reverse_accuracy(p, xt, xv, yv, keep[-1], prior, labels, hparams, epochs, batch_size,
                                                       seed + len(keep) + 1, accelerator)
               for when, p in (("before", first), ("after", after))}
    log.info("self_train: reverse validation (a model trained on the new photos' pseudo-labels alone, scored on %d "
             "validation photos) %.1f%% before, %.1f%% after", len(yv), 100 * reverse["reverse_acc_before"],
             100 * reverse["reverse_acc_after"])
    return module, history, reverse


def fit_fresh(hparams: Mapping[str, Any], x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, seed: int,
              accelerator: str = "auto") -> ASLClassifier:
    """A model of the run's kind (``hparams``) trained from fresh weights (``seed``) on rows ``x``, labels ``y``."""
    pl.seed_everything(seed, workers=True, verbose=False)
    module = ASLClassifier(**hparams, load_weights=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=len(x) % batch_size == 1)
    trainer = pl.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, logger=False,  # tqdm, as training
                         enable_checkpointing=False, enable_model_summary=False, callbacks=[TQDMProgressBar()])
    with warnings.catch_warnings():  # no validation here, by design: Lightning's note about it is noise
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`")
        trainer.fit(module, train_dataloaders=loader)
    return module.cpu().eval()


def reverse_accuracy(probs: torch.Tensor, xt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, share: float,
                     prior: torch.Tensor, labels: str, hparams: Mapping[str, Any], epochs: int, batch_size: int,
                     seed: int, accelerator: str = "auto") -> float:
    """Reverse validation (Zhong et al. 2010): the accuracy on the source's labelled rows ``xv``/``yv`` of a fresh
    model of the run's kind (``hparams``) trained on the new rows ``xt`` alone, labelled from a model's class
    probabilities ``probs`` of them as a self-training round would label them (``share`` of each pseudo-label).
    Pseudo-labels that are wrong in a consistent way (a letter read as another) teach that mistake back, where the
    model's own confidence cannot show it; no label of the new rows is read."""
    chosen, assigned = pseudo_labels(probs, share, prior, labels)
    reverse = fit_fresh(hparams, xt[chosen], assigned[chosen], epochs, batch_size, seed, accelerator)
    with torch.no_grad():
        return float((reverse(xv).argmax(1) == yv).double().mean())


def pseudo_label_summary(history: list[dict[str, Any]]) -> str:
    return "; ".join(f"round {h['round']}: {h['pseudo_labelled']} of {h['photos']} ({100 * h['pseudo_label_acc']:.1f}% right)"
                     for h in history)

