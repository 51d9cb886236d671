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


@pytest.mark.parametrize("config,args,message", [
    ("train", ["trainer.max_epoch=3"], "trainer.max_epoch: no such key; did you mean trainer.max_epochs?"),
    ("train", ["trainer.fast_dev_ru=1"], "trainer.fast_dev_ru: no such key; did you mean +trainer.fast_dev_run? "
                                         "(a Trainer argument the trainer config does not set is added with +)"),
    ("train", ["optimizer.lrr=0.1"], "optimizer.lrr: no such key; did you mean optimizer.lr?"),
    ("train", ["sed=1"], "sed: no such key; did you mean seed?"),
    ("train", ["hydra.run.dirr=x"], "hydra.run.dirr: no such key; did you mean hydra.run.dir?"),
    ("train", ["trainer.max_epochs.x=1"], "trainer.max_epochs.x: no such key (trainer.max_epochs holds a value, not keys)"),
    ("train", ["model=nosuch"], "model=nosuch: no such option (asl/conf/model/ has no nosuch.yaml); model is one of: "
                                "efficientnet_lite0, fusion, landmark_mlp, mobilenet_v2, resnet18,"),
    ("train", ["model=resnet81"], "did you mean model=resnet18? model is one of"),
    ("train", ["data/augment=photometrc"], "data/augment=photometrc: no such option (asl/conf/data/augment/ has no "
                                           "photometrc.yaml); did you mean data/augment=photometric? data/augment is one of:"),
    ("train", ["-m", "seed=0,1", "model=small_cnn,resnt18"], "model=resnt18: no such option"),  # a sweep's second option
    ("train", ["-m", "trainer.max_epoch=1,2"], "trainer.max_epoch: no such key; did you mean trainer.max_epochs?"),
    ("train", ["seed=0,1"], "Ambiguous value for argument 'seed=0,1'; 1. To use it as a list"),  # no -m
    ("eval", ["ckpt_pth=x"], "ckpt_pth: no such key; did you mean ckpt_path?"),
    ("predict", ["input=x"], "input: no such key; did you mean inputs?"),
    ("explain", ["ckpt=x"], "ckpt: no such key; did you mean ckpt_path?"),
    ("train", ["modle=resnet18"], "modle: no such key; did you mean model?"),
    ("train", ["data/augmnt=device"], "data/augmnt: no such config group; did you mean data/augment?"),
])
def test_a_misspelled_key_or_option_names_the_nearest_spelling(capsys, config, args, message):
    from asl.cli import refuse_bad_overrides

    with pytest.raises(SystemExit) as e:
        refuse_bad_overrides(config, args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err


@pytest.mark.parametrize("args", [["-m", "seed=0,1", "model=small_cnn,resnet18"], ["trainer.max_epochs=3", "+trainer.fast_dev_run=1"],
                                  ["experiment=transfer_best"], ["--help"]])
def test_overrides_that_compose_pass(args):
    from asl.cli import refuse_bad_overrides

    refuse_bad_overrides("train", args)


@pytest.mark.parametrize("args,message", [
    (["asl.cli.train", "trainer.max_epoch=3"], "error: trainer.max_epoch: no such key; did you mean trainer.max_epochs?"),
    (["asl.cli.eval", "model=nosuch"], "error: model: no such key; the config has: hydra, ckpt_path,"),
])
def test_every_cli_refuses_a_misspelled_key_in_one_line(tmp_path, args, message):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr, r.stderr[-2000:]


def test_an_added_trainer_key_names_the_nearest_argument():
    with pytest.raises(ASLError, match=r"trainer: unknown option\(s\) \['max_epoch'\]; did you mean trainer.max_epochs\?"):
        check_config(train_config("+trainer.max_epoch=3"))
    with pytest.raises(ASLError, match=r"did you mean \+trainer.fast_dev_run\?"):
        check_config(train_config("+trainer.fast_dev_ru=1"))
