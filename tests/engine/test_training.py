"""Training: determinism, calibration, progress, cancellation, bad files, collapse guard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import (
    DatasetError,
    FeatureCollapseError,
    TrainingCancelled,
    TrainProgress,
    scoring,
    train,
)
from engine.data.planted_defects import plant_defects
from engine.evaluation import auroc_two_samples
from engine.inputs import load_images
from engine.training.trainer import TrainResult, split_calibration
from tests.engine.tiny import tiny_config
from tests.fixtures.synthetic import write_images


@pytest.fixture(scope="module")
def normals(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("normals"), 10, size=64)


def test_same_seed_same_model(normals: list[Path]) -> None:
    first = train(tiny_config("cbam", seed=3), normals)
    second = train(tiny_config("cbam", seed=3), normals)
    assert first.epoch_losses == pytest.approx(second.epoch_losses)
    np.testing.assert_allclose(
        first.detector.score(normals[:3]).scores, second.detector.score(normals[:3]).scores
    )
    assert first.used_feature_cache


def test_loss_decreases_and_calibration_is_held_out(normals: list[Path]) -> None:
    result = train(tiny_config("none", epochs=6), normals)
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    assert result.n_calibration == 2 and result.n_train == 8
    calibration = result.detector.calibration
    assert len(calibration.scores) == 2 and calibration.threshold is not None


def test_split_is_seeded_and_disjoint() -> None:
    config = tiny_config(calibration_fraction=0.3)
    train_a, cal_a = split_calibration(20, config)
    _, cal_b = split_calibration(20, config)
    assert list(cal_a) == list(cal_b) and len(cal_a) == 6
    assert not set(train_a) & set(cal_a) and len(train_a) + len(cal_a) == 20


def test_an_image_given_several_times_is_held_out_whole_and_calibrates_once() -> None:
    config = tiny_config(calibration_fraction=0.3)
    sources = [f"old-{i}" for i in range(14)] + [f"new-{i}" for i in range(3) for _ in range(3)]
    train_rows, cal_rows = split_calibration(len(sources), config, sources)
    trained = {sources[i] for i in train_rows}
    held_out = [sources[i] for i in cal_rows]
    assert len(held_out) == len(set(held_out)) == round(0.3 * 17)  # distinct images count
    assert not trained & set(held_out)  # no copy of a calibration image is trained on
    assert len(train_rows) + sum(sources.count(name) for name in held_out) == len(sources)
    # Without repeats the split is the plain seeded one.
    plain = split_calibration(20, config)
    named = split_calibration(20, config, [f"image-{i}" for i in range(20)])
    assert [list(part) for part in plain] == [list(part) for part in named]


def test_progress_reports_every_phase_and_ends_complete(normals: list[Path]) -> None:
    reports: list[TrainProgress] = []
    train(tiny_config(), normals, on_progress=reports.append)
    phases = [r.phase for r in reports]
    for phase in ("loading", "features", "training", "calibrating", "done"):
        assert phase in phases
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    training = [r for r in reports if r.phase == "training"]
    assert training[-1].epoch == 2 and training[-1].loss is not None
    assert all(r.eta_s is not None for r in training)


def test_cancel_stops_training(normals: list[Path]) -> None:
    calls = {"n": 0}

    def cancel_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(TrainingCancelled):
        train(tiny_config(epochs=50), normals, should_cancel=cancel_after_three)
    assert calls["n"] == 4


def test_unreadable_images_are_skipped_and_reported(normals: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    empty = tmp_path / "empty.jpg"
    empty.touch()
    result = train(tiny_config(), [*normals, broken, empty])
    assert sorted(f.source for f in result.failures) == sorted([str(broken), str(empty)])
    assert result.n_train + result.n_calibration == len(normals)


def test_too_few_images_is_a_clear_error(normals: list[Path]) -> None:
    with pytest.raises(DatasetError, match="at least 2 readable"):
        train(tiny_config(), normals[:1])


def test_uncached_training_matches_the_original_procedure(normals: list[Path]) -> None:
    result = train(tiny_config(feature_cache=False), normals)
    assert not result.used_feature_cache
    assert np.isfinite(result.epoch_losses).all()


def test_trained_attention_bypasses_cache_and_guard_can_stop(normals: list[Path]) -> None:
    config = tiny_config("se", epochs=3)
    config = config.replace(
        model=dataclasses.replace(
            config.model,
            attention=dataclasses.replace(config.model.attention, train_attention=True),
        ),
        # A ratio above 1 makes any batch "collapsed", so the guard must act.
        train=dataclasses.replace(config.train, collapse_variance_ratio=1e9),
    )
    with pytest.raises(FeatureCollapseError, match="feature collapse"):
        train(config, normals)
    warn = config.replace(train=dataclasses.replace(config.train, collapse_action="warn"))
    result = train(warn, normals)
    assert not result.used_feature_cache
    assert any("feature collapse" in w for w in result.warnings)


def test_features_are_standardised_with_training_statistics(normals: list[Path]) -> None:
    model = train(tiny_config(), normals).detector.model
    assert not torch.allclose(model.feature_mean, torch.zeros_like(model.feature_mean))
    whitener = model.feature_whitener
    assert torch.equal(whitener, torch.diag(whitener.diagonal()))
    assert (whitener.diagonal() > 0).all()
    assert not torch.allclose(whitener, torch.eye(whitener.shape[0]))
    uncached = train(tiny_config(feature_cache=False), normals).detector.model
    assert not torch.allclose(uncached.feature_mean, torch.zeros_like(uncached.feature_mean))


def test_standardisation_can_be_switched_off_like_the_paper(normals: list[Path]) -> None:
    config = tiny_config()
    raw = config.replace(model=dataclasses.replace(config.model, flow_input="raw"))
    model = train(raw, normals).detector.model
    assert torch.equal(model.feature_mean, torch.zeros_like(model.feature_mean))
    assert torch.equal(model.feature_whitener, torch.eye(model.feature_dim))


def _planted_auroc(result: TrainResult, normals: list[Path]) -> float:
    """The kept detector's AUROC: held-out normals against the trainer's planted copies."""
    config = result.detector.config
    _, cal_idx = split_calibration(len(normals), config)
    held_out = load_images([normals[i] for i in cal_idx], config.model.image_size).tensor
    planted = plant_defects(held_out, config.train.planted_copies, config.train.seed)
    as_arrays = [image.permute(1, 2, 0).numpy() for image in (*held_out, *planted)]
    scores = result.detector.score(as_arrays).scores
    return auroc_two_samples(scores[: len(held_out)], scores[len(held_out) :])


def test_planted_selection_keeps_the_flow_of_the_best_epoch(normals: list[Path]) -> None:
    config = tiny_config("none", epochs=5, epoch_selection="planted", planted_copies=2)
    result = train(config, normals)
    curve = result.selection_curve
    assert len(curve) == len(result.epoch_losses) + 1 and all(0 <= v <= 1 for v in curve)
    kept = result.selected_epoch
    assert all(curve[e] <= curve[kept] + config.train.planted_min_gain for e in range(len(curve)))
    assert all(curve[e] < curve[kept] + 1e-12 for e in range(kept))
    assert _planted_auroc(result, normals) == pytest.approx(curve[kept], abs=1e-9)


def test_planted_selection_keeps_the_untrained_flow_without_a_clear_gain(
    normals: list[Path],
) -> None:
    config = tiny_config(
        "none", epochs=3, epoch_selection="planted", planted_copies=2, planted_min_gain=0.99
    )
    result = train(config, normals)
    assert result.selected_epoch == 0 and len(result.selection_curve) == 4
    assert _planted_auroc(result, normals) == pytest.approx(result.selection_curve[0], abs=1e-9)


def test_validation_selection_stops_after_patience_on_the_lowest_loss(normals: list[Path]) -> None:
    config = tiny_config("none", epochs=8, epoch_selection="validation", patience=2)
    result = train(config, normals)
    curve = result.selection_curve
    assert result.selected_epoch == int(np.argmin(curve))
    assert len(result.epoch_losses) in (result.selected_epoch + 2, 8)


def test_the_patch_term_is_fitted_and_calibrated_with_the_flow(normals: list[Path]) -> None:
    config = tiny_config()
    config = config.replace(
        model=dataclasses.replace(
            config.model, patch=dataclasses.replace(config.model.patch, enabled=True)
        )
    )
    result = train(config, normals)
    memory = result.detector.model.patch_memory
    assert memory is not None and memory.fitted
    # The calibration normals, scored by the detector, are the calibration's own scores.
    calibration = load_images(
        [normals[i] for i in split_calibration(len(normals), config)[1]], 64
    ).tensor
    model = result.detector.model
    views = scoring.test_view_ids(config.model, config.score, config.score.test_views)
    cpu = torch.device("cpu")
    scored = scoring.score_images(model, calibration, views, cpu, 0)
    np.testing.assert_allclose(np.sort(scored), result.detector.calibration.scores, rtol=1e-6)
    flow = scoring.flow_scores(model, scoring.test_features(model, calibration, views, cpu, 0))
    terms = scoring.patch_terms(model, calibration, cpu, 0)
    np.testing.assert_allclose(scored, np.sqrt(flow * terms), rtol=1e-6)
