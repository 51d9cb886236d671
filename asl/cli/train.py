"""``asl-train``: train a model; the run folder gets config, checkpoints, TensorBoard, splits and metrics."""

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from asl.cli import command
from asl.runs.train import train


@command("train")
def main(cfg: DictConfig) -> float:
    metrics = train(cfg)
    out = HydraConfig.get().runtime.output_dir
    print(
        f"\ntest accuracy {metrics['test/acc']:.4f} (macro-F1 {metrics['test/f1_macro']:.4f}) on "
        f"{metrics['num_test_images']} images, {metrics['epochs']} epochs in {metrics['fit_seconds']:.0f}s\n"
        f"run folder: {out}\n"
        f"  tensorboard --logdir {out}    |    asl-eval ckpt_path={out}/checkpoints/best.ckpt"
    )
    return metrics["test/acc"]


if __name__ == "__main__":
    main()
