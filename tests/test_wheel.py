"""asl installs as a wheel: configs ship inside the package, so the CLIs work outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import REPO


def run(*cmd, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_trains_and_evaluates(tmp_path):
    # Build from a copy of the sources (the build writes build/ and egg-info beside them).
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", src, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("asl-*.whl"))

    # A fresh venv; its dependencies come from this interpreter's site-packages (no download), asl from the wheel only.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip())
    (site / "asl_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path)
    where = run(py, "-c", "import asl, asl.cli; print(asl.__file__); print(asl.cli.CONFIG_PATH)", cwd=tmp_path).stdout.split()
    assert Path(where[0]).is_relative_to(site) and (Path(where[1]) / "train.yaml").exists()

    work = tmp_path / "work"  # outside the checkout
    work.mkdir()
    env_bin = venv / "bin"
    run(env_bin / "asl-train", "data.synthetic.per_class=3", "model.input_size=32", "data.batch_size=16",
        "trainer.max_epochs=1", "data.num_workers=0", "logger=none", "hydra.run.dir=run", f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=work)
    out = run(env_bin / "asl-eval", "ckpt_path=run/checkpoints/best.ckpt", "data.num_workers=0", "hand_share=false",
              f"paths.cache_dir={tmp_path / 'cache'}", cwd=work)
    assert "accuracy" in out.stdout
