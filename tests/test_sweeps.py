"""A sweep as a user runs it: job folders named by what varies, printed commands that run when pasted,
TensorBoard started from the venv reading the runs back, and an Optuna search tuning the validation score."""

from __future__ import annotations

import importlib.util
import json
import shlex
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from asl.runs.run_folder import hydra_override, job_dirname

from .conftest import TINY_TRAIN, run_cli


def test_a_job_folder_names_what_varies_across_its_sweep(tmp_path):
    OmegaConf.save({"hydra": {"overrides": {"task": ["seed=0,1", "data/augment=device,none", "trainer.max_epochs=2",
                                                     "data.root=/photos"]}}}, tmp_path / "multirun.yaml")
    job = ["seed=1", "data/augment=device", "trainer.max_epochs=2", "data.root=/photos"]
    assert job_dirname(3, job, ["data.root"], str(tmp_path)) == "3_seed-1+data.augment-device"
    # a sweeper that writes no multirun.yaml (Optuna): the keys it searches, floats to 4 digits
    trial = ["optimizer.lr=0.0012520653814999472", "data.split.fractions=[0.7,0.15,0.15]", "model=resnet18"]
    assert (job_dirname(0, trial, [], str(tmp_path / "none"), searched=["optimizer.lr", "data.split.fractions"])
            == "0_optimizer.lr-0.001252+data.split.fractions-0.7_0.15_0.15")
    assert job_dirname(0, trial[2:], [], str(tmp_path / "none")) == "0_model-resnet18"  # nothing known: every override


@pytest.mark.parametrize("path", ["/runs/3_data=folder,model.input_size=32,seed=1/checkpoints/best.ckpt",
                                  "/my runs/it's/best.ckpt", "/runs/[a]/best.ckpt", "outputs/2026-12-03/10-00-00/best.ckpt"])
def test_a_printed_override_reads_back_as_the_path_through_the_shell_and_hydra(path):
    word, = shlex.split(shlex.quote(hydra_override("ckpt_path", path)))
    assert OverridesParser.create().parse_override(word).value() == path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """asl-train -m seed=0,1 on tiny synthetic data (TensorBoard logger), as a user starts it."""
    work = tmp_path_factory.mktemp("sweep")
    mr = work / "mr"
    r = run_cli("asl.cli.train", "-m", "seed=0,1", *TINY_TRAIN, f"hydra.sweep.dir={mr}", cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    return work, mr, r


@pytest.mark.slow
def test_sweep_job_folders_name_only_the_swept_key_and_their_printed_command_runs_when_pasted(sweep, tmp_path):
    work, mr, r = sweep
    assert sorted(p.name for p in mr.iterdir() if p.is_dir()) == ["0_seed-0", "1_seed-1"]  # TINY_TRAIN's constants left out
    line = next(x for x in r.stdout.splitlines() if "asl-eval" in x and "1_seed-1" in x).split("|")[-1]
    tool, *args = shlex.split(line)
    assert tool == "asl-eval"
    e = run_cli("asl.cli.eval", *args, f"output_dir={tmp_path / 'eval'}", cwd=work)
    assert e.returncode == 0, e.stderr[-2000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["test/acc"] == pytest.approx(
        json.loads((mr / "1_seed-1" / "metrics.json").read_text())["test/acc"])


class TensorBoard:
    """TensorBoard from this venv (the ``tensorboard`` beside ``sys.executable``) on 127.0.0.1, a free port."""

    def __init__(self, logdir: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir),
                                      "--host", "127.0.0.1", "--port", str(port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def get(self, path: str, body: dict | None = None, **query: str) -> bytes:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.read()

    def json(self, path: str, body: dict | None = None, **query: str):
        return json.loads(self.get(path, body, **query))

    def session_groups(self) -> list[dict]:
        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        body = {"experimentName": "", "allowedStatuses": statuses, "colParams": [], "startIndex": 0, "sliceSize": 100}
        return self.json("/data/plugin/hparams/session_groups", body).get("sessionGroups", [])

    def wait_for_sessions(self, n: int, timeout: float = 90) -> list[dict]:
        end = time.time() + timeout
        while time.time() < end:
            assert self.proc.poll() is None, self.proc.communicate()[0][-2000:]  # it started (no pkg_resources error)
            try:
                groups = self.session_groups()
                if len(groups) >= n:
                    return groups
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise AssertionError(f"TensorBoard showed no {n} runs in {timeout}s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


@pytest.mark.slow
def test_tensorboard_from_the_venv_serves_the_sweeps_scalars_hparams_and_images(sweep):
    work, mr, _ = sweep
    tb = TensorBoard(mr)
    try:
        groups = tb.wait_for_sessions(2)
        runs = {"0_seed-0/tb", "1_seed-1/tb"}
        assert {g["name"] for g in groups} == runs
        for g in groups:  # the final metrics beside the hyper-parameters: test, best validation, leak rates
            metrics = json.loads((mr / g["name"].split("/")[0] / "metrics.json").read_text())
            values = {v["name"]["tag"]: v["value"] for v in g["sessions"][0]["metricValues"]}
            assert values["val/acc_best"] == pytest.approx(metrics["best_val_acc"])
            assert values["test/acc"] == pytest.approx(metrics["test/acc"])
            assert values["audit/leak_rate_test"] == pytest.approx(metrics["leak_rate"]["test"])
            assert g["hparams"]["model.name"] == "small_cnn"
        # the keys that differ between the runs come first, the constant ones after them
        infos = tb.json("/data/plugin/hparams/experiment", {"experimentName": ""})["hparamInfos"]
        differs = [bool(i.get("differs")) for i in infos]
        assert "seed" in [i["name"] for i in infos if i.get("differs")] and differs == sorted(differs, reverse=True)
        assert "model.name" in [i["name"] for i in infos if not i.get("differs")]

        tags = tb.json("/data/plugin/scalars/tags")
        assert set(tags) >= runs and "val/acc" in tags["0_seed-0/tb"]
        curve = tb.json("/data/plugin/scalars/scalars", run="0_seed-0/tb", tag="val/acc")
        assert len(curve) == 2  # two epochs, validated each
        images = tb.json("/data/plugin/images/tags")["1_seed-1/tb"]
        assert {"train/augmented", "test/confusion_matrix"} <= set(images)
        shown = tb.json("/data/plugin/images/images", run="1_seed-1/tb", tag="test/confusion_matrix")
        assert tb.get("/data/plugin/images/individualImage?" + shown[0]["query"]).startswith(b"\x89PNG")
    finally:
        tb.stop()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="the optuna extra is not installed")
def test_an_optuna_search_tunes_the_best_validation_accuracy(tmp_path):
    mr = tmp_path / "search"
    r = run_cli("asl.cli.train", "hparams_search=optimizer", "hydra.sweeper.n_trials=2", *TINY_TRAIN, "trainer.max_epochs=1",
                "logger=none", "callbacks.lr_monitor=null", "data.audit=false", f"hydra.sweep.dir={mr}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(p for p in mr.iterdir() if p.is_dir())
    assert len(jobs) == 2 and all(j.name.split("_", 1)[1].startswith("optimizer.lr-") for j in jobs)
    best = OmegaConf.load(mr / "optimization_results.yaml")
    scores = [json.loads((j / "metrics.json").read_text()) for j in jobs]
    assert best.best_value == pytest.approx(max(s["best_val_acc"] for s in scores))  # validation, never test
    assert "setup plugin" not in r.stdout + r.stderr  # no library noise from Optuna's imports


def test_a_search_without_the_optuna_extra_is_one_line_naming_it(monkeypatch, capsys):
    from asl.cli import train

    monkeypatch.setattr(sys, "argv", ["asl-train", "hparams_search=optimizer"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as stop:
        train.main()
    assert stop.value.code == 2 and "pip install -e '.[optuna]'" in capsys.readouterr().err
