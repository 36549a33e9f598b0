"""Tiny configs that train in seconds on CPU, for tests."""

from __future__ import annotations

import dataclasses

from engine.config import BackboneConfig, DetectorConfig, ModelConfig
from engine.presets import preset_config


def tiny_config(
    variant: str = "none",
    backbone: str = "alexnet",
    *,
    image_size: int = 64,
    epochs: int = 2,
    seed: int = 0,
    weights: str = "random",
    **train_overrides: object,
) -> DetectorConfig:
    """A small-flow, small-image config with random backbone weights unless asked otherwise."""
    model = ModelConfig(
        variant=variant,  # type: ignore[arg-type]
        backbone=BackboneConfig(name=backbone, weights=weights, download=False),  # type: ignore[arg-type]
    )
    base = preset_config("tiny", model)
    return base.replace(
        model=dataclasses.replace(base.model, image_size=image_size),
        train=dataclasses.replace(
            base.train, epochs=epochs, seed=seed, device="cpu", **train_overrides
        ),
        score=dataclasses.replace(base.score, device="cpu"),
    )
