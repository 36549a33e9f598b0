"""Ingest uploaded files and zips into a batch: validate, deduplicate, store, record.

Every file gets one `IngestOutcome`; a bad file never stops the others. Files are stored by
content hash under the data dir; an image already in the project is reported as a duplicate.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import InvalidValueError, ZipRefusedError
from db.image_check import ImageRejected, inspect_image
from db.labels import LabelInfo, LabelSource
from db.models import Image, ImageBatch, Role, User
from db.repositories.audit import record_audit
from db.repositories.images import find_image_by_hash, get_batch
from db.roles import require_role
from db.settings import StoreSettings
from db.storage import sha256_hex, store_image_bytes
from db.zip_safety import member_refusal, open_zip, preflight

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 512


class IngestStatus(StrEnum):
    """What happened to one uploaded file."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IngestOutcome:
    """The result for one file: its name, status, reason (when not accepted) and image id
    (the new image, or for a duplicate the image that already holds the same content)."""

    name: str
    status: str
    reason: str | None = None
    image_id: int | None = None


def _clean_name(name: str) -> str:
    cleaned = name.replace("\\", "/").strip() or "(unnamed)"
    if len(cleaned) > MAX_NAME_LENGTH:
        cleaned = "..." + cleaned[-(MAX_NAME_LENGTH - 3) :]
    return cleaned


class _BatchIngestor:
    """Adds files one at a time to one batch and keeps the batch counters."""

    def __init__(
        self,
        session: Session,
        batch: ImageBatch,
        settings: StoreSettings,
        label_source: LabelSource | None,
        category: str | None,
    ) -> None:
        self.session = session
        self.batch = batch
        self.settings = settings
        self.label_source = label_source
        self.category = category
        self.outcomes: list[IngestOutcome] = []
        self._seen: dict[str, int] = {}

    @property
    def free_slots(self) -> int:
        """How many more files the batch may take."""
        used = self.batch.file_count + len(self.outcomes)
        return max(0, self.settings.max_files_per_batch - used)

    def add(self, name: str, data: bytes) -> IngestOutcome:
        """Validate, deduplicate and store one file; never raises for a bad file."""
        name = _clean_name(name)
        if self.free_slots <= 0:
            return self.reject(
                name,
                f"the batch already has {self.settings.max_files_per_batch} files, the limit "
                "(ADN_MAX_FILES_PER_BATCH); start a new batch for the rest",
            )
        labels = self.label_source.lookup(name) if self.label_source else LabelInfo()
        if labels.skip_reason:
            return self.reject(name, labels.skip_reason)
        try:
            info = inspect_image(
                data,
                max_bytes=self.settings.max_file_bytes,
                max_pixels=self.settings.max_pixels,
                min_side=self.settings.min_image_side,
            )
        except ImageRejected as rejected:
            return self.reject(name, rejected.reason)
        digest = sha256_hex(data)
        existing = self._seen.get(digest)
        if existing is None:
            found = find_image_by_hash(self.session, self.batch.project_id, digest)
            existing = found.id if found is not None else None
        if existing is not None:
            return self._duplicate(name, existing)
        storage_path = store_image_bytes(self.settings.data_dir, data, digest, info.extension)
        image = Image(
            project_id=self.batch.project_id,
            batch_id=self.batch.id,
            sha256=digest,
            storage_path=storage_path,
            original_name=name,
            format=info.format,
            width=info.width,
            height=info.height,
            mode=info.mode,
            size_bytes=len(data),
            category=labels.category or self.category,
            known_label=labels.label,
            defect_type=labels.defect_type,
        )
        try:
            with self.session.begin_nested():
                self.session.add(image)
        except IntegrityError:
            # The same content was stored by a concurrent upload into this project.
            found = find_image_by_hash(self.session, self.batch.project_id, digest)
            return self._duplicate(name, found.id if found is not None else None)
        self._seen[digest] = image.id
        return self._record(IngestOutcome(name, IngestStatus.ACCEPTED.value, None, image.id))

    def _duplicate(self, name: str, image_id: int | None) -> IngestOutcome:
        reason = "the same image is already in this project"
        if image_id is not None:
            reason += f" (image {image_id})"
        return self._record(IngestOutcome(name, IngestStatus.DUPLICATE.value, reason, image_id))

    def reject(self, name: str, reason: str) -> IngestOutcome:
        """Record a file that is not stored, with the reason."""
        name = _clean_name(name)
        logger.info("rejected %r: %s", name, reason)
        return self._record(IngestOutcome(name, IngestStatus.REJECTED.value, reason, None))

    def _record(self, outcome: IngestOutcome) -> IngestOutcome:
        self.outcomes.append(outcome)
        return outcome

    def finish(self, actor: User | None, source: str) -> list[IngestOutcome]:
        """Add to the batch counters (atomically) and write one audit row for this upload."""
        counts = {status.value: 0 for status in IngestStatus}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        self.session.execute(
            update(ImageBatch)
            .where(ImageBatch.id == self.batch.id)
            .values(
                file_count=ImageBatch.file_count + len(self.outcomes),
                accepted_count=ImageBatch.accepted_count + counts[IngestStatus.ACCEPTED],
                duplicate_count=ImageBatch.duplicate_count + counts[IngestStatus.DUPLICATE],
                rejected_count=ImageBatch.rejected_count + counts[IngestStatus.REJECTED],
            )
            .execution_options(synchronize_session=False)
        )
        self.session.refresh(self.batch)
        record_audit(
            self.session,
            action="batch.ingest",
            entity_type="batch",
            entity_id=self.batch.id,
            user=actor,
            details={"source": source, "files": len(self.outcomes), **counts},
        )
        logger.info("batch %s: ingested %s from %s", self.batch.id, counts, source)
        return self.outcomes


def _target_batch(
    session: Session, project_id: int, batch_id: int, actor: User | None
) -> ImageBatch:
    """The batch to upload into, once the actor may upload and the batch is the project's."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="upload images")
    batch = get_batch(session, batch_id)
    if batch.project_id != project_id:
        raise InvalidValueError(
            f"batch {batch_id} belongs to project {batch.project_id}, not {project_id}; "
            "pick a batch of this project"
        )
    return batch


def ingest_files(
    session: Session,
    *,
    project_id: int,
    batch_id: int,
    files: Iterable[tuple[str, bytes]],
    settings: StoreSettings,
    label_source: LabelSource | None = None,
    category: str | None = None,
    actor: User | None = None,
) -> list[IngestOutcome]:
    """Ingest `(name, bytes)` pairs into a batch; one outcome per file, in order.

    `label_source` is `FolderLabels()`, `CsvLabels.parse(...)` or None; `category` is used for
    files the labels give no category. Reviewers and admins only when `actor` is given.
    """
    batch = _target_batch(session, project_id, batch_id, actor)
    ingestor = _BatchIngestor(session, batch, settings, label_source, category)
    for name, data in files:
        ingestor.add(name, data)
    return ingestor.finish(actor, "files")


def record_rejected_upload(
    session: Session,
    *,
    project_id: int,
    batch_id: int,
    name: str,
    reason: str,
    settings: StoreSettings,
    actor: User | None = None,
) -> IngestOutcome:
    """Count one uploaded file that was refused as a whole (e.g. a refused zip) in the batch's
    file and rejected counters and the audit log; nothing is stored."""
    batch = _target_batch(session, project_id, batch_id, actor)
    ingestor = _BatchIngestor(session, batch, settings, label_source=None, category=None)
    outcome = ingestor.reject(name, reason)
    ingestor.finish(actor, "refused upload")
    return outcome


def _read_members(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], max_bytes: int
) -> Iterator[tuple[str, bytes | None, str | None]]:
    """Yield (name, bytes or None, refusal reason) per file member, one at a time."""
    for info in members:
        refusal = member_refusal(info)
        if refusal is None and info.file_size > max_bytes:
            refusal = (
                f"the file is {info.file_size / (1024 * 1024):.1f} MB; the limit is "
                f"{max_bytes / (1024 * 1024):.1f} MB per file (ADN_MAX_FILE_MB)"
            )
        if refusal is not None:
            yield info.filename, None, refusal
            continue
        try:
            with archive.open(info) as stream:
                yield info.filename, stream.read(max_bytes + 1), None
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
            yield info.filename, None, f"the zip member is damaged and cannot be read ({exc})"


def ingest_zip(
    session: Session,
    *,
    project_id: int,
    batch_id: int,
    zip_source: bytes | Path | str,
    settings: StoreSettings,
    label_source: LabelSource | None = None,
    category: str | None = None,
    actor: User | None = None,
) -> list[IngestOutcome]:
    """Ingest the files of a zip (bytes or a path) into a batch; one outcome per file member.

    The whole zip is refused (`ZipRefusedError`, nothing stored) when it is unreadable, expands
    beyond ADN_MAX_ZIP_UNCOMPRESSED_MB, has a member compressed more than ADN_MAX_ZIP_RATIO
    times, or holds more files than the batch may still take. Members with absolute paths,
    '..' or symbolic links are rejected one by one.
    """
    batch = _target_batch(session, project_id, batch_id, actor)
    ingestor = _BatchIngestor(session, batch, settings, label_source, category)
    source = io.BytesIO(zip_source) if isinstance(zip_source, bytes) else Path(zip_source)
    with open_zip(source) as archive:
        members = preflight(
            archive,
            max_total_bytes=settings.max_zip_uncompressed_bytes,
            max_ratio=settings.max_zip_ratio,
            free_slots=ingestor.free_slots,
        )
        if not members:
            raise ZipRefusedError("the zip holds no files; add images to it and upload again")
        for name, data, refusal in _read_members(archive, members, settings.max_file_bytes):
            if refusal is not None:
                ingestor.reject(name, refusal)
            else:
                ingestor.add(name, data or b"")
    label = PurePosixPath(str(zip_source)).name if not isinstance(zip_source, bytes) else "zip"
    return ingestor.finish(actor, label)
