"""A user's mistake in what hardware to use or how a key is spelled: one line naming it and what to do,
before any data is read, never a traceback from Lightning or Hydra."""

import pytest
import torch
from hydra import compose, initialize_config_dir

from asl import ASLError
from asl.runs.schema import check_config

from .conftest import CONFIG_PATH, TINY_TRAIN, run_cli


def train_config(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("gpus,overrides,message", [
    (0, ["trainer=gpu"], "trainer.accelerator=gpu: no GPU is visible on this machine (torch.cuda.device_count() is 0, "
                         "no MPS); use trainer=cpu (or trainer.accelerator=cpu)"),
    (0, ["trainer=ddp"], "trainer.accelerator=gpu: no GPU is visible"),
    (0, ["trainer.accelerator=cuda"], "trainer.accelerator=cuda: no GPU is visible"),
    (1, ["trainer=gpu", "trainer.devices=4"], "trainer.devices=4: this machine has 1 GPU(s) (indices 0–0); "
                                              "use trainer.devices=1 or fewer, a list of those indices, or auto"),
    (2, ["trainer=gpu", "trainer.devices=[1,2]"], "trainer.devices=[1, 2]: this machine has 2 GPU(s)"),
    (2, ["trainer=gpu", "trainer.devices='0,3'"], "trainer.devices=[0, 3]: this machine has 2 GPU(s)"),
    (2, ["trainer=gpu", "trainer.devices=0"], "trainer.devices=0: this machine has 2 GPU(s)"),
    (0, ["trainer.devices=-1"], "trainer.devices=-1: on the CPU, devices is the number of processes"),
    (0, ["trainer.devices=[0,1]"], "trainer.devices=[0, 1]: on the CPU, devices is the number of processes"),
])
def test_devices_this_machine_lacks_are_one_line(monkeypatch, gpus, overrides, message):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ASLError) as e:
        check_config(train_config(*overrides))
    assert message in str(e.value)


@pytest.mark.parametrize("gpus,overrides", [
    (0, []), (0, ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]), (0, ["trainer.accelerator=auto"]),
    (2, ["trainer=gpu", "trainer.devices=2"]), (2, ["trainer=ddp"]), (2, ["trainer=gpu", "trainer.devices=[1]"]),
    (2, ["trainer=gpu", "trainer.devices=-1"]), (2, ["trainer=gpu", "trainer.devices='0,1'"]),
])
def test_devices_this_machine_has_pass(monkeypatch, gpus, overrides):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    check_config(train_config(*overrides))


@pytest.mark.parametrize("args,message", [
    (["asl.cli.train", *TINY_TRAIN, "trainer=gpu"], "error: trainer.accelerator=gpu: no GPU is visible"),
    (["asl.cli.eval", "ckpt_path=missing.ckpt", "accelerator=gpu"], "error: accelerator=gpu: no GPU is visible"),
])
def test_a_gpu_on_a_machine_without_one_is_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, on any machine
    r = run_cli(*args, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "run" / "splits.csv").exists()  # refused before any data was read
