"""The one mapping from a job's preset and overrides to a detector config."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.presets import detector_config, model_for, preset_config
from jobspec import MAX_TEST_VIEWS, Backbone, Overrides, Preset, Variant


def test_overrides_replace_only_what_they_name() -> None:
    base = preset_config("fast")
    config = detector_config(
        Preset.FAST,
        model_for(Variant.CBAM, Backbone.ALEXNET, "random"),
        Overrides(epochs=3, image_size=96, test_views=4, cache_views_per_image=2, seed=0),
        "cpu",
    )
    assert (config.model.variant, config.model.backbone.name) == ("cbam", "alexnet")
    assert config.model.backbone.weights == "random"
    assert (config.train.epochs, config.model.image_size, config.score.test_views) == (3, 96, 4)
    assert (config.train.cache_views_per_image, config.train.seed) == (2, 0)
    assert config.train.device == "cpu" and config.score.device == "cpu"
    # everything else is the preset's
    assert config.model.flow == base.model.flow and config.train.lr == base.train.lr
    assert config.model.flow_input == base.model.flow_input == "whiten"


def test_no_overrides_is_the_preset() -> None:
    assert detector_config("paper") == preset_config("paper")


@pytest.mark.parametrize("preset", list(Preset))
def test_the_contract_s_view_limit_is_the_engine_s(preset: Preset) -> None:
    most = MAX_TEST_VIEWS[preset]
    assert detector_config(preset, overrides=Overrides(test_views=most)).score.test_views == most
    if most < 64:
        with pytest.raises(ConfigError, match="test_views"):
            detector_config(preset, overrides=Overrides(test_views=most + 1))
