"""Re-running a run folder: the overrides that made it, as an ``asl-train`` command (or a resume)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from asl import ASLError
from asl.runs.run_folder import RunFolder, hydra_override

# Hydra overrides that name where a run went or how it was launched, not what it computed.
_WHERE = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra/launcher", "hydra.launcher",
          "hydra.mode", "hydra.job.num", "hydra.job.id", "hydra.output_subdir", "ckpt_path")


# Hydra settings that load code of their own (callbacks, launchers, sweepers, plugins' targets).
_HYDRA_CODE = ("hydra.callbacks", "hydra/callbacks", "hydra.sweeper._target_", "hydra.launcher._target_", "hydra.searchpath")


def run_overrides(run_dir: str | os.PathLike) -> list[str]:
    """The command-line overrides (task and hydra.*) that made a run, from its ``.hydra/hydra.yaml``.

    A multirun job's file holds that job's own overrides (e.g. ``seed=1``), so one job re-runs alone.
    """
    run = RunFolder(run_dir)
    if not run.hydra_file.exists():
        raise ASLError(f"{run.path}: not a run folder (no .hydra/hydra.yaml). Give the folder asl-train printed as 'run folder'.")
    try:
        h = yaml.safe_load(run.hydra_file.read_text())["hydra"]
        overrides = [str(o) for o in (*h["overrides"].get("hydra", []), *h["overrides"].get("task", []))]
    except (yaml.YAMLError, KeyError, TypeError, AttributeError):
        raise ASLError(f"{run.hydra_file}: not a Hydra run record (no hydra.overrides); was it written by asl-train?") from None
    for o in overrides:
        key = o.lstrip("+~").split("=")[0]
        if key.startswith(_HYDRA_CODE) or "_target_" in o.split("=")[0]:
            raise ASLError(f"{run.hydra_file}: override {o!r} would name code to run ({key}); asl-reproduce re-runs only "
                           f"config values. Remove it from the file if you trust it, and run asl-train yourself.")
    return [o for o in overrides if not o.lstrip("+~").split("=")[0].startswith(_WHERE)]


def reproduce_command(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      resume: bool = False) -> list[str]:
    """asl-train arguments that re-run a run into ``out_dir`` (or resume it in its own folder)."""
    run = Path(run_dir).resolve()
    args = run_overrides(run)
    if resume:
        if not RunFolder(run).last_checkpoint.exists():
            raise ASLError(f"{run}: no checkpoints/last.ckpt to resume from (the run stopped before its first epoch ended); re-run it instead.")
        return [*args, hydra_override("hydra.run.dir", run), "ckpt_path=last"]
    out = Path(out_dir) if out_dir else _free(run.parent / f"{run.name}_reproduced")
    return [*args, hydra_override("hydra.run.dir", out.resolve())]


def _free(path: Path) -> Path:
    """``path``, or ``path_2``, ``path_3``, ...: a re-run never overwrites (or mixes TensorBoard runs with) an earlier one."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}_{n}")
    return candidate
