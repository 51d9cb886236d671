"""The 95 % interval and test of a difference an experiment README rests on, from the figures its tables print.

Where the saved runs exist, ``asl-compare RUNS --baseline SETTING`` recomputes all of this from them (and
photo by photo, from predictions.csv). Where only a README's figures are at hand:

    # per-seed values, in the same seed order (paired by seed): paired t interval and p, exact sign-flip p
    python experiments/intervals.py paired "0.892, 0.858, 0.921" "0.758, 0.758, 0.746"
    # a table's mean ± std (n) cells, copied as printed: unpaired Welch interval and p (wider than paired)
    python experiments/intervals.py welch "0.9139 ± 0.0244 (n=3)" "0.8111 ± 0.0307 (n=3)"
    # the mean over set-ups: several cells a side, ';' between them; --n for cells that print no n
    python experiments/intervals.py welch --n 3 "84.6 ± 0.7; 41.0 ± 7.6; 60.1 ± 3.1" "82.5 ± 1.4; 34.2 ± 3.3; 54.1 ± 3.6"
    # one row against a fixed goal: the t interval of its mean
    python experiments/intervals.py mean "85.0 ± 1.6 (n=3)"
    # from saved runs: a metrics.json key of every seed's file (asl-eval's too), paired by the runs' seeds
    python experiments/intervals.py paired --key test/acc_all_photos "runs/a/*/transfer/metrics.json" "runs/b/*/transfer/metrics.json"

Prints one line to paste beside the table: the difference (first minus second), its interval, the p-values
and what n allows. The figures are the input; nothing is stored here.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
from pathlib import Path

from omegaconf import OmegaConf

from asl import ASLError
from asl.cli import user_errors
from asl.runs.stats import paired_difference, welch_interval

CELL = re.compile(r"^\s*\**([-+]?[\d.]+)\s*±\s*([\d.]+)\**\s*(?:\(n\s*=\s*(\d+)\))?\s*$")


def numbers(text: str) -> list[float]:
    """``"0.892, 0.858 0.921"`` or ``"22.0 / 22.1 / 26.5"`` → the numbers."""
    try:
        return [float(v) for v in re.split(r"[\s,/]+", text.strip().rstrip("%").strip()) if v]
    except ValueError:
        raise ASLError(f"{text!r}: not a list of numbers (e.g. \"0.892, 0.858, 0.921\")") from None


def per_seed(pattern: str, key: str) -> dict[int, float]:
    """``key`` of every metrics.json matching ``pattern``, by the seed of the run folder it lies in (the
    nearest folder above it with .hydra/config.yaml: asl-eval's output folders lie inside their run)."""
    values: dict[int, float] = {}
    files = sorted(glob.glob(pattern))
    if not files:
        raise ASLError(f"{pattern}: no file matches")
    for f in map(Path, files):
        run = next((d for d in f.parents if (d / ".hydra" / "config.yaml").exists()), None)
        if run is None:
            raise ASLError(f"{f}: in no run folder (no .hydra/config.yaml above it), so its seed is unknown")
        value = json.loads(f.read_text()).get(key)
        if not isinstance(value, int | float):
            raise ASLError(f"{f}: no number under {key!r}")
        values[int(OmegaConf.load(run / ".hydra" / "config.yaml").seed)] = float(value)
    return values


def from_runs(a: str, b: str, key: str) -> tuple[list[float], list[float]]:
    """The two patterns' values on the seeds both have, in seed order."""
    va, vb = per_seed(a, key), per_seed(b, key)
    seeds = sorted(set(va) & set(vb))
    return [va[s] for s in seeds], [vb[s] for s in seeds]


def cells(text: str, n: int | None) -> list[tuple[float, float, int]]:
    """``"0.9139 ± 0.0244 (n=3)"`` (bold marks allowed; several separated by ``;``; without ``(n=…)`` the
    ``--n`` given) → [(mean, std, n)]."""
    out = []
    for part in text.split(";"):
        m = CELL.match(part)
        if not m:
            raise ASLError(f"{part.strip()!r}: not a table cell of the form \"0.9139 ± 0.0244 (n=3)\"")
        runs = int(m[3]) if m[3] else n
        if runs is None:
            raise ASLError(f"{part.strip()!r}: no (n=…) in the cell: give the number of seeds with --n")
        if runs < 2:
            raise ASLError(f"{part.strip()!r}: n={runs}: a standard deviation needs 2 runs or more")
        out.append((float(m[1]), float(m[2]), runs))
    return out


def decimals(*texts: str) -> int:
    """As many decimals as the most precise figure given (0.892 → 3, 22.0 → 1)."""
    return max((len(d) for t in texts for d in re.findall(r"\.(\d+)", t)), default=0)


def paired_line(a: list[float], b: list[float], places: int = 3) -> str:
    if len(a) != len(b):
        raise ASLError(f"paired: {len(a)} and {len(b)} values; give one per seed for both, in the same seed order")
    r = paired_difference(a, b)
    lo, hi = r["t_interval"]
    line = (f"difference {r['mean']:+.{places}f}, 95 % CI [{lo:+.{places}f}, {hi:+.{places}f}] (paired t over {r['n']} seeds), "
            f"p = {r['p_t']:.2g}; sign-flip p = {r['p_sign_flip']:.2g}; P(improvement) = {r['probability_of_improvement']:.2g}")
    significant = r["n"] >= 3 and r["p_t"] < 0.05
    return line + ("" if significant else "; not significant") + (f" ({r['note']})" if r["note"] else "")


def welch_line(a: list[tuple[float, float, int]], b: list[tuple[float, float, int]], places: int = 3) -> str:
    r = welch_interval(a, b)
    lo, hi = r["interval"]
    runs = " and ".join("+".join(str(c[2]) for c in side) for side in (a, b))
    over = f"the mean of {len(a)} vs {len(b)} set-ups, " if len(a) > 1 or len(b) > 1 else ""
    return (f"difference {r['mean']:+.{places}f}, 95 % CI [{lo:+.{places}f}, {hi:+.{places}f}] (Welch, unpaired, from "
            f"mean ± std; {over}n = {runs}), p = {r['p']:.2g}" + ("" if r["p"] < 0.05 else "; not significant"))


def mean_line(a: list[tuple[float, float, int]], places: int = 3) -> str:
    """The t interval of a mean (over set-ups if several cells): a Welch interval against a constant."""
    r = welch_interval(a, [(0.0, 0.0, 2)])
    lo, hi = r["interval"]
    return f"mean {r['mean']:.{places}f}, 95 % CI [{lo:.{places}f}, {hi:.{places}f}] (t, n = {'+'.join(str(c[2]) for c in a)})"


@user_errors
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    pa = sub.add_parser("paired", help="per-seed values of two settings, in the same seed order")
    pa.add_argument("--key", default=None, help="read the values from runs: a and b are globs of metrics.json files")
    pw = sub.add_parser("welch", help="two 'mean ± std (n=k)' table cells (or two ';'-separated lists: means over set-ups)")
    pw.add_argument("--n", type=int, default=None, help="seeds behind cells that print no (n=…)")
    pm = sub.add_parser("mean", help="one 'mean ± std (n=k)' cell: the interval of its mean (against a goal)")
    for s in (pa, pw):
        s.add_argument("a", help="the setting the difference is of (first minus second)")
        s.add_argument("b", help="the setting it is compared with")
    pm.add_argument("a", help="the setting")
    pm.add_argument("--n", type=int, default=None, help="seeds behind a cell that prints no (n=…)")
    args = p.parse_args(argv)
    if args.kind == "paired" and args.key:
        print(paired_line(*from_runs(args.a, args.b, args.key), 4))
        return
    places = decimals(args.a, getattr(args, "b", ""))
    if args.kind == "mean":
        print(mean_line(cells(args.a, args.n), places))
        return
    if args.kind == "paired":
        print(paired_line(numbers(args.a), numbers(args.b), places))
    else:
        print(welch_line(cells(args.a, args.n), cells(args.b, args.n), places))


if __name__ == "__main__":
    main()
