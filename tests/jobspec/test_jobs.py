"""The params of train and score jobs: typed, validated, and the same after a JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobspec import (
    DEFAULT_HEATMAP_METHOD,
    HeatmapMethod,
    JobKind,
    JobSpecError,
    Overrides,
    Preset,
    ScoreSpec,
    TrainSpec,
    model_version_of,
    parse_params,
)


def test_a_train_spec_round_trips_through_json() -> None:
    spec = TrainSpec(
        model_version_id=4,
        batch_ids=(1, 2),
        category=" widget ",
        preset=Preset.TINY,
        overrides=Overrides(epochs=3, seed=0),
    )
    params = spec.to_params()
    assert params == {
        "model_version_id": 4,
        "batch_ids": [1, 2],
        "image_ids": None,
        "category": "widget",
        "preset": "tiny",
        "overrides": {"epochs": 3, "seed": 0},
    }
    back = TrainSpec.from_params(json.loads(json.dumps(params)))
    assert back == spec and back.category == "widget" and back.preset is Preset.TINY
    assert parse_params("train", params) == spec


def test_a_score_spec_round_trips_and_defaults_to_heatmaps() -> None:
    spec = ScoreSpec(model_version_id=4, batch_ids=[9], image_ids=[10, 11])  # type: ignore[arg-type]
    assert spec.batch_ids == (9,) and spec.image_ids == (10, 11)
    params = spec.to_params()
    assert params == {
        "model_version_id": 4,
        "batch_ids": [9],
        "image_ids": [10, 11],
        "heatmaps": ["layercam_stages"],
    }
    assert ScoreSpec.from_params(json.loads(json.dumps(params))) == spec
    default = ScoreSpec.from_params({"model_version_id": 4, "batch_ids": [9]})
    assert default.heatmaps == (DEFAULT_HEATMAP_METHOD.value,)
    assert parse_params(JobKind.SCORE, params) == spec


def test_score_specs_name_their_heatmap_methods_and_read_the_older_flag() -> None:
    base = {"model_version_id": 4, "batch_ids": [9]}
    both = ScoreSpec.from_params({**base, "heatmaps": ["input_gradient", "gradcam"]})
    assert both.heatmaps == ("input_gradient", "gradcam")
    assert ScoreSpec.from_params({**base, "heatmaps": []}).heatmaps == ()
    assert ScoreSpec.from_params({**base, "heatmaps": False}).heatmaps == ()
    assert ScoreSpec.from_params({**base, "heatmaps": True}).heatmaps == ("layercam_stages",)
    spec = ScoreSpec(model_version_id=4, batch_ids=(9,), heatmaps=[HeatmapMethod.GRADCAM])  # type: ignore[arg-type]
    assert spec.heatmaps == ("gradcam",) and spec.to_params()["heatmaps"] == ["gradcam"]
    with pytest.raises(JobSpecError, match="unknown heatmap method 'sobel'"):
        ScoreSpec.from_params({**base, "heatmaps": ["sobel"]})
    with pytest.raises(JobSpecError, match="repeat"):
        ScoreSpec.from_params({**base, "heatmaps": ["gradcam", "gradcam"]})


GOOD_TRAIN: dict[str, Any] = {
    "model_version_id": 1,
    "batch_ids": [1],
    "image_ids": None,
    "category": None,
    "preset": "fast",
    "overrides": {},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"preset": "huge"}, "preset 'huge'"),
        ({"overrides": {"epochs": 0}}, "epochs must be a whole number from 1"),
        ({"overrides": {"epochs": 5000}}, "epochs must be a whole number from 1 to 1000"),
        ({"overrides": {"lr": 0.1}}, "unknown overrides lr"),
        ({"overrides": {"epochs": True}}, "epochs must be a whole number"),
        ({"overrides": {"image_size": 2.5}}, "image_size"),
        ({"overrides": [1]}, "overrides must be an object"),
        ({"model_version_id": "3"}, "model_version_id"),
        ({"model_version_id": 0}, "model_version_id"),
        ({"batch_ids": "1,2"}, "batch_ids"),
        ({"batch_ids": [], "image_ids": None}, "at least one batch id or image id"),
        ({"image_ids": [0]}, "image_ids"),
        ({"category": 5}, "category"),
        ({"extra": 1}, "unknown params extra"),
    ],
)
def test_bad_train_params_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(JobSpecError, match=message):
        TrainSpec.from_params({**GOOD_TRAIN, **change})


def test_missing_and_misplaced_params_are_named() -> None:
    with pytest.raises(JobSpecError, match="missing params preset"):
        TrainSpec.from_params({"model_version_id": 1, "batch_ids": [1]})
    with pytest.raises(JobSpecError, match="heatmaps"):
        ScoreSpec.from_params({"model_version_id": 1, "batch_ids": [1], "heatmaps": "yes"})
    with pytest.raises(JobSpecError, match="unknown params preset"):
        ScoreSpec.from_params({"model_version_id": 1, "batch_ids": [1], "preset": "tiny"})
    with pytest.raises(JobSpecError, match="params must be an object"):
        TrainSpec.from_params([1, 2])
    with pytest.raises(JobSpecError, match="job kind 'evaluate'"):
        parse_params("evaluate", GOOD_TRAIN)


def test_overrides_keep_only_what_is_set() -> None:
    overrides = Overrides.from_dict({"epochs": 5, "test_views": None})
    assert overrides.to_dict() == {"epochs": 5}
    assert Overrides.from_dict(None) == Overrides()
    assert Overrides(seed=0).to_dict() == {"seed": 0}  # zero is a value, not "unset"


def test_the_fast_preset_refuses_more_test_views_than_it_has() -> None:
    with pytest.raises(JobSpecError, match="fast preset scores at most 8 test views, got 16"):
        TrainSpec(model_version_id=1, batch_ids=(1,), overrides=Overrides(test_views=16))
    assert (
        TrainSpec(
            model_version_id=1,
            batch_ids=(1,),
            preset=Preset.PAPER,
            overrides=Overrides(test_views=16),
        ).overrides.test_views
        == 16
    )


def test_the_model_version_of_any_stored_params() -> None:
    assert model_version_of(GOOD_TRAIN) == 1
    assert model_version_of({"model_version_id": 7, "batch_ids": "junk"}) == 7
    for bad in (None, [], {}, {"model_version_id": "3"}, {"model_version_id": True}):
        assert model_version_of(bad) is None


def test_train_specs_repeat_named_images_and_keep_the_older_form() -> None:
    base = {**GOOD_TRAIN, "image_ids": [3, 4, 5]}
    assert "repeat_ids" not in TrainSpec.from_params(base).to_params()  # unused: not written
    spec = TrainSpec.from_params({**base, "repeat_ids": [5, 4], "repeats": 3})
    assert spec.repeat_ids == (5, 4) and spec.repeats == 3
    assert [spec.copies_of(i) for i in (3, 4, 5)] == [1, 3, 3]
    assert TrainSpec.from_params(spec.to_params()) == spec
    with pytest.raises(JobSpecError, match=r"repeat_ids must be among image_ids; \[9\]"):
        TrainSpec.from_params({**base, "repeat_ids": [9], "repeats": 2})
    with pytest.raises(JobSpecError, match="repeats must be at most 10"):
        TrainSpec.from_params({**base, "repeat_ids": [3], "repeats": 11})
    with pytest.raises(JobSpecError, match="repeats must be a whole number >= 1"):
        TrainSpec.from_params({**base, "repeat_ids": [3], "repeats": 0})
    with pytest.raises(JobSpecError, match="repeat_ids must be among image_ids"):
        TrainSpec.from_params({**GOOD_TRAIN, "repeat_ids": [3], "repeats": 2})  # batches only
