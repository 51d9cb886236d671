"""The configs as a set: every model × data (and every experiment preset) composes, builds its data
and model without training, and agrees on the input contract; every key is documented; configs
cannot run code they should not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from asl import ASLError
from asl.inputs import DETECTOR_DEFAULTS, InputSpec
from asl.runs.train import build_datamodule, build_module

from .conftest import CONFIG_PATH, REPO

CONF = Path(CONFIG_PATH)
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if not p.stem.startswith("_"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
NO_WEIGHTS = ["model.pretrained=null", "model.weights_path=null"]  # no weights files are needed to build


def composed(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        return compose("train", overrides=[*overrides, "paths.output_dir=/tmp/unused", "data.root=/no/photos/needed"])


def check_contract(cfg) -> None:
    """Data, model and the hyper-parameters saved in a checkpoint read the same input contract."""
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert dm.spec.image_size == model["input_size"]
    assert dm.spec.inputs == model.get("inputs", "image")
    assert module.spec == dm.spec and InputSpec.from_dict(module.hparams["spec"]) == dm.spec
    assert torch.allclose(module.pixel_mean.flatten() / 255, torch.tensor(dm.spec.mean))
    if cfg.data.get("synthetic"):
        assert cfg.data.synthetic.image_size == dm.spec.image_size  # the set is rendered at the model's size
    if dm.spec.inputs == "image":
        with torch.no_grad():
            out = module.eval()(torch.zeros(1, 3, dm.spec.image_size, dm.spec.image_size, dtype=torch.uint8))
        assert out.shape == (1, len(dm.classes))


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_with_every_data_builds_and_agrees(model, data):
    size = [] if model in ("small_cnn", "landmark_mlp", "fusion") else ["model.input_size=64"]  # 224 px: slow to probe
    check_contract(composed(f"model={model}", f"data={data}", *size, *NO_WEIGHTS))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_preset_builds_and_agrees(experiment):
    check_contract(composed(f"experiment={experiment}", *NO_WEIGHTS))


def test_one_key_sets_the_input_size():
    """``model.input_size`` reaches the data, the rendered synthetic set and the network (was: data pinned 48 px)."""
    cfg = composed("model=resnet18", "model.input_size=64")
    dm = build_datamodule(cfg)
    assert dm.spec.image_size == 64 and cfg.data.synthetic.image_size == 64


def test_detector_defaults_live_in_the_input_spec_and_the_yaml_mirrors_them():
    yaml_hands = yaml.safe_load((CONF / "data" / "hands" / "default.yaml").read_text())
    spec = InputSpec()
    assert yaml_hands.pop("margin") == spec.margin and yaml_hands.pop("source") == spec.hand_source
    assert yaml_hands.pop("workers") is None  # a resource, not part of the input contract
    assert yaml_hands == DETECTOR_DEFAULTS == spec.detector


def test_trainer_group_holds_only_trainer_arguments():
    import inspect

    import pytorch_lightning as pl

    allowed = set(inspect.signature(pl.Trainer.__init__).parameters)
    for option in (CONF / "trainer").glob("*.yaml"):
        cfg = composed(f"trainer={option.stem}")
        assert set(cfg.trainer) <= allowed, option.name


def _enclosing(lines: list[str], i: int) -> list[str]:
    """The lines that open the nodes around line ``i`` (nearest first), and line ``i``'s siblings."""
    ind = len(lines[i]) - len(lines[i].lstrip())
    parents, level = [], ind
    for prev in reversed(lines[:i]):
        pind = len(prev) - len(prev.lstrip())
        if prev.strip() and not prev.strip().startswith("#") and pind < level:
            parents.append(prev.strip())
            level = pind
    return parents


def _siblings(lines: list[str], i: int) -> list[str]:
    ind = len(lines[i]) - len(lines[i].lstrip())
    out = []
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(lines):
            pind = len(lines[j]) - len(lines[j].lstrip())
            if lines[j].strip() and pind < ind:
                break
            if pind == ind:
                out.append(lines[j].strip().lstrip("- "))
            j += step
    return out


def test_every_key_is_commented():
    """Configs are the user interface: every asl key carries a comment (inline or on the line above).
    Exempt: the arguments of a library object (a node with ``_target_``: documented by that library),
    Hydra's own settings (``hydra:`` nodes, the hydra/ group) and defaults lists."""
    missing = []
    for f in CONF.rglob("*.yaml"):
        if f.relative_to(CONF).parts[0] == "hydra":
            continue
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            s = line.strip()
            if not s or s.startswith(("#", "-")) or ":" not in s or "#" in s or (i and lines[i - 1].strip().startswith("#")):
                continue
            parents = _enclosing(lines, i)
            library = s.startswith("_target_") or any(x.startswith("_target_:") for x in _siblings(lines, i)) or any(
                p.lstrip("- ").startswith("_target_") or p.startswith("- ") for p in parents)
            if library or any(p.startswith(("hydra:", "defaults:")) for p in parents):
                continue
            missing.append(f"{f.relative_to(CONF)}:{i + 1}: {s}")
    assert not missing, "keys without a comment:\n" + "\n".join(missing)


def test_configuration_page_is_current():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from configuration_doc import PAGE, render
    finally:
        sys.path.pop(0)
    assert PAGE.read_text() == render(), "docs/configuration.md is stale: run python tools/configuration_doc.py"


def test_a_moved_key_names_its_new_spelling(tmp_path):
    for old, new in (("trainer.num_workers=0", "data.num_workers"), ("optimizer.name=sgd", "optimizer=<adamw|adam|sgd>"),
                     ("data.image_size=32", "model.input_size")):
        r = subprocess.run([sys.executable, "-m", "asl.cli.train", old], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and new in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_optimizer_and_scheduler_groups_build_what_they_name():
    for opt, kind in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
        for sched in ("cosine", "step", "none"):
            cfg = composed(f"optimizer={opt}", f"scheduler={sched}", "model.input_size=32")
            module = build_module(cfg, build_datamodule(cfg))
            module.planned_steps = 10
            module.trainer = type("T", (), {"max_epochs": 2, "estimated_stepping_batches": 10})()
            got = module.configure_optimizers()
            optimizer = got["optimizer"] if isinstance(got, dict) else got
            assert isinstance(optimizer, kind) and (sched == "none") == (not isinstance(got, dict))
            assert optimizer.param_groups[0]["lr"] == cfg.optimizer.lr


def test_a_target_outside_its_group_is_refused_before_it_is_called(tmp_path):
    """A run folder's config naming any other function (here one that would leave a mark) never runs it."""
    mark = tmp_path / "ran"
    cfg = composed("model.input_size=32")
    cfg.optimizer = OmegaConf.create({"_target_": "pathlib.Path.mkdir", "self": str(mark)})
    with pytest.raises(ASLError, match="optimizer: _target_ 'pathlib.Path.mkdir' is not allowed"):
        build_module(cfg, build_datamodule(cfg))
    cfg = composed("model.input_size=32", "data.train_transforms=[{_target_: os.makedirs, name: " + str(mark) + "}]")
    dm = build_datamodule(cfg)
    with pytest.raises(ASLError, match="_target_ 'os.makedirs' is not allowed"):
        from asl.hands.prepare import input_transform

        input_transform(dm.spec, cfg.data.train_transforms)
    assert not mark.exists()
