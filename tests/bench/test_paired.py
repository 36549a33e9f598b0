"""The paired bootstrap of an AUROC difference."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from bench.paired import paired_delta


def _record(normal: np.ndarray, defect: np.ndarray) -> dict:
    return {"scores": {"normal": normal.tolist(), "defect": defect.tolist()}}


def test_delta_matches_scikit_learn_and_its_interval_holds_it() -> None:
    rng = np.random.default_rng(1)
    normal, defect = rng.normal(0, 1, 60), rng.normal(1, 1, 50)
    better = _record(normal, defect + 0.8)
    worse = _record(normal, defect)
    labels = np.r_[np.zeros(60), np.ones(50)]
    expected = 100 * (
        roc_auc_score(labels, np.r_[normal, defect + 0.8])
        - roc_auc_score(labels, np.r_[normal, defect])
    )
    found = paired_delta([(better, worse)])
    assert found is not None
    delta, low, high = found
    assert np.isclose(delta, expected) and 0 < low < delta < high
    assert paired_delta([(worse, worse)]) == (0.0, 0.0, 0.0)


def test_pairing_narrows_the_interval_against_unpaired_noise() -> None:
    rng = np.random.default_rng(2)
    normal, defect = rng.normal(0, 1, 40), rng.normal(0.7, 1, 40)
    shifted = _record(normal + rng.normal(0, 0.05, 40), defect + rng.normal(0, 0.05, 40))
    found = paired_delta([(shifted, _record(normal, defect))])
    assert found is not None and found[2] - found[1] < 5.0  # points


def test_runs_on_different_cells_are_not_paired() -> None:
    a = _record(np.zeros(5), np.ones(5))
    b = _record(np.zeros(6), np.ones(5))
    assert paired_delta([(a, b)]) is None
    assert paired_delta([]) is None
