"""``asl-compare MULTIRUN_DIR [...] [--metrics test/acc test/f1_macro] [--out DIR]``: mean ± std per setting."""

from __future__ import annotations

import argparse

from asl.cli import user_errors
from asl.runs.compare import DEFAULT_METRICS, compare, why_unfinished


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="asl-compare", description=(
        "Group the jobs of Hydra multirun folder(s) by their overrides minus the seed, print mean ± std of "
        "the chosen metrics per setting, write compare.md and compare.png (validation accuracy against images seen)."))
    p.add_argument("dirs", nargs="+", help="multirun folder(s), e.g. multirun/2026-01-01/12-00-00-000000")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS),
                   help="numeric keys of each job's metrics.json (default: %(default)s)")
    p.add_argument("--out", default=None, help="where compare.md and compare.png go (default: the first folder)")
    return p.parse_args(argv)


@user_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    r = compare(args.dirs, args.metrics, args.out)
    print(r["table"])
    for path in r["unfinished"]:
        print(f"note: {path}: {why_unfinished(path)}; left out")
    print(f"\nwritten: {r['markdown']}" + (f", {r['png']}" if r["png"] else " (no TensorBoard curves found for the plot)"))


if __name__ == "__main__":
    main()
