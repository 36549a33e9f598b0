"""Schedule overrides a person may set on top of a preset, with their limits."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from jobspec.errors import JobSpecError

# Inclusive limits of each override.
OVERRIDE_LIMITS: dict[str, tuple[int, int]] = {
    "epochs": (1, 1000),
    "image_size": (32, 1024),
    "test_views": (1, 64),
    "cache_views_per_image": (1, 64),
    "seed": (0, 2**31 - 1),
}


@dataclass(frozen=True)
class Overrides:
    """Values that replace the preset's; ``None`` keeps the preset's value."""

    epochs: int | None = None
    image_size: int | None = None
    test_views: int | None = None
    cache_views_per_image: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name, value in self.items():
            low, high = OVERRIDE_LIMITS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise JobSpecError(
                    f"{name} must be a whole number from {low} to {high}, got {value!r}"
                )

    def items(self) -> list[tuple[str, int]]:
        """The overrides that are set, as (name, value) pairs."""
        return [
            (f.name, getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        ]

    def to_dict(self) -> dict[str, int]:
        """Only the set overrides (the stored JSON form)."""
        return dict(self.items())

    @classmethod
    def from_dict(cls, data: Any) -> Overrides:
        """Read the stored form; unknown keys are an error."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise JobSpecError(f"overrides must be an object, got {data!r}")
        unknown = sorted(set(data) - set(OVERRIDE_LIMITS))
        if unknown:
            raise JobSpecError(
                f"unknown overrides {', '.join(unknown)}; allowed: {', '.join(OVERRIDE_LIMITS)}"
            )
        return cls(**{k: v for k, v in data.items() if v is not None})
