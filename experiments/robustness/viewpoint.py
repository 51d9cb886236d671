"""Why grey_wall's P and Q fail (issue 26): from which side each set photographs a letter, and how well
MediaPipe's depth holds up there.

Per set and letter, the medians over its photos with a detected hand (the detector's cache, default settings)
of two ratios of the same two hand lengths, wrist → middle-finger knuckle (the palm's length) over index →
little-finger knuckle (its width):
- in the photo (2-D, pixel-true): large when the palm is seen edge-on (side-on hand), small when the palm's
  length points at the camera (foreshortened);
- in MediaPipe's world landmarks (3-D, metres): the hand's own proportion, the same from every side if the
  depth is right (about 1.4-1.7 on every set and letter it reads well).
Then, per set, how far the normalised coordinates reach under each ``model.scale`` (the 99th percentile and the
maximum of |x|, |y| in hand sizes over all its photos): what the model, and AdaBN's statistics, see of them.
``--turned N``: also, for the first N photos of each letter, the detector run again on the photo turned by 90,
180 and 270 degrees (needs mediapipe); the median distance between those fits, turned back, and the upright
fit, in % of the photo's side: whether a retry on a turned photo would find another hand. ``--draw F``: a PNG
of the first photos of the chosen letters per set with the landmarks drawn.

    python experiments/robustness/viewpoint.py [--letters PQGHMN] [--turned 12] [--draw viewpoint.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from asl.data.folder import IMAGE_EXTENSIONS, load_image  # noqa: E402
from asl.hands.detect import detect_files  # noqa: E402
from asl.hands.draw import draw_hand  # noqa: E402
from asl.hands.features import NUM_LANDMARKS, POINTS, SCALE, encode, normalise  # noqa: E402

SETS = ("asl_massey_black", "asl_alphabet_room", "asl_grey_wall")
CONTROLS = "ABKRU"  # letters held upright or sideways the same way in every set


def ratios(result: dict) -> tuple[float, float]:
    """(2-D palm length / width in the photo, pixel-true as the model reads it; the same in the world landmarks)."""
    lm = encode(result["landmarks"], size=result["size"])[:POINTS].reshape(NUM_LANDMARKS, 3)
    world = np.asarray(result["world"])
    return (float(np.linalg.norm(lm[9, :2] - lm[0, :2]) / max(np.linalg.norm(lm[5, :2] - lm[17, :2]), 1e-9)),
            float(np.linalg.norm(world[9] - world[0]) / max(np.linalg.norm(world[5] - world[17]), 1e-9)))


def turned_back(landmarks: list, quarter_turns: int) -> np.ndarray:
    """(21, 2) x, y fractions of the upright photo from landmarks found on it turned by ``np.rot90(k=quarter_turns)``."""
    x, y = np.asarray(landmarks)[:, 0], np.asarray(landmarks)[:, 1]
    for _ in range(quarter_turns):  # np.rot90 moves (x, y) to (y, 1 - x): undo one turn
        x, y = 1 - y, x
    return np.stack([x, y], 1)


def turned_spread(files: list[Path], hands: list, detector) -> float:
    """Median over the photos and turns of the mean landmark distance (% of the photo's side) between the fit on
    the turned photo, turned back, and the upright fit (photos where both found a hand)."""
    gaps = []
    for f, h in zip(files, hands, strict=True):
        if h is None:
            continue
        rgb = load_image(f)
        for k in (1, 2, 3):
            r = detector(np.ascontiguousarray(np.rot90(rgb, k)))
            if r is not None:
                gaps.append(100 * np.linalg.norm(turned_back(r["landmarks"], k) - np.asarray(h["landmarks"])[:, :2], axis=1).mean())
    return float(np.median(gaps)) if gaps else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--letters", default="PQGHMN")
    parser.add_argument("--draw", type=Path, default=None, help="write a PNG of the first photos with their landmarks")
    parser.add_argument("--turned", type=int, default=0, help="photos per letter detected again, turned (0: none)")
    parser.add_argument("--per-letter", type=int, default=3, help="photos per letter and set in the drawing")
    args = parser.parse_args()
    letters = args.letters + "".join(c for c in CONTROLS if c not in args.letters)
    table, tiles, spread, reach = {}, [], {}, {}
    detector = None
    if args.turned:
        from asl.hands.detect import MediaPipeDetector  # noqa: PLC0415

        detector = MediaPipeDetector()
    for name in SETS:
        for letter in letters:
            files = sorted(p for p in (args.data / name / letter).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            hands = detect_files(files, cache_dir=".cache/asl", progress=False)
            found = [ratios(h) for h in hands if h is not None and h.get("world")]
            table[name, letter] = np.median(np.asarray(found), axis=0) if found else (np.nan, np.nan)
            rows = torch.from_numpy(np.stack([encode(h["landmarks"], h.get("handedness"), h["size"])
                                              for h in hands if h is not None]))
            for scale in SCALE:
                reach.setdefault((name, scale), []).append(normalise(rows, "geometry", scale)[..., :2].abs().flatten())
            if detector is not None:
                spread[name, letter] = turned_spread(files[:args.turned], hands[:args.turned], detector)
            if args.draw and letter in args.letters:
                tiles += [(name, letter, f, h) for f, h in list(zip(files, hands, strict=True))[:args.per_letter]]
    print("Median palm length / width per letter (photos with a hand): in the photo 2-D | in MediaPipe's world landmarks\n")
    print("| letter | " + " | ".join(f"{s} 2-D | {s} world" for s in SETS) + " |")
    print("|---" * (1 + 2 * len(SETS)) + "|")
    for letter in letters:
        print(f"| {letter} | " + " | ".join(f"{table[s, letter][0]:.2f} | {table[s, letter][1]:.2f}" for s in SETS) + " |")
    print("\nHow far the normalised coordinates reach (hand sizes from the wrist; mirror by geometry, the letters above)\n")
    print("| set | " + " | ".join(f"{s}: 99th percentile | {s}: max" for s in SCALE) + " |\n" + "|---" * (1 + 2 * len(SCALE)) + "|")
    for name in SETS:
        cells = []
        for scale in SCALE:
            values = torch.cat(reach[name, scale])
            cells += [f"{torch.quantile(values, 0.99):.1f}", f"{values.max():.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if spread:
        print(f"\nThe first {args.turned} photos per letter detected again on the photo turned 90, 180, 270 degrees: median "
              "distance of those fits (turned back) from the upright one, % of the photo's side\n")
        print("| letter | " + " | ".join(SETS) + " |\n" + "|---" * (1 + len(SETS)) + "|")
        for letter in letters:
            print(f"| {letter} | " + " | ".join(f"{spread[s, letter]:.1f}" for s in SETS) + " |")
    if args.draw:
        import cv2  # noqa: PLC0415

        side = 160
        drawn = [cv2.resize(draw_hand(load_image(f), h, label=f"{name.split('_')[1]} {letter}"), (side, side))
                 for name, letter, f, h in tiles]
        cols = args.per_letter * len(args.letters)
        strips = [np.hstack(drawn[i:i + cols]) for i in range(0, len(drawn), cols)]
        cv2.imwrite(str(args.draw), cv2.cvtColor(np.vstack(strips), cv2.COLOR_RGB2BGR))
        print(f"\nwrote {args.draw}: rows {', '.join(SETS)}; the first {args.per_letter} photos of {', '.join(args.letters)}")


if __name__ == "__main__":
    main()
