"""Localisation metrics of the heatmap benchmark: pixel AUROC, pointing game, chance."""

from __future__ import annotations

import numpy as np
import pytest

from bench.localisation import chance_hit_rate, distance_to_mask, pixel_auroc, pointing_hit


def _mask() -> np.ndarray:
    mask = np.zeros((50, 50), dtype=bool)
    mask[20:25, 30:35] = True
    return mask


def test_a_map_that_is_the_mask_scores_perfectly() -> None:
    mask = _mask()
    assert pixel_auroc([mask.astype(np.float32)], [mask]) == 1.0
    assert pointing_hit(mask.astype(np.float32), mask, tolerance=0.0)


def test_zero_and_uniform_maps_get_chance_auroc_and_miss() -> None:
    mask = _mask()
    for flat in (np.zeros((50, 50), np.float32), np.full((50, 50), 0.7, np.float32)):
        assert pixel_auroc([flat], [mask]) == 0.5
        assert not pointing_hit(flat, mask, tolerance=1.5)


def test_the_tolerance_counts_near_misses() -> None:
    mask = _mask()
    heatmap = np.zeros((50, 50), np.float32)
    heatmap[20, 37] = 1.0  # 3 columns right of the mask
    assert distance_to_mask((20, 37), mask) == 3.0
    assert not pointing_hit(heatmap, mask, tolerance=2.0)
    assert pointing_hit(heatmap, mask, tolerance=3.0)


def test_chance_is_the_share_of_pixels_near_the_mask() -> None:
    mask = _mask()
    assert chance_hit_rate(mask, 0.0) == pytest.approx(25 / 2500)
    assert chance_hit_rate(mask, 1.0) == pytest.approx((25 + 4 * 5) / 2500)
    assert chance_hit_rate(np.zeros((5, 5), bool), 1.0) == 0.0
