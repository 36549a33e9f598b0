"""Ingest of zip archives: hostile members refused one by one, bombs refused as a whole."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import ZipRefusedError
from db.ingest import IngestOutcome, ingest_zip
from db.labels import FolderLabels, LabelSource
from db.models import Image, ImageBatch
from db.repositories import get_batch, get_image, list_audit
from db.settings import StoreSettings
from tests.db.factories import make_batch, make_project, png_bytes
from tests.fixtures.bad_images import (
    zip_bomb,
    zip_with_absolute_path,
    zip_with_symlink,
    zip_with_traversal,
)
from tests.fixtures.synthetic import write_mvtec_tree


def _batch(session: Session) -> ImageBatch:
    return make_batch(session, make_project(session))


def _run(
    session: Session,
    settings: StoreSettings,
    source: bytes | Path,
    label_source: LabelSource | None = None,
) -> tuple[ImageBatch, dict[str, IngestOutcome]]:
    batch = _batch(session)
    outcomes = ingest_zip(
        session,
        project_id=batch.project_id,
        batch_id=batch.id,
        zip_source=source,
        settings=settings,
        label_source=label_source,
    )
    return batch, {o.name: o for o in outcomes}


def _image_count(session: Session) -> int:
    return int(session.scalar(select(func.count(Image.id))) or 0)


@pytest.mark.parametrize(
    ("build", "bad_name", "words"),
    [
        (zip_with_traversal, "../../escaped.png", "'..'"),
        (zip_with_absolute_path, "/tmp/absolute.png", "absolute path"),
        (zip_with_symlink, "images/link.png", "symbolic link"),
    ],
)
def test_hostile_members_are_rejected_and_the_rest_kept(
    session: Session,
    store_settings: StoreSettings,
    tmp_path: Path,
    build: Callable[[Path], Path],
    bad_name: str,
    words: str,
) -> None:
    archive = build(tmp_path / "hostile.zip")
    batch, outcomes = _run(session, store_settings, archive)
    assert outcomes["images/ok.png"].status == "accepted"
    assert outcomes[bad_name].status == "rejected"
    assert words in (outcomes[bad_name].reason or "")
    assert _image_count(session) == 1
    assert not (tmp_path / "escaped.png").exists()
    written = [p for p in store_settings.data_dir.rglob("*") if p.is_file() and p.suffix == ".png"]
    assert len(written) == 1
    assert get_batch(session, batch.id).rejected_count == 1


def test_zip_bomb_is_refused_before_extracting(
    session: Session, store_settings: StoreSettings, tmp_path: Path
) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip", uncompressed_mb=200)
    with pytest.raises(ZipRefusedError, match="ADN_MAX_ZIP_UNCOMPRESSED_MB"):
        _run(session, store_settings, bomb)
    assert _image_count(session) == 0
    assert not store_settings.images_dir.exists()


def test_absurd_compression_ratio_is_refused(session: Session, tmp_path: Path) -> None:
    roomy = StoreSettings.from_values(
        data_dir=tmp_path / "roomy", max_zip_uncompressed_mb=4096, max_zip_ratio=100
    )
    bomb = zip_bomb(tmp_path / "small_bomb.zip", uncompressed_mb=3)
    with pytest.raises(ZipRefusedError, match="zip bomb"):
        _run(session, roomy, bomb)
    assert _image_count(session) == 0


def test_member_count_counts_against_the_batch_limit(session: Session, tmp_path: Path) -> None:
    settings = StoreSettings.from_values(data_dir=tmp_path / "few", max_files_per_batch=3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(4):
            archive.writestr(f"{i}.png", png_bytes(color=(i, 0, 0)))
    with pytest.raises(ZipRefusedError, match="holds 4 files but the batch can take only 3"):
        _run(session, settings, buffer.getvalue())
    assert _image_count(session) == 0


def test_not_a_zip(session: Session, store_settings: StoreSettings) -> None:
    with pytest.raises(ZipRefusedError, match="not a readable zip"):
        _run(session, store_settings, b"PK\x03\x04 but not really")


def test_mvtec_zip_with_folder_labels(
    session: Session, store_settings: StoreSettings, tmp_path: Path
) -> None:
    root = write_mvtec_tree(
        tmp_path / "tree", category="widget", n_train=3, n_test_good=2, n_test_defect=2, size=32
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*.png")):
            archive.write(path, path.relative_to(root).as_posix())
        archive.writestr("__MACOSX/widget/._000.png", b"\x00\x05\x16\x07")
    batch, outcomes = _run(session, store_settings, buffer.getvalue(), label_source=FolderLabels())

    accepted = {n: o for n, o in outcomes.items() if o.status == "accepted"}
    assert len(accepted) == 3 + 2 + 2
    masks = [o for n, o in outcomes.items() if "ground_truth" in n]
    assert len(masks) == 2 and all(o.status == "rejected" for o in masks)
    assert outcomes["__MACOSX/widget/._000.png"].status == "rejected"
    labels = {
        name: (
            get_image(session, o.image_id).known_label,
            get_image(session, o.image_id).defect_type,
        )
        for name, o in accepted.items()
        if o.image_id
    }
    assert labels["widget/train/good/000.png"] == ("normal", None)
    assert labels["widget/test/good/001.png"] == ("normal", None)
    assert labels["widget/test/defect/000.png"] == ("anomalous", "defect")
    assert {get_image(session, o.image_id).category for o in accepted.values() if o.image_id} == {
        "widget"
    }
    refreshed = get_batch(session, batch.id)
    assert (refreshed.file_count, refreshed.accepted_count, refreshed.rejected_count) == (10, 7, 3)
    assert (
        list_audit(session, action="batch.ingest", entity_id=batch.id)[0].details_json["rejected"]
        == 3
    )
