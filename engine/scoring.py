"""Batched views: rotate, extract multi-scale features, and score with the flow."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from engine.data.transforms import color_jitter, rotate_batch, test_view_angles, to_unit
from engine.device import autocast_for, resolve_batch_size
from engine.models.attentdiffernet.loss import anomaly_score
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel

ViewProgress = Callable[[int], None]
# Views per flow pass when scoring: large, because a pass costs a full read of the flow's weights.
FLOW_BATCH = 1024


def prepare_for_device(model: AttentDifferNetModel, device: torch.device) -> AttentDifferNetModel:
    """Move the model in channels-last layout (faster convolutions on CPU and CUDA alike)."""
    return model.to(device).to(memory_format=torch.channels_last)


def augment(
    x01: torch.Tensor,
    degrees: torch.Tensor,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate each image by its angle (zero fill), then apply optional colour jitter."""
    rotated = rotate_batch(x01, degrees)
    if jitter > 0:
        rotated = color_jitter(rotated, jitter, generator)
    return rotated


def view_batch(
    images_u8: torch.Tensor,
    image_index: torch.Tensor,
    degrees: torch.Tensor,
    device: torch.device,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The rotated views ``(image_index[i], degrees[i])`` as float [0, 1] tensors on ``device``."""
    x01 = to_unit(images_u8[image_index].to(device, non_blocking=True))
    views = augment(x01, degrees.to(device), jitter, generator)
    return views.contiguous(memory_format=torch.channels_last)


def extract_views(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    image_index: torch.Tensor,
    degrees: torch.Tensor,
    device: torch.device,
    batch_size: int,
    *,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
    on_batch: ViewProgress | None = None,
) -> torch.Tensor:
    """Features (M×D, float32, on ``device``) of M (image, angle) views, in batches."""
    batch_size = resolve_batch_size(batch_size, device)
    chunks: list[torch.Tensor] = []
    # no_grad rather than inference_mode: the flow later trains on these tensors.
    with torch.no_grad():
        for start in range(0, image_index.numel(), batch_size):
            stop = start + batch_size
            views = view_batch(
                images_u8, image_index[start:stop], degrees[start:stop], device, jitter, generator
            )
            with autocast_for(device):
                chunks.append(model.extract(views).float())
            if on_batch is not None:
                on_batch(views.shape[0])
    return torch.cat(chunks) if chunks else torch.empty(0, model.feature_dim, device=device)


def score_images(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    views: int,
    device: torch.device,
    batch_size: int,
    on_batch: ViewProgress | None = None,
) -> np.ndarray:
    """Anomaly score per image: mean of z² over ``views`` deterministic rotations and all dims.

    The extractor runs in small batches (what convolutions like); the flow then runs on many
    views at once, since each of its passes reads all of its weights.
    """
    count = images_u8.shape[0]
    if count == 0:
        return np.empty(0)
    angles = test_view_angles(views)
    image_index = torch.arange(count).repeat_interleave(views)
    degrees = angles.repeat(count)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            features = extract_views(
                model, images_u8, image_index, degrees, device, batch_size, on_batch=on_batch
            )
            chunks = features.split(FLOW_BATCH)
            per_view = torch.cat([anomaly_score(model.flow_forward(c)[0]) for c in chunks])
    finally:
        model.train(was_training)
    return per_view.double().view(count, views).mean(dim=1).cpu().numpy()
