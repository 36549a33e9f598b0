"""Ledoit-Wolf shrinkage covariance and the whitening map it defines.

With few training images the sample covariance of a few hundred pooled features is singular;
Ledoit and Wolf's shrinkage ``(1 − s)·S + s·(tr S / d)·I`` picks ``s`` from the data itself, so
the whitening exists for any number of samples and needs no tuning.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ledoit_wolf_shrinkage(centred: Tensor) -> float:
    """Ledoit-Wolf (2004) shrinkage intensity in [0, 1] for centred samples (N, D)."""
    n, dims = centred.shape
    if n < 2:
        return 1.0
    x = centred.double()
    covariance = x.T @ x / n
    target = torch.trace(covariance) / dims
    squared_norm = covariance.pow(2).sum()
    delta = (squared_norm - dims * target**2) / dims
    if float(delta) <= 0.0:
        return 1.0
    fourth = x.pow(2).sum(dim=1).pow(2).sum() / n
    beta = (fourth - squared_norm) / (n * dims)
    return float(torch.clamp(beta / delta, 0.0, 1.0))


def shrinkage_covariance(samples: Tensor) -> tuple[Tensor, float]:
    """The shrunk covariance (D, D, float64) of ``samples`` (N, D) and its shrinkage intensity."""
    x = samples.double()
    centred = x - x.mean(dim=0)
    shrinkage = ledoit_wolf_shrinkage(centred)
    covariance = centred.T @ centred / x.shape[0]
    target = torch.trace(covariance) / covariance.shape[0]
    shrunk = (1.0 - shrinkage) * covariance
    shrunk.diagonal().add_(shrinkage * float(target) + 1e-12)
    return shrunk, shrinkage


def shrinkage_whitener(samples: Tensor) -> Tensor:
    """``W = L⁻¹`` (D, D, float64) with ``L·Lᵀ`` the shrunk covariance of ``samples``.

    ``‖W·(x − mean)‖²`` is then the squared Mahalanobis distance of ``x``.
    """
    covariance, _ = shrinkage_covariance(samples)
    factor = torch.linalg.cholesky(covariance)
    identity = torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device)
    return torch.linalg.solve_triangular(factor, identity, upper=False)
