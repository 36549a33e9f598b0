"""Services behind Projects & upload: ingest of mixed uploads, label sources, thumbnails."""

from __future__ import annotations

import dataclasses
import functools
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from dashboard.services import projects as project_service
from dashboard.services import uploads
from db.errors import IngestError, LabelFileError, PermissionDeniedError
from db.repositories import count_images, get_batch, list_audit, list_batches
from db.session import session_scope
from tests.dashboard.conftest import ProjectInfo, StudioUser, png_bytes
from tests.fixtures.bad_images import write_bad_corpus, zip_bomb
from tests.fixtures.synthetic import textured_image

Upload = Callable[..., uploads.UploadResult]


@pytest.fixture
def upload(studio_factory, studio_store, studio_project: ProjectInfo) -> Upload:
    """``upload_batch`` into the test project; the test names the batch, files and actor."""
    return functools.partial(
        uploads.upload_batch,
        studio_factory,
        settings=studio_store,
        project_id=studio_project.id,
    )


def _items(folder: Path, names: list[str]) -> list[uploads.UploadedItem]:
    return [uploads.UploadedItem(n, (folder / n).read_bytes()) for n in names]


def test_mixed_upload_gives_one_verdict_per_file_and_keeps_the_good_ones(
    tmp_path: Path, upload: Upload, studio_factory, studio_users, studio_project: ProjectInfo
) -> None:
    corpus = write_bad_corpus(tmp_path / "corpus")
    items = _items(tmp_path / "corpus", sorted(corpus))
    items.append(uploads.UploadedItem("again/valid.png", items[-1].data))  # a duplicate
    progress: list[tuple[int, int]] = []
    result = upload(
        batch_name="mixed",
        purpose="inspect",
        files=items,
        actor_id=studio_users["reviewer"].id,
        progress=lambda done, total, _name: progress.append((done, total)),
    )
    by_name = {o.name: o for o in result.outcomes}
    for name, expected in corpus.items():
        wanted = "accepted" if expected == "ok" else "rejected"
        assert by_name[name].status == wanted, (name, by_name[name])
        if wanted == "rejected":
            assert by_name[name].reason
    assert by_name["again/valid.png"].status == "duplicate"
    ok = sum(1 for v in corpus.values() if v == "ok")
    assert (result.accepted, result.duplicates) == (ok, 1)
    assert result.rejected == len(corpus) - ok
    assert progress[0] == (0, len(items)) and progress[-1] == (len(items), len(items))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    with session_scope(studio_factory) as session:
        assert count_images(session, project_id=studio_project.id) == ok
        batch = get_batch(session, result.batch_id)
        assert (batch.accepted_count, batch.rejected_count) == (ok, len(corpus) - ok)


def test_refused_zip_is_one_rejected_row_and_other_files_stay(
    tmp_path: Path, upload: Upload, studio_factory, studio_users, studio_project: ProjectInfo
) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip", uncompressed_mb=40).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inner/x.png", png_bytes(textured_image(32, seed=9)))
    items = [
        uploads.UploadedItem("bomb.zip", bomb),
        uploads.UploadedItem("good.zip", buffer.getvalue()),
        uploads.UploadedItem("loose.png", png_bytes(textured_image(32, seed=10))),
    ]
    result = upload(
        batch_name="zips", purpose="inspect", files=items, actor_id=studio_users["reviewer"].id
    )
    rows = {o.name: o for o in result.outcomes}
    assert rows["bomb.zip"].status == "rejected"
    assert rows["bomb.zip"].reason.startswith("zip refused:")
    assert rows["good.zip/inner/x.png"].status == "accepted"
    assert rows["loose.png"].status == "accepted"
    with session_scope(studio_factory) as session:
        assert count_images(session, project_id=studio_project.id) == 2
        batch = get_batch(session, result.batch_id)
        assert (batch.file_count, batch.accepted_count, batch.rejected_count) == (3, 2, 1)


def test_a_zip_over_the_upload_limit_is_refused_and_the_rest_kept(
    tmp_path: Path, studio_factory, studio_store, studio_users, studio_project: ProjectInfo
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("noise.bin", np.random.default_rng(0).bytes(2 * 1024 * 1024))
    limited = dataclasses.replace(studio_store, max_upload_mb=1)
    result = uploads.upload_batch(
        studio_factory,
        settings=limited,
        project_id=studio_project.id,
        batch_name="big zip",
        purpose="inspect",
        files=[
            uploads.UploadedItem("big.zip", buffer.getvalue()),
            uploads.UploadedItem("loose.png", png_bytes(textured_image(32, seed=11))),
        ],
        actor_id=studio_users["reviewer"].id,
    )
    rows = {o.name: o for o in result.outcomes}
    assert rows["big.zip"].status == "rejected"
    assert "limit is 1 MB per upload (ADN_MAX_UPLOAD_MB)" in rows["big.zip"].reason
    assert rows["loose.png"].status == "accepted"


def test_viewer_cannot_upload_through_the_service(
    upload: Upload, studio_factory, studio_users: dict[str, StudioUser], studio_project
) -> None:
    viewer = studio_users["viewer"].id
    with pytest.raises(PermissionDeniedError):
        upload(
            batch_name="sneaky",
            purpose="train",
            files=[uploads.UploadedItem("a.png", png_bytes(textured_image(32)))],
            actor_id=viewer,
        )
    with pytest.raises(PermissionDeniedError):
        project_service.new_project(studio_factory, name="nope", description=None, actor_id=viewer)
    with session_scope(studio_factory) as session:  # nothing was stored
        assert list_batches(session, studio_project.id) == []
        assert count_images(session, project_id=studio_project.id) == 0
    assert [p.name for p in project_service.projects(studio_factory)] == [studio_project.name]


def test_empty_upload_is_refused(upload: Upload, studio_factory, studio_users, studio_project):
    with pytest.raises(IngestError, match="no files"):
        upload(batch_name="empty", purpose="train", files=[], actor_id=studio_users["reviewer"].id)
    with session_scope(studio_factory) as session:
        assert list_batches(session, studio_project.id) == []


def test_label_sources() -> None:
    assert uploads.label_source("none") is None
    folder = uploads.label_source("folders")
    assert folder.lookup("widget/test/crack/1.png").label == "anomalous"
    csv_source = uploads.label_source("csv", b"filename,label,category\na.png,good,caps\n")
    info = csv_source.lookup("sub/a.png")
    assert (info.label, info.category) == ("normal", "caps")
    with pytest.raises(LabelFileError, match="gave none"):
        uploads.label_source("csv", None)
    with pytest.raises(LabelFileError, match="line 2"):
        uploads.label_source("csv", b"filename,label\na.png,perhaps\n")


def test_zip_detection_by_name_or_magic() -> None:
    assert uploads.UploadedItem("A.ZIP", b"").is_zip
    assert uploads.UploadedItem("noext", b"PK\x03\x04rest").is_zip
    assert not uploads.UploadedItem("a.png", b"\x89PNG").is_zip


@pytest.mark.parametrize("name", ["gray16.png", "cmyk.jpg", "palette_transparent.png", "rgba.png"])
def test_thumbnails_are_rgb_pngs_for_odd_modes(tmp_path: Path, name: str) -> None:
    write_bad_corpus(tmp_path)
    data = project_service.thumbnail_png(tmp_path / name, side=32)
    assert data is not None
    with PILImage.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "PNG" and thumb.mode == "RGB"
        assert max(thumb.size) <= 32


def test_thumbnail_of_unreadable_file_is_none(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert project_service.thumbnail_png(tmp_path / "bad.png") is None
    assert project_service.thumbnail_png(tmp_path / "missing.png") is None


def test_batches_summary_names_creator_and_counts(studio_factory, train_batch, inspect_batch):
    with session_scope(studio_factory) as session:
        project_id = get_batch(session, train_batch.id).project_id
    rows = project_service.batches(studio_factory, project_id)
    by_name = {r.name: r for r in rows}
    assert by_name[train_batch.name].images == 6
    assert by_name[inspect_batch.name].purpose == "inspect"
    assert {r.created_by for r in rows} == {"reviewer"}
    assert "normal training images" in by_name[train_batch.name].label
    assert project_service.page_count(0, 24) == 1
    assert project_service.page_count(25, 24) == 2


def test_upload_of_only_duplicates_and_rejects_keeps_no_empty_batch(
    upload: Upload, studio_factory, studio_users, studio_project: ProjectInfo
) -> None:
    reviewer = studio_users["reviewer"].id
    image = png_bytes(textured_image(48, seed=7))
    first = upload(
        batch_name="first",
        purpose="train",
        files=[uploads.UploadedItem("a.png", image)],
        actor_id=reviewer,
    )
    again = upload(
        batch_name="again",
        purpose="train",
        files=[
            uploads.UploadedItem("copy.png", image),
            uploads.UploadedItem("junk.png", b"not an image"),
        ],
        actor_id=reviewer,
    )
    assert first.batch_id is not None and again.batch_id is None
    assert (again.accepted, again.duplicates, again.rejected) == (0, 1, 1)
    assert again.outcomes[0].image_id is not None  # still says which image it duplicates
    with session_scope(studio_factory) as session:
        assert [b.name for b in list_batches(session, studio_project.id)] == ["first"]
        actions = [a.action for a in list_audit(session, entity_type="batch")]
        assert "batch.discard" in actions


def test_label_csv_gaps_are_reported_both_ways(
    upload: Upload, studio_factory, studio_users, studio_project: ProjectInfo
) -> None:
    labels = uploads.label_source(
        "csv", b"filename,label\na.png,normal\nb.png,anomalous\nmissing.png,normal\n"
    )
    result = upload(
        batch_name="labelled",
        purpose="inspect",
        files=[
            uploads.UploadedItem(name, png_bytes(textured_image(48, seed=seed)))
            for seed, name in enumerate(["a.png", "b.png", "extra.png"])
        ],
        labels=labels,
        actor_id=studio_users["reviewer"].id,
    )
    assert result.accepted == 3
    assert result.unused_label_rows == ["missing.png"]
    assert result.unlabelled_files == ["extra.png"]
