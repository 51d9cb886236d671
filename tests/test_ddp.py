"""Past one machine: 2-process DDP on CPU (gloo) with synced metrics; the SLURM launcher config composes."""

import json

import pytest
from hydra import compose, initialize_config_dir

from .conftest import CONFIG_PATH, run_cli


@pytest.mark.slow
def test_two_process_ddp_on_cpu_syncs_test_metrics(tmp_path):
    run = tmp_path / "run"
    r = run_cli("asl.cli.train", "data.synthetic.per_class=4", "data.synthetic.image_size=32", "model.input_size=32",
                "data.batch_size=8", "trainer.max_epochs=1", "trainer=ddp", "trainer.accelerator=cpu",
                "trainer.devices=2", "trainer.precision=32-true", "data.num_workers=0", "data.pin_memory=false",
                "trainer.benchmark=false", "logger=none", f"hydra.run.dir={run}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "train_ddp_process_1.log").exists()  # a second process ran, into the same folder
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_images"] == 24  # 12 per process, gathered: the metrics are synced
    assert sum(metrics["split_sizes"].values()) == 96


def test_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.timeout_min == 240 and launcher.gpus_per_node == 1
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.precision == "bf16-mixed"
