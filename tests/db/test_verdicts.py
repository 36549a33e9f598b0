from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValueError, NotFoundError
from db.models import Verdict
from db.repositories import (
    add_verdict,
    current_verdict,
    current_verdicts,
    list_audit,
    verdict_history,
)
from tests.db.factories import make_batch, make_image, make_model, make_project, make_user


def test_history_is_kept_and_latest_is_current(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    alice, bob = make_user(session), make_user(session)
    project = make_project(session)
    image = make_image(session, make_batch(session, project))
    model = make_model(session, project)
    assert current_verdict(session, image.id) is None
    first = add_verdict(
        session, image_id=image.id, label="anomalous", user=alice, model_version_id=model.id
    )
    second = add_verdict(
        session, image_id=image.id, label="normal", user=bob, note="  scratch is dust "
    )
    assert second.note == "scratch is dust"
    assert current_verdict(session, image.id) is second
    assert verdict_history(session, image.id) == [second, first]
    assert (first.user_id, first.model_version_id) == (alice.id, model.id)
    audit = list_audit(session, action="verdict.add", entity_id=image.id)
    assert [a.user_id for a in audit] == [bob.id, alice.id]
    stored = {first.id: first.created_at, second.id: second.created_at}
    session.commit()
    # Read the rows back through the column type in a new session, not the in-memory values.
    with session_factory() as fresh:
        loaded = {v.id: v for v in verdict_history(fresh, image.id)}
        assert set(loaded) == set(stored)
        for verdict_id, created_at in stored.items():
            read_back = loaded[verdict_id].created_at
            assert read_back.tzinfo is not None
            assert read_back.utcoffset() == timedelta(0)
            assert read_back == created_at


def test_same_timestamp_is_broken_by_id(session: Session) -> None:
    user = make_user(session)
    image = make_image(session, make_batch(session, make_project(session)))
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    rows = [
        Verdict(image_id=image.id, label=label, user_id=user.id, created_at=moment)
        for label in ("normal", "anomalous", "unsure")
    ]
    session.add_all(rows)
    session.flush()
    assert current_verdict(session, image.id) is rows[2]
    assert current_verdicts(session, [image.id])[image.id] is rows[2]


def test_current_verdicts_of_many_images(session: Session) -> None:
    user = make_user(session)
    batch = make_batch(session, make_project(session))
    a, b, c = (make_image(session, batch) for _ in range(3))
    add_verdict(session, image_id=a.id, label="normal", user=user)
    latest_a = add_verdict(session, image_id=a.id, label="anomalous", user=user)
    latest_b = add_verdict(session, image_id=b.id, label="unsure", user=user)
    found = current_verdicts(session, [a.id, b.id, c.id])
    assert found == {a.id: latest_a, b.id: latest_b}
    assert current_verdicts(session, []) == {}


def test_bad_verdicts(session: Session) -> None:
    user = make_user(session)
    image = make_image(session, make_batch(session, make_project(session)))
    with pytest.raises(InvalidValueError, match="verdict 'maybe'"):
        add_verdict(session, image_id=image.id, label="maybe", user=user)
    with pytest.raises(NotFoundError):
        add_verdict(session, image_id=99999, label="normal", user=user)
    assert verdict_history(session, image.id) == []
