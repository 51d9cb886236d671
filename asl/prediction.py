"""Library code behind ``asl-predict``: top-k letters with probabilities for new photos."""

from __future__ import annotations

import csv
import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asl import ASLError
from asl.data.folder import IMAGE_EXTENSIONS, MASK_SUFFIX, load_image
from asl.data.transforms import build_pipeline
from asl.module import ASLClassifier


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
def predict_files(module: ASLClassifier, paths: Sequence[Path], top_k: int = 3, batch_size: int = 64) -> list[dict[str, Any]]:
    """One row per file: its top-k (letter, probability), or the reason it could not be read."""
    hp = module.hparams
    transform = build_pipeline([], hp.image_size, hp.mean, hp.std)
    device = next(module.parameters()).device
    rows: list[dict[str, Any]] = []
    k = min(top_k, len(module.class_names))
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        tensors, ok = [], []
        for p in chunk:
            try:
                tensors.append(transform(image=load_image(p, hp.image_size))["image"])
                ok.append(p)
            except ASLError as e:
                rows.append({"file": str(p), "error": str(e)})
        if not tensors:
            continue
        probs = module(torch.stack(tensors).to(device)).softmax(-1).float().cpu().numpy()
        for p, pr in zip(ok, probs, strict=True):
            top = np.argsort(-pr)[:k]
            rows.append({"file": str(p), "top": [(module.class_names[i], float(pr[i])) for i in top]})
    order = {str(p): i for i, p in enumerate(paths)}
    return sorted(rows, key=lambda r: order[r["file"]])


def write_csv(rows: list[dict[str, Any]], path: str | Path, top_k: int) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file"] + [f"{x}{i}" for i in range(1, top_k + 1) for x in ("letter", "prob")] + ["error"])
        for r in rows:
            cells = [c for letter, prob in r.get("top", []) for c in (letter, f"{prob:.4f}")]
            cells += [""] * (2 * top_k - len(cells))
            w.writerow([r["file"], *cells, r.get("error", "")])
