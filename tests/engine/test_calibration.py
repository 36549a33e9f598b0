"""Calibration statistics."""

from __future__ import annotations

import math

import pytest

from engine.calibration import Calibration


def test_threshold_is_the_quantile_and_percentiles_rank() -> None:
    calibration = Calibration.from_scores([5.0, 1.0, 3.0, 2.0, 4.0], quantile=0.8)
    assert calibration.scores == (1.0, 2.0, 3.0, 4.0, 5.0)
    # Linear interpolation between order statistics: position 0.8 * (5 - 1) = 3.2 lies between
    # 4.0 and 5.0, so 4.0 + 0.2 * (5.0 - 4.0).
    assert calibration.threshold == pytest.approx(4.2, abs=1e-12)
    assert calibration.percentile(0.5) == 0.0
    assert calibration.percentile(3.0) == 60.0
    assert calibration.percentile(9.0) == 100.0


@pytest.mark.parametrize(
    ("scores", "quantile", "expected"),
    [
        # Position 0.3 * 2 = 0.6 between 0 and 10: 6.0. Other rules give 0 (lower,
        # inverted_cdf), 10 (higher, nearest), 5 (midpoint), 4 (hazen) or 2 (weibull).
        ([20.0, 0.0, 10.0], 0.3, 6.0),
        # The default quantile 0.99 of 1..100: position 98.01, so 99 + 0.01 * (100 - 99).
        ([float(v) for v in range(100, 0, -1)], 0.99, 99.01),
        # Position 0.99 between the only two scores: 1 + 0.99 * (3 - 1).
        ([3.0, 1.0], 0.99, 2.98),
        ([2.0, 7.0, 5.0], 1.0, 7.0),
        ([4.5], 0.99, 4.5),
    ],
)
def test_threshold_interpolates_linearly_between_sorted_scores(
    scores: list[float], quantile: float, expected: float
) -> None:
    assert Calibration.from_scores(scores, quantile).threshold == pytest.approx(expected, abs=1e-9)


def test_round_trip_and_empty() -> None:
    calibration = Calibration.from_scores([1.5, 2.5], quantile=0.99)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    empty = Calibration.from_scores([], quantile=0.99)
    assert empty.threshold is None and math.isnan(empty.percentile(1.0))
    assert empty.summary() == {"count": 0.0}
