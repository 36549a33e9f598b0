"""Zip archive checks made before anything is extracted."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from db.errors import ZipRefusedError

_UNIX_CREATOR = 3
_MAC_METADATA = "__MACOSX"


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def is_symlink(info: zipfile.ZipInfo) -> bool:
    """True when the member was stored as a symbolic link (Unix mode bits)."""
    mode = info.external_attr >> 16
    return info.create_system == _UNIX_CREATOR and stat.S_ISLNK(mode)


def member_refusal(info: zipfile.ZipInfo) -> str | None:
    """Why one member must not be extracted (None when it is fine to read)."""
    name = info.filename
    posix = name.replace("\\", "/")
    if is_symlink(info):
        return "a symbolic link inside the zip; links are never followed"
    if posix.startswith("/") or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        return "an absolute path inside the zip; only relative paths are accepted"
    if ".." in PurePosixPath(posix).parts:
        return "a path with '..' inside the zip; it would point outside the upload"
    if info.flag_bits & 0x1:
        return "an encrypted zip member; upload it without a password"
    first = PurePosixPath(posix).parts[0] if PurePosixPath(posix).parts else ""
    base = PurePosixPath(posix).name
    if first == _MAC_METADATA or base.startswith("._") or base == ".DS_Store":
        return "macOS metadata, not an image"
    return None


def file_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members that are files (directories left out)."""
    return [info for info in archive.infolist() if not info.is_dir()]


def preflight(
    archive: zipfile.ZipFile,
    *,
    max_total_bytes: int,
    max_ratio: int,
    free_slots: int,
) -> list[zipfile.ZipInfo]:
    """Refuse the whole zip when it is too large, looks like a zip bomb, or has more files than
    the batch may still take; return its file members otherwise."""
    members = file_members(archive)
    if len(members) > free_slots:
        raise ZipRefusedError(
            f"the zip holds {len(members)} files but the batch can take only {free_slots} more "
            "(ADN_MAX_FILES_PER_BATCH); split it into several batches"
        )
    total = sum(info.file_size for info in members)
    if total > max_total_bytes:
        raise ZipRefusedError(
            f"the zip expands to {_mb(total)}; the limit is {_mb(max_total_bytes)} "
            "(ADN_MAX_ZIP_UNCOMPRESSED_MB); split it into smaller zips"
        )
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > max_ratio:
            raise ZipRefusedError(
                f"zip member {info.filename!r} expands {ratio:.0f} times (limit {max_ratio}, "
                "ADN_MAX_ZIP_RATIO); this looks like a zip bomb, so nothing was extracted"
            )
    return members


def open_zip(source: Path | BinaryIO) -> zipfile.ZipFile:
    """Open a zip from a path or a binary stream, or raise `ZipRefusedError`."""
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ZipRefusedError(
            f"the upload is not a readable zip archive ({exc}); create it again with a standard "
            "zip tool"
        ) from None
