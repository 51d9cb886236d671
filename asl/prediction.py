"""Library code behind ``asl-predict``: top-k letters with probabilities for new photos."""

from __future__ import annotations

import csv
import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from asl import ASLError, resolve_cache_dir
from asl.data.folder import IMAGE_EXTENSIONS, MASK_SUFFIX, load_image
from asl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_pipeline
from asl.hands.crop import crop_hand
from asl.hands.detect import detect_files
from asl.hands.draw import draw_hand
from asl.hands.features import encode
from asl.module import ASLClassifier, load_classifier

#: Suffixes of the files ``asl-export`` writes (ONNX, TorchScript); anything else is a checkpoint.
EXPORTED_SUFFIXES = (".onnx", ".pt")


@dataclass
class Predictor:
    """A model as prediction needs it: classes, preprocessing, and a batch → logits function."""

    class_names: list[str]
    image_size: int
    mean: list[float]
    std: list[float]
    run: Callable[[torch.Tensor], torch.Tensor]
    hands: dict[str, Any] | None = None  # the model's inputs and hand crops (asl.training.hand_options)


def predictor_of(module: ASLClassifier) -> Predictor:
    hp = module.hparams
    device = next(module.parameters()).device
    def run(x):
        x = tuple(t.to(device) for t in x) if isinstance(x, tuple) else x.to(device)
        return module(x).float().cpu()

    return Predictor(list(module.class_names), int(hp.image_size), list(hp.mean or IMAGENET_MEAN), list(hp.std or IMAGENET_STD),
                     run, hp.get("hands"))


def load_predictor(ckpt_path: str | Path, device: str = "cpu") -> Predictor:
    """A checkpoint (``.ckpt``) or a file written by ``asl-export`` (``.onnx``, TorchScript ``.pt``)."""
    if Path(ckpt_path).suffix in EXPORTED_SUFFIXES:
        from asl.export import load_exported  # onnxruntime is only needed for exported files

        run, meta = load_exported(ckpt_path)
        return Predictor(meta["class_names"], meta["image_size"], meta["mean"], meta["std"], run)
    return predictor_of(load_classifier(ckpt_path).to(device))


def collect_inputs(inputs: str | Sequence[str]) -> list[Path]:
    """Image files from a file, a folder (searched recursively) or a glob, or a list of those."""
    specs = [inputs] if isinstance(inputs, str) else list(inputs)
    found: list[Path] = []
    for spec in specs:
        p = Path(str(spec)).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.endswith(MASK_SUFFIX))
            if not files:
                raise ASLError(f"inputs: folder {p} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            found += files
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
            if not matches:
                raise ASLError(f"inputs: {spec} is no file, folder or matching glob")
            found += matches
    return found


@torch.no_grad()
def predict_files(model: Predictor | ASLClassifier, paths: Sequence[Path], top_k: int = 3, batch_size: int = 64,
                  cache_dir: str | Path | None = None, draw_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per file: its top-k (letter, probability), or the reason it could not be read.

    A model trained on hand crops or landmarks gets them here too (the detector, cached); rows
    then say whether a hand was found. ``draw_dir``: also write each photo with its detected
    hand and top letter drawn on it.
    """
    model = predictor_of(model) if isinstance(model, ASLClassifier) else model
    transform = build_pipeline([], model.image_size, model.mean, model.std)
    opts = model.hands or {}
    inputs, margin = opts.get("inputs", "image"), float((opts.get("hands") or {}).get("margin", 0.2))
    wants_hands = bool(opts.get("hand_crop")) or inputs != "image" or draw_dir is not None
    settings = {k: v for k, v in (opts.get("hands") or {}).items() if k not in ("source", "margin")}
    hands = detect_files(paths, settings, resolve_cache_dir(cache_dir)) if wants_hands else [None] * len(paths)
    rows: list[dict[str, Any]] = []
    k = min(top_k, len(model.class_names))
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        tensors, marks, ok, photos = [], [], [], []
        for p, hand in zip(chunk, hands[start:start + batch_size], strict=True):
            try:
                image = load_image(p) if wants_hands else load_image(p, model.image_size)
            except ASLError as e:
                rows.append({"file": str(p), "error": str(e)})
                continue
            pixels = crop_hand(image, hand, margin, model.image_size) if opts.get("hand_crop") else image
            tensors.append(transform(image=pixels)["image"])
            marks.append(torch.from_numpy(encode(hand and hand["landmarks"], hand and hand["handedness"])))
            ok.append((p, hand))
            photos.append(image if draw_dir is not None else None)
        if not tensors:
            continue
        x = {"image": torch.stack(tensors), "landmarks": torch.stack(marks),
             "image+landmarks": (torch.stack(tensors), torch.stack(marks))}[inputs]
        probs = model.run(x).float().softmax(-1).numpy()
        for (p, hand), pr, photo in zip(ok, probs, photos, strict=True):
            top = np.argsort(-pr)[:k]
            row = {"file": str(p), "top": [(model.class_names[i], float(pr[i])) for i in top]}
            if wants_hands:
                row["hand"] = hand is not None
            if draw_dir is not None:
                row["drawing"] = _draw(photo, hand, margin, row, Path(draw_dir))
            rows.append(row)
    order = {str(p): i for i, p in enumerate(paths)}
    return sorted(rows, key=lambda r: order[r["file"]])


def _draw(photo: np.ndarray, hand: dict[str, Any] | None, margin: float, row: dict[str, Any], folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    letter, prob = row["top"][0]
    out = folder / f"{Path(row['file']).stem}.png"
    Image.fromarray(draw_hand(photo, hand, margin, f"{letter} {prob:.2f}")).save(out)
    return str(out)


def write_csv(rows: list[dict[str, Any]], path: str | Path, top_k: int) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file"] + [f"{x}{i}" for i in range(1, top_k + 1) for x in ("letter", "prob")] + ["error"])
        for r in rows:
            cells = [c for letter, prob in r.get("top", []) for c in (letter, f"{prob:.4f}")]
            cells += [""] * (2 * top_k - len(cells))
            w.writerow([r["file"], *cells, r.get("error", "")])
