"""A model's scores by batch: the columns, the scored batches with counts and times, the newest
scored batch, and one batch's current verdicts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from db.models import Score, utcnow
from db.repositories import (
    add_verdict,
    batch_scores,
    current_labels_between,
    newest_score,
    newest_scored_batch,
    scored_batches,
    upsert_score,
)
from tests.db.factories import make_batch, make_image, make_model, make_project, make_user


def test_scores_by_batch_with_scopes_counts_and_the_newest(session: Session) -> None:
    project = make_project(session)
    model, other = make_model(session, project), make_model(session, project)
    first, second = make_batch(session, project), make_batch(session, project)
    assert newest_scored_batch(session, model.id) is None
    images = {
        (first.id, "caps"): make_image(session, first, category="caps", known_label="anomalous"),
        (first.id, "nuts"): make_image(session, first, category="nuts"),
        (second.id, "caps"): make_image(session, second, category="caps"),
    }
    for index, image in enumerate(images.values()):
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=float(index))
    upsert_score(session, image_id=images[first.id, "caps"].id, model_version_id=other.id, score=9)
    # The first batch is scored again last.
    later = utcnow() + timedelta(minutes=1)
    session.execute(
        update(Score)
        .where(Score.image_id == images[first.id, "nuts"].id, Score.model_version_id == model.id)
        .values(scored_at=later)
    )

    rows = batch_scores(session, model_version_id=model.id)
    assert len(rows) == 3 and sorted(rows.scores) == [0.0, 1.0, 2.0]
    assert sorted(zip(rows.batch_ids, rows.known_labels, strict=True), key=str) == sorted(
        [(first.id, "anomalous"), (first.id, None), (second.id, None)], key=str
    )
    caps = batch_scores(session, model_version_id=model.id, category="caps")
    assert sorted(caps.image_ids) == sorted(images[b, "caps"].id for b in (first.id, second.id))
    assert batch_scores(session, model_version_id=model.id, batch_id=second.id).scores == (2.0,)
    assert len(batch_scores(session, model_version_id=model.id, category="bolts")) == 0

    batches = scored_batches(session, model_version_id=model.id)
    assert [(b.id, b.scores) for b in batches] == [(first.id, 2), (second.id, 1)]
    assert batches[0].scored_at == later and batches[0].purpose == "inspect"
    caps_batches = scored_batches(session, model_version_id=model.id, category="caps")
    assert [(b.id, b.scores) for b in caps_batches] == [(first.id, 1), (second.id, 1)]
    only = scored_batches(session, model_version_id=model.id, batch_id=second.id)
    assert [b.id for b in only] == [second.id]
    assert newest_scored_batch(session, model.id) == first.id
    assert newest_scored_batch(session, other.id) == first.id
    # The newest score's time is the newest of its batch's (what the batch list reports).
    assert newest_score(session, model.id) == (first.id, batches[0].scored_at)
    assert newest_score(session, make_model(session, project).id) is None


def test_current_labels_between_are_the_current_verdicts_of_the_id_range(session: Session) -> None:
    project = make_project(session)
    reviewer = make_user(session)
    batch, elsewhere = make_batch(session, project), make_batch(session, project)
    before = make_image(session, elsewhere)
    changed, unsure = make_image(session, batch), make_image(session, batch)
    after = make_image(session, elsewhere)
    for image, label in ((changed, "anomalous"), (changed, "normal"), (unsure, "unsure")):
        add_verdict(session, image_id=image.id, label=label, user=reviewer)
    for image in (before, after):
        add_verdict(session, image_id=image.id, label="normal", user=reviewer)
    assert current_labels_between(session, changed.id, unsure.id) == {
        changed.id: "normal",
        unsure.id: "unsure",
    }
    assert current_labels_between(session, before.id, after.id) == {
        before.id: "normal",
        changed.id: "normal",
        unsure.id: "unsure",
        after.id: "normal",
    }
    assert current_labels_between(session, after.id + 1, after.id + 9) == {}
