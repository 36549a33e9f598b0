"""Content-addressed image files under `<data_dir>/images/<hash[:2]>/<hash>.<ext>`."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path, PurePosixPath

from db.errors import InvalidValueError

logger = logging.getLogger(__name__)

IMAGES_FOLDER = "images"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def image_relative_path(sha256: str, ext: str) -> str:
    """Storage path of an image, relative to the data dir, with forward slashes."""
    if not _HEX64.match(sha256):
        raise InvalidValueError(f"{sha256!r} is not a lower-case hex SHA-256 digest")
    if not _EXT.match(ext):
        raise InvalidValueError(f"{ext!r} is not a plain file extension such as 'png'")
    return f"{IMAGES_FOLDER}/{sha256[:2]}/{sha256}.{ext}"


def resolve_data_path(data_dir: Path, relative: str) -> Path:
    """Absolute path of a path stored relative to the data dir; refuses paths that escape it."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise InvalidValueError(
            f"stored path {relative!r} is not a plain relative path inside the data dir"
        )
    return data_dir.joinpath(*pure.parts)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def store_image_bytes(data_dir: Path, data: bytes, sha256: str, ext: str) -> str:
    """Store image bytes by content hash (once); return the relative storage path."""
    relative = image_relative_path(sha256, ext)
    target = resolve_data_path(data_dir, relative)
    if target.is_file() and target.stat().st_size == len(data):
        logger.debug("content %s already stored", sha256)
        return relative
    write_atomic(target, data)
    return relative
