"""``asl-explain ckpt_path=... [inputs=photo.jpg] [data.root=...]``: Grad-CAM overlays, mistakes, hand share."""

from omegaconf import DictConfig

from asl.cli import command, output_dir
from asl.runs.explain import explain


@command("explain")
def main(cfg: DictConfig) -> None:
    cfg.output_dir = output_dir(cfg)
    explain(cfg)


if __name__ == "__main__":
    main()
