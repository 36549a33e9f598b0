"""Shared fixtures for the model tests: a small flow and an empty torch hub directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import FlowConfig


@pytest.fixture
def small_flow() -> FlowConfig:
    """A flow small enough for CPU tests (two couplings, one hidden layer of 32)."""
    return FlowConfig(coupling_blocks=2, subnet_hidden=32, subnet_layers=1)


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point torch hub at an empty folder, so no cached weights file is found."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub
