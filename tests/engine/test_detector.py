"""Scoring: verdicts, percentiles, bad inputs, input kinds; separation of planted defects."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from engine import Detector, ImageLoadError, train
from tests.engine.tiny import tiny_config
from tests.fixtures.synthetic import defect_image, textured_image, write_images


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    folder = tmp_path_factory.mktemp("det")
    return train(tiny_config("se", epochs=4), write_images(folder, 12, size=64)).detector


def test_verdicts_follow_the_threshold(detector: Detector) -> None:
    image = textured_image(64, seed=42)
    score = detector.score_one(image).score
    assert detector.score_one(image, threshold=score - 1e-6).is_anomalous is True
    assert detector.score_one(image, threshold=score + 1e-6).is_anomalous is False
    default = detector.score_one(image)
    # The default is the configured quantile (linear interpolation) of the held-out normals'
    # scores, worked out here by hand rather than read back from the detector.
    normals = sorted(detector.calibration.scores)
    quantile = detector.config.score.threshold_quantile
    assert len(normals) == 2 and quantile == 0.99
    expected = normals[0] + 0.99 * (normals[1] - normals[0])
    assert normals[0] < expected < normals[1]
    assert default.threshold == pytest.approx(expected, rel=1e-12)
    assert default.is_anomalous is (score > expected)
    assert 0.0 <= default.percentile <= 100.0


def test_scores_are_deterministic_and_accept_every_input_kind(detector: Detector) -> None:
    image = textured_image(64, seed=7)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    as_array = np.asarray(image)
    batch = detector.score([image, buffer.getvalue(), as_array, image])
    scores = batch.scores
    assert scores == pytest.approx([scores[0]] * 4, rel=1e-5)
    assert [r.index for r in batch.results] == [0, 1, 2, 3]


def test_bad_images_are_collected_and_others_scored(detector: Detector, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    textured_image(64, seed=1).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    batch = detector.score([bad, good, tmp_path / "missing.png"])
    assert [r.index for r in batch.results] == [1]
    assert len(batch.failures) == 2
    with pytest.raises(ImageLoadError):
        detector.score_one(bad)


def test_fewer_views_still_score(detector: Detector) -> None:
    image = textured_image(64, seed=3)
    assert np.isfinite(detector.score([image], views=1).scores).all()


def test_planted_defects_score_higher_than_normals(detector: Detector) -> None:
    normals = [textured_image(64, seed=100 + i) for i in range(6)]
    defects = [defect_image(64, seed=200 + i)[0] for i in range(6)]
    normal_scores = detector.score(normals).scores
    defect_scores = detector.score(defects).scores
    assert np.median(defect_scores) > np.median(normal_scores)


def test_progress_callback_counts_images(detector: Detector) -> None:
    seen: list[tuple[int, int]] = []
    images = [textured_image(64, seed=i) for i in range(5)]
    detector.score(images, chunk_size=2, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_grayscale_and_rgba_inputs(detector: Detector) -> None:
    image = textured_image(64, seed=9)
    gray = image.convert("L")
    rgba = image.convert("RGBA")
    results = detector.score([gray, rgba]).results
    assert len(results) == 2 and all(np.isfinite(r.score) for r in results)
