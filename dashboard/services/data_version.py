"""A cheap key for what pages load from a model's scores: it changes with any score, verdict or
threshold of the models, so a page may keep what it loaded under it (``st.cache_data``)."""

from __future__ import annotations

from collections.abc import Iterable

from dashboard.services.store import SessionFactory
from db.repositories import store_version
from db.session import session_scope

DataKey = tuple[str, tuple[tuple[int, ...], ...]]


def data_key(factory: SessionFactory, database: str, model_ids: Iterable[int]) -> DataKey:
    """The database and each model's data version, in one transaction."""
    with session_scope(factory) as session:
        return database, tuple(store_version(session, i) for i in model_ids)
