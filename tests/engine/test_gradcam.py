"""Last-stage Grad-CAM heatmaps: shape, range, the full-size pass, peaking on a planted defect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import Detector, overlay_heatmap, train
from engine.visualize import heatmap_from_png, heatmap_to_png
from tests.engine.tiny import tiny_config
from tests.fixtures.synthetic import defect_image, textured_image, write_images


def _assert_not_constant(heatmap: np.ndarray) -> None:
    """Grad-CAM scales each map to [0, 1]: a real one spans the range, a zero or flat one fails."""
    assert np.isfinite(heatmap).all()
    assert heatmap.max() > 0.9, heatmap.max()
    assert heatmap.min() < 0.1, heatmap.min()
    assert heatmap.std() > 0.05, heatmap.std()


@pytest.fixture(scope="module")
def pretrained_detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    folder = tmp_path_factory.mktemp("cam")
    images = write_images(folder, 10, size=224)
    config = tiny_config("se", "mobilenet_v2", image_size=224, epochs=4, weights="imagenet")
    return train(config, images).detector


@pytest.mark.slow
def test_heatmap_peaks_on_the_planted_defect(pretrained_detector: Detector) -> None:
    inside_means, outside_means = [], []
    for seed in range(4):
        image, (x0, y0, x1, y1) = defect_image(224, seed=300 + seed)
        heatmap = pretrained_detector.explain(image, method="gradcam")
        assert heatmap.shape == (224, 224) and heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        _assert_not_constant(heatmap)
        mask = np.zeros_like(heatmap, dtype=bool)
        mask[y0:y1, x0:x1] = True
        inside_means.append(heatmap[mask].mean())
        outside_means.append(heatmap[~mask].mean())
    assert np.mean(inside_means) > 1.5 * np.mean(outside_means)


@pytest.mark.slow
def test_heatmap_is_at_the_images_own_resolution(pretrained_detector: Detector) -> None:
    # A non-square picture: the map must be resized back with height and width kept apart, so
    # that it still lies over the (stretched) defect.
    square, (x0, y0, x1, y1) = defect_image(224, seed=310)
    image = square.resize((320, 180))
    heatmap = pretrained_detector.explain(image, method="gradcam")
    assert heatmap.shape == (180, 320)
    _assert_not_constant(heatmap)
    mask = np.zeros_like(heatmap, dtype=bool)
    mask[y0 * 180 // 224 : -(-y1 * 180 // 224), x0 * 320 // 224 : -(-x1 * 320 // 224)] = True
    assert heatmap[mask].mean() > 2.0 * heatmap[~mask].mean()
    overlay = overlay_heatmap(image, heatmap, alpha=0.4)
    assert overlay.size == (320, 180) and overlay.mode == "RGB"


def test_heatmap_png_round_trip() -> None:
    heatmap = np.linspace(0, 1, 64 * 32, dtype=np.float32).reshape(32, 64)
    restored = heatmap_from_png(heatmap_to_png(heatmap))
    assert restored.shape == (32, 64)
    assert np.abs(restored - heatmap).max() <= 1 / 255 + 1e-6


def test_tiny_alexnet_heatmap_runs(tmp_path: Path) -> None:
    detector = train(
        tiny_config("cbam", image_size=96), write_images(tmp_path, 6, size=96)
    ).detector
    heatmap = detector.explain(textured_image(96, seed=2), method="gradcam")
    assert heatmap.shape == (96, 96) and np.isfinite(heatmap).all()
    # Random backbone weights: no localisation to expect, but a real map, not a constant one.
    _assert_not_constant(heatmap)
