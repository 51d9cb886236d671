"""``asl-compare MULTIRUN_DIR [...] [--metrics test/acc test/f1_macro] [--baseline SETTING] [--out DIR]``: mean ± std
and 95 % intervals per setting; with ``--baseline``, each setting's difference from it, paired by seed, with its tests."""

from __future__ import annotations

import argparse

from asl.cli import user_errors
from asl.runs.compare import DEFAULT_METRICS, compare, why_unfinished


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="asl-compare", description=(
        "Group the jobs of Hydra multirun folder(s) by their overrides minus the seed, print mean ± std and 95 % "
        "intervals of the chosen metrics per setting (and, with --baseline, each setting's difference from it, paired "
        "by seed, with its tests), write compare.md and compare.png (the metric per setting and seed; validation "
        "accuracy against images seen)."))
    p.add_argument("dirs", nargs="+", help="multirun folder(s), e.g. multirun/2026-01-01/12-00-00-000000")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS),
                   help="numeric keys of each job's metrics.json (default: %(default)s)")
    p.add_argument("--baseline", default=None, metavar="SETTING",
                   help="a setting as the table names it (e.g. curriculum=none), or one of the folders given whose "
                        "runs are one setting: compare every other setting with it, paired by seed")
    p.add_argument("--out", default=None, help="where compare.md and compare.png go (default: the first folder)")
    return p.parse_args(argv)


@user_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    r = compare(args.dirs, args.metrics, args.out, args.baseline)
    print("mean ± std (n runs) [95 % interval: bootstrap over seeds] photos [95 % interval: bootstrap over photos, "
          "stratified by seed]")
    print(r["table"])
    if r["paired_table"]:
        print(f"\nagainst {r['baseline']}, paired by seed: 95 % interval and p from the paired t-test; p (sign-flip): "
              f"the exact paired permutation test; photos: stratified bootstrap and McNemar's exact test (compare.md says more)")
        print(r["paired_table"])
    for path in r["unfinished"]:
        print(f"note: {path}: {why_unfinished(path)}; left out")
    print(f"\nwritten: {r['markdown']}, {r['png']}")


if __name__ == "__main__":
    main()
