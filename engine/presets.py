"""Named presets and schedule overrides: the one mapping from a job's spec to a model config.

``paper`` is the method as published; ``fast`` (the CLI's and the studio's default) holds the
measured recommendations (``bench/results/quality-budget.md``); ``tiny`` is a smoke test. The
names and the override limits live in :mod:`jobspec`.
"""

from __future__ import annotations

import dataclasses

from engine.config import (
    BackboneConfig,
    DetectorConfig,
    DeviceChoice,
    FlowConfig,
    ModelConfig,
    ScoreConfig,
    TrainConfig,
)
from engine.errors import ConfigError
from jobspec import PRESET_HELP, Overrides, Preset, values_of

PRESETS: dict[str, str] = {preset.value: text for preset, text in PRESET_HELP.items()}


def detector_config(
    preset: str,
    model: ModelConfig | None = None,
    overrides: Overrides | None = None,
    device: DeviceChoice | None = None,
) -> DetectorConfig:
    """The config of ``preset`` for ``model``'s architecture, with ``overrides`` and ``device``."""
    return apply_overrides(preset_config(preset, model), overrides or Overrides(), device)


def apply_overrides(
    config: DetectorConfig, overrides: Overrides, device: DeviceChoice | None = None
) -> DetectorConfig:
    """``config`` with the set overrides (and the device of training and scoring) replaced."""
    model, train, score = config.model, config.train, config.score
    if overrides.image_size is not None:
        model = dataclasses.replace(model, image_size=overrides.image_size)
    if overrides.epochs is not None:
        train = dataclasses.replace(train, epochs=overrides.epochs)
    if overrides.cache_views_per_image is not None:
        train = dataclasses.replace(train, cache_views_per_image=overrides.cache_views_per_image)
    if overrides.seed is not None:
        train = dataclasses.replace(train, seed=overrides.seed)
    if overrides.test_views is not None:
        score = dataclasses.replace(score, test_views=overrides.test_views)
    if device is not None:
        train = dataclasses.replace(train, device=device)
        score = dataclasses.replace(score, device=device)
    return DetectorConfig(model=model, train=train, score=score)


def model_for(
    variant: str, backbone: str, weights: str = "imagenet", **backbone_options: object
) -> ModelConfig:
    """The architecture of a model version: its attention variant and backbone."""
    return ModelConfig(
        variant=variant,  # type: ignore[arg-type]  # checked by ModelConfig
        backbone=BackboneConfig(name=backbone, weights=weights, **backbone_options),  # type: ignore[arg-type]
    )


def preset_config(name: str, model: ModelConfig | None = None) -> DetectorConfig:
    """The config of preset ``name``, keeping the architecture choices of ``model``."""
    base = DetectorConfig(model=model or ModelConfig())
    if name == "paper":
        return base.replace(model=dataclasses.replace(base.model, flow_input="raw"))
    if name == "fast":
        return base.replace(
            model=dataclasses.replace(
                base.model,
                image_size=224,
                scales=1,
                feature_stages="all",
                feature_pool="mean_max_std",
                patch=dataclasses.replace(base.model.patch, enabled=True),
                flow_input="whiten",
                intensity="standardize",
                view_group="dihedral",
                flow=dataclasses.replace(base.model.flow, subnet_hidden=512, zero_init=True),
            ),
            train=dataclasses.replace(
                base.train,
                epochs=12,
                lr=1e-3,
                cache_views_per_image=8,
                color_jitter=0.25,
                epoch_selection="validation",
                patience=4,
            ),
            score=dataclasses.replace(base.score, test_views=8),
        )
    if name == "tiny":
        return base.replace(
            model=dataclasses.replace(
                base.model,
                image_size=64,
                flow=FlowConfig(coupling_blocks=2, subnet_hidden=64, subnet_layers=1),
            ),
            train=TrainConfig(epochs=2, batch_images=4, cache_views_per_image=4),
            score=ScoreConfig(test_views=4),
        )
    raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(values_of(Preset))}")
