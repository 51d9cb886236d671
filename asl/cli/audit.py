"""``asl-audit data.root=...``: class counts, sizes, unreadable files, duplicates and the split's leak rate."""

from omegaconf import DictConfig

from asl.cli import command
from asl.runs.audit import audit_folder, describe


@command("audit")
def main(cfg: DictConfig) -> None:
    summary = audit_folder(cfg)
    print(f"\n{describe(summary)}\nwritten to {cfg.paths.output_dir} (audit.json, near_duplicates.png, splits.csv)")


if __name__ == "__main__":
    main()
