"""Past one machine: 2-process DDP on CPU (gloo) with synced metrics; the SLURM launcher config composes."""

import csv
import json
from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

from .conftest import CONFIG_PATH, run_cli


@pytest.mark.slow
def test_two_process_ddp_on_cpu_tests_each_photo_once(tmp_path):
    """5 test photos over 2 processes: a DistributedSampler would pad them to 6 (one photo twice); the test
    runs on one process after fit, so every count and score holds each photo once, and one summary prints."""
    run = tmp_path / "run"
    r = run_cli("asl.cli.train", "data.classes=ABCDE", "data.synthetic.per_class=4", "data.synthetic.image_size=32",
                "model.input_size=32", "data.batch_size=4", "trainer.max_epochs=1", "trainer=ddp", "trainer.accelerator=cpu",
                "trainer.devices=2", "trainer.precision=32-true", "data.num_workers=0", "data.pin_memory=false",
                "trainer.benchmark=false", f"hydra.run.dir={run}", cwd=tmp_path)  # TensorBoard too: rank 0 logs the test
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "train_ddp_process_1.log").exists()  # a second process ran, into the same folder
    with open(run / "splits.csv") as f:
        test = Counter(row["label"] for row in csv.DictReader(f) if row["split"] == "test")
    assert sum(test.values()) == 5  # uneven over 2 processes
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_images"] == 5 and metrics["photos"]["all"] == 5
    right = sum(metrics["per_class_acc"][c] * n for c, n in test.items())  # correct photos, by letter
    assert metrics["test/acc"] == pytest.approx(right / 5) == pytest.approx(metrics["test/acc_all_photos"])
    assert r.stdout.count("test accuracy ") == 1  # the summary: rank 0 only
    assert "DistributedSampler" not in r.stderr  # Lightning's warning that the test repeats photos


def test_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.timeout_min == 240 and launcher.gpus_per_node == 1
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.precision == "bf16-mixed"
