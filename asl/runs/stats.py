"""How sure a comparison of runs is: intervals over seeds and photos, paired tests, probability of improvement.

Runs of a sweep that share a seed share the split and the initialisation, so two settings are compared
*paired by seed*; where two runs scored the same photos, also photo by photo. scipy.stats does the work
where it has the method (``bootstrap``, ``permutation_test``, ``ttest_rel``, ``binomtest``). The
anchors: rliable (Agarwal et al., NeurIPS 2021) for the stratified bootstrap and the probability of
improvement; Dror et al. (ACL 2018) for the choice of tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
#: Up to this many pairs the sign-flip test enumerates all 2^n sign patterns (exact p-value).
EXACT_PAIRS = 16


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over runs (seeds); (nan, nan) for fewer than two.

    With 3 seeds the resamples take only 10 distinct means, all within the range of the three values:
    read the interval as the spread the seeds showed, not as a guarantee."""
    x = np.asarray(values, float)
    if x.size < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    ci = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile",
                         rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def photo_interval(strata: Sequence[tuple[np.ndarray, np.ndarray | None]], confidence: float = CONFIDENCE,
                   seed: int = 0) -> tuple[float, float]:
    """Stratified bootstrap over photos (rliable's, with seeds as the strata): within each seed its photos
    are resampled with replacement, and the statistic is the mean over seeds of the per-seed accuracy,
    or of the per-seed difference in accuracy when a stratum is a pair ``(correct_a, correct_b)`` of
    per-photo hits on the same photos (``correct_b`` None: one run's accuracy).

    Resampling n photos of which k fall in a category draws a multinomial count, so the resamples are
    drawn from it exactly instead of materialising n × resamples indices (a test set may hold 5,000
    photos)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(RESAMPLES)
    for a, b in strata:
        a = np.asarray(a, bool)
        b = np.zeros_like(a) if b is None else np.asarray(b, bool)
        n = a.size
        if n == 0:
            return math.nan, math.nan
        plus, minus = int((a & ~b).sum()), int((~a & b).sum())  # photos that count +1 / -1 in the statistic
        counts = rng.multinomial(n, [plus / n, minus / n, 1 - (plus + minus) / n], size=RESAMPLES)
        total += (counts[:, 0] - counts[:, 1]) / n
    mean = total / len(strata)
    alpha = (1 - confidence) / 2
    return float(np.quantile(mean, alpha)), float(np.quantile(mean, 1 - alpha))


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) + ½ P(X = Y) over every pair of a run of ``x`` and a run of ``y`` (rliable; the
    Mann-Whitney U over n·m): 1 when every run of ``x`` beats every run of ``y``, 0.5 for a tie."""
    a, b = np.asarray(x, float)[:, None], np.asarray(y, float)[None, :]
    if a.size == 0 or b.size == 0:
        return math.nan
    return float(((a > b) + 0.5 * (a == b)).mean())


def smallest_sign_flip_p(n: int) -> float:
    """The smallest two-sided p-value a sign-flip test over ``n`` pairs can reach: 2 / 2^n (0.25 for 3)."""
    return min(1.0, 2.0 / 2**n)


def sign_flip_p(d: np.ndarray, seed: int = 0) -> float:
    """Two-sided paired permutation test of a mean difference: each pair's sign flipped at random
    (exact over all 2^n patterns up to :data:`EXACT_PAIRS` pairs)."""
    if not d.any():
        return 1.0
    res = stats.permutation_test((d, np.zeros_like(d)), lambda a, b, axis: np.mean(a - b, axis=axis),
                                 permutation_type="samples", vectorized=True, alternative="two-sided",
                                 n_resamples=np.inf if d.size <= EXACT_PAIRS else RESAMPLES,
                                 rng=np.random.default_rng(seed))
    return float(res.pvalue)


def paired_difference(x: Sequence[float], y: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``x - y`` paired (same seed): the mean difference, its paired-t interval, the p-values of the paired
    t-test and of the sign-flip permutation test, the probability of improvement, and a note when the
    pairs are too few to say anything."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} and {b.size}")
    d = a - b
    n = int(d.size)
    out: dict[str, Any] = {"n": n, "mean": float(d.mean()) if n else math.nan, "t_interval": (math.nan, math.nan),
                           "p_t": math.nan,
                           "p_sign_flip": math.nan, "smallest_sign_flip_p": smallest_sign_flip_p(n),
                           "probability_of_improvement": probability_of_improvement(a, b)}
    if n >= 2:
        if np.ptp(d) == 0:  # no spread: t is undefined; the interval is the one value
            out["t_interval"] = (float(d[0]), float(d[0]))
            out["p_t"] = 1.0 if d[0] == 0 else 0.0
        else:
            t = stats.ttest_rel(a, b)
            ci = t.confidence_interval(confidence_level=confidence)
            out.update(t_interval=(float(ci.low), float(ci.high)), p_t=float(t.pvalue))
        out["p_sign_flip"] = sign_flip_p(d)
    out["note"] = paired_note(n)
    return out


def paired_note(n: int, alpha: float = 1 - CONFIDENCE) -> str:
    """What ``n`` pairs can say: nothing under 3; under 6 the sign-flip test cannot reach ``alpha``."""
    if n < 3:
        return f"n = {n} pair(s): too few to say anything"
    smallest = smallest_sign_flip_p(n)
    if smallest > alpha:
        return (f"with {n} pairs the sign-flip test's smallest p is {smallest:.3g} > {alpha:g}: it cannot show "
                f"a difference; the t-test's p assumes normal differences")
    return ""


def mcnemar(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """McNemar's exact test on photos two runs both scored, pooled over seeds: under no difference each
    photo only one of them got right is a fair coin, so ``binomtest(min(b, c), b + c, 0.5)``.

    ``pairs``: per seed, the per-photo hits ``(correct_a, correct_b)`` on the same photos, in the same
    order. ``only_a`` / ``only_b``: photos only ``a`` / only ``b`` got right."""
    only_a = sum(int((np.asarray(a, bool) & ~np.asarray(b, bool)).sum()) for a, b in pairs)
    only_b = sum(int((~np.asarray(a, bool) & np.asarray(b, bool)).sum()) for a, b in pairs)
    discordant = only_a + only_b
    p = float(stats.binomtest(min(only_a, only_b), discordant, 0.5).pvalue) if discordant else 1.0
    return {"only_a": only_a, "only_b": only_b, "p": p, "photos": sum(len(a) for a, _ in pairs)}


def welch_interval(a: Sequence[tuple[float, float, int]], b: Sequence[tuple[float, float, int]],
                   confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Unpaired (Welch) interval and p-value of ``mean(a) - mean(b)``, each side one or more (mean, sample
    std, runs) cells averaged with equal weights (one cell: the two-sample Welch test; several: e.g. the
    mean over three set-ups, its variance the cells' summed, Welch-Satterthwaite degrees of freedom).

    What a table of mean ± std allows. It ignores the pairing by seed, so it is wider than the paired
    interval the per-seed values would give whenever the seeds move both settings alike."""
    parts = [(1 / len(a), m, s, n) for m, s, n in a] + [(-1 / len(b), m, s, n) for m, s, n in b]
    diff = sum(w * m for w, m, _, _ in parts)
    var = [w * w * s * s / n for w, _, s, n in parts]
    if sum(var) == 0:
        return {"mean": diff, "interval": (diff, diff), "p": 1.0 if diff == 0 else 0.0, "df": math.nan}
    df = sum(var) ** 2 / sum(v * v / (n - 1) for v, (_, _, _, n) in zip(var, parts, strict=True) if v > 0)
    se = math.sqrt(sum(var))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return {"mean": diff, "interval": (diff - half, diff + half), "p": p, "df": df}
