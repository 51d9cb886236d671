"""``asl-eval ckpt_path=RUN/checkpoints/best.ckpt [data.root=/other/photos]``: metrics + confusion matrix."""

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from asl import ASLError
from asl.cli import command, output_dir
from asl.runs.evaluate import background_shift, describe_worst, evaluate
from asl.runs.schema import check_devices
from asl.runs.self_train import pseudo_label_summary


@command("eval")
def main(cfg: DictConfig) -> None:
    check_devices(cfg.accelerator, 1, prefix="")
    for key in ("adapt_bn", "hand_share", "background_shift"):
        if not isinstance(cfg[key], bool):
            raise ASLError(f"{key} must be true or false, got {cfg[key]!r}")
    loader = {"eval_batch_size": cfg.data.batch_size, "num_workers": cfg.data.num_workers}
    cache_dir = cfg.paths.cache_dir if cfg.data.cache else None
    keep = OmegaConf.to_container(cfg.self_train) if OmegaConf.is_config(cfg.self_train) else cfg.self_train
    prior = cfg.class_prior
    if prior is not None and not OmegaConf.is_dict(prior):
        raise ASLError(f"class_prior: expected null or {{letter: weight}}, e.g. '{{A: 2, B: 1}}', got {prior!r}")
    r = evaluate(cfg.ckpt_path, cfg.data.root, output_dir(cfg), loader, cache_dir, cfg.data.unknown_folders,
                 cfg.accelerator, cfg.hand_share, cfg.adapt_bn, keep, cfg.self_train_labels,
                 None if prior is None else OmegaConf.to_container(prior), cfg.keep_adapted)
    share = r.get("background_reliance")
    photos = r["photos"]
    confused = ", ".join(f"{c['true']}→{c['predicted']} {c['count']}" for c in r["top_confusions"]) or "none"
    hands = ("" if photos["without_hand"] is None else
             f" ({photos['without_hand']} without a detected hand, counted wrong; with a hand: {r['test/acc_with_hand']:.4f})")
    adapted = (" (self-trained on them, labels unused: " + pseudo_label_summary(r["self_train"]) + ")" if "self_train" in r else "") + \
        (" (BatchNorm statistics adapted to them: adapt_bn)" if r["adapt_bn"] else "")
    if "adaptation" in r:
        a = r["adaptation"]
        adapted += ("\n  adaptation kept: " if a["kept"] else "\n  adaptation NOT kept, the model as trained is scored: ") + a["reason"]
    print(
        f"\n{r['data']}: {photos['all']} photos{adapted}\n"
        f"  accuracy over all photos {r['test/acc_all_photos']:.4f}{hands}\n"
        f"  over the {r['num_images']} classified: accuracy {r['test/acc']:.4f}   macro-accuracy {r['test/acc_macro']:.4f}"
        f"   macro-F1 {r['test/f1_macro']:.4f}\n"
        f"  worst letters: {describe_worst(r['worst_letters'])}\n"
        f"  most frequent confusions: {confused}\n"
        + (f"  hand share of Grad-CAM mass {share['hand_share']:.3f} (hands cover {share['hand_area']:.3f} of the image)\n"
           if share and share["hand_share"] is not None else "") +
        f"written to {r['output_dir']} (metrics.json, confusion_matrix.png"
        f"{', self_trained.ckpt' if 'self_train' in r and r['adaptation']['kept'] else ''})"
    )
    if cfg.background_shift:
        s = background_shift(cfg.ckpt_path, cfg.shift_families, loader, cache_dir, cfg.accelerator)
        (Path(r["output_dir"]) / "background_shift.json").write_text(json.dumps(s, indent=2))
        print(f"background shift onto held-out {', '.join(s['background_shift/families'])}: accuracy "
              f"{s['background_shift/acc_original']:.4f} → {s['background_shift/acc_heldout']:.4f} "
              f"(drop {s['background_shift/drop']:.4f}), written to background_shift.json")


if __name__ == "__main__":
    main()
