"""asl: recognise the 24 static American Sign Language letters with PyTorch Lightning + Hydra."""

import os

# albumentations checks PyPI for updates on import; these machines have no network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"

#: The 24 static letters: A–Y without J and Z, which need motion.
LETTERS: tuple[str, ...] = tuple(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXY" if c != "J")


class ASLError(Exception):
    """A mistake in the user's input or configuration: the CLIs print it as one line, no traceback."""
