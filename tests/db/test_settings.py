from __future__ import annotations

from pathlib import Path

import pytest

from db.errors import SettingsError
from db.settings import StoreSettings


def test_defaults_resolve_data_dir_and_sqlite_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = StoreSettings.from_env({})
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.data_dir.is_absolute()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'data' / 'studio.db').resolve()}"
    assert (settings.max_file_mb, settings.max_pixels, settings.max_files_per_batch) == (
        50,
        40_000_000,
        5000,
    )
    assert (settings.max_zip_uncompressed_mb, settings.max_zip_ratio) == (4096, 100)
    assert settings.max_file_bytes == 50 * 1024 * 1024


def test_environment_values_are_read(tmp_path: Path) -> None:
    env = {
        "ADN_DATA_DIR": str(tmp_path / "store"),
        "ADN_DATABASE_URL": "postgresql+psycopg://u:p@db:5432/studio",
        "ADN_MAX_FILE_MB": "7",
        "ADN_MAX_PIXELS": "1_000_000",
        "ADN_MAX_FILES_PER_BATCH": "12",
        "ADN_MAX_ZIP_UNCOMPRESSED_MB": "64",
        "ADN_MAX_ZIP_RATIO": "30",
        "ADN_MIN_IMAGE_SIDE": "64",
        "ADN_MAX_UPLOAD_MB": "300",
    }
    settings = StoreSettings.from_env(env)
    assert settings.data_dir == tmp_path / "store"
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/studio"
    assert settings.max_file_mb == 7
    assert settings.max_pixels == 1_000_000
    assert settings.max_files_per_batch == 12
    assert settings.max_zip_uncompressed_mb == 64
    assert settings.max_zip_ratio == 30
    assert settings.min_image_side == 64
    assert settings.max_upload_mb == 300 and settings.max_upload_bytes == 300 * 1024 * 1024
    assert settings.images_dir == tmp_path / "store" / "images"


def test_empty_values_mean_default(tmp_path: Path) -> None:
    settings = StoreSettings.from_env(
        {"ADN_DATA_DIR": str(tmp_path), "ADN_DATABASE_URL": "", "ADN_MAX_FILE_MB": ""}
    )
    assert settings.max_file_mb == 50
    assert settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("key", "value"),
    [("ADN_MAX_FILE_MB", "lots"), ("ADN_MAX_PIXELS", "0"), ("ADN_MAX_ZIP_RATIO", "-5")],
)
def test_bad_values_name_the_variable(key: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=key):
        StoreSettings.from_env({"ADN_DATA_DIR": str(tmp_path), key: value})


def test_from_values_builds_the_default_url(tmp_path: Path) -> None:
    settings = StoreSettings.from_values(data_dir=tmp_path / "d", max_files_per_batch=3)
    assert settings.database_url.endswith("/d/studio.db")
    assert settings.max_files_per_batch == 3
