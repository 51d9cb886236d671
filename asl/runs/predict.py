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

from asl import ASLError
from asl.data.folder import IMAGE_EXTENSIONS, MASK_SUFFIX, UnreadableFile, load_image
from asl.hands.draw import draw_hand
from asl.hands.prepare import assemble, find_hands, input_transform, landmark_row, read_pixels
from asl.inputs import InputSpec
from asl.lit.module import ASLClassifier, load_classifier

#: Suffixes of the files ``asl-export`` writes (ONNX, TorchScript); anything else is a checkpoint.
EXPORTED_SUFFIXES = (".onnx", ".pt")


@dataclass
class Predictor:
    """A model as prediction needs it: classes, its input contract, and a batch → logits function."""

    class_names: list[str]
    spec: InputSpec
    run: Callable[[torch.Tensor], torch.Tensor]


def predictor_of(module: ASLClassifier) -> Predictor:
    device = next(module.parameters()).device

    def run(x):
        x = tuple(t.to(device) for t in x) if isinstance(x, tuple) else x.to(device)
        return module(x).float().cpu()

    return Predictor(list(module.class_names), module.spec, run)


def load_predictor(ckpt_path: str | Path, device: str = "cpu") -> Predictor:
    """A checkpoint (``.ckpt``) or a file written by ``asl-export`` (``.onnx``, TorchScript ``.pt``)."""
    if Path(ckpt_path).suffix in EXPORTED_SUFFIXES:
        from asl.runs.export import load_exported  # onnxruntime is only needed for exported files

        run, meta = load_exported(ckpt_path)
        return Predictor(meta["class_names"], InputSpec.from_dict(meta["spec"]), run)
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
    spec = model.spec
    transform = input_transform(spec)
    hands = find_hands(paths, spec, cache_dir, always=draw_dir is not None)
    rows: list[dict[str, Any]] = []
    k = min(top_k, len(model.class_names))
    for start in range(0, len(paths), batch_size):
        x, ok, errors = prepare_photos(paths[start:start + batch_size], hands[start:start + batch_size], spec, transform)
        rows += errors
        if not ok:
            continue
        probs = model.run(x).float().softmax(-1).numpy()
        for (p, hand), pr in zip(ok, probs, strict=True):
            top = np.argsort(-pr)[:k]
            row = {"file": str(p), "top": [(model.class_names[i], float(pr[i])) for i in top]}
            if spec.wants_hands or draw_dir is not None:
                row["hand"] = hand is not None
            if draw_dir is not None:
                row["drawing"] = _draw(load_image(p), hand, spec.margin, row, Path(draw_dir))
            rows.append(row)
    order = {str(p): i for i, p in enumerate(paths)}
    return sorted(rows, key=lambda r: order[r["file"]])


def prepare_photos(paths: Sequence[Path], hands: Sequence[dict[str, Any] | None], spec: InputSpec,
                   transform) -> tuple[Any, list[tuple[Path, dict[str, Any] | None]], list[dict[str, Any]]]:
    """Photos → one model input batch (as evaluation prepares them), the (path, hand) of each photo in
    it, and a row with the reason for each photo that could not be read."""
    tensors, marks, ok, errors = [], [], [], []
    for p, hand in zip(paths, hands, strict=True):
        try:
            pixels = read_pixels(p, hand, spec)
        except ASLError as e:  # the row names the file: the reason alone
            errors.append({"file": str(p), "error": e.reason if isinstance(e, UnreadableFile) else str(e)})
            continue
        tensors.append(transform(image=pixels)["image"])
        marks.append(torch.from_numpy(landmark_row(hand)))
        ok.append((p, hand))
    return (assemble(torch.stack(tensors), torch.stack(marks), spec) if ok else None), ok, errors


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
