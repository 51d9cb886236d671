"""Thin command-line entry points: compose the config, call library code, print a summary."""

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from asl import ASLError

#: The configs, shipped inside the package (a wheel install has them too).
CONFIG_PATH = str(Path(__file__).resolve().parents[1] / "conf")

#: Keys that moved in the redesign: an old spelling on the command line gets one line naming the new one.
MOVED_KEYS = {
    "trainer.num_workers": "data.num_workers", "trainer.pin_memory": "data.pin_memory",
    "trainer.channels_last": "model.channels_last", "trainer.compile": "model.compile",
    "data.image_size": "model.input_size", "data.inputs": "model.inputs",
    "optimizer.name": "optimizer=<adamw|adam|sgd> (a config group)",
    "scheduler.name": "scheduler=<cosine|step|none> (a config group)",
}

# A sweep job's folder names its overrides; a config-group override (data/augment=device) would
# otherwise nest a folder: asl/conf/hydra/default.yaml writes it data.augment=device.
OmegaConf.register_new_resolver("no_slash", lambda s: str(s).replace("/", "."), replace=True)


def user_errors(fn: Callable) -> Callable:
    """Print an :class:`ASLError` as one line and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ASLError as e:
            logging.getLogger("asl").debug("user error", exc_info=True)
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def output_dir(cfg: DictConfig) -> str | None:
    """``output_dir``, or the folder Hydra made for ``hydra.run.dir=X`` (the tools that write no Hydra run
    folder default it to ``.``): X is where the user asked for the results, not a folder to leave empty."""
    asked = HydraConfig.get().runtime.output_dir
    asked = None if Path(asked).resolve() == Path.cwd().resolve() else asked
    if cfg.output_dir is not None and asked is not None and Path(cfg.output_dir).resolve() != Path(asked).resolve():
        raise ASLError(f"output_dir={cfg.output_dir} and hydra.run.dir={asked}: give one of them")
    return cfg.output_dir if cfg.output_dir is not None else asked


def refuse_moved_keys(overrides: list[str]) -> None:
    """Exit with one line for an override that names a key's old spelling."""
    for o in overrides:
        key = o.lstrip("+~").split("=")[0]
        if key in MOVED_KEYS:
            print(f"error: {key} has moved: use {MOVED_KEYS[key]}", file=sys.stderr)
            sys.exit(2)


def command(config_name: str) -> Callable:
    """A CLI's ``main``: moved keys refused first, then Hydra composes ``asl/conf/<config_name>.yaml`` and
    calls the function, whose :class:`ASLError` is printed as one line."""

    def decorate(fn: Callable) -> Callable:
        composed = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(user_errors(fn))

        @functools.wraps(fn)
        def main():
            refuse_moved_keys(sys.argv[1:])
            quiet_libraries()
            return composed()

        return main

    return decorate


#: Library lines that are not the user's business (advertising, hardware inventory, internal deprecations).
_NOISE_LINES = ("💡 Tip", "GPU available:", "TPU available:", "HPU available:",
                "Trainer already configured with model summary callbacks")  # asl's own (asl.lit.summary)
_NOISE_WARNINGS = (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*does not have many workers.*",
                   ".*torch.jit.* is deprecated.*")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE_LINES)


def quiet_libraries() -> None:
    """Silence what buries the lines a user needs; errors and asl's own messages stay."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropNoise())
    for message in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
