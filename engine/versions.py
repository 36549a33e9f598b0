"""Versions of the engine and the libraries a model depends on."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "attentdiffernet-studio"


def package_version(name: str) -> str:
    """Installed version of ``name``, or ``unknown``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def runtime_versions() -> dict[str, str]:
    """Engine, torch, torchvision and FrEIA versions (stored with every checkpoint)."""
    return {
        "engine": package_version(DISTRIBUTION),
        "torch": package_version("torch"),
        "torchvision": package_version("torchvision"),
        "freia": package_version("FrEIA"),
    }
