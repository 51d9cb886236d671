"""``asl-prepare hands data.root=...``: run the hand detector once per photo into the cache, and
print and save the detection rate per class (training then finds every hand in the cache)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asl.cli import CONFIG_PATH, user_errors
from asl.data.folder import discover, resolve_classes
from asl.hands.detect import cache_file, check_settings, detect_files, detection_rates, write_rates

TASKS = {"hands": "detect hands in every photo under data.root and cache them"}


def prepare_hands(cfg: DictConfig) -> None:
    hands = OmegaConf.to_container(cfg.data.hands, resolve=True)
    settings = check_settings({k: v for k, v in hands.items() if k not in ("source", "margin")})
    classes = resolve_classes(cfg.data.classes)
    table = discover(cfg.data.root, classes, cfg.data.unknown_folders)
    results = detect_files(table.paths, settings, cfg.paths.cache_dir)
    rates = detection_rates(results, table.labels, classes)
    counts = {c: table.labels.count(k) for k, c in enumerate(classes)}
    counts["all"] = len(table.labels)
    cache = cache_file(cfg.paths.cache_dir, settings)
    out = Path(cfg.rates_csv) if cfg.rates_csv else cache.with_name(f"{cache.stem}-{Path(cfg.data.root).resolve().name}-rates.csv")
    write_rates(rates, counts, out)
    worst = sorted((r, c) for c, r in rates.items() if c != "all")[:5]
    print(f"\n{cfg.data.root}: hand found in {rates['all']:.1%} of {len(results)} photos "
          f"(padding {settings['padding']}, min_confidence {settings['min_confidence']}, retry {settings['retry']})\n"
          f"  lowest: {', '.join(f'{c} {r:.0%}' for r, c in worst)}\n"
          f"cache: {cache}\nrates per class: {out}")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="prepare")
@user_errors
def _main(cfg: DictConfig) -> None:
    prepare_hands(cfg)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        tasks = "\n".join(f"  {k}: {v}" for k, v in TASKS.items())
        print(f"usage: asl-prepare TASK key=value ...\n{tasks}\ne.g. asl-prepare hands data.root=../shared/data/asl_massey_black",
              file=sys.stderr)
        sys.exit(2)
    sys.argv.pop(1)
    _main()


if __name__ == "__main__":
    main()
