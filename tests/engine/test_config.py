"""Config round trips and validation."""

from __future__ import annotations

import dataclasses

import pytest

from engine.config import (
    AttentionConfig,
    BackboneConfig,
    DetectorConfig,
    ModelConfig,
    ScoreConfig,
    TrainConfig,
)
from engine.errors import ConfigError
from engine.presets import PRESETS, preset_config


def test_defaults_are_the_papers() -> None:
    config = DetectorConfig()
    assert config.model.image_size == 448 and config.model.scales == 3
    assert config.model.flow.coupling_blocks == 8 and config.model.flow.subnet_hidden == 2048
    assert config.train.epochs == 192 and config.train.batch_images == 24
    assert config.train.views_per_image == 4 and config.train.lr == 2e-4
    assert config.train.betas == (0.8, 0.8) and config.train.eps == 1e-4
    assert config.train.weight_decay == 1e-5 and config.score.test_views == 64
    assert config.model.attention.se_reduction == 2 and config.model.attention.cbam_kernel == 7


def test_json_round_trip_keeps_every_field() -> None:
    config = DetectorConfig(
        model=ModelConfig(
            variant="cbam",
            backbone=BackboneConfig(name="mobilenet_v2", weights="random"),
            attention=AttentionConfig(position="post_pool", cbam_residual=False),
        ),
        train=TrainConfig(epochs=3, betas=(0.9, 0.99)),
    )
    again = DetectorConfig.from_json(config.to_json())
    assert again == config
    assert isinstance(again.train.betas, tuple)


@pytest.mark.parametrize(
    "text",
    [
        '{"model": {"variant": "transformer"}}',
        '{"model": {"backbone": {"name": "resnet9000"}}}',
        '{"train": {"epochs": 0}}',
        '{"model": {"attention": {"cbam_kernel": 8}}}',
        '{"unknown_section": {}}',
        '{"model": {"colour": "red"}}',
        "[1, 2]",
        "not json",
    ],
)
def test_bad_configs_are_rejected_with_the_field_named(text: str) -> None:
    with pytest.raises(ConfigError):
        DetectorConfig.from_json(text)


def test_error_names_the_offending_field() -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        dataclasses.replace(TrainConfig(), epochs=-1)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_keep_the_architecture(name: str) -> None:
    model = ModelConfig(variant="se", backbone=BackboneConfig(name="efficientnet_lite0"))
    config = preset_config(name, model)
    assert config.model.variant == "se"
    assert config.model.backbone.name == "efficientnet_lite0"


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("turbo")


def test_paper_preset_uses_raw_features_and_fast_whitens() -> None:
    assert preset_config("paper").model.flow_input == "raw"
    assert preset_config("fast").model.flow_input == "whiten"
    assert preset_config("tiny").model.flow_input == "standardize"


def test_paper_preset_is_the_method_as_published() -> None:
    config = preset_config("paper")
    model, train, score = config.model, config.train, config.score
    assert (model.image_size, model.scales, model.feature_stages) == (448, 3, "last")
    assert (model.intensity, model.view_group) == ("none", "rotations")
    assert (model.flow.subnet_hidden, model.flow.zero_init) == (2048, False)
    assert (train.epochs, train.lr, train.epoch_selection, train.color_jitter) == (
        192,
        2e-4,
        "last",
        0.0,
    )
    assert (score.test_views, score.view_offset) == (64, False)


def test_configs_stored_with_the_old_standardisation_switch_still_load() -> None:
    for stored, expected in ((True, "standardize"), (False, "raw")):
        data = DetectorConfig().to_dict()
        del data["model"]["flow_input"]
        data["model"]["standardize_features"] = stored
        assert DetectorConfig.from_dict(data).model.flow_input == expected


def test_dihedral_views_allow_at_most_eight_test_views() -> None:
    model = ModelConfig(view_group="dihedral")
    with pytest.raises(ConfigError, match="test_views"):
        DetectorConfig(model=model, score=ScoreConfig(test_views=16))
