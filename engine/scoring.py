"""Batched views: rotate, extract multi-scale features, and score with the flow."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from engine.config import ModelConfig, ScoreConfig
from engine.data.transforms import color_jitter, normalize_intensity, to_unit
from engine.data.views import view_space
from engine.device import autocast_for, resolve_batch_size
from engine.models.attentdiffernet.loss import anomaly_score
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.modes import evaluating

ViewProgress = Callable[[int], None]
# Views per flow pass when scoring: large, because a pass costs a full read of the flow's weights.
FLOW_BATCH = 1024


def prepare_for_device(model: AttentDifferNetModel, device: torch.device) -> AttentDifferNetModel:
    """Move the model in channels-last layout (faster convolutions on CPU and CUDA alike)."""
    return model.to(device).to(memory_format=torch.channels_last)


def model_input(
    config: ModelConfig,
    x01: torch.Tensor,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Optional colour jitter (a simulated camera change), then the model's intensity norm."""
    if jitter > 0:
        x01 = color_jitter(x01, jitter, generator)
    return normalize_intensity(x01, config.intensity)


def view_batch(
    config: ModelConfig,
    images_u8: torch.Tensor,
    image_index: torch.Tensor,
    view_ids: torch.Tensor,
    device: torch.device,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The views ``(image_index[i], view_ids[i])`` as float tensors on ``device``.

    Each image is jittered and intensity-normalised first, then seen as its view (rotated or
    flipped), so a rotation's black corners never enter the image's statistics.
    """
    x01 = to_unit(images_u8[image_index].to(device, non_blocking=True))
    prepared = model_input(config, x01, jitter, generator)
    views = view_space(config.view_group).apply(prepared, view_ids.to(device))
    return views.contiguous(memory_format=torch.channels_last)


def test_view_ids(model_config: ModelConfig, score_config: ScoreConfig, views: int) -> torch.Tensor:
    """The deterministic test views of a model (angles, or dihedral elements)."""
    return view_space(model_config.view_group).test(views, score_config.view_offset)


def extract_views(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    image_index: torch.Tensor,
    view_ids: torch.Tensor,
    device: torch.device,
    batch_size: int,
    *,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
    on_batch: ViewProgress | None = None,
) -> torch.Tensor:
    """Features (M×D, float32, on ``device``) of M (image, view) pairs, in batches."""
    batch_size = resolve_batch_size(batch_size, device)
    chunks: list[torch.Tensor] = []
    # no_grad rather than inference_mode: the flow later trains on these tensors.
    with torch.no_grad():
        for start in range(0, image_index.numel(), batch_size):
            stop = start + batch_size
            views = view_batch(
                model.config,
                images_u8,
                image_index[start:stop],
                view_ids[start:stop],
                device,
                jitter,
                generator,
            )
            with autocast_for(device):
                chunks.append(model.extract(views).float())
            if on_batch is not None:
                on_batch(views.shape[0])
    return torch.cat(chunks) if chunks else torch.empty(0, model.feature_dim, device=device)


def test_features(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    view_ids: torch.Tensor,
    device: torch.device,
    batch_size: int,
    on_batch: ViewProgress | None = None,
) -> torch.Tensor:
    """Features (N×V×D) of every image under each of the V test views ``view_ids``."""
    count, views = images_u8.shape[0], view_ids.numel()
    image_index = torch.arange(count).repeat_interleave(views)
    with evaluating(model):
        features = extract_views(
            model,
            images_u8,
            image_index,
            view_ids.repeat(count),
            device,
            batch_size,
            on_batch=on_batch,
        )
    return features.view(count, views, -1)


def flow_scores(model: AttentDifferNetModel, features: torch.Tensor) -> np.ndarray:
    """Anomaly score per image from its view features (N×V×D): mean z² over views and dims.

    The flow runs on many views at once, since each of its passes reads all of its weights.
    """
    count, views = features.shape[:2]
    if count == 0:
        return np.empty(0)
    with evaluating(model), torch.inference_mode():
        chunks = features.flatten(0, 1).split(FLOW_BATCH)
        per_view = torch.cat([anomaly_score(model.flow_forward(c)[0]) for c in chunks])
    return per_view.double().view(count, views).mean(dim=1).cpu().numpy()


def score_images(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    view_ids: torch.Tensor,
    device: torch.device,
    batch_size: int,
    on_batch: ViewProgress | None = None,
) -> np.ndarray:
    """Anomaly score per image: mean of z² over the test views ``view_ids`` and all dims.

    The extractor runs in small batches (what convolutions like), the flow on many views at once.
    """
    if images_u8.shape[0] == 0:
        return np.empty(0)
    with torch.inference_mode():
        features = test_features(model, images_u8, view_ids, device, batch_size, on_batch)
    return with_patch_term(model, flow_scores(model, features), images_u8, device, batch_size)


def with_patch_term(
    model: AttentDifferNetModel,
    flow: np.ndarray,
    images_u8: torch.Tensor,
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    """The detector's score from the flow's: unchanged, or combined with the local term when the
    model keeps a patch memory (``PatchMemory.combine``)."""
    memory = model.patch_memory
    if memory is None:
        return flow
    return memory.combine(flow, patch_terms(model, images_u8, device, batch_size))


def patch_batches(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    device: torch.device,
    batch_size: int,
    on_batch: ViewProgress | None = None,
) -> Iterator[torch.Tensor]:
    """Patch vectors (b, P, C, float32) of the images as they are (no turn), batch by batch."""
    step = max(1, resolve_batch_size(batch_size, device) // 2)
    with evaluating(model), torch.inference_mode():
        for start in range(0, images_u8.shape[0], step):
            x01 = to_unit(images_u8[start : start + step].to(device, non_blocking=True))
            prepared = model_input(model.config, x01).contiguous(memory_format=torch.channels_last)
            with autocast_for(device):
                vectors = model.patch_vectors(prepared)
            yield vectors.float()
            if on_batch is not None:
                on_batch(prepared.shape[0])


def patch_terms(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    device: torch.device,
    batch_size: int,
    on_batch: ViewProgress | None = None,
) -> np.ndarray:
    """Each image's local term: its largest nearest-patch distance to the model's memory."""
    memory = model.patch_memory
    if memory is None:
        raise ValueError("this model keeps no patch memory (model.patch.enabled is off)")
    terms = [
        memory.image_terms(vectors).cpu()
        for vectors in patch_batches(model, images_u8, device, batch_size, on_batch)
    ]
    return torch.cat(terms).double().numpy() if terms else np.empty(0)
