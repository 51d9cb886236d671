"""``asl-explain ckpt_path=... [inputs=photo.jpg] [data.root=...]``: Grad-CAM overlays, mistakes, hand share."""

from omegaconf import DictConfig

from asl.cli import command
from asl.runs.explain import explain


@command("explain")
def main(cfg: DictConfig) -> None:
    explain(cfg)


if __name__ == "__main__":
    main()
