"""How services reach the database: each public service call runs in its own transaction.

Public service functions take the session factory (``dashboard.context.session_factory()``),
open ``session_scope(factory)``, call repository functions, commit, and return plain values.
Functions that take a ``Session`` instead run inside a caller's transaction and are internal.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

SessionFactory = sessionmaker[Session]
