"""The CUDA path: channels-last, bf16 autocast of the extractor, fp32 flow; same answers as CPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import load_detector, train
from tests.engine.tiny import tiny_config
from tests.fixtures.synthetic import defect_image, textured_image, write_images

pytestmark = pytest.mark.gpu


def _on(config_device: str, variant: str = "se"):  # type: ignore[no-untyped-def]
    config = tiny_config(variant, "mobilenet_v2", image_size=224, epochs=3, weights="imagenet")
    return config.replace(
        train=dataclasses.replace(config.train, device=config_device),
        score=dataclasses.replace(config.score, device=config_device),
    )


def test_cuda_training_and_scoring_agree_with_cpu(tmp_path: Path) -> None:
    images = write_images(tmp_path / "good", 10, size=224)
    result = train(_on("cuda"), images)
    detector = result.detector
    assert detector.device.type == "cuda"
    probe = [textured_image(224, seed=90), defect_image(224, seed=91)[0]]
    gpu_scores = detector.score(probe).scores
    path = detector.save(tmp_path / "m.adn")
    cpu_scores = load_detector(path, device="cpu").score(probe).scores
    # bf16 autocast in the extractor only: scores agree to a few percent.
    np.testing.assert_allclose(gpu_scores, cpu_scores, rtol=0.05)
    assert gpu_scores[1] > gpu_scores[0]


def test_cuda_training_and_heatmap(tmp_path: Path) -> None:
    result = train(_on("cuda", "cbam"), write_images(tmp_path, 8, size=224))
    detector = result.detector
    # The whole model (backbone, attention, flow and its whitening buffers) lives on the GPU,
    # convolution weights in channels-last layout.
    model = detector.model
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {b.device.type for b in model.buffers()} == {"cuda"}
    assert {p.device.type for p in model.flow.parameters()} == {"cuda"}
    conv_weights = [p for p in model.parameters() if p.dim() == 4]
    assert conv_weights
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    # The flow trained on the GPU: finite losses that went down.
    assert len(result.epoch_losses) == 3 and np.isfinite(result.epoch_losses).all()
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    # The Grad-CAM backward pass works on CUDA and its heatmap lies on the planted defect.
    inside_means, outside_means = [], []
    for seed in range(5, 9):
        image, (x0, y0, x1, y1) = defect_image(224, seed=seed)
        heatmap = detector.explain(image)
        assert heatmap.shape == (224, 224) and heatmap.dtype == np.float32
        assert np.isfinite(heatmap).all()
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        assert heatmap.max() > 0.9 and heatmap.std() > 0.05  # not an all-zero or flat map
        mask = np.zeros_like(heatmap, dtype=bool)
        mask[y0:y1, x0:x1] = True
        inside_means.append(heatmap[mask].mean())
        outside_means.append(heatmap[~mask].mean())
    assert np.mean(inside_means) > 1.5 * np.mean(outside_means)
