"""Grad-CAM heatmaps of the anomaly score, computed with pytorch-grad-cam.

The library needs one output tensor per image: a wrapper returns each image's Σz² (B×1) and the
target picks it. The hooked layer is the model's ``cam_anchor``, which only the full-size pass goes
through, right after the last attention block (for ``none``, the last conv stage). The backbone is
frozen, so the input is made to require grad; otherwise the hooked map would have no gradient.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from torch import nn

from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.modes import evaluating


class ScoreOutput(nn.Module):
    """Maps images in [0, 1] to their un-averaged anomaly score Σz², shape (B, 1)."""

    def __init__(self, model: AttentDifferNetModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        """Σz² of each image's single, un-rotated view."""
        x01 = x01.detach().requires_grad_(True)
        z, _ = self.model(x01)
        return (z.float() ** 2).sum(dim=1, keepdim=True)


class ScoreTarget:
    """Grad-CAM target: the image's own score (the only output)."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output.reshape(-1)[0]


class GradCamHeatmap:
    """Heatmaps of where an image raises the detector's anomaly score."""

    def __init__(self, model: AttentDifferNetModel) -> None:
        self.model = model

    def heatmap(self, x01: torch.Tensor) -> np.ndarray:
        """Heatmaps (B×S×S, or S×S for one image; float32 in [0, 1]) of full-size inputs."""
        wrapper = ScoreOutput(self.model)
        with (
            evaluating(self.model),
            torch.enable_grad(),
            GradCAM(model=wrapper, target_layers=[self.model.cam_anchor]) as cam,
        ):
            maps = cam(input_tensor=x01, targets=[ScoreTarget()] * x01.shape[0])
        maps = np.clip(np.nan_to_num(maps.astype(np.float32)), 0.0, 1.0)
        return maps[0] if maps.shape[0] == 1 else maps


def resize_heatmap(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of one heatmap to ``height × width``, kept in [0, 1]."""
    if heatmap.shape == (height, width):
        return heatmap.astype(np.float32)
    resized = Image.fromarray(heatmap.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
