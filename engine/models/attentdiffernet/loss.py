"""DifferNet's training loss and per-view anomaly score."""

from __future__ import annotations

from torch import Tensor


def nll_loss(z: Tensor, log_jac_det: Tensor) -> Tensor:
    """Negative log-likelihood per dimension: ``mean_b(0.5·Σ z² − log_jac_det) / D``.

    The constant ``D/2·log(2π)`` of the Gaussian is dropped, as in DifferNet.
    """
    if z.ndim != 2:
        raise ValueError(f"z must have shape (B, D), got {tuple(z.shape)}")
    if log_jac_det.shape != z.shape[:1]:
        raise ValueError(
            f"log_jac_det must have shape (B,) = {tuple(z.shape[:1])}, "
            f"got {tuple(log_jac_det.shape)}"
        )
    per_sample = 0.5 * z.pow(2).sum(dim=1) - log_jac_det
    return per_sample.mean() / z.shape[1]


def anomaly_score(z: Tensor) -> Tensor:
    """Per-view score (B,): mean of ``z²`` over the dimensions (the log-det term is not used)."""
    if z.ndim != 2:
        raise ValueError(f"z must have shape (B, D), got {tuple(z.shape)}")
    return z.pow(2).mean(dim=1)
