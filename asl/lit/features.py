"""Frozen features, computed once: a backbone that never trains is a fixed function, so a linear probe
can train its head on each image's cached feature map instead of running every stage on every image
in every epoch (seconds instead of minutes).

``model.cache_features=auto`` uses them only where that is exact: every stage frozen for the whole run
(frozen stages keep BatchNorm in eval mode, so their output is deterministic), a model that reads
images only, and training images with no randomness before the model, so that each training image is
its evaluation image. The cache sits beside the decoded images, keyed by the backbone's tensors, the
input contract and the decoded-image cache (itself keyed by the files): new weights or photos compute
new features. Checkpoints stay whole models; ``asl-eval`` and ``asl-predict`` run them on photos.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.ops import StochasticDepth
from tqdm.auto import tqdm

from asl.lit.datamodule import ASLDataModule, ImageDataset
from asl.lit.module import ASLClassifier

log = logging.getLogger(__name__)
CACHE_VERSION = 1
#: Augmentation keys that make a training image differ from its evaluation image, and how.
_RANDOM_INPUTS = {
    "background": "new backdrops every epoch",
    "train_transforms": "random augmentation every epoch",
    "device_transforms": "random augmentation every batch",
    "eval_transforms": "they change evaluation images, not training ones",
}


def decline_reason(module: ASLClassifier, dm: ASLDataModule) -> str | None:
    """Why cached features would differ from what training computes; None when they are exact."""
    if dm.spec.inputs != "image":
        return f"the model reads {dm.spec.inputs}, not images only"
    reasons = []
    if module.net.trainable_stages:
        reasons.append(f"model.trainable_stages={module.net.trainable_stages}: backbone stages train")
    if module.unfreeze:
        reasons.append("model.unfreeze_at_epoch: backbone stages train later")
    if module.net.pretrained_bn == "recalibrate":
        reasons.append("model.pretrained_bn=recalibrate: the BatchNorms change before the first step")
    random = sorted({type(m).__name__ for m in module.net.stages.modules()
                     if isinstance(m, nn.modules.dropout._DropoutNd | StochasticDepth)})
    if random:
        reasons.append(f"the backbone's stages hold {', '.join(random)}, random while training")
    reasons += [f"data.{key}: {why}" for key, why in _RANDOM_INPUTS.items() if dm.augment[key]]
    return "; ".join(reasons) or None


def use_cached_features(module: ASLClassifier, dm: ASLDataModule, device: torch.device | str = "cpu") -> bool:
    """With ``model.cache_features=auto`` and exact features: feed the module cached features (set up
    ``dm`` first; ``device`` computes them). Otherwise one log line says why not. Returns whether they are used."""
    if not module.cache_features:
        return False
    reason = decline_reason(module, dm)
    if reason:
        log.info("model.cache_features=auto: not used (%s)", reason)
        return False
    dm.features = frozen_features(module, dm, torch.device(device))
    module.fed_features = True
    log.info("model.cache_features=auto: the head trains on cached frozen features %s", tuple(dm.features.shape[1:]))
    return True


def feature_key(module: ASLClassifier, dm: ASLDataModule) -> str:
    """A digest of what the features depend on: the stages' tensors (so another weights file gives
    another key), the input contract and the decoded images (their cache folder names the files)."""
    h = hashlib.sha1(f"v{CACHE_VERSION}:{json.dumps(dm.spec.to_dict(), sort_keys=True)}:{dm.store.folder.name}".encode())
    for name, t in module.net.stages.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def frozen_features(module: ASLClassifier, dm: ASLDataModule, device: torch.device) -> np.ndarray:
    """One float32 feature map per store image (rows of unreadable images stay zero): memory-mapped
    from ``dm.cache_dir`` (computed there once), or computed into memory without a cache dir."""
    if dm.cache_dir is None:
        return _compute(module, dm, device, lambda shape: np.zeros(shape, np.float32))
    folder = Path(dm.cache_dir).expanduser() / f"features-{len(dm.store.paths)}-{feature_key(module, dm)}"
    if not folder.exists():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        features = _compute(module, dm, device, lambda shape: np.lib.format.open_memmap(tmp / "features.npy", "w+", np.float32, shape))
        features.flush()
        (tmp / "meta.json").write_text(json.dumps({"model": module.hparams["model"].get("name"), "shape": list(features.shape),
                                                   "images": dm.store.folder.name, "spec": dm.spec.to_dict()}))
        del features
        try:
            tmp.rename(folder)
        except OSError:  # built concurrently by another process: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        log.info("Frozen features: reusing %s", folder)
    return np.load(folder / "features.npy", mmap_mode="r")


def _compute(module: ASLClassifier, dm: ASLDataModule, device: torch.device,
             allocate: Callable[[tuple[int, ...]], np.ndarray]) -> np.ndarray:
    """The stages on every readable store image, as evaluation sees it, in eval mode and batches;
    ``allocate(shape)`` makes the array once the first batch shows the feature shape."""
    rows = dm.store_index
    ds = ImageDataset(dm.store, rows, rows, dm.eval_tf, None, dm.spec)  # the "label" is the store row
    loader = DataLoader(ds, batch_size=dm.eval_batch_size, num_workers=int(dm.loader["num_workers"]))
    home, training = module.device, module.training
    module.to(device).eval()
    features = None
    try:
        with torch.no_grad():
            for x, k in tqdm(loader, desc=f"Frozen features of {len(ds)} images", leave=False):
                out = module.net.forward_features(module.prepare(x.to(device))).float().cpu().numpy()
                if features is None:
                    features = allocate((len(dm.store.paths), *out.shape[1:]))
                features[k.numpy()] = out
    finally:
        module.to(home).train(training)
    return features
