"""Library code behind ``asl-explain``: where is the model looking? Grad-CAM overlays for given photos,
the test split's most confident mistakes, and the share of the Grad-CAM mass inside the hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from omegaconf import DictConfig, ListConfig

from asl import ASLError
from asl.lit.module import load_classifier
from asl.runs.evaluate import datamodule_for
from asl.runs.gradcam import (
    background_reliance,
    confident_mistakes,
    explain_images,
    mistakes_figure,
    reads_images,
)
from asl.runs.predict import collect_inputs
from asl.runs.run_folder import RunFolder


def explain(cfg: DictConfig) -> dict[str, Any]:
    """Everything ``asl-explain`` makes, written to ``output_dir`` (default ``<run>/explain/<data>_<time>``),
    with a line per result printed as it comes; returns explain.json's content."""
    module = load_classifier(cfg.ckpt_path)
    if not reads_images(module):
        raise ASLError(f"ckpt_path: {cfg.ckpt_path} is a model over hand landmarks; Grad-CAM explains image models only")
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        module = module.cuda()
    run = RunFolder.of_checkpoint(cfg.ckpt_path)
    out = cfg.output_dir
    if out is None:
        name = Path(cfg.data.root).expanduser().resolve().name if cfg.data.root else "test"
        out = (run or RunFolder(Path(cfg.ckpt_path).expanduser().resolve().parent)).eval_dir("explain", name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"checkpoint": str(cfg.ckpt_path)}
    if cfg.inputs is not None:
        inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
        rows = explain_images(module, collect_inputs(inputs), out / "overlays")
        report["overlays"] = rows
        for r in rows:
            print(f"{r['file']}: " + (f"ERROR {r['error']}" if "error" in r else f"{r['letter']} {r['prob']:.3f} → {r['overlay']}"))
    if cfg.mistakes_per_class > 0 or cfg.hand_share:
        if cfg.data.root is None and (run is None or not run.splits_file.exists()):
            print("no test data: this checkpoint has no run folder; pass data.root=/path/to/photos for the mistakes grid and hand share")
        else:
            d = cfg.data
            dm = datamodule_for(module, cfg.ckpt_path, d.root, {"eval_batch_size": d.batch_size, "num_workers": d.num_workers},
                                cfg.paths.cache_dir if d.cache else None, d.unknown_folders)
            if cfg.mistakes_per_class > 0:
                mistakes = confident_mistakes(module, dm, cfg.mistakes_per_class, d.batch_size)
                fig = mistakes_figure(module, dm, mistakes)
                fig.savefig(out / "mistakes.png", dpi=110)
                plt.close(fig)
                report["mistakes"] = mistakes
                print(f"{len(mistakes)} confident mistake(s) → {out / 'mistakes.png'}")
            if cfg.hand_share:
                share = background_reliance(module, dm, d.batch_size)
                report["background_reliance"] = share
                if share is None:
                    print("hand share: the data has no hand masks")
                else:
                    print(f"hand share of Grad-CAM mass: {share['hand_share']:.3f} "
                          f"(hands cover {share['hand_area']:.3f} of the image) on {share['images']} images")
    (out / "explain.json").write_text(json.dumps(report, indent=2))
    print(f"written to {out}")
    return report

