"""Named schedules: the paper's, a CPU-friendly one, and a tiny one for smoke tests."""

from __future__ import annotations

import dataclasses

from engine.config import DetectorConfig, FlowConfig, ModelConfig, ScoreConfig, TrainConfig
from engine.errors import ConfigError

PRESETS: dict[str, str] = {
    "paper": "the paper exactly: 448 px, 192 epochs, 64 test views, raw features (hours on CPU)",
    "fast": "a short CPU schedule: 224 px, 12 epochs, 8 cached views per image, 8 test views",
    "tiny": "a smoke test: 64 px, 2 epochs, a small flow (seconds; not for real inspection)",
}


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
    raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
