"""Store settings, read from `ADN_*` environment variables (the only place `db` reads them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from db.errors import SettingsError
from jobspec.env import ENV_PREFIX, env_int, env_text

MB = 1024 * 1024

_INT_DEFAULTS: dict[str, int] = {
    "max_file_mb": 50,
    "max_pixels": 40_000_000,
    "max_files_per_batch": 5000,
    "max_zip_uncompressed_mb": 4096,
    "max_zip_ratio": 100,
    "min_image_side": 32,
    "max_upload_mb": 1024,
    "session_hours": 12,
}


@dataclass(frozen=True)
class StoreSettings:
    """Where data lives and how large uploads may be."""

    data_dir: Path
    database_url: str
    max_file_mb: int = 50
    max_pixels: int = 40_000_000
    max_files_per_batch: int = 5000
    max_zip_uncompressed_mb: int = 4096
    max_zip_ratio: int = 100
    # Smaller images hold too little to inspect (a 1×1 image would head every review queue).
    min_image_side: int = 32
    # Largest single upload (an image or a zip); the browser's uploader is set to it.
    max_upload_mb: int = 1024
    # How long a sign-in lasts in a browser (a reload or a bookmark keeps it); a shift by default.
    session_hours: int = 12

    def __post_init__(self) -> None:
        for field_name in _INT_DEFAULTS:
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise SettingsError(
                    f"{ENV_PREFIX}{field_name.upper()} must be a positive whole number, "
                    f"got {value!r}; fix the value or unset it to use the default "
                    f"({_INT_DEFAULTS[field_name]})."
                )
        if not self.database_url.strip():
            raise SettingsError(
                f"{ENV_PREFIX}DATABASE_URL is empty; unset it to use the embedded SQLite file "
                "or set a URL such as postgresql+psycopg://user:password@host:5432/studio."
            )

    @property
    def max_file_bytes(self) -> int:
        """Largest accepted single file, in bytes."""
        return self.max_file_mb * MB

    @property
    def max_upload_bytes(self) -> int:
        """Largest accepted single upload (image or zip), in bytes."""
        return self.max_upload_mb * MB

    @property
    def max_zip_uncompressed_bytes(self) -> int:
        """Largest accepted total uncompressed size of one zip, in bytes."""
        return self.max_zip_uncompressed_mb * MB

    @property
    def images_dir(self) -> Path:
        """Folder that holds the content-addressed image files."""
        return self.data_dir / "images"

    @classmethod
    def from_values(
        cls,
        *,
        data_dir: str | Path = "./data",
        database_url: str | None = None,
        max_file_mb: int = 50,
        max_pixels: int = 40_000_000,
        max_files_per_batch: int = 5000,
        max_zip_uncompressed_mb: int = 4096,
        max_zip_ratio: int = 100,
        min_image_side: int = 32,
        max_upload_mb: int = 1024,
        session_hours: int = 12,
    ) -> StoreSettings:
        """Build settings from explicit values (tests, scripts); the data dir is made absolute."""
        resolved = Path(data_dir).expanduser().resolve()
        return cls(
            data_dir=resolved,
            database_url=database_url or default_database_url(resolved),
            max_file_mb=max_file_mb,
            max_pixels=max_pixels,
            max_files_per_batch=max_files_per_batch,
            max_zip_uncompressed_mb=max_zip_uncompressed_mb,
            max_zip_ratio=max_zip_ratio,
            min_image_side=min_image_side,
            max_upload_mb=max_upload_mb,
            session_hours=session_hours,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        """Read `ADN_DATA_DIR`, `ADN_DATABASE_URL`, the `ADN_MAX_*` upload limits and
        `ADN_SESSION_HOURS`."""
        env = os.environ if environ is None else environ
        limits = {
            name: env_int(env, name.upper(), default, SettingsError)
            for name, default in _INT_DEFAULTS.items()
        }
        return cls.from_values(
            data_dir=env_text(env, "DATA_DIR") or "./data",
            database_url=env_text(env, "DATABASE_URL") or None,
            **limits,
        )


def default_database_url(data_dir: Path) -> str:
    """The embedded-mode SQLite URL inside the data dir."""
    return f"sqlite:///{(data_dir / 'studio.db').as_posix()}"
