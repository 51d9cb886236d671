"""``asl-train``: train a model; the run folder gets config, checkpoints, TensorBoard, splits and metrics.

In a sweep (``-m``) a job that fails is marked ``FAILED`` in its folder and the others still run;
the sweep then exits non-zero and ``asl-compare`` lists the failed jobs.
"""

import importlib.util
import shlex
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from asl import ASLError, brief
from asl.cli import command
from asl.runs.run_folder import RunFolder, hydra_override
from asl.runs.train import train

failed_jobs: list[str] = []


@command("train")
def _train(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    out = hc.runtime.output_dir
    try:
        metrics = train(cfg)
    except Exception as e:  # noqa: BLE001  (a sweep goes on; a single run fails as usual)
        if hc.mode != RunMode.MULTIRUN:
            raise
        failed_jobs.append(out)
        print(f"error: job {hc.job.num} ({out}) failed: {e if isinstance(e, ASLError) else brief(e)}", file=sys.stderr)
        return None
    if metrics is None:  # a DDP process other than rank 0: rank 0 tests and prints the summary
        return None
    print(
        f"\ntest accuracy {metrics['test/acc']:.4f} (macro-F1 {metrics['test/f1_macro']:.4f}) on "
        f"{metrics['num_test_images']} images, {metrics['epochs']} epochs in {metrics['fit_seconds']:.0f}s\n"
        f"run folder: {out}\n"
        f"  tensorboard --logdir {shlex.quote(out)}    |    {eval_hint(out, bool(cfg.trainer.get('fast_dev_run')))}"
    )
    return metrics["best_val_acc"]  # what a sweeper tunes (hparams_search=...): never the test split


def eval_hint(out: str, fast_dev_run: bool) -> str:
    """The asl-eval command for the checkpoint the run wrote (best, else last), or why there is none:
    a printed command must run when pasted."""
    run = RunFolder(out)
    ckpt = next((p for p in (run.best_checkpoint, run.last_checkpoint) if p.exists()), None)
    if ckpt is not None:
        return f"asl-eval {shlex.quote(hydra_override('ckpt_path', ckpt))}"
    return "no checkpoint written (" + ("trainer.fast_dev_run writes none)" if fast_dev_run else
                                         "callbacks.model_checkpoint and callbacks.last_checkpoint are off)")


def main() -> None:
    if any(a.startswith("hparams_search=") for a in sys.argv[1:]) and not importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper"):
        print("error: hparams_search needs the optuna extra: pip install -e '.[optuna]'", file=sys.stderr)
        sys.exit(2)
    _train()
    if failed_jobs:
        print(f"{len(failed_jobs)} job(s) of the sweep failed (FAILED in their folders): {', '.join(failed_jobs)}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
