"""Split each shared set into two parts that share no photo for experiments/robustness/held_out.sh: photos of
the new setting a model adapts to, and others it is then scored on (symlinks, <out>/<part>/<LETTER>/<photo>).

    python experiments/robustness/halves.py MASSEY ROOM OUT

room_early / room_late: each letter's frames in the order of their numbers, first half and second half (the
frames are cut from videos, so neighbours are near-twins: a random half would leak). massey_hand123 /
massey_hand45: signers 1-3 and signers 4-5 (new people in the new setting).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def link(photos: list[Path], folder: Path) -> None:
    for p in photos:
        target = folder / p.parent.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_symlink():
            target.symlink_to(p.resolve())


def main(massey: str, room: str, out: str) -> None:
    out_dir = Path(out)
    for letter in sorted(p for p in Path(room).iterdir() if p.is_dir()):
        frames = sorted(letter.iterdir(), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        half = len(frames) // 2
        link(frames[:half], out_dir / "room_early")
        link(frames[half:], out_dir / "room_late")
    for letter in sorted(p for p in Path(massey).iterdir() if p.is_dir()):
        photos = sorted(letter.iterdir())
        link([p for p in photos if re.match(r"hand[123]_", p.name)], out_dir / "massey_hand123")
        link([p for p in photos if re.match(r"hand[45]_", p.name)], out_dir / "massey_hand45")
    for part in sorted(out_dir.iterdir()):
        print(f"{part}: {sum(1 for _ in part.glob('*/*'))} photos")


if __name__ == "__main__":
    main(*sys.argv[1:])
