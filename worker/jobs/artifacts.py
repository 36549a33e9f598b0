"""Model folders under ``<data_dir>/models/``: written in a temporary folder, renamed when complete.

``models/<model_version_id>/model.adn`` only ever appears whole: training writes into
``models/.tmp-<id>-<random>/`` and renames that folder into place as its last step. Temporary
folders of a model version are removed when its training stops, fails, or starts again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

MODELS_FOLDER = "models"
CHECKPOINT_NAME = "model.adn"
_TEMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


def models_root(data_dir: Path) -> Path:
    """``<data_dir>/models``."""
    return data_dir / MODELS_FOLDER


def model_dir(data_dir: Path, model_version_id: int) -> Path:
    """The published folder of a model version."""
    return models_root(data_dir) / str(model_version_id)


def artifact_relative_path(model_version_id: int) -> str:
    """The checkpoint's path relative to the data dir, as stored in the model version row."""
    return f"{MODELS_FOLDER}/{model_version_id}/{CHECKPOINT_NAME}"


def make_temp_dir(data_dir: Path, model_version_id: int) -> Path:
    """A new, empty temporary folder for one training run of a model version."""
    root = models_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{model_version_id}-", dir=root))


def remove_temp_dirs(data_dir: Path, model_version_id: int) -> int:
    """Delete the temporary (and set-aside) folders of a model version; return how many."""
    root = models_root(data_dir)
    if not root.is_dir():
        return 0
    removed = 0
    for prefix in (_TEMP_PREFIX, _OLD_PREFIX):
        for path in root.glob(f"{prefix}{model_version_id}-*"):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        logger.info("removed %d unfinished folder(s) of model %s", removed, model_version_id)
    return removed


def publish(temp_dir: Path, data_dir: Path, model_version_id: int) -> Path:
    """Rename a complete temporary folder to ``models/<id>`` (replacing an older one)."""
    target = model_dir(data_dir, model_version_id)
    old: Path | None = None
    if target.exists():
        # Left by an earlier attempt that crashed after its rename but before its commit.
        old = target.with_name(f"{_OLD_PREFIX}{model_version_id}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(temp_dir, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
