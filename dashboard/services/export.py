"""Per-image results as CSV and JSON, and the model checkpoint file, for download."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from dashboard.services.store import SessionFactory
from dashboard.services.thresholds import scope_label, verdict_counts
from db.errors import InvalidValueError
from db.models import ModelStatus, ModelVersion
from db.repositories import (
    ScoreRow,
    all_scores,
    count_scores,
    get_model_version,
    list_model_versions,
    list_scores,
)
from db.session import session_scope
from db.storage import resolve_data_path

logger = logging.getLogger(__name__)

# Spreadsheets run cells that start with these as formulas; such text cells get a leading "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportRow:
    """One image's result under one model version."""

    image_id: int
    file_name: str
    category: str | None
    known_label: str | None
    model_version_id: int
    model_name: str
    variant: str
    backbone: str
    score: float
    percentile: float | None
    threshold_scope: str | None  # "all categories" or "category <name>"; None: no threshold
    threshold_version: int | None
    threshold_value: float | None
    threshold_upper: float | None
    model_verdict: str | None
    reviewer_verdict: str | None
    reviewer: str | None
    verdict_at: datetime | None
    scored_at: datetime


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ExportRow))


def rows_for_model(factory: SessionFactory, model_version_id: int) -> list[ExportRow]:
    """Every scored image of one model version, highest score first."""
    with session_scope(factory) as session:
        return _model_rows(session, get_model_version(session, model_version_id))


def rows_for_project(factory: SessionFactory, project_id: int) -> list[ExportRow]:
    """Every scored image under every model version of a project."""
    out: list[ExportRow] = []
    with session_scope(factory) as session:
        for model in list_model_versions(session, project_id=project_id):
            out += _model_rows(session, model)
    return out


def _model_rows(
    session: Session, model: ModelVersion, *, limit: int | None = None
) -> list[ExportRow]:
    if limit is None:
        rows = all_scores(session, model_version_id=model.id)
    else:
        rows = list_scores(session, model_version_id=model.id, order="score", limit=limit).items
    return [_export_row(model, r) for r in rows]


def _export_row(model: ModelVersion, r: ScoreRow) -> ExportRow:
    return ExportRow(
        image_id=r.image_id,
        file_name=r.original_name,
        category=r.category,
        known_label=r.known_label,
        model_version_id=model.id,
        model_name=model.name,
        variant=model.variant,
        backbone=model.backbone,
        score=r.score,
        percentile=r.percentile,
        threshold_scope=None if r.threshold_id is None else scope_label(r.threshold_category),
        threshold_version=r.threshold_version,
        threshold_value=r.threshold_value,
        threshold_upper=r.threshold_upper,
        model_verdict=r.model_verdict,
        reviewer_verdict=r.verdict_label,
        reviewer=r.verdict_username,
        verdict_at=r.verdict_at,
        scored_at=r.scored_at,
    )


@dataclass(frozen=True)
class ExportSummary:
    """What an export holds, counted without building it."""

    images: int
    reviewed: int
    anomalous: int


def summary(
    factory: SessionFactory, *, project_id: int, model_version_id: int | None = None
) -> ExportSummary:
    """Rows, reviewed rows and model-says-anomalous rows of one model's export (or, without
    ``model_version_id``, of every model version of the project)."""
    with session_scope(factory) as session:
        ids = (
            [model_version_id]
            if model_version_id is not None
            else [m.id for m in list_model_versions(session, project_id=project_id)]
        )
        images = sum(count_scores(session, model_version_id=i) for i in ids)
        reviewed = sum(count_scores(session, model_version_id=i, reviewed_only=True) for i in ids)
    anomalous = sum(verdict_counts(factory, i, None).get("anomalous", 0) for i in ids)
    return ExportSummary(images, reviewed, anomalous)


def preview_rows(
    factory: SessionFactory, *, project_id: int, model_version_id: int | None, limit: int
) -> list[ExportRow]:
    """The first ``limit`` rows of the export, read as one page."""
    with session_scope(factory) as session:
        models = (
            [get_model_version(session, model_version_id)]
            if model_version_id is not None
            else list_model_versions(session, project_id=project_id)
        )
        out: list[ExportRow] = []
        for model in models:
            if len(out) >= limit:
                break
            out += _model_rows(session, model, limit=limit - len(out))
        return out


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def to_csv(rows: Iterable[ExportRow]) -> str:
    """CSV text with a header row; text is quoted where needed (commas, quotes, line breaks)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(getattr(row, c)) for c in COLUMNS])
    return buffer.getvalue()


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def to_json(rows: Iterable[ExportRow]) -> str:
    """A JSON array of objects, one per row, with ISO-8601 UTC times; names are kept as-is."""
    records = [{k: _json_value(v) for k, v in asdict(row).items()} for row in rows]
    return json.dumps(records, ensure_ascii=False, indent=1)


@dataclass(frozen=True)
class CheckpointFile:
    """A ready model's checkpoint on disk."""

    path: Path
    size_bytes: int
    download_name: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def checkpoint_file(
    factory: SessionFactory, data_dir: Path, model_version_id: int
) -> CheckpointFile:
    """The checkpoint of a ready model version; raises `InvalidValueError` with the reason
    (not ready, no file recorded, file missing)."""
    with session_scope(factory) as session:
        model = get_model_version(session, model_version_id)
        status, artifact = str(model.status), model.artifact_path
        stem = f"{_slug(model.name)}-{model.variant}-{model.backbone}-v{model.id}"
        if status != ModelStatus.READY.value or not artifact:
            raise InvalidValueError(
                f"model {model.name!r} is {status}; only a ready model has a checkpoint file"
            )
    path = resolve_data_path(data_dir, artifact)
    if not path.is_file():
        raise InvalidValueError(
            f"the checkpoint file {path} is missing; check that the data dir is the one the "
            "workers write to (ADN_DATA_DIR), or train the model again"
        )
    return CheckpointFile(path, path.stat().st_size, f"{stem}{path.suffix or '.adn'}")


def human_size(size_bytes: int) -> str:
    """A size such as "12.3 MB"."""
    value = float(size_bytes)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
