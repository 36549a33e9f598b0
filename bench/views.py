"""Score the deterministic test views of images and keep what the baselines need.

``score_views`` mirrors :func:`engine.scoring.score_images` (same angles, batching, autocast and
score) but returns the score of every view, so one pass yields the AUROC at 64, 16 and 4 views
(the 16 angles ``i·22.5°`` are every 4th of the 64), plus the un-rotated view's features and the
features averaged over all views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.data.transforms import test_view_angles
from engine.device import autocast_for, resolve_batch_size
from engine.models.attentdiffernet.loss import anomaly_score
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import view_batch


@dataclass(frozen=True)
class ViewScores:
    """Per-view scores (N×V, or None without the flow) and features (N×D each)."""

    per_view: np.ndarray | None
    feat0: np.ndarray
    feat_mean: np.ndarray

    def scores(self, views: int | None = None) -> np.ndarray:
        """Image scores from ``views`` evenly spaced views (all when None)."""
        if self.per_view is None:
            raise ValueError("these views were extracted without the flow, so there are no scores")
        total = self.per_view.shape[1]
        views = views or total
        if total % views:
            raise ValueError(f"{views} views are not an even subset of {total}")
        return self.per_view[:, :: total // views].astype(np.float64).mean(axis=1)


def view_subsets(total: int) -> list[int]:
    """The view counts scoreable from ``total`` views (even subsets), largest first."""
    return [v for v in (64, 32, 16, 8, 4, 2, 1) if v <= total and total % v == 0]


def score_views(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    views: int,
    device: torch.device,
    batch_size: int = 0,
    *,
    with_flow: bool = True,
) -> ViewScores:
    """Run every (image, test angle) view once; see the module docstring."""
    count = images_u8.shape[0]
    dim = model.feature_dim
    batch_size = resolve_batch_size(batch_size, device)
    if device.type == "cuda":  # gather and rotate on the GPU: no host copy per batch
        images_u8 = images_u8.to(device)
    index = torch.arange(count).repeat_interleave(views)
    degrees = test_view_angles(views).repeat(count)
    per_view = torch.zeros(count * views, dtype=torch.float32)
    feat_sum = torch.zeros(count, dim, dtype=torch.float64)
    feat0 = torch.zeros(count, dim, dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, count * views, batch_size):
                stop = min(start + batch_size, count * views)
                chosen = index[start:stop]
                batch = view_batch(
                    model.config,
                    images_u8,
                    chosen.to(images_u8.device),
                    degrees[start:stop],
                    device,
                )
                with autocast_for(device):
                    features = model.extract(batch).float()
                if with_flow:
                    z, _ = model.flow_forward(features)
                    per_view[start:stop] = anomaly_score(z).float().cpu()
                on_cpu = features.cpu()
                feat_sum.index_add_(0, chosen, on_cpu.double())
                first = torch.arange(start, stop) % views == 0
                feat0[chosen[first]] = on_cpu[first]
    finally:
        model.train(was_training)
    return ViewScores(
        per_view=per_view.view(count, views).numpy() if with_flow else None,
        feat0=feat0.numpy(),
        feat_mean=(feat_sum / views).float().numpy(),
    )
