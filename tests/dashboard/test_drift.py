"""Drift view: per-batch drift from a real SQLite store (known anomalies left out, scopes, the
newest scored batch, few queries), the Drift page, and the warning on Review and Thresholds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from dashboard.services import drift
from dashboard.services import drift_statistics as ds
from db.models import ImageBatch, Score, utcnow
from db.repositories import (
    add_verdict,
    create_batch,
    create_model_version,
    get_user,
    mark_model_ready,
    upsert_score,
)
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData
from tests.db.factories import make_image

PAGE = "dashboard/pages/drift.py"
CALIBRATION = np.random.default_rng(0).normal(0.0, 1.0, 199)  # p99 = 2nd highest, 1 % expected


@dataclass(frozen=True)
class Scene:
    """The studio plus a drift model: two batches of the same parts, then a new lot."""

    studio: StudioData
    model_id: int
    batch_ids: dict[str, int]  # name -> id
    image_ids: dict[str, list[int]]  # name -> image ids, in score order given


def _model(factory: sessionmaker[Session], project_id: int, calibration: list[float]) -> int:
    with session_scope(factory) as session:
        model = create_model_version(
            session,
            project_id=project_id,
            name="widget drift watch",
            variant="none",
            backbone="mobilenet_v2",
            category="widget",
        )
        mark_model_ready(
            session,
            model.id,
            artifact_path=f"models/{model.id}/model.adn",
            calibration={"scores": calibration, "quantile": 0.99, "threshold": 2.3},
        )
        return model.id


def _scored_batch(
    factory: sessionmaker[Session],
    project_id: int,
    model_id: int,
    name: str,
    scores: np.ndarray,
    *,
    days_ago: int,
    category: str = "widget",
    known_labels: list[str | None] | None = None,
) -> tuple[int, list[int]]:
    """A batch uploaded ``days_ago`` with one image per score, each scored by the model."""
    labels = known_labels or [None] * len(scores)
    with session_scope(factory) as session:
        batch = create_batch(session, project_id=project_id, name=name, purpose="inspect")
        ids = []
        for value, label in zip(scores, labels, strict=True):
            image = make_image(session, batch, category=category, known_label=label)
            upsert_score(session, image_id=image.id, model_version_id=model_id, score=float(value))
            ids.append(image.id)
        session.execute(
            update(ImageBatch)
            .where(ImageBatch.id == batch.id)
            .values(created_at=utcnow() - timedelta(days=days_ago))
        )
        return batch.id, ids


@pytest.fixture
def scene(studio: StudioData) -> Scene:
    rng = np.random.default_rng(1)
    model_id = _model(studio.factory, studio.project.id, CALIBRATION.tolist())
    batches = {
        "week 1": rng.normal(0.0, 1.0, 150),
        "week 2": rng.normal(0.0, 1.0, 150),
        "new lot": rng.normal(1.5, 1.0, 150),
    }
    batch_ids, image_ids = {}, {}
    for age, (name, scores) in zip((21, 14, 7), batches.items(), strict=True):
        batch_ids[name], image_ids[name] = _scored_batch(
            studio.factory, studio.project.id, model_id, name, scores, days_ago=age
        )
    return Scene(studio, model_id, batch_ids, image_ids)


def _by_name(view: drift.DriftView | None) -> dict[str, drift.BatchDrift]:
    assert view is not None
    return {b.name: b for b in view.batches}


def _verdicts(studio: StudioData, image_ids: list[int], label: str) -> None:
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        for image_id in image_ids:
            add_verdict(session, image_id=image_id, label=label, user=reviewer)


@contextmanager
def _counted(factory: sessionmaker[Session]) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = factory.kw["bind"]

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_new_lot_drifts_and_the_same_parts_do_not(scene: Scene) -> None:
    view = drift.drift_view(scene.studio.factory, scene.model_id, None)
    assert view is not None
    assert [b.name for b in view.batches] == ["week 1", "week 2", "new lot"]  # by upload time
    assert view.calibration_size == 199 and view.rank == 2
    assert view.expected_share == pytest.approx(0.01)
    assert view.cut == pytest.approx(np.sort(CALIBRATION)[-2])
    batches = _by_name(view)
    assert not batches["week 1"].drifted and not batches["week 2"].drifted
    new_lot = batches["new lot"]
    assert new_lot.drifted and new_lot.stats.reasons == (ds.TAIL, ds.SHIFT)
    assert new_lot.scores == new_lot.stats.n == 150
    assert sum(new_lot.histogram) == 150
    assert sum(view.calibration_histogram) == 199
    assert view.newest_scored is not None and view.newest_scored.name == "new lot"
    # The figures are the statistics module's on the batch's scores.
    with session_scope(scene.studio.factory) as session:
        stored = session.query(Score.score).filter(
            Score.image_id.in_(scene.image_ids["new lot"]), Score.model_version_id == scene.model_id
        )
        expected = ds.drift_stats(ds.reference(CALIBRATION), [s for (s,) in stored])
    assert new_lot.stats == expected


def test_known_anomalies_are_left_out_and_known_normals_counted(scene: Scene) -> None:
    studio = scene.studio
    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.normal(0.0, 1.0, 100), np.full(40, 5.0)])  # 40 real defects
    labels: list[str | None] = [None] * 100 + ["anomalous"] * 20 + [None] * 20
    batch_id, ids = _scored_batch(
        studio.factory,
        studio.project.id,
        scene.model_id,
        "defects",
        scores,
        days_ago=1,
        known_labels=labels,
    )
    before = _by_name(drift.drift_view(studio.factory, scene.model_id, None))["defects"]
    assert before.known_anomalous == 20 and before.stats.n == 120
    assert before.drifted  # 20 unfound defects above p99 still read as drift
    _verdicts(studio, ids[120:], "anomalous")  # the reviewers found the other 20
    _verdicts(studio, ids[:3], "unsure")  # "unsure" is no verdict: those stay in
    _verdicts(studio, ids[100:102], "normal")  # a verdict overrules the upload label
    after = _by_name(drift.drift_view(studio.factory, scene.model_id, None))["defects"]
    assert after.known_anomalous == 38 and after.known_normal == 2
    assert after.stats.n == 102 and after.normals_above == 2
    assert not after.drifted
    assert after.batch_id == batch_id


def test_the_scope_keeps_one_category(scene: Scene) -> None:
    studio = scene.studio
    caps_scores = np.random.default_rng(3).normal(3.0, 1.0, 60)
    _scored_batch(
        studio.factory,
        studio.project.id,
        scene.model_id,
        "caps lot",
        caps_scores,
        days_ago=2,
        category="caps",
    )
    everything = _by_name(drift.drift_view(studio.factory, scene.model_id, None))
    assert everything["caps lot"].drifted
    widgets = _by_name(drift.drift_view(studio.factory, scene.model_id, "widget"))
    assert "caps lot" not in widgets and widgets.keys() == {"week 1", "week 2", "new lot"}
    caps = drift.drift_view(studio.factory, scene.model_id, "caps")
    assert caps is not None and [b.name for b in caps.batches] == ["caps lot"]


def test_newest_batch_is_the_one_scored_last(scene: Scene) -> None:
    factory = scene.studio.factory
    newest = drift.newest_batch_drift(factory, scene.model_id)
    assert newest is not None and newest.name == "new lot" and newest.drifted
    view_entry = _by_name(drift.drift_view(factory, scene.model_id, None))["new lot"]
    assert newest.stats == view_entry.stats and newest.scored_at == view_entry.scored_at
    # Re-scoring week 2 makes it the newest scored batch: no drift warning then.
    with session_scope(factory) as session:
        session.execute(
            update(Score)
            .where(Score.image_id.in_(scene.image_ids["week 2"]))
            .values(scored_at=utcnow() + timedelta(minutes=5))
        )
    newest = drift.newest_batch_drift(factory, scene.model_id)
    assert newest is not None and newest.name == "week 2" and not newest.drifted


def test_the_newest_batch_reads_as_in_the_full_view_with_verdicts(scene: Scene) -> None:
    studio, ids = scene.studio, scene.image_ids["new lot"]
    _verdicts(studio, ids[:30], "anomalous")
    _verdicts(studio, ids[:5], "normal")  # a changed mind: the latest verdict counts
    _verdicts(studio, ids[30:40], "unsure")  # no verdict: the upload label (none) stays
    _verdicts(studio, scene.image_ids["week 2"][-3:], "anomalous")  # another batch's
    newest = drift.newest_batch_drift(studio.factory, scene.model_id)
    entry = _by_name(drift.drift_view(studio.factory, scene.model_id, None))["new lot"]
    assert newest == replace(entry, histogram=())  # the fast path, the full view's numbers
    assert newest.known_anomalous == 25 and newest.known_normal == 5


def test_the_view_reads_the_store_in_few_queries(scene: Scene) -> None:
    factory = scene.studio.factory
    with _counted(factory) as statements:
        drift.drift_view(factory, scene.model_id, None)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 4
    with _counted(factory) as statements:
        drift.newest_batch_drift(factory, scene.model_id)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 5


def test_a_model_without_calibration_normals_has_no_view(studio: StudioData) -> None:
    model_id = _model(studio.factory, studio.project.id, [])
    assert drift.drift_view(studio.factory, model_id, None) is None
    assert drift.newest_batch_drift(studio.factory, model_id) is None  # nothing scored either


def test_a_model_that_scored_nothing_has_no_batches(studio: StudioData) -> None:
    model_id = _model(studio.factory, studio.project.id, CALIBRATION.tolist())
    view = drift.drift_view(studio.factory, model_id, None)
    assert view is not None and view.batches == () and view.newest_scored is None
    assert drift.newest_batch_drift(studio.factory, model_id) is None


def test_the_fixture_batch_does_not_drift(studio: StudioData) -> None:
    # Four calibration normals: p99 is their top score, 20 % expected above it; 4 of 8 above
    # (the known anomalies, left out) is no drift.
    newest = drift.newest_batch_drift(studio.factory, studio.model.id)
    assert newest is not None and newest.name == studio.inspect_batch.name
    assert newest.known_anomalous == 4 and not newest.drifted
    assert newest.stats.expected_share == pytest.approx(0.2)


def test_the_table_and_the_warning_text(scene: Scene) -> None:
    view = drift.drift_view(scene.studio.factory, scene.model_id, None)
    assert view is not None
    frame = drift.drift_frame(view)
    assert list(frame.columns) == list(drift.FRAME_COLUMNS)
    assert frame["batch"].tolist() == ["new lot", "week 2", "week 1"]  # newest upload first
    assert frame["drifted"].tolist() == [True, False, False]
    assert "above the calibration p99" in frame["why"][0]
    newest = view.newest_scored
    assert newest is not None
    text = drift.warning_text(newest)
    assert "new lot" in text and f"{newest.stats.share_above:.1%}" in text and "1.0%" in text
    assert "**Drift**" in text and "**Review**" in text and "normal images" in text
    assert "Retrain from reviewed normals" in text
    assert "**Drift**" not in drift.warning_text(newest, on_drift_page=True)


def test_drift_page_shows_the_trend_and_warns(scene: Scene, open_page: OpenPage) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert not app.exception
    assert app.title[0].value == "Drift"
    assert app.selectbox(key="adn_drift_model").value == scene.model_id  # the newest model
    assert any("new lot" in w.value and "Lot drift" in w.value for w in app.warning)
    assert "199 normal images" in app.caption[0].value and "1.0%" in app.caption[0].value
    charts = app.get("plotly_chart")
    assert len(charts) == 2  # the trend and the chosen batch against calibration
    table = app.dataframe[0].value
    assert table["batch"].tolist() == ["new lot", "week 2", "week 1"]
    assert app.selectbox(key="adn_drift_batch").value == scene.batch_ids["new lot"]
    app.selectbox(key="adn_drift_batch").set_value(scene.batch_ids["week 1"]).run()
    assert not app.exception and len(app.get("plotly_chart")) == 2
    assert any("How drift is decided" in e.label for e in app.expander)


def test_drift_page_without_drift_says_so(studio: StudioData, open_page: OpenPage) -> None:
    app = open_page(PAGE).run()
    assert not app.exception
    assert not app.warning
    assert "None of the 1 scored batches has drifted" in app.success[0].value


def test_drift_page_for_a_model_without_calibration(
    studio: StudioData, open_page: OpenPage
) -> None:
    _model(studio.factory, studio.project.id, [])
    app = open_page(PAGE).run()
    assert not app.exception
    assert "no calibration normals" in app.info[0].value


@pytest.mark.parametrize("page", ["dashboard/pages/review.py", "dashboard/pages/thresholds.py"])
def test_review_and_thresholds_warn_about_the_newest_batch(
    scene: Scene, open_page: OpenPage, page: str
) -> None:
    app = open_page(page).run()
    assert not app.exception
    warnings = [w.value for w in app.warning if "Lot drift" in w.value]
    assert len(warnings) == 1
    assert "new lot" in warnings[0] and "**Drift**" in warnings[0] and "**Review**" in warnings[0]


@pytest.mark.parametrize(
    ("page", "model_key"),
    [
        ("dashboard/pages/review.py", "adn_review_model"),
        ("dashboard/pages/thresholds.py", "adn_thr_model"),
    ],
)
def test_no_warning_for_a_model_whose_newest_batch_did_not_drift(
    scene: Scene, open_page: OpenPage, page: str, model_key: str
) -> None:
    app = open_page(page)
    app.session_state[model_key] = scene.studio.model.id  # the fixture's model: no drift
    app.run()
    assert not app.exception
    assert not [w for w in app.warning if "Lot drift" in w.value]
