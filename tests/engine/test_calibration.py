"""Calibration statistics."""

from __future__ import annotations

import math

import numpy as np

from engine.calibration import Calibration


def test_threshold_is_the_quantile_and_percentiles_rank() -> None:
    calibration = Calibration.from_scores([5.0, 1.0, 3.0, 2.0, 4.0], quantile=0.8)
    assert calibration.scores == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert calibration.threshold == np.quantile([1, 2, 3, 4, 5], 0.8)
    assert calibration.percentile(0.5) == 0.0
    assert calibration.percentile(3.0) == 60.0
    assert calibration.percentile(9.0) == 100.0


def test_round_trip_and_empty() -> None:
    calibration = Calibration.from_scores([1.5, 2.5], quantile=0.99)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    empty = Calibration.from_scores([], quantile=0.99)
    assert empty.threshold is None and math.isnan(empty.percentile(1.0))
    assert empty.summary() == {"count": 0.0}
