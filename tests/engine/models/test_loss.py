"""The NLL loss per dimension and the per-view anomaly score on hand-made inputs."""

from __future__ import annotations

import pytest
import torch

from engine.models.attentdiffernet.loss import anomaly_score, nll_loss


def test_nll_loss_on_a_hand_made_input() -> None:
    z = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    log_jac_det = torch.tensor([0.5, -1.0])
    # per sample: 0.5·5 − 0.5 = 2.0 and 0.5·1 + 1 = 1.5; mean 1.75; per dimension 0.875
    assert nll_loss(z, log_jac_det).item() == pytest.approx(0.875)


def test_nll_loss_gradient_is_z_over_batch_and_dims() -> None:
    z = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    log_jac_det = torch.tensor([0.0], requires_grad=True)
    nll_loss(z, log_jac_det).backward()
    assert z.grad is not None and log_jac_det.grad is not None
    torch.testing.assert_close(z.grad, z.detach() / 3)
    torch.testing.assert_close(log_jac_det.grad, torch.tensor([-1.0 / 3]))


def test_anomaly_score_is_mean_of_squares() -> None:
    z = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 3.0]])
    torch.testing.assert_close(anomaly_score(z), torch.tensor([2.5, 0.5, 9.0]))


def test_shape_errors_say_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        nll_loss(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="log_jac_det"):
        nll_loss(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        anomaly_score(torch.zeros(2, 3, 4))
