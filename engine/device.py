"""Device choice (CUDA, then Apple MPS, then CPU) and mixed precision on GPUs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

from engine.errors import ConfigError

logger = logging.getLogger(__name__)


def select_device(choice: str = "auto") -> torch.device:
    """Resolve ``auto``/``cuda``/``cuda:N``/``mps``/``cpu`` to an available device."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {choice!r} was asked for but CUDA is not available; use 'auto' or 'cpu'"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device {choice!r} was asked for but MPS is not available; use 'auto' or 'cpu'"
        )
    return device


# Views per extractor pass when the config says 0: small batches run fastest on CPU caches.
AUTO_BATCH_SIZE = {"cpu": 8, "mps": 32, "cuda": 128}


def resolve_batch_size(configured: int, device: torch.device) -> int:
    """``configured`` when positive, else the automatic size for ``device``."""
    return configured if configured > 0 else AUTO_BATCH_SIZE.get(device.type, 8)


@contextlib.contextmanager
def autocast_for(device: torch.device) -> Iterator[None]:
    """bfloat16 autocast on CUDA (the feature extractor only); a no-op elsewhere."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield
