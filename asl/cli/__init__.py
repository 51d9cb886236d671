"""Thin command-line entry points: compose the config, call library code, print a summary."""

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from asl import ASLError

#: The repository's conf/ folder (asl is installed in editable mode: ``pip install -e .``).
CONFIG_PATH = str(Path(__file__).resolve().parents[2] / "conf")

# A sweep job's folder names its overrides; a config-group override (data/augment=device) would
# otherwise nest a folder: conf/hydra/default.yaml writes it data.augment=device.
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
