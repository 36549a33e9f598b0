"""Class-activation maps of every backbone stage of the full-size pass, fused into one map.

At 224 px MobileNetV2's last stage is a 7×7 grid; its earlier stages are 14×14 and 56×56. Each
stage's map is computed from its activations ``A`` and the score's gradient ``G`` there, resized
to the input, scaled to [0, 1], and the stages are averaged:

- Grad-CAM: ``relu(Σ_c mean(G_c) · A_c)`` (one weight per channel);
- LayerCAM: ``Σ_c relu(G_c) · A_c`` (a weight per channel and position, sharper at fine stages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from engine.models.attentdiffernet.map_ops import normalise, upsample
from engine.models.attentdiffernet.stage_outputs import scored_pass
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.modes import evaluating

CamWeighting = Literal["gradcam", "layercam"]


def fused_stage_cam(
    model: AttentDifferNetModel,
    x01: torch.Tensor,
    weighting: CamWeighting,
    stages: Sequence[int] | None = None,
) -> np.ndarray:
    """Fused maps (B×S×S float32 in [0, 1]) of full-size inputs; ``stages`` default: all."""
    with evaluating(model), torch.enable_grad():
        scored = scored_pass(model, x01)
        chosen = list(range(len(scored.stage_maps))) if stages is None else list(stages)
        activations = [scored.stage_maps[i] for i in chosen]
        gradients = torch.autograd.grad(scored.score.sum(), activations)
    size = (x01.shape[-2], x01.shape[-1])
    fused = torch.zeros(x01.shape[0], *size, device=x01.device)
    for activation, gradient in zip(activations, gradients, strict=True):
        cam = stage_cam(activation.detach().float(), gradient.float(), weighting)
        fused += normalise(upsample(cam, size))
    return normalise(fused).cpu().numpy().astype(np.float32)


def stage_cam(
    activation: torch.Tensor, gradient: torch.Tensor, weighting: CamWeighting
) -> torch.Tensor:
    """One stage's map (B×h×w) from its activations and the score's gradient (B×C×h×w)."""
    if weighting == "gradcam":
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        return torch.relu((weights * activation).sum(dim=1))
    return (torch.relu(gradient) * activation).sum(dim=1).clamp_min(0.0)
