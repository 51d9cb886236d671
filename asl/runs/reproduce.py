"""Re-running a run folder: the overrides that made it, as an ``asl-train`` command (or a resume)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from asl import ASLError

# Hydra overrides that name where a run went or how it was launched, not what it computed.
_WHERE = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra/launcher", "hydra.launcher",
          "hydra.mode", "hydra.job.num", "hydra.job.id", "hydra.output_subdir", "ckpt_path")


def run_overrides(run_dir: str | os.PathLike) -> list[str]:
    """The command-line overrides (task and hydra.*) that made a run, from its ``.hydra/hydra.yaml``.

    A multirun job's file holds that job's own overrides (e.g. ``seed=1``), so one job re-runs alone.
    """
    run = Path(run_dir)
    hydra_file = run / ".hydra" / "hydra.yaml"
    if not hydra_file.exists():
        raise ASLError(f"{run}: not a run folder (no .hydra/hydra.yaml). Give the folder asl-train printed as 'run folder'.")
    h = yaml.safe_load(hydra_file.read_text())["hydra"]
    overrides = [*h["overrides"].get("hydra", []), *h["overrides"].get("task", [])]
    return [o for o in overrides if not o.lstrip("+~").split("=")[0].startswith(_WHERE)]


def reproduce_command(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      resume: bool = False) -> list[str]:
    """asl-train arguments that re-run a run into ``out_dir`` (or resume it in its own folder)."""
    run = Path(run_dir).resolve()
    args = run_overrides(run)
    if resume:
        if not (run / "checkpoints" / "last.ckpt").exists():
            raise ASLError(f"{run}: no checkpoints/last.ckpt to resume from (the run stopped before its first epoch ended); re-run it instead.")
        return [*args, f"hydra.run.dir={run}", "ckpt_path=last"]
    out = Path(out_dir) if out_dir else run.parent / f"{run.name}_reproduced"
    return [*args, f"hydra.run.dir={out.resolve()}"]
