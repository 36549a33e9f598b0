"""The errors pages catch, re-exported from the store so that no page imports ``db``."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError, ProgrammingError

from db.errors import (
    ConflictError,
    DatabaseUnavailableError,
    IngestError,
    InvalidValueError,
    JobStateError,
    LabelFileError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)

# The database answers but lacks the studio's tables (or cannot run the statement).
SCHEMA_ERRORS: tuple[type[Exception], ...] = (OperationalError, ProgrammingError)

__all__ = [
    "SCHEMA_ERRORS",
    "ConflictError",
    "DatabaseUnavailableError",
    "IngestError",
    "InvalidValueError",
    "JobStateError",
    "LabelFileError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreError",
]
