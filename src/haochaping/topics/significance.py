"""The test behind "emerging" (新出现的投诉话题): pure Python, no database.

For one item and one term: `recent` of the item's `n_recent` valid ratings in the recent weeks
came with a bad or 基本满意 comment naming the term, `before` of its `n_before` ratings in the
weeks before. If the term's rate per rating had not changed, then, given the `recent + before`
comments naming it, the number falling in the recent weeks would be binomial with
p = n_recent / (n_recent + n_before) (the conditional test for two Poisson rates, normalised by
the rating volume). The one-sided p-value is P(X >= recent). A term is emerging when

- `recent >= min_count` (one comment, or a handful, is not a trend),
- its rate rose (recent / n_recent > before / n_before), and
- p < alpha / m, m the number of (item, term) pairs tested (Bonferroni: hundreds of terms are
  tested at once, and the flat weeks of a large province must not raise any).

The score is -log10(p), highest first.

Most tested pairs are far from any threshold: `may_be_emerging` tells them apart without the
tail, by Slud's inequality (E. Slud, "Distribution inequalities for the binomial law", Ann.
Probab. 5 (1977) 404-412): for X ~ Binomial(n, p) and n p <= k, if p <= 1/4, or p <= 1/2 and
k <= n (1 - p), then P(X >= k) >= 1 - Phi((k - n p) / sqrt(n p (1 - p))). So where that z is at
most Phi^-1(1 - threshold) the p-value is at least the threshold: not emerging. The database
applies the same condition (`queries.py`) so that only the few pairs it leaves come back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.01
MIN_COUNT = 5
MAX_SCORE = 300.0  # -log10 of the smallest p a float holds, about


def _log_point(k: int, n: int, lp: float, lq: float, log_n: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p)."""
    return log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq


def binomial_tail(k: int, n: int, p: float, at_least: float | None = None) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space from k up (terms past the mean
    only fall, so the sum stops once they no longer matter). With `at_least`: when the first
    term alone, P(X = k), is already at least that much, that term is returned instead of the
    sum (the tail is no smaller: a test against a threshold needs no more)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    if at_least is not None:
        point = math.exp(_log_point(k, n, lp, lq, log_n))
        if point >= at_least:
            return min(1.0, point)
    first = None
    total = 0.0
    for i in range(k, n + 1):
        term = _log_point(i, n, lp, lq, log_n)
        if first is None:
            first = term
        value = math.exp(term - first)
        total += value
        if i > n * p and value < 1e-12 * total:
            break
    assert first is not None
    return min(1.0, math.exp(first) * total)


def z_bound(threshold: float) -> float:
    """The z above which a p-value under `threshold` is possible at all (see the module),
    lowered by a millionth so that rounding never drops a pair at the boundary."""
    return -NormalDist().inv_cdf(min(0.5, threshold)) * (1 - 1e-6)


def may_be_emerging(recent: int, before: int, n_recent: int, n_before: int, z: float) -> bool:
    """False only when the one-sided p-value of these counts is surely at least the threshold
    `z` was computed from (`z_bound`; Slud's inequality, see the module). The conditions are
    those `queries.py` puts in SQL, multiplied out: with m = n_recent + n_before, p =
    n_recent / m and n = recent + before, (k - n p)^2 <= z^2 n p (1 - p) is
    (recent m - n n_recent)^2 <= z^2 n n_recent n_before."""
    m, n = n_recent + n_before, recent + before
    if n_recent > n_before:  # p > 1/2: the inequality does not apply
        return True
    if 4 * n_recent > m and recent * m > n * n_before:  # 1/4 < p, k > n (1 - p): neither
        return True
    excess = float(recent * m - n * n_recent)
    return excess > 0 and excess * excess > z * z * n * n_recent * n_before


def score_of(p_value: float) -> float:
    if p_value <= 0.0:
        return MAX_SCORE
    return min(MAX_SCORE, -math.log10(p_value))


@dataclass(frozen=True)
class Verdict:
    """The test of one (item, term)."""

    p_value: float
    score: float
    rose: bool


def test(
    recent: int, before: int, n_recent: int, n_before: int, below: float | None = None
) -> Verdict:
    """The one-sided conditional binomial test of one term's counts (see the module).
    `below`: only a p-value under it matters (the Bonferroni threshold); a pair whose
    p-value is surely not under it gets a lower bound of its p-value (still >= `below`)
    instead of the exact one, which is the same verdict for less work."""
    if n_recent <= 0 or n_before <= 0:
        return Verdict(1.0, 0.0, False)  # no baseline: nothing to rise against
    rose = recent * n_before > before * n_recent
    if not rose:  # no rise, no test: the tail of a count at or below its mean is large anyway
        return Verdict(1.0, 0.0, False)
    share = n_recent / (n_recent + n_before)
    p_value = binomial_tail(recent, recent + before, share, at_least=below)
    return Verdict(p_value, round(score_of(p_value), 3), rose)


def emerging(
    verdict: Verdict, recent: int, *, tested: int, alpha: float = ALPHA, min_count: int = MIN_COUNT
) -> bool:
    """Whether a tested term counts as emerging (minimum count, a rise, Bonferroni)."""
    return recent >= min_count and verdict.rose and verdict.p_value < alpha / max(1, tested)
