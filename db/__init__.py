"""The studio's data store: models, sessions, migrations, repositories and image ingest.

Import models from `db.models`, repository functions from `db.repositories`, and the session
helpers from `db.session`. This package imports nothing from `engine`, `worker` or `dashboard`.
"""

from db.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidValueError,
    JobStateError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from db.roles import require_role
from db.settings import StoreSettings

__all__ = [
    "ConflictError",
    "DatabaseUnavailableError",
    "InvalidValueError",
    "JobStateError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreError",
    "StoreSettings",
    "require_role",
]
