"""The local term: patch vectors, the memory, its distances and the shared unit of both terms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.config import BackboneConfig, ModelConfig, PatchConfig
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.backbones import build_backbone
from engine.models.components.patch_memory import PatchMemory, nearest_distances, patch_vectors


def _memory(**changes: object) -> PatchMemory:
    return PatchMemory(dataclasses.replace(PatchConfig(enabled=True), **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "grid"), [("alexnet", 15), ("mobilenet_v2", 16)])
def test_patch_vectors_sit_on_the_stride_8_grid(name: str, grid: int) -> None:
    backbone = build_backbone(BackboneConfig(name=name, weights="random", download=False))  # type: ignore[arg-type]
    vectors = patch_vectors(backbone.eval(), torch.randn(2, 3, 128, 128), (8, 16))
    assert vectors.shape[:2] == (2, grid * grid)  # AlexNet's strides are not exact
    assert torch.isfinite(vectors).all()


def test_a_stride_the_backbone_lacks_is_an_error() -> None:
    backbone = build_backbone(BackboneConfig(name="alexnet", weights="random", download=False))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no map at output stride"):
        patch_vectors(backbone.eval(), torch.randn(1, 3, 128, 128), (8, 12))


def test_nearest_distances_match_a_brute_force_search() -> None:
    generator = torch.Generator().manual_seed(0)
    queries, memory = torch.randn(5000, 7, generator=generator), torch.randn(300, 7)
    expected = torch.cdist(queries, memory).min(dim=1).values
    torch.testing.assert_close(nearest_distances(queries, memory), expected)


def test_fit_keeps_a_seeded_share_of_every_batch_and_honours_the_cap() -> None:
    batches = [torch.randn(4, 100, 3), torch.randn(2, 100, 3)]
    memory = _memory(memory_fraction=0.25)
    assert memory.fit(batches, seed=1) == 100 + 50
    again = _memory(memory_fraction=0.25)
    again.fit(batches, seed=1)
    torch.testing.assert_close(memory.memory, again.memory)
    rows = {tuple(row.tolist()) for batch in batches for row in batch.reshape(-1, 3)}
    assert all(tuple(row.tolist()) in rows for row in memory.memory)
    capped = _memory(memory_fraction=1.0, max_memory=64)
    assert capped.fit(batches, seed=1) == 64


def test_an_image_term_is_its_largest_nearest_patch_distance() -> None:
    memory = _memory(memory_fraction=1.0)
    memory.fit([torch.zeros(1, 4, 2)], seed=0)  # every remembered patch is the origin
    patches = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(memory.image_terms(patches), torch.tensor([5.0, 1.0]))


def test_an_empty_memory_refuses_to_score() -> None:
    with pytest.raises(RuntimeError, match="empty"):
        _memory().image_terms(torch.zeros(1, 2, 2))


def test_the_score_is_the_geometric_mean_so_no_rescaling_of_a_term_changes_the_ranking() -> None:
    flow = np.array([1.0, 4.0, 2.0, 0.5])
    patch = np.array([9.0, 1.0, 2.0, 30.0])
    np.testing.assert_allclose(PatchMemory.combine(flow, patch), np.sqrt(flow * patch))
    ranking = np.argsort(PatchMemory.combine(flow, patch))
    assert list(np.argsort(PatchMemory.combine(1000.0 * flow, 0.01 * patch))) == list(ranking)


def test_a_model_with_a_patch_memory_round_trips_its_memory() -> None:
    config = ModelConfig(
        backbone=BackboneConfig(weights="random", download=False),
        image_size=64,
        scales=1,
        patch=PatchConfig(enabled=True),
    )
    model = AttentDifferNetModel(config).eval()
    assert model.patch_memory is not None
    with torch.no_grad():
        model.patch_memory.fit([model.patch_vectors(torch.rand(3, 3, 64, 64))], seed=0)
    restored = AttentDifferNetModel(config, load_backbone_weights=False)
    restored.load_state_dict(model.state_dict(), strict=True)
    assert restored.patch_memory is not None
    torch.testing.assert_close(restored.patch_memory.memory, model.patch_memory.memory)


def test_without_the_switch_a_model_has_no_patch_memory() -> None:
    model = AttentDifferNetModel(ModelConfig(backbone=BackboneConfig(weights="random")))
    assert model.patch_memory is None
    assert not any(key.startswith("patch_memory") for key in model.state_dict())
