"""Drift statistics on known distributions: the p99 share and its exact p-value, KS and PSI against
hand-computed values, and the drift rule (same parts never fire, shifted or wider ones do, a small
batch does not fire by chance, a huge one does not fire on a change nobody minds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard.services import drift_statistics as ds


def _normal(seed: int, size: int, loc: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, scale, size)


def test_the_p99_cut_is_the_rank_whose_expected_share_is_one_percent() -> None:
    ref = ds.reference(np.arange(999, dtype=float))
    assert ref.rank == 10 and ref.cut == 989.0  # the 10th highest of 999
    assert ref.expected_share == pytest.approx(0.01)
    small = ds.reference([0.3, 0.1, 0.2] + [0.05] * 17)  # 20 normals: only the top one
    assert small.rank == 1 and small.cut == 0.3
    assert small.expected_share == pytest.approx(1 / 21)


def test_reference_needs_calibration_scores() -> None:
    with pytest.raises(ds.DriftError, match="no calibration normal scores"):
        ds.reference([])
    with pytest.raises(ds.DriftError):
        ds.reference([math.nan])


def test_exceedance_p_value_by_hand() -> None:
    # Four normals, eight batch scores, all four top places held by the batch: C(8,4)/C(12,4).
    assert ds.exceedance_p_value(4, 8, 4, 1) == pytest.approx(70 / 495)
    assert ds.exceedance_p_value(0, 8, 4, 1) == 1.0
    assert ds.exceedance_p_value(9, 8, 4, 1) == 0.0
    # P(K = k) is a distribution with mean n r / (m + 1).
    m, n, r = 50, 30, 3
    pmf = [
        ds.exceedance_p_value(k, n, m, r) - ds.exceedance_p_value(k + 1, n, m, r)
        for k in range(n + 1)
    ]
    assert sum(pmf) == pytest.approx(1.0)
    assert sum(k * p for k, p in enumerate(pmf)) == pytest.approx(n * r / (m + 1))


def test_kolmogorov_sf_by_hand() -> None:
    assert ds.kolmogorov_sf(1.0) == pytest.approx(2 * (math.exp(-2) - math.exp(-8) + math.exp(-18)))
    assert ds.kolmogorov_sf(0.0) == 1.0
    # The two series agree where the function switches between them.
    below, above = ds.kolmogorov_sf(1.1799999), ds.kolmogorov_sf(1.1800001)
    assert below == pytest.approx(above, abs=1e-6)


def test_ks_two_sample_by_hand() -> None:
    d, p = ds.ks_two_sample(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6]))
    assert d == 0.5  # at 2: half of the first sample, none of the second
    z = math.sqrt(4 * 4 / 8) * 0.5
    series = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * z * z) for j in range(1, 20))
    assert p == pytest.approx(series) and p == pytest.approx(0.699374, abs=1e-6)
    assert ds.ks_two_sample(np.arange(10.0), np.arange(10.0))[0] == 0.0


def test_psi_by_hand_on_decile_bins() -> None:
    ref = ds.reference(np.arange(100, dtype=float))  # ten bins of ten normals
    assert ref.psi_edges.size == 9
    assert ref.psi_expected == pytest.approx(np.full(10, 0.1))
    assert ds.psi(ref, np.arange(100, dtype=float)) == pytest.approx(0.0)
    # Half the batch in the lowest decile, half in the highest, the other eight bins empty.
    batch = np.array([0.0] * 50 + [99.0] * 50)
    eps = ds.PSI_EPSILON
    expected = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (eps - 0.1) * math.log(eps / 0.1)
    assert ds.psi(ref, batch) == pytest.approx(expected)
    assert expected == pytest.approx(6.808, abs=1e-3)


def test_few_normals_get_fewer_psi_bins() -> None:
    assert ds.psi_bin_count(20) == 2
    assert ds.psi_bin_count(55) == 5
    assert ds.psi_bin_count(5_000) == 10


@pytest.mark.parametrize("calibration_size", [20, 100, 1000])
@pytest.mark.parametrize("batch_size", [10, 200, 2000])
def test_the_same_distribution_does_not_drift(calibration_size: int, batch_size: int) -> None:
    rng = np.random.default_rng(calibration_size * 7 + batch_size)
    fired = 0
    for _ in range(60):
        ref = ds.reference(rng.normal(size=calibration_size))
        fired += ds.drift_stats(ref, rng.normal(size=batch_size)).drifted
    assert fired <= 1  # about one in a thousand by the rule


def test_a_shifted_batch_drifts_on_both_rules() -> None:
    stats = ds.drift_stats(ds.reference(_normal(0, 1000)), _normal(1, 500, loc=1.0))
    assert stats.reasons == (ds.TAIL, ds.SHIFT)
    assert stats.share_above > 0.05 and stats.tail_p_value < 1e-6
    assert stats.ks_statistic > 0.3 and stats.psi > ds.PSI_DRIFT


def test_a_wider_batch_drifts_on_its_tail() -> None:
    stats = ds.drift_stats(ds.reference(_normal(0, 1000)), _normal(2, 500, scale=2.0))
    assert ds.TAIL in stats.reasons
    assert stats.share_above > 10 * stats.expected_share


def test_scores_that_moved_down_drift_on_the_shift_rule_only() -> None:
    stats = ds.drift_stats(ds.reference(_normal(0, 1000)), _normal(3, 500, loc=-1.0))
    assert stats.reasons == (ds.SHIFT,)
    assert stats.median < 0


def test_a_small_batch_with_one_high_score_does_not_fire_by_chance() -> None:
    ref = ds.reference(_normal(0, 1000))
    batch = np.concatenate([np.zeros(9), [ref.cut + 1.0]])  # 10 % above p99, ten times 1 %
    stats = ds.drift_stats(ref, batch)
    assert stats.share_above == pytest.approx(0.1)
    assert 0.08 < stats.tail_p_value < 0.11  # about 1 - 0.99**10: chance does that
    assert not stats.drifted
    all_high = ds.drift_stats(ref, np.full(10, ref.cut + 1.0))  # but ten of ten is no chance
    assert all_high.tail_p_value < 1e-15 and ds.TAIL in all_high.reasons


def test_a_huge_batch_does_not_fire_on_a_small_change() -> None:
    ref = ds.reference(_normal(0, 2000))
    stats = ds.drift_stats(ref, _normal(4, 100_000, loc=0.1))
    assert stats.ks_p_value < ds.ALPHA  # significant with so many scores …
    assert stats.psi < ds.PSI_DRIFT and stats.share_above < ds.MIN_SHARE_RATIO * 0.01  # … small
    assert not stats.drifted


def test_an_empty_batch_is_not_measured() -> None:
    stats = ds.drift_stats(ds.reference(_normal(0, 50)), [])
    assert not stats.measured and not stats.drifted
    assert math.isnan(stats.psi)


def test_tied_scores_keep_the_rule_valid() -> None:
    ref = ds.reference([0.5] * 200)
    assert not ds.drift_stats(ref, [0.5] * 100).drifted
    higher = ds.drift_stats(ref, [0.9] * 100)
    assert higher.share_above == 1.0 and ds.TAIL in higher.reasons
    # Coarse scores with many ties on both sides: the same distribution still does not fire.
    rng = np.random.default_rng(5)
    fired = sum(
        ds.drift_stats(ds.reference(rng.integers(0, 5, 300)), rng.integers(0, 5, 400)).drifted
        for _ in range(60)
    )
    assert fired <= 1
