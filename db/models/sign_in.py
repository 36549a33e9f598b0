"""Browser sign-ins: one row per sign-in, ended on sign-out, expiry or deactivation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, UTCDateTime, utcnow


class SignInSession(Base):
    """A signed-in browser. Only SHA-256 digests of its secrets are stored.

    The sign-in page hands the browser a one-time ticket; the browser trades it for the
    session token, which then lives only in an HTTP-only cookie.
    """

    __tablename__ = "sign_in_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    ticket_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    ticket_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"SignInSession(id={self.id!r}, user_id={self.user_id!r})"
