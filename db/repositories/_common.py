"""Small helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy.orm import Session

from db.errors import InvalidValueError, NotFoundError
from db.models import Base

ModelT = TypeVar("ModelT", bound=Base)


def get_or_raise(session: Session, model: type[ModelT], key: int, entity: str) -> ModelT:
    """Load a row by primary key or raise `NotFoundError` naming the entity."""
    row = session.get(model, key)
    if row is None:
        raise NotFoundError(entity, key)
    return row


def check_choice(what: str, value: str | None, allowed: Iterable[str]) -> str:
    """Return `value` if it is one of `allowed`, else raise `InvalidValueError`."""
    options = tuple(str(a) for a in allowed)
    if value not in options:
        raise InvalidValueError(f"{what} {value!r} is not valid; use one of {', '.join(options)}.")
    return str(value)


def clean_name(what: str, value: str, *, max_length: int) -> str:
    """Strip a name and check it is non-empty and short enough."""
    cleaned = value.strip()
    if not cleaned:
        raise InvalidValueError(f"the {what} is empty; give it a name.")
    if len(cleaned) > max_length:
        raise InvalidValueError(
            f"the {what} has {len(cleaned)} characters; use at most {max_length}."
        )
    return cleaned


def clean_optional(value: str | None, *, max_length: int, what: str) -> str | None:
    """Strip an optional text value; empty becomes None."""
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > max_length:
        raise InvalidValueError(
            f"the {what} has {len(cleaned)} characters; use at most {max_length}."
        )
    return cleaned


def check_page(limit: int, offset: int, *, max_limit: int = 1000) -> None:
    """Validate pagination arguments."""
    if limit < 1 or limit > max_limit:
        raise InvalidValueError(f"limit must be between 1 and {max_limit}, got {limit}.")
    if offset < 0:
        raise InvalidValueError(f"offset must be 0 or more, got {offset}.")
