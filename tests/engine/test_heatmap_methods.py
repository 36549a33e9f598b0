"""Every heatmap method points at a planted defect; the check itself rejects flat maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import DEFAULT_HEATMAP_METHOD, HEATMAP_METHODS, Detector, train
from engine.data.planted_defects import DefectStyle, plant_defect
from engine.errors import ConfigError
from engine.models.attentdiffernet.map_ops import gaussian_smooth, normalise
from tests.engine.tiny import tiny_config
from tests.fixtures.synthetic import Box, defect_image, textured_image, write_images

TOLERANCE = 0.03  # of the side, as in bench/heatmaps.py


def points_at(heatmap: np.ndarray, mask: np.ndarray) -> bool:
    """The map's maximum lies within 3 % of the side of the mask, and the mask is brighter than
    the rest: a zero or uniform map fails (its maximum is the first pixel, its means are equal)."""
    reach = TOLERANCE * min(heatmap.shape)
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    rows, cols = np.nonzero(mask)
    near = np.sqrt((rows - row) ** 2 + (cols - col) ** 2).min() <= reach
    return bool(near and heatmap[mask].mean() > 1.5 * heatmap[~mask].mean())


def box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    """The default architecture (variant none, MobileNetV2 with ImageNet weights) at 224 px."""
    images = write_images(tmp_path_factory.mktemp("maps"), 10, size=224)
    config = tiny_config("none", "mobilenet_v2", image_size=224, epochs=4, weights="imagenet")
    return train(config, images).detector


def test_the_check_rejects_zero_uniform_and_misplaced_maps() -> None:
    mask = box_mask((224, 224), (100, 100, 140, 140))
    assert not points_at(np.zeros((224, 224), np.float32), mask)
    assert not points_at(np.full((224, 224), 0.5, np.float32), mask)
    elsewhere = np.zeros((224, 224), np.float32)
    elsewhere[10:30, 10:30] = 1.0
    assert not points_at(elsewhere, mask)
    on_target = np.zeros((224, 224), np.float32)
    on_target[110:130, 110:130] = 1.0
    assert points_at(on_target, mask)


@pytest.mark.parametrize("method", HEATMAP_METHODS)
def test_each_method_points_at_the_planted_defect(detector: Detector, method: str) -> None:
    hits = 0
    for seed in range(3):
        image, box = defect_image(224, seed=300 + seed)
        heatmap = detector.explain(image, method=method)
        assert heatmap.shape == (224, 224) and heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        hits += points_at(heatmap, box_mask(heatmap.shape, box))
    assert hits >= 2, f"{method} pointed at {hits} of 3 defects"


# The last stage's 7×7 grid (gradcam) and the fused Grad-CAM, which the finest stage's border
# response can pull to a corner on this texture, cannot point within 3 % of a small spot.
@pytest.mark.parametrize("method", ["layercam_stages", "input_gradient"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fine_methods_point_at_a_planted_dark_spot(
    detector: Detector, method: str, seed: int
) -> None:
    picture = np.asarray(textured_image(224, seed=5))
    style = DefectStyle(strength=(0.7, 0.75), spot_radius=(0.08, 0.1))
    planted = plant_defect(picture, "dark_spot", np.random.default_rng(seed), style)
    heatmap = detector.explain(planted.image, method=method)
    assert points_at(heatmap, planted.mask), method


@pytest.mark.parametrize("method", HEATMAP_METHODS)
def test_maps_follow_the_images_own_resolution(detector: Detector, method: str) -> None:
    square, (x0, y0, x1, y1) = defect_image(224, seed=310)
    heatmap = detector.explain(square.resize((320, 180)), method=method)
    assert heatmap.shape == (180, 320)
    mask = box_mask(
        heatmap.shape, (x0 * 320 // 224, y0 * 180 // 224, x1 * 320 // 224, y1 * 180 // 224)
    )
    assert heatmap[mask].mean() > 1.5 * heatmap[~mask].mean()


def test_unknown_method_is_refused(detector: Detector) -> None:
    with pytest.raises(ConfigError, match="heatmap method"):
        detector.explain(textured_image(224), method="saliency")


def test_default_method_is_one_of_the_methods() -> None:
    assert DEFAULT_HEATMAP_METHOD in HEATMAP_METHODS


def test_normalise_scales_each_map_and_zeroes_flat_ones() -> None:
    maps = torch.stack([torch.linspace(2, 6, 16).view(4, 4), torch.full((4, 4), 3.0)])
    scaled = normalise(maps)
    assert scaled[0].min() == 0 and scaled[0].max() == 1
    assert torch.count_nonzero(scaled[1]) == 0


def test_gaussian_smooth_keeps_the_peak_and_the_mass() -> None:
    spike = torch.zeros(1, 31, 31)
    spike[0, 15, 15] = 1.0
    smooth = gaussian_smooth(spike, sigma=2.0)
    assert int(smooth.argmax()) == 15 * 31 + 15
    assert smooth.sum().item() == pytest.approx(1.0, abs=1e-4)
    assert smooth.max().item() < 0.1
