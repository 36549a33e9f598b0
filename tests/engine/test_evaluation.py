"""AUROC with bootstrap intervals and the paper-style table."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from engine.errors import DatasetError
from engine.evaluation import AurocResult, auroc_two_samples, auroc_with_ci, format_auroc_table


def test_auroc_matches_sklearn_and_interval_contains_it() -> None:
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(60, int), np.ones(30, int)]
    scores = np.r_[rng.normal(0, 1, 60), rng.normal(1.2, 1, 30)]
    result = auroc_with_ci(labels, scores, n_bootstrap=300, seed=3)
    assert result.auroc == pytest.approx(roc_auc_score(labels, scores))
    assert result.ci_low < result.auroc < result.ci_high
    assert (result.n_normal, result.n_anomalous) == (60, 30)


def test_rank_auroc_handles_ties_like_sklearn() -> None:
    normal = np.array([1.0, 2.0, 2.0, 3.0])
    anomalous = np.array([2.0, 3.0, 4.0])
    labels = np.r_[np.zeros(4), np.ones(3)]
    expected = roc_auc_score(labels, np.r_[normal, anomalous])
    assert auroc_two_samples(normal, anomalous) == pytest.approx(expected)


def test_one_class_only_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match="both normal and anomalous"):
        auroc_with_ci([0, 0, 0], [0.1, 0.2, 0.3])


def test_table_has_a_row_per_category_bold_best_and_mean() -> None:
    results = {
        "bottle": {
            "none": AurocResult(0.9, 0.85, 0.95, 20, 60),
            "se": AurocResult(0.95, 0.9, 0.99, 20, 60),
        },
        "cable": {
            "none": AurocResult(0.8, 0.7, 0.9, 50, 90),
            "se": AurocResult(0.7, 0.6, 0.8, 50, 90),
        },
    }
    table = format_auroc_table(results, ["none", "se"]).splitlines()
    assert table[0] == "| category | none | se |"
    assert "**95.00" in table[2] and "**80.00" in table[3]
    assert table[-1] == "| mean | 85.00 | 82.50 |"
