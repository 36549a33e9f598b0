"""The store's exception hierarchy: every message says what was wrong and how to fix it."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the `db` package raises on purpose."""


class SettingsError(StoreError, ValueError):
    """An `ADN_*` environment variable or settings value is missing or out of range."""


class DatabaseUnavailableError(StoreError):
    """The database server (or SQLite file) cannot be reached or opened."""

    def __init__(self, url: str, reason: str, hint: str) -> None:
        super().__init__(f"Cannot reach the database at {url}: {reason}. {hint}")
        self.url = url
        self.reason = reason
        self.hint = hint


class MigrationError(StoreError):
    """The schema could not be brought up to date."""


class NotFoundError(StoreError, LookupError):
    """A row that the caller named by id or name does not exist."""

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(
            f"{entity} {key!r} does not exist; it may have been deleted, or the id is wrong "
            "(reload the page or list the existing ones)."
        )
        self.entity = entity
        self.key = key


class InvalidValueError(StoreError, ValueError):
    """An argument has a value the store does not accept."""


class ConflictError(StoreError):
    """The change collides with existing data or with a concurrent change."""


class PermissionDeniedError(StoreError, PermissionError):
    """The acting user's role (or inactive account) does not allow the change."""


class JobStateError(StoreError):
    """A job transition was asked for from a status that does not allow it."""


class IngestError(StoreError):
    """An upload as a whole cannot be ingested (bad zip, bad label file, limits)."""


class ZipRefusedError(IngestError):
    """A zip archive was refused before anything was extracted."""


class LabelFileError(IngestError):
    """A label CSV is malformed; the message names the line."""
