"""Turning user inputs (paths, bytes, PIL images, arrays) into uint8 tensors at model size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.data.images import DEFAULT_MAX_PIXELS, load_image
from engine.data.transforms import image_to_tensor
from engine.errors import ImageLoadError

ImageInput = str | Path | bytes | Image.Image | np.ndarray


def source_name(image: ImageInput, index: int) -> str:
    """A readable name for an input: its path, or its position in the list."""
    if isinstance(image, str | Path):
        return str(image)
    return f"<image {index}>"


@dataclass
class LoadedImages:
    """Decoded images (uint8, N×3×S×S) with where each came from, and the ones that failed."""

    tensor: torch.Tensor
    indices: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # original (width, height)
    failures: list[ImageLoadError] = field(default_factory=list)


def load_images(
    images: Sequence[ImageInput],
    size: int,
    *,
    offset: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImages:
    """Decode every input; a bad one is recorded in ``failures`` and the rest go on."""
    tensors: list[torch.Tensor] = []
    loaded = LoadedImages(tensor=torch.empty(0, 3, size, size, dtype=torch.uint8))
    for position, image in enumerate(images, start=offset):
        name = source_name(image, position)
        try:
            picture = load_image(image, max_pixels=max_pixels, name=name)
        except ImageLoadError as exc:
            loaded.failures.append(exc)
            continue
        tensors.append(image_to_tensor(picture, size))
        loaded.indices.append(position)
        loaded.names.append(name)
        loaded.sizes.append(picture.size)
    if tensors:
        loaded.tensor = torch.stack(tensors)
    return loaded
