"""Library code behind ``asl-prepare hands``: the detector run once over a photo folder into its cache,
and the detection rate per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from asl.data.folder import discover, resolve_classes
from asl.hands.detect import cache_file, detect_files, detection_rates, write_rates
from asl.inputs import check_detector


def prepare_hands(cfg: DictConfig) -> dict[str, Any]:
    """Detect (or read from the cache) every photo's hand; write the rates CSV. Returns what was done."""
    hands = OmegaConf.to_container(cfg.data.hands, resolve=True)
    settings = check_detector({k: v for k, v in hands.items() if k not in ("source", "margin", "workers")})
    classes = resolve_classes(cfg.data.classes)
    table = discover(cfg.data.root, classes, cfg.data.unknown_folders)
    results = detect_files(table.paths, settings, cfg.paths.cache_dir, workers=hands.get("workers"))
    rates = detection_rates(results, table.labels, classes)
    counts = {c: table.labels.count(k) for k, c in enumerate(classes)}
    counts["all"] = len(table.labels)
    cache = cache_file(cfg.paths.cache_dir, settings)
    out = Path(cfg.rates_csv) if cfg.rates_csv else cache.with_name(f"{cache.stem}-{Path(cfg.data.root).resolve().name}-rates.csv")
    write_rates(rates, counts, out)
    return {"rates": rates, "photos": len(results), "settings": settings, "cache": cache, "rates_csv": out}
