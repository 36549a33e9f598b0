"""The engine's exception hierarchy: every message says what was wrong and how to fix it."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(EngineError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class ImageLoadError(EngineError):
    """One image file could not be read; the caller may collect these and go on with the rest."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class DatasetError(EngineError):
    """A dataset folder or split is missing, empty or laid out wrongly."""


class WeightsNotFoundError(EngineError):
    """Pretrained backbone weights are not where they must be (and are never silently replaced)."""


class CheckpointError(EngineError):
    """A file is not an engine checkpoint, or comes from an incompatible version."""


class TrainingCancelled(EngineError):
    """Training stopped because the caller asked it to."""


class FeatureCollapseError(EngineError):
    """Trained attention drove the features toward a constant; training was stopped."""
