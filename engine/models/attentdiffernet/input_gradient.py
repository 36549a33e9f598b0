"""DifferNet's own map: the gradient of the anomaly score with respect to the input image.

``|∂Σz²/∂x|`` summed over the colour channels, blurred by a Gaussian (σ a share of the side)
and scaled to [0, 1] per image.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.models.attentdiffernet.map_ops import gaussian_smooth, normalise
from engine.models.attentdiffernet.stage_outputs import scored_pass
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.modes import evaluating

# σ of the smoothing as a share of the image side: 4.5 px at 224 px.
SIGMA_SHARE = 0.02


def input_gradient_map(
    model: AttentDifferNetModel, x01: torch.Tensor, sigma_share: float = SIGMA_SHARE
) -> np.ndarray:
    """Maps (B×S×S float32 in [0, 1]) of full-size inputs."""
    with evaluating(model), torch.enable_grad():
        scored = scored_pass(model, x01)
        (gradient,) = torch.autograd.grad(scored.score.sum(), [scored.x01])
    magnitude = gradient.detach().float().abs().sum(dim=1)
    sigma = sigma_share * min(magnitude.shape[-2:])
    return normalise(gaussian_smooth(magnitude, sigma)).cpu().numpy().astype(np.float32)
