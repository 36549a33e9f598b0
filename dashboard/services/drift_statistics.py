"""Drift statistics of one batch's scores against a model's calibration normals (numpy only).

Three figures per batch, and a decision with named thresholds:

- **Share above the calibration p99.** The cut is the r-th highest of the m calibration normals,
  r = 1 % of (m + 1) rounded (at least 1): a batch of the same parts puts r / (m + 1) of its
  scores above it, about 1 % from 99 normals on and more with fewer (4.8 % for 20). The p-value
  is exact and assumes nothing about the scores: when batch and calibration come from one
  distribution, the count above the r-th highest normal follows the rank law that
  ``exceedance_p_value`` sums, which also allows for the calibration being a small sample.
- **Kolmogorov–Smirnov** two-sample statistic D and its asymptotic p-value.
- **PSI** (population stability index) over bins cut at calibration quantiles (deciles when
  there are 100 normals or more, fewer bins with fewer normals so each holds about ten of them),
  with ``PSI_EPSILON`` for a bin one side leaves empty.

A batch has drifted when at least one of these holds (each needs significance *and* size, so a
small batch does not fire by chance and a huge batch does not fire on a shift nobody minds):

- ``"tail"``: the share above p99 has p-value below ``ALPHA`` and is at least
  ``MIN_SHARE_RATIO`` times the share expected (more false alarms than the threshold was set for);
- ``"shift"``: the KS p-value is below ``ALPHA`` and PSI is at least ``PSI_DRIFT`` (the usual
  rule of thumb: under 0.1 stable, 0.1 to 0.25 a moderate change, 0.25 or more a major one);
  this one also sees scores that moved down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

QUANTILE = 0.99  # the calibration percentile the share is counted above
ALPHA = 0.001  # per-batch significance: about one false alarm in a thousand undrifted batches
MIN_SHARE_RATIO = 2.0  # "tail" needs at least twice the share expected above p99
PSI_DRIFT = 0.25  # "shift" needs a major change of the distribution
PSI_MAX_BINS = 10
NORMALS_PER_BIN = 10  # fewer calibration normals, fewer PSI bins (at least 2)
PSI_EPSILON = 1e-4  # the share given to a bin with no score, so that the log stays finite
TAIL = "tail"
SHIFT = "shift"


class DriftError(ValueError):
    """The drift statistics cannot be computed from these inputs (no calibration normals)."""


@dataclass(frozen=True)
class Reference:
    """The calibration normals as the statistics use them: sorted, the p99 cut, PSI bins."""

    scores: np.ndarray  # sorted calibration scores
    rank: int  # the cut is the rank-th highest calibration score
    cut: float
    psi_edges: np.ndarray  # interior bin edges (calibration quantiles)
    psi_expected: np.ndarray  # share of the calibration normals in each bin

    @property
    def size(self) -> int:
        return int(self.scores.size)

    @property
    def expected_share(self) -> float:
        """The share of an undrifted batch expected above the cut: rank / (m + 1)."""
        return self.rank / (self.size + 1)


@dataclass(frozen=True)
class DriftStats:
    """One batch's scores against the calibration normals; ``reasons`` empty = not drifted."""

    n: int
    above: int  # scores above the calibration p99 cut
    share_above: float
    expected_share: float
    tail_p_value: float
    ks_statistic: float
    ks_p_value: float
    psi: float
    median: float
    reasons: tuple[str, ...] = ()

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)

    @property
    def measured(self) -> bool:
        """Whether there was any score to measure (an empty batch has NaN figures)."""
        return self.n > 0


def cut_rank(size: int, quantile: float = QUANTILE) -> int:
    """The rank from the top of the calibration score the share is counted above."""
    return int(min(max(1, round((1.0 - quantile) * (size + 1))), max(size, 1)))


def psi_bin_count(size: int) -> int:
    """PSI bins for ``size`` calibration normals: about ten normals each, 2 to 10 bins."""
    return int(min(PSI_MAX_BINS, max(2, size // NORMALS_PER_BIN)))


def _bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, values, side="right")


def reference(calibration: Sequence[float] | np.ndarray) -> Reference:
    """The reference of a model from its calibration normal scores."""
    scores = np.sort(np.asarray(calibration, dtype=np.float64))
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise DriftError(
            "the model has no calibration normal scores, so its drift cannot be measured; "
            "retrain it (training stores them)"
        )
    rank = cut_rank(scores.size)
    bins = psi_bin_count(scores.size)
    edges = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    counts = np.bincount(_bin_index(edges, scores), minlength=edges.size + 1)
    return Reference(
        scores=scores,
        rank=rank,
        cut=float(scores[scores.size - rank]),
        psi_edges=edges,
        psi_expected=counts / scores.size,
    )


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))))


def exceedance_p_value(above: int, n: int, m: int, rank: int) -> float:
    """P(K >= ``above``) for K, the scores of an ``n``-score batch above the ``rank``-th highest
    of ``m`` calibration scores, when both samples come from one continuous distribution:
    P(K = k) = C(k + r - 1, k) C(n - k + m - r, n - k) / C(m + n, n)."""
    if above <= 0:
        return 1.0
    if above > n:
        return 0.0
    log_fact = _log_factorials(m + n)
    k = np.arange(above, n + 1)

    def log_choose(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        return np.asarray(log_fact[a] - log_fact[b] - log_fact[np.subtract(a, b)])

    terms = (
        log_choose(k + rank - 1, k)
        + log_choose(n - k + m - rank, n - k)
        - float(log_choose(m + n, n))
    )
    return float(min(1.0, np.exp(terms).sum()))


def kolmogorov_sf(z: float) -> float:
    """P(sup|B(t)| > z) for a Brownian bridge: the limiting two-sided KS p-value at ``z``."""
    if z <= 0.0:
        return 1.0
    j = np.arange(1, 101, dtype=np.float64)
    if z < 1.18:  # the series in exp(-1/z^2) converges fast there
        inner = np.exp(-((2.0 * j - 1.0) ** 2) * math.pi**2 / (8.0 * z * z)).sum()
        value = 1.0 - math.sqrt(2.0 * math.pi) / z * float(inner)
    else:
        signs = np.where(j % 2 == 1, 1.0, -1.0)
        value = 2.0 * float((signs * np.exp(-2.0 * j * j * z * z)).sum())
    return float(min(1.0, max(0.0, value)))


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(D, p): the largest gap between the two empirical distribution functions, and the
    asymptotic p-value ``kolmogorov_sf(sqrt(n m / (n + m)) D)``."""
    a, b = np.sort(a), np.sort(b)
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    values = np.concatenate([a, b])
    gap = np.abs(
        np.searchsorted(a, values, side="right") / a.size
        - np.searchsorted(b, values, side="right") / b.size
    )
    d = float(gap.max())
    effective = a.size * b.size / (a.size + b.size)
    return d, kolmogorov_sf(math.sqrt(effective) * d)


def psi(ref: Reference, scores: np.ndarray) -> float:
    """Population stability index of ``scores`` on the reference's calibration bins."""
    if scores.size == 0:
        return math.nan
    counts = np.bincount(_bin_index(ref.psi_edges, scores), minlength=ref.psi_edges.size + 1)
    actual = np.maximum(counts / scores.size, PSI_EPSILON)
    expected = np.maximum(ref.psi_expected, PSI_EPSILON)
    return float(((actual - expected) * np.log(actual / expected)).sum())


def drift_reasons(stats: DriftStats) -> tuple[str, ...]:
    """Which of the drift rules (``TAIL``, ``SHIFT``) the figures meet."""
    reasons: list[str] = []
    if stats.tail_p_value < ALPHA and stats.share_above >= MIN_SHARE_RATIO * stats.expected_share:
        reasons.append(TAIL)
    if stats.ks_p_value < ALPHA and stats.psi >= PSI_DRIFT:
        reasons.append(SHIFT)
    return tuple(reasons)


def drift_stats(ref: Reference, scores: Sequence[float] | np.ndarray) -> DriftStats:
    """The figures and the decision for one batch's scores."""
    values = np.asarray(scores, dtype=np.float64)
    n = int(values.size)
    if n == 0:
        nan = math.nan
        return DriftStats(0, 0, nan, ref.expected_share, nan, nan, nan, nan, nan)
    above = int((values > ref.cut).sum())
    # The normals above the cut, plus one: r without ties. With normals tied at the cut, the
    # scores above it are fewer than above a tie broken at random, so the test stays valid.
    rank = int((ref.scores > ref.cut).sum()) + 1
    d, ks_p = ks_two_sample(ref.scores, values)
    stats = DriftStats(
        n=n,
        above=above,
        share_above=above / n,
        expected_share=ref.expected_share,
        tail_p_value=exceedance_p_value(above, n, ref.size, rank),
        ks_statistic=d,
        ks_p_value=ks_p,
        psi=psi(ref, values),
        median=float(np.median(values)),
    )
    return replace(stats, reasons=drift_reasons(stats))
