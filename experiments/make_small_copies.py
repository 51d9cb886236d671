"""Copy the real photo sets at <= 96 px (JPEG, same folders and names): small enough to travel to a
GPU machine with the repository (experiments/gpu_session.sh), large enough for 64-px models.

    python experiments/make_small_copies.py ../shared/data .devdata
"""

import sys
from pathlib import Path

from PIL import Image


def main(src: Path, dst: Path, side: int = 96) -> None:
    n = 0
    for p in sorted(src.rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            q = dst / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((side, side), Image.LANCZOS)
                im.save(q, quality=88)
            n += 1
    print(f"{n} images → {dst}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
