"""Checkpoint files: state dict, config, calibration and versions, loaded without unpickling.

A checkpoint is a plain ``torch.save`` dictionary of tensors, strings, numbers and lists, so it
loads with ``torch.load(weights_only=True)``. It holds the *whole* model, backbone included, so
loading it never needs the backbone's pretrained-weights file again.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.calibration import Calibration
from engine.config import DetectorConfig
from engine.errors import CheckpointError, ConfigError
from engine.versions import runtime_versions

FORMAT_NAME = "attentdiffernet-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointData:
    """What a checkpoint file holds."""

    config: DetectorConfig
    calibration: Calibration
    state_dict: dict[str, torch.Tensor]
    versions: dict[str, str]
    metadata: dict[str, Any]


def save_checkpoint(
    path: str | Path,
    *,
    config: DetectorConfig,
    calibration: Calibration,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temporary file, then rename) and return the final path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config_json": config.to_json(),
        "calibration": calibration.to_dict(),
        "versions": runtime_versions(),
        "metadata": dict(metadata or {}),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
    }
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".adn", dir=target.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(path: str | Path) -> CheckpointData:
    """Read a checkpoint; anything else (or a newer format) is a :class:`CheckpointError`."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"{source}: no such checkpoint file; check the path")
    if source.stat().st_size == 0:
        raise CheckpointError(f"{source}: the file is empty, so it is not a checkpoint")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on foreign bytes; all mean "not ours"
        raise CheckpointError(
            f"{source}: not an AttentDifferNet checkpoint (could not be read safely: {exc}). "
            "Only files written by `adn train` or Detector.save() can be loaded."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{source}: a PyTorch file, but not an AttentDifferNet checkpoint "
            "(it lacks the checkpoint format marker)"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: checkpoint format version {version} is newer than this engine supports "
            f"({FORMAT_VERSION}); upgrade attentdiffernet-studio to load it"
        )
    try:
        config = DetectorConfig.from_json(payload["config_json"])
        calibration = Calibration.from_dict(payload["calibration"])
        state_dict = payload["state_dict"]
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(
            f"{source}: checkpoint is incomplete or from an incompatible version: {exc}"
        ) from exc
    return CheckpointData(
        config=config,
        calibration=calibration,
        state_dict=state_dict,
        versions=dict(payload.get("versions", {})),
        metadata=dict(payload.get("metadata", {})),
    )


def upgrade_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Read weights saved when the flow input had a per-feature ``feature_scale`` vector.

    Such a model divided centred features by the scale; the same map as a whitener is the
    diagonal matrix of the reciprocals.
    """
    if "feature_scale" not in state_dict or "feature_whitener" in state_dict:
        return state_dict
    upgraded = dict(state_dict)
    scale = upgraded.pop("feature_scale")
    upgraded["feature_whitener"] = torch.diag(1.0 / scale)
    return upgraded
