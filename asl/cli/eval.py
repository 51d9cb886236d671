"""``asl-eval ckpt_path=RUN/checkpoints/best.ckpt [data.root=/other/photos]``: metrics + confusion matrix."""

import json
from pathlib import Path

from omegaconf import DictConfig

from asl.cli import command
from asl.runs.evaluate import background_shift, evaluate


@command("eval")
def main(cfg: DictConfig) -> None:
    loader = {"eval_batch_size": cfg.data.batch_size, "num_workers": cfg.data.num_workers}
    cache_dir = cfg.paths.cache_dir if cfg.data.cache else None
    r = evaluate(cfg.ckpt_path, cfg.data.root, cfg.output_dir, loader, cache_dir, cfg.data.unknown_folders,
                 cfg.accelerator, cfg.hand_share)
    worst = sorted(((a, c) for c, a in r["per_class_acc"].items() if a is not None))[:5]
    share = r.get("background_reliance")
    print(
        f"\n{r['data']}: {r['num_images']} images\n"
        f"  accuracy {r['test/acc']:.4f}   macro-accuracy {r['test/acc_macro']:.4f}   macro-F1 {r['test/f1_macro']:.4f}\n"
        f"  weakest letters: {', '.join(f'{c} {a:.2f}' for a, c in worst)}\n"
        + (f"  hand share of Grad-CAM mass {share['hand_share']:.3f} (hands cover {share['hand_area']:.3f} of the image)\n"
           if share and share["hand_share"] is not None else "") +
        f"written to {r['output_dir']} (metrics.json, confusion_matrix.png)"
    )
    if cfg.background_shift:
        s = background_shift(cfg.ckpt_path, cfg.shift_families, loader, cache_dir, cfg.accelerator)
        (Path(r["output_dir"]) / "background_shift.json").write_text(json.dumps(s, indent=2))
        print(f"background shift onto held-out {', '.join(s['background_shift/families'])}: accuracy "
              f"{s['background_shift/acc_original']:.4f} → {s['background_shift/acc_heldout']:.4f} "
              f"(drop {s['background_shift/drop']:.4f}), written to background_shift.json")


if __name__ == "__main__":
    main()
