"""Ingest of loose files: validation verdicts, content-addressed storage, duplicates, labels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import InvalidValueError, LabelFileError
from db.ingest import IngestOutcome, ingest_files
from db.labels import CsvLabels, FolderLabels, LabelSource
from db.models import Image
from db.repositories import get_batch, get_image, get_project, image_file_path, list_audit
from db.settings import StoreSettings
from db.storage import sha256_hex, write_atomic
from tests.db.factories import make_batch, make_project, png_bytes
from tests.fixtures.bad_images import write_bad_corpus

STORED = re.compile(r"^images/([0-9a-f]{2})/([0-9a-f]{64})\.(png|jpg)$")


def _ingest(
    session: Session,
    settings: StoreSettings,
    files: list[tuple[str, bytes]],
    label_source: LabelSource | None = None,
    category: str | None = None,
) -> tuple[int, int, list[IngestOutcome]]:
    project = make_project(session)
    batch = make_batch(session, project)
    outcomes = ingest_files(
        session,
        project_id=project.id,
        batch_id=batch.id,
        files=files,
        settings=settings,
        label_source=label_source,
        category=category,
    )
    return project.id, batch.id, outcomes


def test_bad_corpus_verdicts_and_stored_files(
    session: Session, store_settings: StoreSettings, tmp_path: Path
) -> None:
    expected = write_bad_corpus(tmp_path / "corpus")
    files = [(name, (tmp_path / "corpus" / name).read_bytes()) for name in sorted(expected)]
    _, batch_id, outcomes = _ingest(session, store_settings, files)

    assert [o.name for o in outcomes] == [name for name, _ in files]
    for outcome in outcomes:
        wanted = "accepted" if expected[outcome.name] == "ok" else "rejected"
        assert outcome.status == wanted, (outcome.name, outcome.reason)
        if wanted == "rejected":
            assert outcome.reason and outcome.image_id is None
        else:
            assert outcome.reason is None and outcome.image_id is not None

    reasons = {o.name: o.reason or "" for o in outcomes}
    assert "empty" in reasons["empty.png"]
    assert "pixels" in reasons["huge_dimensions.png"]
    assert "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]

    data = dict(files)
    modes = {}
    for outcome in outcomes:
        if outcome.image_id is None:
            continue
        image = get_image(session, outcome.image_id)
        match = STORED.match(image.storage_path)
        assert match, image.storage_path
        assert match.group(2) == image.sha256 == sha256_hex(data[outcome.name])
        assert match.group(1) == image.sha256[:2]
        assert outcome.name not in image.storage_path
        path = image_file_path(store_settings, image)
        assert path.read_bytes() == data[outcome.name]  # original bytes, never re-encoded
        assert (image.original_name, image.size_bytes) == (outcome.name, len(data[outcome.name]))
        assert (image.width, image.height) == (64, 64)
        modes[outcome.name] = image.mode
    assert modes["gray16.png"].startswith("I")
    assert modes["cmyk.jpg"] == "CMYK"
    assert modes["rgba.png"] == "RGBA"
    assert modes["palette_transparent.png"] == "P"
    assert modes["grayscale.png"] == "L"

    leftovers = [p for p in store_settings.images_dir.rglob("*") if p.name.startswith(".tmp")]
    assert leftovers == []
    batch = get_batch(session, batch_id)
    accepted = sum(1 for v in expected.values() if v == "ok")
    assert (batch.file_count, batch.accepted_count) == (len(files), accepted)
    assert (batch.duplicate_count, batch.rejected_count) == (0, len(files) - accepted)
    audit = list_audit(session, action="batch.ingest", entity_id=batch_id)
    assert len(audit) == 1
    assert audit[0].details_json["accepted"] == accepted


def test_duplicates_are_reported_not_stored_twice(
    session: Session, store_settings: StoreSettings
) -> None:
    red, blue = png_bytes(color=(255, 0, 0)), png_bytes(color=(0, 0, 255))
    project_id, _, outcomes = _ingest(
        session, store_settings, [("a.png", red), ("b.png", blue), ("copy of a.png", red)]
    )
    assert [o.status for o in outcomes] == ["accepted", "accepted", "duplicate"]
    assert outcomes[2].image_id == outcomes[0].image_id
    assert "already in this project" in (outcomes[2].reason or "")

    later = make_batch(session, get_project(session, project_id))
    again = ingest_files(
        session,
        project_id=project_id,
        batch_id=later.id,
        files=[("renamed.png", blue)],
        settings=store_settings,
    )
    assert again[0].status == "duplicate"
    assert again[0].image_id == outcomes[1].image_id
    count = session.scalar(select(func.count(Image.id)).where(Image.project_id == project_id))
    assert count == 2
    stored = [p for p in store_settings.images_dir.rglob("*") if p.is_file()]
    assert len(stored) == 2

    other_project, _, elsewhere = _ingest(session, store_settings, [("a.png", red)])
    assert elsewhere[0].status == "accepted"  # unique per project, not globally
    assert other_project != project_id


def test_limits(session: Session, tmp_path: Path) -> None:
    settings = StoreSettings.from_values(
        data_dir=tmp_path / "limited", max_files_per_batch=3, max_file_mb=1, max_pixels=2000
    )
    big = b"\x89PNG" + bytes(2 * 1024 * 1024)
    files = [
        ("ok.png", png_bytes(40, 40)),
        ("too_many_pixels.png", png_bytes(50, 50)),
        ("too_big.png", big),
        ("fourth.png", png_bytes(40, 40, (0, 255, 0))),
        ("fifth.png", png_bytes(40, 40, (0, 0, 255))),
    ]
    _, _, outcomes = _ingest(session, settings, files)
    assert [o.status for o in outcomes] == ["accepted"] + ["rejected"] * 4
    assert "2,500 pixels" in (outcomes[1].reason or "")
    assert "ADN_MAX_FILE_MB" in (outcomes[2].reason or "")
    assert "ADN_MAX_FILES_PER_BATCH" in (outcomes[3].reason or "")
    assert "ADN_MAX_FILES_PER_BATCH" in (outcomes[4].reason or "")


def test_images_below_the_minimum_side_are_refused(session: Session, tmp_path: Path) -> None:
    settings = StoreSettings.from_values(data_dir=tmp_path / "small", min_image_side=32)
    files = [
        ("pixel.png", png_bytes(1, 1)),
        ("thin.png", png_bytes(31, 200)),
        ("just_enough.png", png_bytes(32, 32)),
    ]
    _, _, outcomes = _ingest(session, settings, files)
    assert [o.status for o in outcomes] == ["rejected", "rejected", "accepted"]
    assert "1x1 pixels" in (outcomes[0].reason or "")
    assert "at least 32 (ADN_MIN_IMAGE_SIDE)" in (outcomes[1].reason or "")
    assert StoreSettings.from_values(data_dir=tmp_path).min_image_side == 32  # on by default


def test_folder_labels_follow_the_mvtec_layout() -> None:
    labels = FolderLabels()
    assert labels.lookup("bottle/train/good/000.png").label == "normal"
    assert labels.lookup("bottle/train/good/000.png").category == "bottle"
    broken = labels.lookup("mvtec/bottle/test/broken_large/001.png")
    assert (broken.label, broken.category, broken.defect_type) == (
        "anomalous",
        "bottle",
        "broken_large",
    )
    assert labels.lookup("test/good/1.png").category is None
    assert labels.lookup("good/1.png").label == "normal"
    assert labels.lookup("loose/1.png").label is None
    assert labels.lookup("bottle/ground_truth/broken/000_mask.png").skip_reason


def test_labels_are_stored(session: Session, store_settings: StoreSettings) -> None:
    files = [
        ("screw/train/good/0.png", png_bytes(color=(1, 2, 3))),
        ("screw/test/thread_side/0.png", png_bytes(color=(4, 5, 6))),
        ("screw/ground_truth/thread_side/0_mask.png", png_bytes(color=(7, 8, 9))),
        ("other/0.png", png_bytes(color=(9, 9, 9))),
    ]
    _, _, outcomes = _ingest(
        session, store_settings, files, label_source=FolderLabels(), category="default-cat"
    )
    assert [o.status for o in outcomes] == ["accepted", "accepted", "rejected", "accepted"]
    assert "mask" in (outcomes[2].reason or "")
    images = [get_image(session, o.image_id) for o in outcomes if o.image_id]
    assert [(i.known_label, i.category, i.defect_type) for i in images] == [
        ("normal", "screw", None),
        ("anomalous", "screw", "thread_side"),
        (None, "default-cat", None),
    ]


def test_csv_labels(session: Session, store_settings: StoreSettings) -> None:
    csv = b"\xef\xbb\xbffilename,label,category\nparts/a.png,normal,nut\nb.png,NG,\nc.png,,bolt\n"
    labels = CsvLabels.parse(csv)
    files = [
        ("parts/a.png", png_bytes(color=(10, 0, 0))),
        ("upload/b.png", png_bytes(color=(20, 0, 0))),
        ("c.png", png_bytes(color=(30, 0, 0))),
        ("d.png", png_bytes(color=(40, 0, 0))),
    ]
    _, _, outcomes = _ingest(session, store_settings, files, label_source=labels)
    images = [get_image(session, o.image_id) for o in outcomes if o.image_id]
    assert [(i.known_label, i.category) for i in images] == [
        ("normal", "nut"),
        ("anomalous", None),
        (None, "bolt"),
        (None, None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.png,broken\n", "line 1: unknown label 'broken'"),
        ("filename,label\na.png\n", "line 2"),
        ("", "no rows"),
        (b"\xff\xfe\x00bad", "UTF-8"),
    ],
)
def test_bad_csv_is_refused_with_the_line(text: str | bytes, message: str) -> None:
    with pytest.raises(LabelFileError, match=message):
        CsvLabels.parse(text)


def test_batch_must_belong_to_the_project(session: Session, store_settings: StoreSettings) -> None:
    project, other = make_project(session), make_project(session)
    batch = make_batch(session, project)
    with pytest.raises(InvalidValueError, match="belongs to project"):
        ingest_files(
            session, project_id=other.id, batch_id=batch.id, files=[], settings=store_settings
        )


def test_atomic_write_replaces_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]


def test_every_bad_csv_line_is_reported_at_once() -> None:
    text = "filename,label\na.png,perhaps\nb.png,normal\nc.png\n,normal\nd.png,good\ne.png,meh\n"
    with pytest.raises(LabelFileError) as caught:
        CsvLabels.parse(text)
    message = str(caught.value)
    assert "4 bad line(s)" in message
    for line in ("line 2", "line 4", "line 5", "line 7"):
        assert line in message
    assert "line 3" not in message and "line 6" not in message


def test_csv_labels_remember_rows_and_files_they_did_not_match() -> None:
    labels = CsvLabels.parse("a.png,normal\nsub/b.png,anomalous\nc.png,normal\n")
    assert labels.lookup("upload/a.png").label == "normal"
    assert labels.lookup("sub/b.png").label == "anomalous"
    assert labels.lookup("x.png").label is None
    assert labels.unused_rows() == ["c.png"]
    assert labels.unlisted_files() == ["x.png"]
