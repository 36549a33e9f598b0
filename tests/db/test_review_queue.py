"""Review queue: model verdicts from the ACTIVE threshold, rankings, pagination."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.models import Image, ImageBatch, ModelVersion, Score, User
from db.repositories import (
    add_verdict,
    count_model_verdicts,
    list_labelled_scores,
    list_scores,
    restore_threshold,
    save_threshold,
    scored_categories,
    store_version,
    upsert_score,
)
from tests.db.factories import (
    make_batch,
    make_image,
    make_model,
    make_project,
    make_user,
    png_bytes,
)


def _scored(
    session: Session, scores: list[float], *, category: str | None = None
) -> tuple[ModelVersion, ImageBatch, list[Image]]:
    project = make_project(session)
    batch = make_batch(session, project)
    model = make_model(session, project)
    images = []
    for value in scores:
        image = make_image(session, batch, category=category)
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=value)
        images.append(image)
    return model, batch, images


def _verdicts(session: Session, model: ModelVersion) -> dict[float, str | None]:
    page = list_scores(session, model_version_id=model.id, limit=1000)
    return {round(row.score, 3): row.model_verdict for row in page.items}


TENTHS = [round(0.1 * i, 1) for i in range(1, 11)]


def test_without_threshold_there_is_no_model_verdict(session: Session) -> None:
    model, _, _ = _scored(session, [0.3, 0.9])
    page = list_scores(session, model_version_id=model.id)
    assert [r.score for r in page.items] == [0.9, 0.3]
    assert all(r.model_verdict is None and r.threshold_id is None for r in page.items)
    assert count_model_verdicts(session, model_version_id=model.id) == {"none": 2}


def test_changing_the_threshold_relabels_instantly(session: Session) -> None:
    model, _, _ = _scored(session, TENTHS)
    before = {s.id: (s.score, s.scored_at) for s in session.scalars(select(Score))}
    first = save_threshold(session, model_version_id=model.id, value=0.55, method="manual")
    labels = _verdicts(session, model)
    assert [s for s, v in labels.items() if v == "anomalous"] == [1.0, 0.9, 0.8, 0.7, 0.6]

    second = save_threshold(session, model_version_id=model.id, value=0.75, method="manual")
    labels = _verdicts(session, model)
    assert [s for s, v in labels.items() if v == "anomalous"] == [1.0, 0.9, 0.8]
    row = list_scores(session, model_version_id=model.id, limit=1).items[0]
    assert (row.threshold_id, row.threshold_version, row.threshold_value) == (second.id, 2, 0.75)

    restore_threshold(session, first.id)
    assert [s for s, v in _verdicts(session, model).items() if v == "anomalous"] == [
        1.0,
        0.9,
        0.8,
        0.7,
        0.6,
    ]
    after = {s.id: (s.score, s.scored_at) for s in session.scalars(select(Score))}
    assert after == before  # nothing was re-scored or rewritten


def test_review_band_and_threshold_boundaries(session: Session) -> None:
    model, _, _ = _scored(session, [0.2, 0.4, 0.5, 0.7, 0.8, 0.95])
    save_threshold(
        session, model_version_id=model.id, value=0.4, upper_value=0.8, method="review_band"
    )
    assert _verdicts(session, model) == {
        0.95: "anomalous",
        0.8: "anomalous",
        0.7: "review",
        0.5: "review",
        0.4: "review",
        0.2: "normal",
    }
    assert count_model_verdicts(session, model_version_id=model.id) == {
        "anomalous": 2,
        "review": 3,
        "normal": 1,
    }
    in_band = list_scores(session, model_version_id=model.id, model_verdict="review")
    assert [r.score for r in in_band.items] == [0.7, 0.5, 0.4]
    assert in_band.items[0].threshold_upper == 0.8

    save_threshold(session, model_version_id=model.id, value=0.5, method="manual")
    assert _verdicts(session, model) == {
        0.95: "anomalous",
        0.8: "anomalous",
        0.7: "anomalous",
        0.5: "anomalous",  # a score equal to the threshold is anomalous
        0.4: "normal",
        0.2: "normal",
    }


def test_category_threshold_overrides_the_shared_one(session: Session) -> None:
    project = make_project(session)
    batch = make_batch(session, project)
    model = make_model(session, project)
    for category in ("screw", "nut"):
        image = make_image(session, batch, category=category)
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=0.6)
    save_threshold(session, model_version_id=model.id, value=0.5, method="manual")
    own = save_threshold(
        session, model_version_id=model.id, category="screw", value=0.7, method="manual"
    )
    rows = {r.category: r for r in list_scores(session, model_version_id=model.id).items}
    assert (rows["screw"].model_verdict, rows["screw"].threshold_id) == ("normal", own.id)
    assert rows["nut"].model_verdict == "anomalous"
    # Both scopes are at their version 1: the row says which scope decided it.
    assert (rows["screw"].threshold_version, rows["screw"].threshold_category) == (1, "screw")
    assert (rows["nut"].threshold_version, rows["nut"].threshold_category) == (1, None)
    only_screw = list_scores(session, model_version_id=model.id, category="screw")
    assert [r.category for r in only_screw.items] == ["screw"]


def test_highest_score_first_with_pagination(session: Session) -> None:
    values = [0.3, 0.9, 0.1, 0.7, 0.5]
    model, batch, _ = _scored(session, values)
    first = list_scores(session, model_version_id=model.id, limit=2)
    second = list_scores(session, model_version_id=model.id, limit=2, offset=2)
    last = list_scores(session, model_version_id=model.id, limit=2, offset=4)
    assert [r.score for r in first.items + second.items + last.items] == sorted(
        values, reverse=True
    )
    assert first.total == second.total == 5
    assert list_scores(session, model_version_id=model.id, batch_id=batch.id + 999).total == 0
    with pytest.raises(InvalidValueError):
        list_scores(session, model_version_id=model.id, limit=0)
    with pytest.raises(InvalidValueError):
        list_scores(session, model_version_id=model.id, order="newest")


def test_nearest_the_threshold_first(session: Session) -> None:
    model, _, _ = _scored(session, TENTHS)
    unthresholded = list_scores(session, model_version_id=model.id, order="uncertain", limit=3)
    assert [r.score for r in unthresholded.items] == [1.0, 0.9, 0.8]

    save_threshold(session, model_version_id=model.id, value=0.52, method="manual")
    page = list_scores(session, model_version_id=model.id, order="uncertain", limit=4)
    assert [r.score for r in page.items] == [0.5, 0.6, 0.4, 0.7]

    save_threshold(
        session, model_version_id=model.id, value=0.3, upper_value=0.9, method="review_band"
    )
    page = list_scores(session, model_version_id=model.id, order="uncertain", limit=3)
    assert [r.score for r in page.items] == [0.6, 0.7, 0.5]


def test_random_audit_sample_of_passed_images(session: Session) -> None:
    values = [round(0.01 * i, 2) for i in range(1, 41)]
    model, _, _ = _scored(session, values)
    save_threshold(session, model_version_id=model.id, value=0.305, method="manual")
    passed = {v for v in values if v < 0.305}

    full = list_scores(session, model_version_id=model.id, order="audit", seed=7, limit=100)
    assert full.total == len(passed) == 30
    assert {r.score for r in full.items} == passed
    assert all(r.model_verdict == "normal" for r in full.items)
    order = [r.score_id for r in full.items]
    assert order != sorted(order)

    again = list_scores(session, model_version_id=model.id, order="audit", seed=7, limit=100)
    assert [r.score_id for r in again.items] == order
    other = list_scores(session, model_version_id=model.id, order="audit", seed=8, limit=100)
    assert [r.score_id for r in other.items] != order
    assert {r.score_id for r in other.items} == set(order)

    pages = [
        list_scores(session, model_version_id=model.id, order="audit", seed=7, limit=8, offset=o)
        for o in range(0, 32, 8)
    ]
    assert [r.score_id for p in pages for r in p.items] == order
    with pytest.raises(InvalidValueError, match="passed"):
        list_scores(session, model_version_id=model.id, order="audit", model_verdict="anomalous")


def test_rows_carry_the_current_verdict(session: Session) -> None:
    model, _, images = _scored(session, [0.2, 0.8, 0.6])
    alice: User = make_user(session, name="alice")
    bob = make_user(session, name="bob")
    upsert_score(
        session,
        image_id=images[1].id,
        model_version_id=model.id,
        score=0.8,
        heatmap_pngs={"layercam_stages": png_bytes()},
    )
    add_verdict(session, image_id=images[1].id, label="normal", user=alice)
    add_verdict(session, image_id=images[1].id, label="anomalous", user=bob)
    add_verdict(session, image_id=images[2].id, label="unsure", user=alice)
    rows = {r.image_id: r for r in list_scores(session, model_version_id=model.id).items}
    assert (rows[images[1].id].verdict_label, rows[images[1].id].verdict_username) == (
        "anomalous",
        "bob",
    )
    assert rows[images[1].id].has_heatmap and not rows[images[0].id].has_heatmap
    assert rows[images[0].id].verdict_label is None
    reviewed = list_scores(session, model_version_id=model.id, reviewed=True)
    assert [r.image_id for r in reviewed.items] == [images[1].id, images[2].id]
    open_ = list_scores(session, model_version_id=model.id, reviewed=False)
    assert [r.image_id for r in open_.items] == [images[0].id]


def test_labelled_scores_prefer_reviewer_verdicts(session: Session) -> None:
    project = make_project(session)
    batch = make_batch(session, project)
    model = make_model(session, project)
    user = make_user(session)
    known_normal = make_image(session, batch, known_label="normal")
    overruled = make_image(session, batch, known_label="normal")
    unsure_known = make_image(session, batch, known_label="anomalous")
    unknown = make_image(session, batch)
    for i, image in enumerate((known_normal, overruled, unsure_known, unknown)):
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=float(i))
    add_verdict(session, image_id=overruled.id, label="anomalous", user=user)
    add_verdict(session, image_id=unsure_known.id, label="unsure", user=user)
    labelled = list_labelled_scores(session, model_version_id=model.id)
    assert [(x.image_id, x.label, x.source) for x in labelled] == [
        (known_normal.id, "normal", "known_label"),
        (overruled.id, "anomalous", "verdict"),
        (unsure_known.id, "anomalous", "known_label"),
    ]
    only_reviews = list_labelled_scores(session, model_version_id=model.id, use_known_labels=False)
    assert [(x.image_id, x.label) for x in only_reviews] == [(overruled.id, "anomalous")]


def test_store_version_changes_with_scores_verdicts_and_thresholds(session: Session) -> None:
    model, batch, images = _scored(session, [0.2, 0.8])
    first = store_version(session, model.id)
    assert store_version(session, model.id) == first  # stable while nothing changes
    add_verdict(session, image_id=images[0].id, label="normal", user=make_user(session))
    second = store_version(session, model.id)
    assert second != first
    save_threshold(session, model_version_id=model.id, value=0.5, method="manual")
    third = store_version(session, model.id)
    assert third != second
    extra = make_image(session, batch)
    upsert_score(session, image_id=extra.id, model_version_id=model.id, score=0.4)
    assert store_version(session, model.id) != third


def test_queue_totals_match_the_rows_for_every_filter(session: Session) -> None:
    project = make_project(session)
    batches = [make_batch(session, project), make_batch(session, project)]
    model = make_model(session, project)
    user = make_user(session)
    for index in range(12):
        image = make_image(session, batches[index % 2], category=("a", "b", None)[index % 3])
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=index / 12)
        if index % 4 == 0:
            add_verdict(session, image_id=image.id, label="normal", user=user)
            add_verdict(session, image_id=image.id, label="anomalous", user=user)  # a relabel
    for category in (None, "a", "b"):
        for batch in (None, batches[1].id):
            for reviewed in (None, True, False):
                page = list_scores(
                    session,
                    model_version_id=model.id,
                    category=category,
                    batch_id=batch,
                    reviewed=reviewed,
                    limit=100,
                )
                assert page.total == len(page.items), (category, batch, reviewed)
                if reviewed is not None:
                    assert all((r.verdict_id is not None) == reviewed for r in page.items)


def test_scored_categories_are_those_of_the_models_scored_images(session: Session) -> None:
    project = make_project(session)
    batch = make_batch(session, project)
    model, other = make_model(session, project), make_model(session, project)
    for category, scorer in (("nut", model), ("bolt", model), ("bolt", other), ("gear", other)):
        image = make_image(session, batch, category=category)
        upsert_score(session, image_id=image.id, model_version_id=scorer.id, score=0.5)
    make_image(session, batch, category="washer")  # never scored
    assert scored_categories(session, model.id) == ["bolt", "nut"]
    assert scored_categories(session, other.id) == ["bolt", "gear"]
