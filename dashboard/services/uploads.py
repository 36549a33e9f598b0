"""Uploads: label sources, ingest of many files and zips into a new batch, per-file results."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sqlalchemy.orm import Session

from dashboard.services.store import SessionFactory
from db.errors import IngestError, LabelFileError
from db.ingest import IngestOutcome, IngestStatus, ingest_files, ingest_zip, record_rejected_upload
from db.labels import CsvLabels, FolderLabels, LabelSource
from db.models import User
from db.repositories import create_batch, discard_empty_batch, get_user
from db.session import session_scope
from db.settings import MB, StoreSettings

logger = logging.getLogger(__name__)

LABELS_NONE = "none"
LABELS_FOLDERS = "folders"
LABELS_CSV = "csv"
LABEL_SOURCES = {
    LABELS_NONE: "no known labels",
    LABELS_FOLDERS: "folder names (MVTec layout: <category>/test/good, <category>/test/<defect>)",
    LABELS_CSV: "a CSV file: filename,label[,category]",
}
ZIP_SUFFIX = ".zip"

Progress = Callable[[int, int, str], None]  # (done, total, current name)


@dataclass(frozen=True)
class UploadedItem:
    """One file as the browser sent it."""

    name: str
    data: bytes

    @property
    def is_zip(self) -> bool:
        """Whether the file is a zip archive (by name or by its first bytes)."""
        return self.name.lower().endswith(ZIP_SUFFIX) or self.data[:4] == b"PK\x03\x04"


@dataclass(frozen=True)
class UploadResult:
    """The new batch and one outcome per file (zips expand to one outcome per member).

    ``batch_id`` is None when no file was stored (only duplicates or rejects): then no batch is
    kept. With a label CSV, ``unused_label_rows`` are its rows that matched no uploaded file and
    ``unlabelled_files`` the uploaded files it has no row for.
    """

    batch_id: int | None
    batch_name: str
    outcomes: list[IngestOutcome]
    unused_label_rows: list[str] = field(default_factory=list)
    unlabelled_files: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many files ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def accepted(self) -> int:
        """Files stored as new images."""
        return self.count(IngestStatus.ACCEPTED.value)

    @property
    def duplicates(self) -> int:
        """Files whose content was already in the project."""
        return self.count(IngestStatus.DUPLICATE.value)

    @property
    def rejected(self) -> int:
        """Files refused, each with a reason."""
        return self.count(IngestStatus.REJECTED.value)

    def table(self) -> list[dict[str, object]]:
        """Rows for a result table: file, result, reason, image id."""
        return [
            {"file": o.name, "result": o.status, "reason": o.reason or "", "image id": o.image_id}
            for o in self.outcomes
        ]


def label_source(kind: str, csv_bytes: bytes | None = None) -> LabelSource | None:
    """The label source for the chosen option; raises `LabelFileError` for a missing/bad CSV."""
    if kind == LABELS_NONE:
        return None
    if kind == LABELS_FOLDERS:
        return FolderLabels()
    if kind == LABELS_CSV:
        if not csv_bytes:
            raise LabelFileError(
                "you chose labels from a CSV file but gave none; add the CSV "
                "(rows filename,label[,category]) or pick another label source"
            )
        return CsvLabels.parse(csv_bytes)
    raise LabelFileError(f"unknown label source {kind!r}; use one of {', '.join(LABEL_SOURCES)}")


def _counting(
    files: Sequence[UploadedItem], done_before: int, total: int, progress: Progress | None
) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) and report progress as ingest takes each file."""
    for offset, item in enumerate(files):
        if progress is not None:
            progress(done_before + offset, total, item.name)
        yield item.name, item.data


def upload_batch(
    factory: SessionFactory,
    *,
    settings: StoreSettings,
    project_id: int,
    batch_name: str,
    purpose: str,
    files: Iterable[UploadedItem],
    labels: LabelSource | None = None,
    category: str | None = None,
    actor_id: int,
    progress: Progress | None = None,
) -> UploadResult:
    """Create a batch and ingest every file and zip into it, in one transaction; a refused zip
    becomes one rejected row and never undoes the other files. Raises only for problems with
    the upload as a whole (no files, bad batch name, no permission); then nothing is stored."""
    items = [f for f in files if f is not None]
    if not items:
        raise IngestError("no files chosen; add images or zip files to upload")
    with session_scope(factory) as session:
        return _ingest(
            session,
            settings=settings,
            project_id=project_id,
            batch_name=batch_name,
            purpose=purpose,
            items=items,
            labels=labels,
            category=(category or "").strip() or None,
            actor=get_user(session, actor_id),
            progress=progress,
        )


def _ingest(
    session: Session,
    *,
    settings: StoreSettings,
    project_id: int,
    batch_name: str,
    purpose: str,
    items: list[UploadedItem],
    labels: LabelSource | None,
    category: str | None,
    actor: User,
    progress: Progress | None,
) -> UploadResult:
    batch = create_batch(
        session, project_id=project_id, name=batch_name, purpose=purpose, actor=actor
    )
    loose = [i for i in items if not i.is_zip]
    zips = [i for i in items if i.is_zip]
    total = len(items)
    outcomes: list[IngestOutcome] = []
    if loose:
        outcomes += ingest_files(
            session,
            project_id=project_id,
            batch_id=batch.id,
            files=_counting(loose, 0, total, progress),
            settings=settings,
            label_source=labels,
            category=category,
            actor=actor,
        )
    for index, item in enumerate(zips, start=len(loose)):
        if progress is not None:
            progress(index, total, item.name)
        try:
            if len(item.data) > settings.max_upload_bytes:
                raise IngestError(
                    f"it is {len(item.data) / MB:.0f} MB; the limit is {settings.max_upload_mb} "
                    "MB per upload (ADN_MAX_UPLOAD_MB); split it into smaller zips"
                )
            with session.begin_nested():
                found = ingest_zip(
                    session,
                    project_id=project_id,
                    batch_id=batch.id,
                    zip_source=item.data,
                    settings=settings,
                    label_source=labels,
                    category=category,
                    actor=actor,
                )
        except IngestError as exc:
            logger.info("zip %r refused: %s", item.name, exc)
            outcomes.append(
                record_rejected_upload(
                    session,
                    project_id=project_id,
                    batch_id=batch.id,
                    name=item.name,
                    reason=f"zip refused: {exc}",
                    settings=settings,
                    actor=actor,
                )
            )
            continue
        prefix = PurePosixPath(item.name).name
        outcomes += [
            IngestOutcome(f"{prefix}/{o.name}", o.status, o.reason, o.image_id) for o in found
        ]
    if progress is not None:
        progress(total, total, "")
    session.refresh(batch)
    logger.info("upload into batch %s: %d outcomes", batch.id, len(outcomes))
    kept: int | None = batch.id
    if batch.accepted_count == 0:
        discard_empty_batch(session, batch.id, actor=actor)
        kept = None
    unused, unlabelled = _label_gaps(labels)
    return UploadResult(kept, batch.name, outcomes, unused, unlabelled)


def _label_gaps(labels: LabelSource | None) -> tuple[list[str], list[str]]:
    """A label CSV's rows no file matched, and the files it has no row for."""
    if not isinstance(labels, CsvLabels):
        return [], []
    return labels.unused_rows(), labels.unlisted_files()
