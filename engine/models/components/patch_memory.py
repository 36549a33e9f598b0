"""The local term: a memory of normal patch features and each image's largest patch distance.

Pooled features average a small crack away; a patch vector (the backbone's maps at a few output
strides, 3×3-averaged and brought to one grid) keeps it. Training keeps a seeded random share of
the training images' patch vectors; an image's term is the largest distance of any of its patches
to the nearest one in memory. The image score is the geometric mean of the flow's score and this
term: a ranking that no rescaling of either term changes, so neither dominates by its units and
no weight has to be estimated from the few held-out normals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config import PatchConfig

# Patches per distance computation: bounds the (patches × memory) distance matrix.
DISTANCE_CHUNK = 2048


def patch_vectors(backbone: nn.Module, normalized: Tensor, strides: Sequence[int]) -> Tensor:
    """Patch vectors (B, H·W, C) of a normalised batch: the last map at each output stride (the
    nearest power of two), 3×3-averaged, upsampled to the finest grid and concatenated."""
    size = normalized.shape[-1]
    layers = [
        layer
        for stage, pool in zip(backbone.stages, backbone.pools, strict=True)  # type: ignore[arg-type]
        for layer in (*stage, pool)
    ]
    found: dict[int, Tensor] = {}
    x = normalized
    for layer in layers:
        x = layer(x)
        stride = 2 ** round(math.log2(size / x.shape[-1]))  # AlexNet's are not exact
        if stride > max(strides) and len(found) == len(strides):
            break
        if stride in strides:
            found[stride] = x
    missing = [stride for stride in strides if stride not in found]
    if missing:
        raise ValueError(f"the backbone has no map at output stride {missing}")
    maps = [F.avg_pool2d(found[s].float(), 3, stride=1, padding=1) for s in sorted(strides)]
    grid = maps[0].shape[-2:]
    aligned = [maps[0]] + [
        F.interpolate(m, size=grid, mode="bilinear", align_corners=False) for m in maps[1:]
    ]
    return torch.cat(aligned, dim=1).flatten(2).transpose(1, 2).contiguous()


def nearest_distances(queries: Tensor, memory: Tensor) -> Tensor:
    """Euclidean distance of each query row (N, C) to its nearest memory row (M, C)."""
    parts = [torch.cdist(chunk, memory).amin(dim=1) for chunk in queries.split(DISTANCE_CHUNK)]
    return torch.cat(parts) if parts else queries.new_empty(0)


class PatchMemory(nn.Module):
    """Normal patch vectors of the training images (a seeded random share of them)."""

    memory: Tensor

    def __init__(self, config: PatchConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("memory", torch.empty(0, 0))

    @property
    def fitted(self) -> bool:
        """Whether the memory holds patches."""
        return self.memory.shape[0] > 0

    def fit(self, batches: Iterable[Tensor], seed: int) -> int:
        """Keep a seeded random share of the patch vectors of ``batches`` (each B, P, C),
        drawn batch by batch so the full set is never held; returns how many were kept."""
        generator = torch.Generator().manual_seed(seed)
        kept: list[Tensor] = []
        for batch in batches:
            flat = batch.reshape(-1, batch.shape[-1])
            count = max(1, round(self.config.memory_fraction * flat.shape[0]))
            chosen = torch.randperm(flat.shape[0], generator=generator)[:count]
            kept.append(flat[chosen.to(flat.device)].float())
        if not kept:
            raise ValueError("the patch memory needs at least one training image")
        memory = torch.cat(kept)
        if memory.shape[0] > self.config.max_memory:
            chosen = torch.randperm(memory.shape[0], generator=generator)
            memory = memory[chosen[: self.config.max_memory].to(memory.device)]
        self.memory = memory.contiguous()
        return int(memory.shape[0])

    def image_terms(self, patches: Tensor) -> Tensor:
        """Each image's largest nearest-patch distance, for patch vectors (B, P, C)."""
        if not self.fitted:
            raise RuntimeError("the patch memory is empty: fit it on training patches first")
        flat = patches.reshape(-1, patches.shape[-1]).to(self.memory)
        return nearest_distances(flat, self.memory).view(patches.shape[0], -1).amax(dim=1)

    @staticmethod
    def combine(flow_scores: np.ndarray, patch_terms: np.ndarray) -> np.ndarray:
        """The image score: the geometric mean of the flow's score and the patch term."""
        flow = np.asarray(flow_scores, dtype=np.float64)
        patch = np.asarray(patch_terms, dtype=np.float64)
        return np.sqrt(np.clip(flow, 0.0, None) * np.clip(patch, 0.0, None))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        stored = state_dict.get(prefix + "memory")
        if isinstance(stored, Tensor):  # the memory's size is known only once it is read
            self.memory = torch.empty_like(stored, device=self.memory.device)
        super()._load_from_state_dict(state_dict, prefix, *args)
