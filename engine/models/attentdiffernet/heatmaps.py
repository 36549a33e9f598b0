"""Every heatmap method by name: where an image raises the detector's anomaly score.

- ``gradcam``: Grad-CAM on the last stage (7×7 at 224 px on MobileNetV2);
- ``gradcam_stages``: Grad-CAM on every stage of the full-size pass, fused;
- ``layercam_stages``: LayerCAM on every stage, fused;
- ``input_gradient``: DifferNet's map, the smoothed gradient of the score w.r.t. the input.

``bench/results/heatmaps.md`` measures how well each points at planted defects on ELPV cells;
the default is the method that does best there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from engine.errors import ConfigError
from engine.models.attentdiffernet.gradcam import GradCamHeatmap
from engine.models.attentdiffernet.input_gradient import input_gradient_map
from engine.models.attentdiffernet.stage_cam import fused_stage_cam
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from jobspec import DEFAULT_HEATMAP_METHOD as _DEFAULT
from jobspec import HeatmapMethod

HeatmapFunction = Callable[[AttentDifferNetModel, torch.Tensor], np.ndarray]


def _last_stage_gradcam(model: AttentDifferNetModel, x01: torch.Tensor) -> np.ndarray:
    maps = GradCamHeatmap(model).heatmap(x01)
    return maps[None] if maps.ndim == 2 else maps


_METHODS: dict[str, HeatmapFunction] = {
    HeatmapMethod.GRADCAM.value: _last_stage_gradcam,
    HeatmapMethod.GRADCAM_STAGES.value: lambda model, x01: fused_stage_cam(model, x01, "gradcam"),
    HeatmapMethod.LAYERCAM_STAGES.value: lambda model, x01: fused_stage_cam(model, x01, "layercam"),
    HeatmapMethod.INPUT_GRADIENT.value: input_gradient_map,
}

HEATMAP_METHODS: tuple[str, ...] = tuple(_METHODS)
# The best localisation on planted ELPV defects for every variant (bench/results/heatmaps.md).
DEFAULT_HEATMAP_METHOD: str = _DEFAULT.value


def compute_heatmaps(model: AttentDifferNetModel, x01: torch.Tensor, method: str) -> np.ndarray:
    """Maps (B×S×S float32 in [0, 1]) of full-size model inputs by ``method``."""
    if method not in _METHODS:
        raise ConfigError(
            f"unknown heatmap method {method!r}; choose one of: {', '.join(HEATMAP_METHODS)}"
        )
    maps = _METHODS[method](model, x01)
    return np.clip(np.nan_to_num(maps.astype(np.float32)), 0.0, 1.0)
