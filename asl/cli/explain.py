"""``asl-explain ckpt_path=... [inputs=photo.jpg] [data.root=...]``: Grad-CAM overlays, mistakes, hand share."""

import json
from datetime import datetime
from pathlib import Path

import hydra
import matplotlib.pyplot as plt
import torch
from omegaconf import DictConfig, ListConfig

from asl import ASLError
from asl.cli import CONFIG_PATH, user_errors
from asl.evaluation import datamodule_for, run_dir_of
from asl.explain import (
    background_reliance,
    confident_mistakes,
    explain_images,
    mistakes_figure,
    reads_images,
)
from asl.module import load_classifier
from asl.prediction import collect_inputs


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="explain")
@user_errors
def main(cfg: DictConfig) -> None:
    module = load_classifier(cfg.ckpt_path)
    if not reads_images(module):
        raise ASLError(f"ckpt_path: {cfg.ckpt_path} is a model over hand landmarks; Grad-CAM explains image models only")
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        module = module.cuda()
    run = run_dir_of(cfg.ckpt_path)
    out = cfg.output_dir
    if out is None:
        name = Path(cfg.data.root).expanduser().resolve().name if cfg.data.root else "test"
        base = run or Path(cfg.ckpt_path).expanduser().resolve().parent
        out = base / "explain" / f"{name}_{datetime.now():%Y-%m-%d_%H-%M-%S}"
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
        if cfg.data.root is None and (run is None or not (run / "splits.csv").exists()):
            print("no test data: this checkpoint has no run folder; pass data.root=/path/to/photos for the mistakes grid and hand share")
        else:
            d = cfg.data
            dm = datamodule_for(module, cfg.ckpt_path, d.root, d.batch_size, d.num_workers, d.cache,
                                cfg.paths.cache_dir, d.unknown_folders)
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


if __name__ == "__main__":
    main()
