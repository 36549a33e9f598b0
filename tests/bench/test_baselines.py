"""Baseline scorers against reference implementations."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from bench.baselines import gaussian_scores, greedy_coreset, knn_scores


def test_gaussian_matches_scikit_learn_ledoit_wolf() -> None:
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(24, 24))
    train, test = rng.normal(size=(30, 24)) @ mix, rng.normal(size=(7, 24)) @ mix
    expected = LedoitWolf().fit(train).mahalanobis(test)
    np.testing.assert_allclose(gaussian_scores(train, test), expected, rtol=1e-8)


def test_knn_and_coreset() -> None:
    train = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    test = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(knn_scores(train, test, 1), torch.tensor([1.0]))
    assert torch.allclose(knn_scores(train, test, 2, chunk=1), torch.tensor([(1 + 2**0.5) / 2]))
    chosen = greedy_coreset(train, 2, 2, torch.Generator().manual_seed(0))
    assert len(set(chosen.tolist())) == 2 and 2 in chosen.tolist()  # the far point is kept
