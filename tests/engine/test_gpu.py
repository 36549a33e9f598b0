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


def test_cuda_heatmap(tmp_path: Path) -> None:
    detector = train(_on("cuda", "cbam"), write_images(tmp_path, 8, size=224)).detector
    heatmap = detector.explain(defect_image(224, seed=5)[0])
    assert heatmap.shape == (224, 224) and np.isfinite(heatmap).all()
    assert torch.cuda.max_memory_allocated() > 0
