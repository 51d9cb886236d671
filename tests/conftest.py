"""Shared fixtures: tiny data the tests make themselves (no network, no ../shared needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asl import LETTERS
from asl.cli import CONFIG_PATH
from asl.data import synthetic

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test caches into the session's temporary folder, never the checkout's .cache/ (session
    scope: set before any session fixture, such as a run trained once for many tests, needs it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "asl-cache"))
        mp.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
        mp.setenv("ASL_TRUSTED_TARGETS", "tests.")  # the tests' own callbacks (a crash at a chosen epoch)
        yield


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """4 rendered images per letter at 32 px, with masks and keypoints."""
    return synthetic.generate(tmp_path_factory.mktemp("syn"), per_class=4, image_size=32, seed=0)


def make_photo_folder(root: Path, letters="ABC", per_class: int = 6, size: int = 24, fmt: str = "png", seed: int = 0) -> Path:
    """root/<LETTER>/<i>.<fmt>: random images, one colour tint per class so a model can learn them."""
    rng = np.random.default_rng(seed)
    for c, letter in enumerate(letters):
        (root / letter).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img[..., c % 3] += 150
            Image.fromarray(img).save(root / letter / f"img{i}.{fmt}")
    return root


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    return make_photo_folder(tmp_path / "photos")


def run_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run an entry point the way a user does (``python -m asl.cli.x key=value ...``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def train_in_process(run: Path, overrides: list[str]) -> Path:
    """Compose the train config, save it as asl-train does (.hydra/config.yaml) and train into ``run``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from asl.runs.train import train

    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={run}"])
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")  # unresolved, as Hydra saves it
    train(cfg)
    return run


def datamodule(seed: int = 0, image_size: int = 64, inputs: str = "image", hand_crop: bool = False, no_hand: str = "keep",
               hands: dict | None = None, mean=None, std=None, cache: bool = True, cache_dir: str | None = None,
               hand_blank: float | None = None, **data):
    """An ASLDataModule from flat ``data.*`` keys, as a composed config gives them (the spec's keys by name)."""
    from asl.inputs import resolve_input_spec
    from asl.lit.datamodule import ASLDataModule

    spec = resolve_input_spec({"input_size": image_size, "inputs": inputs, "mean": mean, "std": std},
                              {"hand_crop": hand_crop, "no_hand": no_hand, "hands": hands, "hand_blank": hand_blank})
    return ASLDataModule.from_config({**data, "cache": cache, "cache_dir": cache_dir}, spec, seed)


ADAMW = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 1e-4}


def classifier(model: dict, class_names, image_size: int = 64, **kwargs):
    """An ASLClassifier over ``model`` with the default input contract at ``image_size`` and AdamW."""
    from asl.inputs import InputSpec
    from asl.lit.module import ASLClassifier

    spec = kwargs.pop("spec", None) or InputSpec(image_size=image_size).to_dict()
    return ASLClassifier(model, list(class_names), spec=spec, optimizer=kwargs.pop("optimizer", ADAMW), **kwargs)


TINY_TRAIN = [
    "data.synthetic.per_class=4", "data.synthetic.image_size=32", "model.input_size=32",
    "data.batch_size=16", "trainer.max_epochs=2", "data.num_workers=0", "trainer.log_every_n_steps=1",
]

__all__ = ["ADAMW", "CONFIG_PATH", "LETTERS", "REPO", "SHARED_DATA", "TINY_TRAIN", "classifier", "datamodule",
           "make_photo_folder", "run_cli", "train_in_process"]
