"""The engine's device choice for this worker (``ADN_WORKER_DEVICE``)."""

from __future__ import annotations

import logging
import os
import re
import sys

from worker.errors import SettingsError

logger = logging.getLogger(__name__)

_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")


def engine_device(worker_device: str) -> str:
    """The engine config's device for ``worker_device``; ``cuda:N`` pins this process to GPU N.

    The engine's config takes ``auto``/``cuda``/``mps``/``cpu``; a worker given ``cuda:N`` makes
    GPU N the only visible one (before torch starts CUDA) and then asks for ``cuda``.
    """
    match = _CUDA_INDEX.match(worker_device)
    if match is None:
        return worker_device
    index = match.group(1)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible == index:
        return "cuda"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise SettingsError(
            f"ADN_WORKER_DEVICE={worker_device!r} cannot be applied: CUDA already started in this "
            f"process with CUDA_VISIBLE_DEVICES={visible!r}; restart the worker"
        )
    os.environ["CUDA_VISIBLE_DEVICES"] = index
    logger.info("this worker process uses GPU %s only (ADN_WORKER_DEVICE=%s)", index, worker_device)
    return "cuda"
