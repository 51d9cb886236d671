"""Thin command-line entry points: compose the config, call library code, print a summary."""

import functools
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from difflib import get_close_matches
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

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


def _job_dirname(*, _root_: DictConfig) -> str:
    from asl.runs.run_folder import job_dirname  # (imports torch: only when a sweep names a job)

    h = _root_.hydra
    return job_dirname(h.job.num, list(h.overrides.task), list(h.job.config.override_dirname.exclude_keys),
                       h.sweep.dir, list(h.sweeper.get("params") or {}))


# A sweep job's folder names the overrides that vary across the sweep (asl/conf/hydra/default.yaml).
OmegaConf.register_new_resolver("job_dirname", _job_dirname, replace=True)


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


def refuse_bad_overrides(config_name: str, argv: list[str]) -> None:
    """Exit with one line for an override Hydra cannot compose (Hydra's own message is several lines): a
    misspelled key names the nearest valid spelling, an unknown option of a config group lists the group's
    options. In a sweep (``-m``) every option a group sweeps over is composed once."""
    args, _ = get_args_parser().parse_known_args(argv)
    if not args.overrides or args.help or args.hydra_help or args.info or args.shell_completion or args.config_path \
            or args.config_dir or args.experimental_rerun:
        return
    name = args.config_name or config_name
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        try:
            parsed = OverridesParser.create(config_loader=loader).parse_overrides(args.overrides)
        except OverrideParseException:
            return  # the override's syntax: Hydra's own message says where
        for overrides in _compositions(parsed, args.multirun, loader):
            try:
                compose(name, overrides=overrides, return_hydra_config=True)
            except HydraException as e:
                print(f"error: {_composition_error(e, name, overrides, loader)}", file=sys.stderr)
                sys.exit(2)


def _compositions(parsed: list[Override], multirun: bool, loader: ConfigLoader) -> list[list[str]]:
    """The override lists to compose: as given; in a sweep, each swept key at its first value, then each
    further option of a swept config group in turn (a swept value of a key changes no key)."""
    if not multirun:
        return [[o.input_line for o in parsed]]
    values = {}
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            try:
                values[i] = [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
            except HydraException:  # interval(...): a sweeper's range, no options to enumerate
                values[i] = []
    first = [values[i][:1] if i in values else [o.input_line] for i, o in enumerate(parsed)]
    runs = [sum(first, [])]
    for i, options in values.items():
        if loader.get_group_options(parsed[i].key_or_group):
            runs += [sum(first[:i] + [[option]] + first[i + 1:], []) for option in options[1:]]
    return runs


def _composition_error(e: Exception, config_name: str, overrides: list[str], loader: ConfigLoader) -> str:
    """Hydra's composition error as one line: the key or group option and what is there instead."""
    if isinstance(e, MissingConfigException) and e.options:  # an unknown option of a config group
        group, _, option = e.missing_cfg_file.rpartition("/")
        options = [o for o in e.options if not o.startswith("_")]  # _name.yaml: a base other options extend
        near = get_close_matches(option, options, n=1)
        return (f"{group}={option}: no such option (asl/conf/{group}/ has no {option}.yaml); "
                f"{f'did you mean {group}={near[0]}? ' if near else ''}{group} is one of: {', '.join(options)}")
    key = getattr(e.__cause__, "full_key", None) if isinstance(e.__cause__, ConfigAttributeError | ConfigKeyError) else None
    match = re.match(r"Could not override '([^'@]+)'\. No match in the defaults list", str(e))
    key = key or (match.group(1) if match else None)
    if key and "/" in key:  # a config group that does not exist
        parent, _, leaf = key.rpartition("/")
        near = get_close_matches(leaf, loader.list_groups(parent), n=1)
        return f"{key}: no such config group" + (f"; did you mean {parent}/{near[0]}?" if near else "")
    if key:  # a misspelled key (Lightning, behind the Trainer's arguments, takes seconds to import: only here)
        from asl.runs.schema import nearest_trainer_argument

        parent, _, leaf = key.rpartition(".")
        keys = [o.split("=")[0].lstrip("+~").split("@")[0] for o in overrides]
        groups = [o for o, k in zip(overrides, keys, strict=True) if k != key and loader.get_group_options(k)]
        try:  # the keys the group choices give
            base = compose(config_name, overrides=groups, return_hydra_config=True)
        except HydraException:
            base = None
        node = OmegaConf.select(base, parent) if parent and base is not None else base
        if node is None:
            return f"{key}: no such key"
        if not OmegaConf.is_dict(node):
            return f"{key}: no such key ({parent} holds a value, not keys)"
        there = list(node)
        if parent == "trainer":
            return f"{key}: no such key; {nearest_trainer_argument(leaf, there)}"
        near = get_close_matches(leaf, there, n=1)
        if near:
            return f"{key}: no such key; did you mean {parent + '.' if parent else ''}{near[0]}?"
        return f"{key}: no such key; {parent or 'the config'} has: {', '.join(there)}"
    lines = str(e).split("Config search path:")[0].splitlines()
    return "; ".join(line.strip().rstrip(".") for line in lines if line.strip())


def command(config_name: str) -> Callable:
    """A CLI's ``main``: moved keys refused first, then Hydra composes ``asl/conf/<config_name>.yaml`` and
    calls the function, whose :class:`ASLError` is printed as one line."""

    def decorate(fn: Callable) -> Callable:
        composed = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(user_errors(fn))

        @functools.wraps(fn)
        def main():
            refuse_moved_keys(sys.argv[1:])
            refuse_bad_overrides(config_name, sys.argv[1:])
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
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "setup plugin ..." lines when Optuna imports it
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow's database set-up lines (it sets its own level)
    for message in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
