"""asl.runs.stats against values known by hand: McNemar, paired t, sign flips, bootstrap, improvement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asl.runs.stats import (
    mcnemar,
    mean_interval,
    paired_difference,
    paired_note,
    photo_interval,
    probability_of_improvement,
    smallest_sign_flip_p,
    welch_interval,
)


def hits(right: int, wrong: int) -> np.ndarray:
    return np.array([True] * right + [False] * wrong)


def test_mcnemar_exact_p_on_a_known_table():
    # 10 photos only a got right, 2 only b: two-sided exact p = 2 * P(Bin(12, .5) <= 2) = 2 * 79 / 4096
    a = np.concatenate([hits(10, 2), hits(5, 0), hits(0, 3)])
    b = np.concatenate([hits(0, 10), hits(2, 0), hits(5, 0), hits(0, 3)])
    r = mcnemar([(a, b)])
    assert (r["only_a"], r["only_b"], r["photos"]) == (10, 2, 20)
    assert r["p"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    # pooled over seeds: the discordant photos add up
    assert mcnemar([(a[:10], b[:10]), (a[10:], b[10:])])["p"] == pytest.approx(r["p"])
    assert mcnemar([(hits(3, 0), hits(3, 0))])["p"] == 1.0  # no discordant photo: no evidence


def test_paired_t_against_a_hand_computation():
    x, y = [0.892, 0.858, 0.921], [0.758, 0.758, 0.746]
    d = np.subtract(x, y)
    se = d.std(ddof=1) / math.sqrt(3)
    r = paired_difference(x, y)
    assert r["mean"] == pytest.approx(d.mean())
    t = d.mean() / se
    assert t == pytest.approx(6.2878, abs=1e-3)
    # two-sided p of t with 2 df: 1 - t / sqrt(t^2 + 2) (the t(2) distribution in closed form)
    assert r["p_t"] == pytest.approx(1 - t / math.sqrt(t * t + 2))
    t975 = 4.302652729911275  # t(0.975, 2 df)
    assert r["t_interval"] == pytest.approx((d.mean() - t975 * se, d.mean() + t975 * se))


def test_sign_flip_over_three_pairs_cannot_go_below_a_quarter():
    r = paired_difference([0.9, 0.8, 0.85], [0.7, 0.75, 0.6])
    assert r["p_sign_flip"] == pytest.approx(0.25)  # 2 of the 8 sign patterns are as extreme
    assert smallest_sign_flip_p(3) == 0.25 and smallest_sign_flip_p(6) == pytest.approx(1 / 32)
    assert "cannot show a difference" in r["note"] and "0.25" in r["note"]
    assert "too few" in paired_note(2) and paired_note(6) == ""
    # with 6 pairs all in one direction the exact p is 2 / 64
    assert paired_difference([1.0] * 6, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])["p_sign_flip"] == pytest.approx(2 / 64)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.8, 0.05, 5), rng.normal(0.8, 0.05, 200)
    lo, hi = mean_interval(few)
    assert lo < few.mean() < hi
    lo2, hi2 = mean_interval(many)
    assert lo2 < many.mean() < hi2 and hi2 - lo2 < hi - lo
    assert all(math.isnan(v) for v in mean_interval([0.8]))
    assert mean_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_photo_interval_stratified_by_seed():
    small = [(hits(16, 4), None)] * 3  # 80 % right on 20 photos, three seeds
    large = [(hits(800, 200), None)] * 3
    lo, hi = photo_interval(small)
    lo2, hi2 = photo_interval(large)
    assert lo < 0.8 < hi and lo2 < 0.8 < hi2 and hi2 - lo2 < hi - lo
    # the normal approximation of three pooled binomials: 0.8 ± 1.96 * sqrt(.16 / 3000)
    assert (hi2 - lo2) / 2 == pytest.approx(1.96 * math.sqrt(0.16 / 3000), rel=0.1)
    # a paired difference: a gets 10 photos right that b misses, on 100 photos
    a, b = hits(90, 10), np.concatenate([hits(80, 10), hits(0, 10)])
    dlo, dhi = photo_interval([(a, b)])
    assert 0 < dlo < 0.1 < dhi


def test_probability_of_improvement():
    assert probability_of_improvement([0.9, 0.95, 0.92], [0.7, 0.8, 0.75]) == 1.0  # dominates
    assert probability_of_improvement([0.7, 0.8], [0.9, 0.95]) == 0.0
    assert probability_of_improvement([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert probability_of_improvement([0.6, 0.8], [0.7]) == 0.5
    assert paired_difference([0.9, 0.95, 0.92], [0.7, 0.8, 0.75])["probability_of_improvement"] == 1.0


def test_welch_from_summary_statistics():
    from scipy import stats

    a, b = np.array([0.892, 0.858, 0.921]), np.array([0.758, 0.758, 0.746])
    r = welch_interval([(a.mean(), a.std(ddof=1), 3)], [(b.mean(), b.std(ddof=1), 3)])
    assert r["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert r["interval"] == pytest.approx((ci.low, ci.high))
    # the mean of two set-ups against one: variance (1/4)(.04/4 + .09/4) + .01/4, Satterthwaite df by hand
    m = welch_interval([(10, 0.2, 4), (20, 0.3, 4)], [(14, 0.1, 4)])
    v = [0.04 / 16, 0.09 / 16, 0.01 / 4]
    df = sum(v) ** 2 / sum(x * x / 3 for x in v)
    assert m["mean"] == pytest.approx(1.0) and m["df"] == pytest.approx(df)
    assert m["interval"][1] - 1.0 == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(sum(v)))


def test_unequal_pairs_refused():
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([1.0, 2.0], [1.0])


def test_intervals_script_reads_table_figures_as_printed():
    """experiments/intervals.py: per-seed values and mean ± std cells, as the READMEs print them."""
    import subprocess
    import sys

    from tests.conftest import REPO

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "experiments" / "intervals.py"), *args],
                              capture_output=True, text=True, timeout=120, cwd=REPO)

    paired = run("paired", "0.892, 0.858, 0.921", "0.758 / 0.758 / 0.746")
    assert paired.returncode == 0, paired.stderr
    assert paired.stdout.startswith("difference +0.136, 95 % CI [+0.043, +0.230] (paired t over 3 seeds), p = 0.024")
    assert "sign-flip p = 0.25" in paired.stdout and "smallest p is 0.25" in paired.stdout
    welch = run("welch", "**0.9139 ± 0.0244** (n=3)", "0.8111 ± 0.0307 (n=3)")
    assert welch.stdout.startswith("difference +0.1028, 95 % CI [+0.0387, +0.1669] (Welch") and "not significant" not in welch.stdout
    assert "not significant" in run("paired", "52.0 / 45.6 / 52.0 %", "48.3 / 46.4 / 50.0 %").stdout
    bad = run("welch", "0.9 +- 0.1 (n=3)", "0.8 ± 0.1 (n=3)")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a table cell" in bad.stderr
    assert "give the number of seeds with --n" in run("welch", "0.9 ± 0.1", "0.8 ± 0.1 (n=3)").stderr
    means = run("welch", "--n", "3", "84.6 ± 0.7; 41.0 ± 7.6; 60.1 ± 3.1", "82.5 ± 1.4; 34.2 ± 3.3; 54.1 ± 3.6")
    assert means.stdout.startswith("difference +5.0, 95 % CI [") and "the mean of 3 vs 3 set-ups" in means.stdout
    # 85.0 ± 1.6 over 3 seeds: 85.0 ± t(0.975, 2) * 1.6 / sqrt(3) = 85.0 ± 4.0
    assert run("mean", "85.0 ± 1.6 (n=3)").stdout.startswith("mean 85.0, 95 % CI [81.0, 89.0] (t, n = 3)")


def test_intervals_script_pairs_saved_runs_by_seed(tmp_path):
    """``paired --key``: a metrics.json key of each run (or of asl-eval's folder inside it), paired by seed."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    for row, values in (("a", (0.892, 0.858, 0.921)), ("b", (0.746, 0.758, 0.758))):
        for num, (seed, v) in enumerate(zip((0, 1, 2) if row == "a" else (2, 1, 0), values, strict=True)):
            run = tmp_path / row / str(num)
            (run / ".hydra").mkdir(parents=True)
            (run / ".hydra" / "config.yaml").write_text(f"seed: {seed}\n")
            (run / "transfer").mkdir()
            (run / "transfer" / "metrics.json").write_text(json.dumps({"test/acc_all_photos": v}))
    r = subprocess.run([sys.executable, str(REPO / "experiments" / "intervals.py"), "paired", "--key", "test/acc_all_photos",
                        str(tmp_path / "a" / "*" / "transfer" / "metrics.json"), str(tmp_path / "b" / "*" / "transfer" / "metrics.json")],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    # b's folders hold seeds 2, 1, 0: paired by seed, the same line as the README figures give
    assert r.stdout.startswith("difference +0.1363, 95 % CI [+0.0430, +0.2296] (paired t over 3 seeds), p = 0.024")
