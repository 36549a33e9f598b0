"""Shrinkage whitening, and a zero-initialised flow on it: the untrained model is the Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage

from engine.config import BackboneConfig, FlowConfig, ModelConfig
from engine.models.attentdiffernet.loss import anomaly_score
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.flow import build_flow
from engine.models.components.whitening import (
    ledoit_wolf_shrinkage as our_shrinkage,
)
from engine.models.components.whitening import shrinkage_covariance, shrinkage_whitener


def _samples(n: int, dims: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dims, dims, generator=generator, dtype=torch.float64)
    return torch.randn(n, dims, generator=generator, dtype=torch.float64) @ mixing + 3.0


@pytest.mark.parametrize(("n", "dims"), [(40, 10), (12, 30), (500, 5)])
def test_shrinkage_and_covariance_match_scikit_learn(n: int, dims: int) -> None:
    x = _samples(n, dims)
    centred = x - x.mean(dim=0)
    assert our_shrinkage(centred) == pytest.approx(
        ledoit_wolf_shrinkage(centred.numpy(), assume_centered=True), rel=1e-9
    )
    covariance, _ = shrinkage_covariance(x)
    np.testing.assert_allclose(
        covariance.numpy(), LedoitWolf().fit(x.numpy()).covariance_, rtol=1e-8, atol=1e-10
    )


def test_whitened_norm_is_the_mahalanobis_distance() -> None:
    train = _samples(60, 8)
    test = _samples(5, 8, seed=1)
    whitener = shrinkage_whitener(train)
    estimator = LedoitWolf().fit(train.numpy())
    expected = estimator.mahalanobis(test.numpy())  # squared distances
    whitened = (test - train.mean(dim=0)) @ whitener.T
    np.testing.assert_allclose(whitened.pow(2).sum(dim=1).numpy(), expected, rtol=1e-8)


def test_zero_initialised_flow_is_the_identity_and_exactly_invertible() -> None:
    flow = build_flow(12, FlowConfig(coupling_blocks=4, subnet_hidden=16, zero_init=True))
    x = torch.randn(7, 12)
    z, log_jac_det = flow(x)
    # Permutations only: the same values in another order, volume unchanged.
    torch.testing.assert_close(z.pow(2).sum(dim=1), x.pow(2).sum(dim=1))
    torch.testing.assert_close(log_jac_det, torch.zeros(7))
    # Once trained away from zero the inverse and the log-determinant stay exact.
    with torch.no_grad():
        for parameter in flow.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    z, log_jac_det = flow(x)
    back, back_log_det = flow(z, rev=True)
    torch.testing.assert_close(back, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back_log_det, -log_jac_det, atol=1e-5, rtol=1e-5)
    jacobian = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0][0], x[0])
    torch.testing.assert_close(
        log_jac_det[0], torch.linalg.slogdet(jacobian)[1], atol=1e-4, rtol=1e-4
    )


def test_untrained_whitened_model_scores_the_mahalanobis_distance() -> None:
    config = ModelConfig(
        backbone=BackboneConfig(name="alexnet", weights="random", download=False),
        image_size=64,
        scales=1,
        feature_stages="all",
        flow_input="whiten",
        flow=FlowConfig(coupling_blocks=2, subnet_hidden=16, subnet_layers=1, zero_init=True),
    )
    model = AttentDifferNetModel(config).eval()
    train = torch.randn(80, model.feature_dim, dtype=torch.float64) * 2 + 1
    test = torch.randn(6, model.feature_dim, dtype=torch.float64) * 3
    model.set_feature_statistics(train)
    with torch.no_grad():
        z, _ = model.flow_forward(test.float())
    expected = LedoitWolf().fit(train.numpy()).mahalanobis(test.numpy()) / model.feature_dim
    np.testing.assert_allclose(anomaly_score(z).double().numpy(), expected, rtol=1e-3)


def test_standardize_divides_by_the_spread_and_raw_is_the_identity() -> None:
    base = ModelConfig(
        backbone=BackboneConfig(name="alexnet", weights="random", download=False),
        image_size=64,
        flow=FlowConfig(coupling_blocks=1, subnet_hidden=8, subnet_layers=1),
    )
    features = torch.randn(50, 768, dtype=torch.float64) * 4 + 2
    standard = AttentDifferNetModel(base)
    standard.set_feature_statistics(features)
    expected = (features - features.mean(dim=0)) / features.std(dim=0)
    torch.testing.assert_close(
        standard.flow_input(features.float()), expected.float(), atol=1e-4, rtol=1e-4
    )
    raw = AttentDifferNetModel(base.__class__(**{**base.__dict__, "flow_input": "raw"}))
    raw.set_feature_statistics(features)
    torch.testing.assert_close(raw.flow_input(features.float()), features.float())
