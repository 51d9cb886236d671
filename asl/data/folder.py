"""Discover and decode photos laid out as ``root/<LETTER>/<image>`` (or ``root/{train,val,test}/<LETTER>/``).

Every user mistake (missing root, unknown or empty class folders, unreadable files) becomes an
:class:`~asl.ASLError` naming the path and what to do, or a counted warning that lists the files
skipped. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from asl import LETTERS, ASLError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MASK_SUFFIX = ".mask.png"  # a foreground mask beside its image: <name>.mask.png
ANNOTATION_FILES = {"keypoints.csv", "README.md", "README.txt", "LICENSE", "LICENSE.txt"}
SPLIT_FOLDERS = ("train", "val", "test")
NON_CLASS_FOLDERS = {"masks"}  # a parallel masks/ tree is annotation, not a class


def resolve_classes(classes: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``None`` → the 24 static letters; a string like ``"ABC"`` or a list → those, upper-cased."""
    if classes is None:
        return list(LETTERS)
    names = list(classes) if not isinstance(classes, str) else list(classes.replace(",", ""))
    names = [str(c).strip().upper() for c in names]
    if len(set(names)) != len(names) or not names:
        raise ASLError(f"data.classes: needs distinct class names, got {names}")
    return names


@dataclass
class ImageTable:
    """The images of a data set: where they are, their class, and what was skipped and why."""

    root: Path
    classes: list[str]
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    presplit: list[str] | None = None  # split per image, for a root/{train,val,test}/ layout
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def relative(self, i: int) -> str:
        return self.paths[i].relative_to(self.root).as_posix()

    def mask_path(self, i: int) -> Path | None:
        """The mask file for image i, beside it (``x.mask.png``) or in a parallel ``masks/`` tree."""
        p = self.paths[i]
        beside = p.with_name(p.stem + MASK_SUFFIX)
        if beside.exists():
            return beside
        rel = p.relative_to(self.root)
        for candidate in (self.root / "masks" / rel.with_suffix(".png"), self.root / "masks" / rel):
            if candidate.exists():
                return candidate
        return None

    def drop(self, bad: dict[int, str], what: str = "unreadable") -> None:
        """Remove images by index, recording why; fail if a class is left without images.

        ``what`` names the kind of image dropped in the warning (unreadable, without a hand, ...)."""
        if not bad:
            return
        dropped = [(str(self.paths[i]), why) for i, why in sorted(bad.items())]
        self.skipped += dropped
        keep = [i for i in range(len(self.paths)) if i not in bad]
        self.paths = [self.paths[i] for i in keep]
        self.labels = [self.labels[i] for i in keep]
        if self.presplit is not None:
            self.presplit = [self.presplit[i] for i in keep]
        log.warning("Skipped %d %s image(s) (all listed in the run folder's skipped_files.csv): %s",
                    len(dropped), what, "; ".join(why for _, why in dropped[:5]))
        self.check_nonempty(f"after skipping {len(dropped)} {what} image(s)")

    def check_nonempty(self, context: str = "") -> None:
        counts = np.bincount(np.asarray(self.labels, dtype=np.int64), minlength=len(self.classes))
        empty = [self.classes[c] for c in np.flatnonzero(counts == 0)]
        if empty:
            raise ASLError(
                f"{self.root}: no readable images for class(es) {empty} {context}. Add images to "
                f"those folders, or leave the classes out with data.classes."
            )


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.endswith(MASK_SUFFIX)


def _why_not(p: Path) -> str:
    """Why a file in a class folder is no training image (every skipped file is listed with its reason)."""
    if p.name.startswith("."):
        return "hidden file (e.g. .DS_Store), not an image"
    if p.name in ANNOTATION_FILES:
        return "annotation or documentation file, not an image"
    return "not an image file (by extension)"


def _class_folders(base: Path, classes: list[str], unknown_folders: str, allow_missing: bool) -> dict[str, Path]:
    found: dict[str, Path] = {}
    unknown = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = d.name.upper()
        if name in classes:
            if name in found:
                raise ASLError(f"{base}: folders {found[name].name!r} and {d.name!r} both hold class {name}; merge them.")
            found[name] = d
        elif d.name.lower() not in NON_CLASS_FOLDERS:
            unknown.append(d.name)
    if unknown and unknown_folders == "error":
        raise ASLError(
            f"{base}: folder(s) {unknown} match no class in data.classes ({''.join(classes)}). Rename or "
            f"remove them, add them to data.classes, or set data.unknown_folders=ignore to skip them."
        )
    if unknown:
        log.warning("%s: ignoring folder(s) that match no class: %s", base, unknown)
    missing = [c for c in classes if c not in found]
    if missing and not allow_missing:
        raise ASLError(
            f"{base}: no folder for class(es) {missing}. Expected one folder per letter "
            f"(root/<LETTER>/<image>); add them, or restrict data.classes."
        )
    return found


def discover(
    root: str | os.PathLike,
    classes: list[str],
    unknown_folders: str = "error",
    allow_missing_classes: bool = False,
) -> ImageTable:
    """List the images under ``root``; checks layout and names, not pixels (see :func:`load_image`)."""
    if unknown_folders not in ("error", "ignore"):
        raise ASLError(f"data.unknown_folders must be 'error' or 'ignore', got {unknown_folders!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ASLError(f"data.root: {root} is not a folder. Point data.root at root/<LETTER>/<image> photos.")
    table = ImageTable(root=root, classes=classes)
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    presplit = all(s in subdirs for s in SPLIT_FOLDERS)
    bases = [(subdirs[s], s) for s in SPLIT_FOLDERS] if presplit else [(root, None)]
    if presplit:
        table.presplit = []
    for base, split in bases:
        for letter, folder in _class_folders(base, classes, unknown_folders, allow_missing_classes).items():
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            images = [p for p in files if _is_image(p) and not p.name.startswith(".")]
            kept = set(images)  # a set: a list here made discovery quadratic (45 s at 2,500 photos per letter)
            table.skipped += [(str(p), _why_not(p)) for p in files
                              if p not in kept and not p.name.endswith(MASK_SUFFIX)]
            if not images and not allow_missing_classes:
                raise ASLError(f"{folder}: class folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
            table.paths += images
            table.labels += [classes.index(letter)] * len(images)
            if presplit:
                table.presplit += [split] * len(images)
    if table.skipped:
        log.warning("Skipped %d non-image file(s) under %s, e.g. %s", len(table.skipped), root,
                    ", ".join(Path(p).name for p, _ in table.skipped[:5]))
    if not table.paths:
        raise ASLError(f"{root}: found no images in any class folder.")
    if not allow_missing_classes:
        table.check_nonempty()
    return table


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL image (grayscale, palette, RGBA, CMYK, 16-bit, float) as an RGB uint8 array."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float32)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA").convert("RGB")
    return np.asarray(im.convert("RGB"))


class UnreadableFile(ASLError):
    """A photo or mask Pillow cannot decode: ``"<path>: <reason>"``, the path said once (Pillow's own
    message often repeats it); ``reason`` alone for a line that names the file already."""

    def __init__(self, path: str | os.PathLike, what: str, error: Exception):
        detail = ("not a format Pillow can decode" if isinstance(error, UnidentifiedImageError)
                  else str(error).replace(repr(str(path)), "").replace(str(path), "").rstrip(" :"))
        self.path, self.reason = str(path), f"cannot read {what} ({type(error).__name__}: {detail})"
        super().__init__(f"{path}: {self.reason}")


def load_image(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """Decode a photo to RGB uint8 (EXIF orientation applied), resized to ``size``×``size`` if given.

    Raises :class:`ASLError` naming the file when it cannot be decoded.
    """
    try:
        with Image.open(path) as im:
            if size and im.format == "JPEG":
                im.draft("RGB", (size, size))  # decode JPEGs at reduced scale: much faster
            im = ImageOps.exif_transpose(im)
            arr = to_rgb(im)
    except Image.DecompressionBombError as e:
        raise ASLError(f"{path}: too large to decode safely ({e}); shrink the photo or leave it out") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UnreadableFile(path, "image", e) from None
    if size and arr.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if min(arr.shape[:2]) > size else cv2.INTER_LINEAR
        arr = cv2.resize(arr, (size, size), interpolation=interp)
    return np.ascontiguousarray(arr)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of a photo as :func:`load_image` decodes it (EXIF rotation applied), from its header."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if im.getexif().get(0x0112) in (5, 6, 7, 8) else (w, h)  # rotated by a quarter turn
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UnreadableFile(path, "image", e) from None


def load_mask(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """A mask file as uint8 0/255 (any non-zero pixel is foreground)."""
    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UnreadableFile(path, "mask", e) from None
    if size and a.shape != (size, size):
        a = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)
    return np.where(a >= 128, 255, 0).astype(np.uint8)
