"""``asl-export ckpt_path=... format=onnx|torchscript``: a self-contained model file for deployment."""

import shlex
from pathlib import Path

import torch
from omegaconf import DictConfig

from asl import ASLError
from asl.cli import command
from asl.lit.module import load_classifier
from asl.runs.export import FORMATS, export_model, load_exported
from asl.runs.run_folder import hydra_override


@command("export")
def main(cfg: DictConfig) -> None:
    if cfg.format not in FORMATS:
        raise ASLError(f"format: {cfg.format!r} is not one of {sorted(FORMATS)}")
    module = load_classifier(cfg.ckpt_path)
    output = Path(cfg.output) if cfg.output else Path(cfg.ckpt_path).expanduser().with_suffix(FORMATS[cfg.format])
    path = export_model(module, output, cfg.format, cfg.opset)
    print(f"wrote {path} ({cfg.format}, {path.stat().st_size / 1e6:.1f} MB; classes and preprocessing in its metadata)")
    if cfg.check:
        run, _ = load_exported(path)
        size = module.spec.image_size
        x = torch.randn(3, 3, size, size)
        with torch.no_grad():
            diff = (run(x) - module(x)).abs().max().item()
        print(f"check: largest logit difference to the checkpoint on random inputs {diff:.2e}")
    print(f"  asl-predict {shlex.quote(hydra_override('ckpt_path', path))} inputs=photo.jpg")


if __name__ == "__main__":
    main()
