"""``asl-audit data.root=...``: class counts, sizes, unreadable files, duplicates and the split's leak rate."""

import hydra
from omegaconf import DictConfig

from asl.audit import describe
from asl.cli import CONFIG_PATH, user_errors
from asl.training import build_datamodule


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="audit")
@user_errors
def main(cfg: DictConfig) -> None:
    dm = build_datamodule(cfg.data, cfg.seed, audit=True)
    dm.prepare_data()
    dm.setup("fit")
    out = cfg.paths.output_dir
    dm.write_audit(out)
    dm.write_manifest(f"{out}/splits.csv")
    print(f"\n{describe(dm.audit_summary)}\nwritten to {out} (audit.json, near_duplicates.png, splits.csv)")


if __name__ == "__main__":
    main()
