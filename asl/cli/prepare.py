"""``asl-prepare hands data.root=...``: run the hand detector once per photo into the cache, and
print and save the detection rate per class (training then finds every hand in the cache)."""

import sys

from omegaconf import DictConfig

from asl.cli import command
from asl.runs.prepare import prepare_hands

TASKS = {"hands": "detect hands in every photo under data.root and cache them"}


@command("prepare")
def _main(cfg: DictConfig) -> None:
    r = prepare_hands(cfg)
    worst = sorted((rate, c) for c, rate in r["rates"].items() if c != "all")[:5]
    s = r["settings"]
    print(f"\n{cfg.data.root}: hand found in {r['rates']['all']:.1%} of {r['photos']} photos "
          f"(padding {s['padding']}, min_confidence {s['min_confidence']}, retry {s['retry']})\n"
          f"  lowest: {', '.join(f'{c} {rate:.0%}' for rate, c in worst)}\n"
          f"cache: {r['cache']}\nrates per class: {r['rates_csv']}")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        tasks = "\n".join(f"  {k}: {v}" for k, v in TASKS.items())
        print(f"usage: asl-prepare TASK key=value ...\n{tasks}\ne.g. asl-prepare hands data.root=../shared/data/asl_massey_black",
              file=sys.stderr)
        sys.exit(2)
    sys.argv.pop(1)
    _main()


if __name__ == "__main__":
    main()
