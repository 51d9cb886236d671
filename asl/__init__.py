"""asl: recognise the 24 static American Sign Language letters with PyTorch Lightning + Hydra."""

import os

# albumentations checks PyPI for updates on import; these machines have no network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"

#: The 24 static letters: A–Y without J and Z, which need motion.
LETTERS: tuple[str, ...] = tuple(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXY" if c != "J")


def resolve_cache_dir(path: str | os.PathLike | None = None) -> str:
    """Where caches go: ``path`` if given, else ``$ASL_CACHE_DIR``, else ``.cache/asl`` (as the configs'
    ``paths.cache_dir``), so code called without a config caches where asl-train does."""
    return str(path) if path is not None else os.environ.get("ASL_CACHE_DIR", ".cache/asl")


class ASLError(Exception):
    """A mistake in the user's input or configuration: the CLIs print it as one line, no traceback."""


def brief(error: BaseException, limit: int = 300) -> str:
    """A library error as one line for a user: its first line, shortened at a word (marked …), never mid-word."""
    text = " ".join(str(error).split("\n")[0].split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
