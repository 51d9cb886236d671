"""Find the hand: MediaPipe's hand-landmark model, run once per photo and cached per file.

A result is a plain dict: ``landmarks`` (21 × [x, y, z], x and y as fractions of the original
photo's width and height, z on the scale of x, as MediaPipe gives them), ``size`` (the photo's
[width, height] in pixels: what turns those fractions back into pixel-true proportions),
``world`` (MediaPipe's 21 × [x, y, z] world landmarks in metres about the hand's centre, or absent
when the source has none), ``handedness`` ("Left"/"Right"), ``score`` and ``box`` ([x0, y0, x1,
y1], fractions of the photo, the landmarks' bounding box); ``None`` means no hand was found.

The cache (``<cache_dir>/hands-<settings digest>.json``) maps each file to its size, mtime and
result, so a changed photo is detected again and other settings get their own cache file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from asl import ASLError, brief, resolve_cache_dir
from asl.data.folder import image_size, load_image
from asl.inputs import HAND_SOURCES, check_detector

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: results carry the photo's size and the world landmarks
INSTALL_HINT = "pip install -e '.[hands]'"
Result = dict[str, Any] | None
Detector = Callable[[np.ndarray], Result]


def require_mediapipe():
    """The ``mediapipe.solutions.hands`` module, or an ASLError saying how to install it."""
    try:
        with mediapipe_quiet():
            import mediapipe as mp  # noqa: PLC0415  (optional dependency)
        return mp.solutions.hands
    except ImportError:
        raise ASLError(f"hand detection needs mediapipe, which is not installed: run {INSTALL_HINT}") from None


#: What MediaPipe's C++ side (absl, TensorFlow Lite) writes straight to file descriptor 2 when a graph
#: starts or first runs: informational and warning lines (absl's ``I0000``/``W0000`` prefix), not the user's business.
_NATIVE_NOTES = re.compile(r"^([IW]\d{4} |INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog)")


@contextmanager
def mediapipe_quiet() -> Iterator[None]:
    """Run a block of MediaPipe without its start-up notes: file descriptor 2 (which C++ code writes to,
    below Python's ``sys.stderr``) is captured and every line but those notes written to stderr afterwards,
    so errors stay; protobuf's deprecation warning about MediaPipe's own code is ignored.

    (The absl/glog environment switches, ``GLOG_minloglevel``, no longer reach MediaPipe's absl logging.)
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not _NATIVE_NOTES.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class MediaPipeDetector:
    """RGB uint8 photo → result dict (see module docstring) or None, with padding and retries."""

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = check_detector(settings)
        self._mp = require_mediapipe()
        self._models: dict[tuple[int, float], Any] = {}  # one MediaPipe graph per (complexity, confidence)

    def close(self) -> None:
        for m in self._models.values():
            m.close()
        self._models.clear()

    def _run(self, rgb: np.ndarray, **override: Any) -> Result:
        s = {**self.settings, **override}
        key = (int(s["model_complexity"]), float(s["min_confidence"]))
        h, w = rgb.shape[:2]
        pad = int(round(float(s["padding"]) * max(h, w)))
        img = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if pad else rgb
        with mediapipe_quiet():
            if key not in self._models:
                self._models[key] = self._mp.Hands(static_image_mode=True, max_num_hands=1,
                                                   model_complexity=key[0], min_detection_confidence=key[1])
            out = self._models[key].process(np.ascontiguousarray(img))
        if not out.multi_hand_landmarks:
            return None
        H, W = img.shape[:2]
        lm = np.array([[p.x, p.y, p.z] for p in out.multi_hand_landmarks[0].landmark], dtype=np.float64)
        lm[:, 0] = (lm[:, 0] * W - pad) / w  # back to fractions of the unpadded photo
        lm[:, 1] = (lm[:, 1] * H - pad) / h
        cls = out.multi_handedness[0].classification[0]
        res = {"landmarks": lm.round(5).tolist(), "handedness": cls.label, "score": round(float(cls.score), 4)}
        if out.multi_hand_world_landmarks:
            world = [[p.x, p.y, p.z] for p in out.multi_hand_world_landmarks[0].landmark]
            res["world"] = np.round(world, 5).tolist()
        return res

    def __call__(self, rgb: np.ndarray) -> Result:
        side = max(rgb.shape[:2])
        limit = int(self.settings["max_side"])
        if side > limit:
            f = limit / side
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
        res = self._run(rgb)
        for retry in self.settings["retry"]:
            if res is not None:
                break
            if isinstance(retry, dict):
                res = self._run(rgb, **retry)
            elif retry == "mirror":
                res = self._run(rgb[:, ::-1])
                if res is not None:  # undo the flip: x mirrors back, and so does the hand
                    lm = np.asarray(res["landmarks"])
                    lm[:, 0] = 1 - lm[:, 0]
                    res["landmarks"] = lm.round(5).tolist()
                    if "world" in res:
                        world = np.asarray(res["world"])
                        world[:, 0] = -world[:, 0]
                        res["world"] = world.round(5).tolist()
                    res["handedness"] = {"Left": "Right", "Right": "Left"}.get(res["handedness"], res["handedness"])
            elif retry == "upscale":
                res = self._run(cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
        if res is not None:
            lm = np.asarray(res["landmarks"])
            res["box"] = [round(float(v), 5) for v in (*lm[:, :2].min(0), *lm[:, :2].max(0))]
        return res


def settings_digest(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps([CACHE_VERSION, settings], sort_keys=True).encode()).hexdigest()[:12]


def cache_file(cache_dir: str | os.PathLike, settings: dict[str, Any]) -> Path:
    return Path(cache_dir).expanduser() / f"hands-{settings_digest(settings)}.json"


def _stamp(p: Path) -> list[int]:
    st = os.stat(p)
    return [st.st_size, st.st_mtime_ns]


def _digest(p: Path) -> str | None:
    """The file's content hash (None if unreadable: the detector then reports why)."""
    try:
        return hashlib.sha1(p.read_bytes()).hexdigest()
    except OSError:
        return None


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())["files"]
    except (ValueError, KeyError):
        log.warning("%s: unreadable hand cache, detecting again", path)
        return {}


def _save(path: Path, settings: dict[str, Any], entries: dict[str, Any]) -> None:
    """Merge ``entries`` into the cache file under a lock, so processes filling one cache at once
    (a parallel sweep) keep each other's results; written to a temporary file, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        merged = {**_read(path), **entries}
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "settings": settings, "files": merged}))
        tmp.replace(path)


def detect_files(paths: Sequence[str | os.PathLike], settings: dict[str, Any] | None = None,
                 cache_dir: str | os.PathLike | None = None, detector: Detector | None = None,
                 progress: bool = True, workers: int | None = None, errors: dict[int, str] | None = None) -> list[Result]:
    """One result per path, from the cache where the file (path, size, mtime) is unchanged, or where its
    content is that of a cached file (a copied, moved or touched photo is not detected again);
    ``cache_dir=None``: no cache, detect every file.

    Misses run in ``workers`` processes (None: every core this process may use), each with its own
    detector, merged into one cache that is saved every few seconds: a killed run loses only the
    photos since the last save, and a re-run detects only what is missing. A photo that makes the
    detector fail counts as a miss; ``errors`` (if given) maps its index to the reason.
    ``detector`` replaces MediaPipe in this process (tests inject a stub); it is only built when a
    file misses the cache, so cached runs need no mediapipe.
    """
    settings = check_detector(settings)
    paths = [Path(p).expanduser().resolve() for p in paths]
    cpath = cache_file(cache_dir, settings) if cache_dir is not None else None
    entries: dict[str, Any] = _read(cpath) if cpath is not None else {}
    stamps = [_stamp(p) for p in paths]
    changed = [i for i, p in enumerate(paths) if entries.get(str(p), {}).get("stamp") != stamps[i]]
    digests = {i: _digest(paths[i]) for i in changed}
    by_content = {e["sha1"]: e for e in entries.values() if e.get("sha1")}
    todo = []
    for i in changed:
        same = by_content.get(digests[i]) if digests[i] else None
        if same is None:
            todo.append(i)
        else:
            entries[str(paths[i])] = {**same, "stamp": stamps[i]}
    if cpath is not None and len(todo) < len(changed):
        log.info("Hand cache: %d photo(s) found again by content (copied, moved or touched)", len(changed) - len(todo))
        _save(cpath, settings, entries)
    if todo:
        n_workers = processes(workers, len(todo)) if detector is None else 1
        log.info("Detecting hands in %d of %d image(s) (%d cached) with %d process(es)", len(todo), len(paths),
                 len(paths) - len(todo), n_workers)
        saved = time.monotonic()
        for i, res, error in tqdm(_detect(paths, todo, settings, detector, n_workers), total=len(todo),
                                  desc="Detecting hands", disable=not progress):
            entries[str(paths[i])] = {"stamp": stamps[i], "sha1": digests[i], "result": res, **({"error": error} if error else {})}
            if cpath is not None and time.monotonic() - saved > SAVE_EVERY_S:
                _save(cpath, settings, entries)  # keep progress if interrupted
                saved = time.monotonic()
        if cpath is not None:
            _save(cpath, settings, entries)
    if errors is not None:
        errors.update({i: entries[str(p)]["error"] for i, p in enumerate(paths) if entries[str(p)].get("error")})
    return [entries[str(p)]["result"] for p in paths]


SAVE_EVERY_S = 10  # seconds between cache saves while detecting
CHUNK = 8  # photos a worker process detects per task


def processes(workers: int | None, todo: int) -> int:
    """Detector processes for ``todo`` photos: ``workers`` (None: the cores this process may use), no more
    than one per :data:`CHUNK` photos."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ASLError(f"data.hands.workers must be a whole number ≥ 1 or null (every core), got {workers!r}")
    return max(1, min(workers or cores, -(-todo // CHUNK)))


def _detect(paths: list[Path], todo: list[int], settings: dict[str, Any], detector: Detector | None,
            workers: int) -> Iterator[tuple[int, Result, str | None]]:
    """(index, result, error) for every photo in ``todo``, in this process or in ``workers`` processes."""
    if workers == 1:
        own = detector is None
        detector = MediaPipeDetector(settings) if own else detector
        try:
            for i in todo:
                yield (i, *_detect_one(detector, paths[i]))
        finally:
            if own:
                detector.close()
        return
    require_mediapipe()  # here, not in the workers: a missing extra is one line, not a broken pool
    chunks = [todo[k:k + CHUNK] for k in range(0, len(todo), CHUNK)]
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(settings,)) as pool:
        jobs = [pool.submit(_detect_chunk, [(i, str(paths[i])) for i in chunk]) for chunk in chunks]
        for job in as_completed(jobs):
            yield from job.result()


def _detect_one(detector: Detector, path: Path) -> tuple[Result, str | None]:
    try:
        rgb = load_image(path)
        res = detector(rgb)
        return (None if res is None else {**res, "size": [rgb.shape[1], rgb.shape[0]]}), None
    except ASLError:
        return None, None  # unreadable files are reported by the image loader
    except Exception as e:  # noqa: BLE001  (a photo that crashes the detector is a miss, not the end of the run)
        return None, f"the hand detector failed on it ({type(e).__name__}: {brief(e)})"


_worker_detector: Detector | None = None


def _start_worker(settings: dict[str, Any]) -> None:
    global _worker_detector
    _worker_detector = MediaPipeDetector(settings)


def _detect_chunk(items: list[tuple[int, str]]) -> list[tuple[int, Result, str | None]]:
    return [(i, *_detect_one(_worker_detector, Path(p))) for i, p in items]


def detection_rates(results: Sequence[Result], labels: Sequence[int], classes: Sequence[str]) -> dict[str, float]:
    """Share of images with a detected hand, per class and ``all``."""
    found = np.array([r is not None for r in results], dtype=float)
    labels = np.asarray(labels)
    rates = {c: float(found[labels == k].mean()) if (labels == k).any() else float("nan") for k, c in enumerate(classes)}
    rates["all"] = float(found.mean()) if len(found) else float("nan")
    return rates


def write_rates(rates: dict[str, float], counts: dict[str, int], path: str | os.PathLike) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "images", "detection_rate"])
        for c, r in rates.items():
            w.writerow([c, counts.get(c, 0), f"{r:.4f}"])


def keypoint_results(root: str | os.PathLike, paths: Sequence[Path], relative: Sequence[str]) -> list[Result]:
    """Results from a set's own ``keypoints.csv`` (the synthetic set's ground truth), no detector."""
    from asl.data.synthetic import read_keypoints  # noqa: PLC0415

    table = read_keypoints(root)
    out: list[Result] = []
    for path, name in zip(paths, relative, strict=True):
        kp = table.get(name)
        if kp is None:
            out.append(None)
            continue
        out.append({"landmarks": kp.tolist(), "handedness": None, "score": 1.0, "size": list(image_size(path)),
                    "box": [float(v) for v in (*kp[:, :2].min(0), *kp[:, :2].max(0))]})
    return out


def hand_results(root: str | os.PathLike, paths: Sequence[Path], relative: Sequence[str], source: str = "auto",
                 settings: dict[str, Any] | None = None, cache_dir: str | os.PathLike | None = None,
                 detector: Detector | None = None, workers: int | None = None,
                 errors: dict[int, str] | None = None) -> list[Result]:
    """Each image's hand: from ``root/keypoints.csv`` (``keypoints``; ``auto`` when the file
    exists) or from the (cached) detector in ``workers`` processes (``errors``: see :func:`detect_files`)."""
    if source not in HAND_SOURCES:
        raise ASLError(f"data.hands.source: {source!r} is not one of {HAND_SOURCES}")
    has_keypoints = (Path(root) / "keypoints.csv").exists()
    if source == "keypoints" and not has_keypoints:
        raise ASLError(f"data.hands.source=keypoints: {root}/keypoints.csv does not exist; use source=detector")
    if source == "keypoints" or (source == "auto" and has_keypoints):
        return keypoint_results(root, paths, relative)
    return detect_files(paths, settings, resolve_cache_dir(cache_dir), detector, workers=workers, errors=errors)
