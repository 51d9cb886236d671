"""``asl-reproduce RUN_DIR [--out NEW_DIR] [--resume]``: re-run a finished run, or resume an interrupted one.

The run is rebuilt from its saved overrides (``.hydra/hydra.yaml``: task and hydra.* overrides)
in the directory it was started from, so relative paths such as ``data.root`` still resolve.
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from asl.cli import user_errors
from asl.runs.reproduce import reproduce_command


@user_errors
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="asl-reproduce", description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", help="a run folder written by asl-train")
    ap.add_argument("--out", help="where the re-run goes (default: <RUN_DIR>_reproduced)")
    ap.add_argument("--resume", action="store_true", help="continue the run in its own folder from checkpoints/last.ckpt")
    ap.add_argument("extra", nargs="*", help="further overrides, e.g. trainer=gpu")
    a = ap.parse_args(argv)
    args = reproduce_command(a.run_dir, a.out, a.resume) + a.extra
    env_file = Path(a.run_dir) / "environment.json"
    cwd = json.loads(env_file.read_text()).get("cwd") if env_file.exists() else None
    cwd = cwd if cwd and Path(cwd).is_dir() else os.getcwd()
    cmd = [sys.executable, "-m", "asl.cli.train", *args]
    print(f"cd {shlex.quote(cwd)} && asl-train {shlex.join(args)}", flush=True)
    os.chdir(cwd)
    os.execv(sys.executable, cmd)  # becomes asl-train: same output, same exit code
    return 0


if __name__ == "__main__":
    main()
