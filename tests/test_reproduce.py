"""Reproducible and resumable runs: same config twice → same metrics; SIGKILL + resume → same metrics."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from asl import ASLError
from asl.lit.resume import AtomicCheckpointIO
from asl.runs.reproduce import reproduce_command, run_overrides
from asl.runs.train import train

from .conftest import CONFIG_PATH, TINY_TRAIN, run_cli

RUN = [*TINY_TRAIN, "trainer.max_epochs=5", "trainer.deterministic=true", "data.synthetic.per_class=6",
       "logger=none", "callbacks.progress_bar=null", "trainer.enable_model_summary=false", "data.classes=ABCDEF",
       "data.num_workers=2"]  # the default loader: its workers draw indices and seeds as soon as an epoch starts


def train_in_process(overrides, out):
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={out}"])
    return train(cfg)


def comparable(metrics):
    return {k: v for k, v in metrics.items() if k not in ("fit_seconds", "best_checkpoint", "weights")}


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    metrics = train_in_process(RUN, out)
    metrics["weights"] = weights(out)
    return metrics


def test_same_config_twice_gives_identical_metrics(uninterrupted, tmp_path):
    again = train_in_process(RUN, tmp_path / "again")
    assert comparable(again) == comparable(uninterrupted)
    assert again["epochs"] == 5


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "asl.cli.train", *RUN, f"hydra.run.dir={run}"], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert last.exists(), p.stderr.read().decode()[-2000:]
    assert not (run / "metrics.json").exists(), "the run finished before it was killed"
    assert torch.load(last, weights_only=True)["epoch"] < 4
    args = reproduce_command(run, resume=True)
    assert args[-2:] == [f"hydra.run.dir={run.resolve()}", "ckpt_path=last"]
    assert set(run_overrides(run)) == set(RUN)
    resumed = train_in_process(args[:-2] + ["ckpt_path=last"], run)
    assert comparable(resumed) == comparable(uninterrupted)
    final = weights(run)  # bit-identical, not only the rounded metrics
    assert all(torch.equal(final[k], uninterrupted["weights"][k]) for k in final)
    assert reproduce_command(run, tmp_path / "copy")[-1] == f"hydra.run.dir={(tmp_path / 'copy').resolve()}"


class CrashAtEpoch(pl.Callback):
    """Fails at the start of one epoch, as a crash would (configured with ``+callbacks.crash=...``)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"crash at epoch {self.epoch}")


@pytest.mark.slow
def test_crash_in_a_later_curriculum_stage_with_workers_then_resume_equals_uninterrupted(tmp_path):
    """Stage 2 (all letters) starts at epoch 1; the crash comes in epoch 2, so the resumed run must
    build its first loader with stage 2's classes; two loader workers each draw their own augmentation."""
    run_cfg = [*RUN, "trainer.max_epochs=3", "curriculum=five_then_all", "budget.unit=images", "data.num_workers=2",
               "~data.classes"]
    full = train_in_process(run_cfg, tmp_path / "full")
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="crash at epoch 2"):
        train_in_process([*run_cfg, "+callbacks.crash._target_=tests.test_reproduce.CrashAtEpoch", "+callbacks.crash.epoch=2"], run)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert "crash at epoch 2" in (run / "FAILED").read_text()
    resumed = train_in_process([*run_cfg, "ckpt_path=last"], run)
    assert comparable(resumed) == comparable(full) and not (run / "FAILED").exists()
    assert resumed["images_seen"] == full["images_seen"] and resumed["budget"]["epochs"] == 3


def test_checkpoint_writes_are_atomic(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)
    with pytest.raises(Exception):  # noqa: B017 - any failure while writing
        io.save_checkpoint({"epoch": 2, "bad": lambda: 0}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_reproduce_needs_a_run_folder(tmp_path):
    with pytest.raises(ASLError, match="not a run folder"):
        run_overrides(tmp_path)


def fake_run(tmp_path, task: list[str], hydra: list[str] = ()) -> Path:
    run = tmp_path / "someone_elses_run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task, "hydra": list(hydra)}}}))
    return run


def test_reproducing_a_foreign_run_folder_runs_no_code_it_names(tmp_path):
    """A run folder whose record names a function (one that would leave a mark) is refused before anything runs."""
    mark = tmp_path / "mark"
    cases = [([f"data.train_transforms=[{{_target_:os.makedirs,name:{mark}}}]", "data.synthetic.per_class=2"], []),
             (["+callbacks.evil._target_=os.makedirs", f"+callbacks.evil.name={mark}"], []),
             ([], ["+hydra.callbacks.evil._target_=os.makedirs", f"+hydra.callbacks.evil.name={mark}"])]
    for i, (task, hydra) in enumerate(cases):
        run = fake_run(tmp_path / str(i), task, hydra)
        r = run_cli("asl.cli.reproduce", str(run), cwd=tmp_path)
        assert r.returncode == 2 and ("not allowed" in r.stderr or "would name code" in r.stderr), r.stderr
        assert "Traceback" not in r.stderr and not mark.exists()


def test_each_reproduction_gets_a_new_folder(tmp_path):
    run = fake_run(tmp_path, ["seed=3"])
    first = reproduce_command(run)[-1].split("=", 1)[1]
    Path(first).mkdir()
    second = reproduce_command(run)[-1].split("=", 1)[1]
    assert first.endswith("_reproduced") and second.endswith("_reproduced_2")


def test_reproducing_a_job_folder_named_the_old_way_gives_a_command_hydra_reads(tmp_path):
    """Sweeps once named job folders 3_data=folder,seed=1: the re-run's folder is quoted for Hydra and the shell."""
    run = fake_run(tmp_path, ["seed=1", "data.split.group_by='(hand\\d+)_'"]).rename(tmp_path / "3_data=folder,seed=1")
    args = reproduce_command(run)
    parsed = OverridesParser.create().parse_overrides(shlex.split(shlex.join(args)))
    assert parsed[-1].value() == str(run.resolve()) + "_reproduced"
    assert parsed[1].value() == "(hand\\d+)_"
