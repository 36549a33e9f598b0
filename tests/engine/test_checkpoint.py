"""Checkpoint files: round trip, safe loading, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import CheckpointError, load_detector, train
from engine.checkpoint import FORMAT_VERSION, load_checkpoint
from tests.engine.tiny import tiny_config
from tests.fixtures.synthetic import write_images


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("ckpt")
    normals = write_images(folder / "good", 8, size=64)
    defects = write_images(folder / "bad", 2, defect=True, size=64, seed=5)
    result = train(tiny_config("se"), normals)
    path = result.detector.save(folder / "model.adn", metadata={"category": "widget"})
    return path, normals[:2] + defects


def test_round_trip_gives_identical_scores(trained: tuple[Path, list[Path]]) -> None:
    path, images = trained
    first = load_detector(path, device="cpu")
    second = load_detector(path, device="cpu")
    np.testing.assert_allclose(first.score(images).scores, second.score(images).scores, rtol=1e-5)
    data = load_checkpoint(path)
    assert data.config.model.variant == "se"
    assert data.metadata["category"] == "widget"
    assert {"engine", "torch", "torchvision", "freia"} <= set(data.versions)
    assert data.calibration.threshold is not None


def test_checkpoint_needs_no_unpickling(trained: tuple[Path, list[Path]]) -> None:
    path, _ = trained
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION


def test_write_is_atomic_no_temporary_left(trained: tuple[Path, list[Path]]) -> None:
    path, _ = trained
    assert not list(path.parent.glob(".tmp-*"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"hello, not a model", "not an AttentDifferNet checkpoint"),
    ],
)
def test_non_checkpoints_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.adn"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_detector(path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path = tmp_path / "evil.adn"
    torch.save({"format": "attentdiffernet-checkpoint", "obj": Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="could not be read safely"):
        load_checkpoint(path)


def test_other_torch_files_and_newer_versions(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="lacks the checkpoint format marker"):
        load_checkpoint(plain)
    newer = tmp_path / "newer.adn"
    torch.save(
        {"format": "attentdiffernet-checkpoint", "format_version": FORMAT_VERSION + 1}, newer
    )
    with pytest.raises(CheckpointError, match="newer than this engine supports"):
        load_checkpoint(newer)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.adn")
