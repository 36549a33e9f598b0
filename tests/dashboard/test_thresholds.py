"""Thresholds page and service: live metrics, proposals, saving versions that relabel stored
scores without re-scoring, restoring older versions, and the messages without labels."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.services import thresholds as service
from db.models import Score
from db.repositories import (
    add_verdict,
    count_model_verdicts,
    get_active_threshold,
    get_user,
    list_labelled_scores,
    list_scores,
    list_threshold_versions,
    save_threshold,
)
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData

PAGE = "dashboard/pages/thresholds.py"


def _verdicts(studio: StudioData) -> dict[int, str | None]:
    with session_scope(studio.factory) as session:
        page = list_scores(session, model_version_id=studio.model.id, limit=100)
        return {row.image_id: row.model_verdict for row in page.items}


def _stored_scores(studio: StudioData) -> dict[int, tuple[float, object]]:
    with session_scope(studio.factory) as session:
        rows = session.query(Score).filter(Score.model_version_id == studio.model.id).all()
        return {r.image_id: (r.score, r.scored_at) for r in rows}


def _by_score(studio: StudioData, value: float) -> int:
    return next(i for i, s in studio.model.scores.items() if s == value)


def _review(studio: StudioData, labels: dict[float, str]) -> None:
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        for value, label in labels.items():
            add_verdict(session, image_id=_by_score(studio, value), label=label, user=reviewer)


def _metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def _with_known_labels(app: AppTest) -> AppTest:
    return app.toggle(key="adn_thr_known").set_value(True).run()


def test_without_reviews_the_page_explains_what_to_do(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE).run()
    assert not app.exception
    text = " ".join(i.value for i in app.info)
    assert "Nothing has been reviewed yet" in text
    assert "Use known labels from upload" in text and "8 images" in text
    assert not app.metric  # no curves or numbers without labels
    assert app.slider  # a manual threshold can still be set on the histogram
    assert "v1 · all categories" in app.markdown[0].value
    assert "4 anomalous · 4 normal" in app.markdown[0].value


def test_curves_and_numbers_follow_the_slider(studio: StudioData, open_page: OpenPage) -> None:
    _review(studio, {0.95: "anomalous", 0.55: "anomalous", 0.45: "normal", 0.1: "normal"})
    app = open_page(PAGE).run()
    assert not app.exception
    assert "2 anomalous, 2 normal (4 from reviewer verdicts, 0 from known labels)" in " ".join(
        c.value for c in app.caption
    )
    slider = app.slider(key=f"adn_thr_value_{studio.model.id}_all")
    assert slider.value == pytest.approx(0.5)  # starts at the active threshold
    assert _metric(app, "Recall") == "100.0%"
    assert _metric(app, "False-alarm rate") == "0.0%"
    assert len(app.get("plotly_chart")) == 4  # ROC, PR, histogram, confusion matrix

    slider.set_value(0.8).run()  # only the 0.95 defect is flagged now

    assert _metric(app, "Recall") == "50.0%"
    assert _metric(app, "Precision") == "100.0%"
    app.slider(key=f"adn_thr_value_{studio.model.id}_all").set_value(0.3).run()
    assert _metric(app, "False-alarm rate") == "50.0%"  # 0.45 normal flagged, 0.1 not


def test_saving_a_version_relabels_stored_scores_without_rescoring(
    studio: StudioData, open_page: OpenPage
) -> None:
    before_scores = _stored_scores(studio)
    assert _verdicts(studio)[_by_score(studio, 0.7)] == "anomalous"
    app = _with_known_labels(open_page(PAGE).run())
    app.slider(key=f"adn_thr_value_{studio.model.id}_all").set_value(0.75).run()
    app.button(key="adn_thr_save").click().run()

    assert not app.exception
    assert any("Saved threshold v2 · all categories" in s.value for s in app.success)
    with session_scope(studio.factory) as session:
        active = get_active_threshold(session, studio.model.id)
        assert active is not None
        assert (active.version, active.value, active.method) == (2, 0.75, "manual")
        assert active.created_by == studio.users["reviewer"].id
        assert active.metrics_json["recall"] == 0.5 and active.metrics_json["tp"] == 2
    verdicts = _verdicts(studio)
    assert verdicts[_by_score(studio, 0.7)] == "normal"
    assert verdicts[_by_score(studio, 0.55)] == "normal"
    assert verdicts[_by_score(studio, 0.8)] == "anomalous"
    assert _stored_scores(studio) == before_scores  # same rows, same times: no re-scoring
    assert "2 anomalous · 6 normal" in app.markdown[0].value


def test_restore_makes_an_older_version_active_again(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = _with_known_labels(open_page(PAGE).run())
    app.slider(key=f"adn_thr_value_{studio.model.id}_all").set_value(0.9).run()
    app.button(key="adn_thr_save").click().run()
    assert _verdicts(studio)[_by_score(studio, 0.8)] == "normal"
    versions = app.dataframe[0].value
    assert versions["version"].tolist() == ["v2 · all categories", "v1 · all categories"]
    assert versions["active"].tolist() == [True, False]
    assert versions["T1 (value)"].tolist() == ["0.9", "0.5"]

    app.selectbox(key="adn_thr_restore_pick").set_value(studio.model.threshold_id).run()
    app.button(key="adn_thr_restore").click().run()

    assert not app.exception
    with session_scope(studio.factory) as session:
        active = get_active_threshold(session, studio.model.id)
        assert active is not None and active.version == 1
        assert len(list_threshold_versions(session, studio.model.id)) == 2
    assert _verdicts(studio)[_by_score(studio, 0.8)] == "anomalous"
    assert app.dataframe[0].value["active"].tolist() == [False, True]
    assert app.slider(key=f"adn_thr_value_{studio.model.id}_all").value == pytest.approx(0.5)


def _mixed_labels(studio: StudioData) -> None:
    # Reviewers overrule two known labels: anomalous {0.45, 0.7, 0.8, 0.95}, normal {0.1, 0.2,
    # 0.3, 0.55}.
    _review(studio, {0.45: "anomalous", 0.55: "normal"})


@pytest.mark.parametrize(
    ("method", "inputs", "expected"),
    [
        ("max_f1", {}, 0.45),  # F1 8/9 at 0.45 beats 6/7 at 0.7
        ("target_recall", {"adn_thr_miss": 0.0}, 0.45),
        ("target_recall", {"adn_thr_miss": 25.0}, 0.7),
        ("max_false_alarm_rate", {"adn_thr_cap": 0.0}, 0.7),
        ("max_false_alarm_rate", {"adn_thr_cap": 25.0}, 0.45),
    ],
)
def test_methods_propose_and_apply_the_right_value(
    studio: StudioData,
    open_page: OpenPage,
    method: str,
    inputs: dict[str, float],
    expected: float,
) -> None:
    _mixed_labels(studio)
    app = _with_known_labels(open_page(PAGE).run())
    app.selectbox(key="adn_thr_method").set_value(method).run()
    for key, value in inputs.items():
        app.number_input(key=key).set_value(value).run()
    assert any(f"T = **{expected:.4g}**" in m.value for m in app.markdown)
    app.button(key="adn_thr_apply").click().run()
    assert app.slider(key=f"adn_thr_value_{studio.model.id}_all").value == expected
    app.button(key="adn_thr_save").click().run()
    with session_scope(studio.factory) as session:
        active = get_active_threshold(session, studio.model.id)
        assert active is not None and (active.value, active.method) == (expected, method)


def test_min_cost_with_expensive_misses_goes_low(studio: StudioData, open_page: OpenPage) -> None:
    _mixed_labels(studio)
    app = _with_known_labels(open_page(PAGE).run())
    app.selectbox(key="adn_thr_method").set_value("min_cost").run()
    app.number_input(key="adn_thr_cost_miss").set_value(100.0).run()
    assert any("T = **0.45**" in m.value and "expected cost" in m.value for m in app.markdown)


def test_review_band_is_saved_and_routes_images_to_people(
    studio: StudioData, open_page: OpenPage
) -> None:
    _mixed_labels(studio)
    app = _with_known_labels(open_page(PAGE).run())
    app.selectbox(key="adn_thr_method").set_value("review_band").run()
    app.number_input(key="adn_thr_miss").set_value(0.0).run()
    app.number_input(key="adn_thr_cap").set_value(0.0).run()
    assert any("T1 = **0.45**, T2 = **0.7**" in m.value for m in app.markdown)
    app.button(key="adn_thr_apply").click().run()
    assert app.toggle(key=f"adn_thr_use_band_{studio.model.id}_all").value is True
    assert app.slider(key=f"adn_thr_band_{studio.model.id}_all").value == (0.45, 0.7)
    assert _metric(app, "Sent to people") == "25.0%"
    app.button(key="adn_thr_save").click().run()

    with session_scope(studio.factory) as session:
        active = get_active_threshold(session, studio.model.id)
        assert active is not None
        assert (active.value, active.upper_value, active.method) == (0.45, 0.7, "review_band")
        assert active.params_json == {"recall": 1.0, "cap": 0.0}
        assert active.metrics_json["review_share"] == 0.25
    verdicts = _verdicts(studio)
    assert verdicts[_by_score(studio, 0.55)] == "review"
    assert verdicts[_by_score(studio, 0.3)] == "normal"
    assert verdicts[_by_score(studio, 0.7)] == "anomalous"


def test_a_moved_slider_saves_as_manual(studio: StudioData, open_page: OpenPage) -> None:
    _mixed_labels(studio)
    app = _with_known_labels(open_page(PAGE).run())
    app.selectbox(key="adn_thr_method").set_value("max_f1").run()
    app.button(key="adn_thr_apply").click().run()
    app.slider(key=f"adn_thr_value_{studio.model.id}_all").set_value(0.6).run()
    app.button(key="adn_thr_save").click().run()
    with session_scope(studio.factory) as session:
        active = get_active_threshold(session, studio.model.id)
        assert active is not None and (active.value, active.method) == (0.6, "manual")


def test_viewer_explores_but_cannot_save_or_restore(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = _with_known_labels(open_page(PAGE, role="viewer").run())
    assert not app.exception
    keys = {b.key for b in app.button}
    assert "adn_thr_save" not in keys and "adn_thr_restore" not in keys
    assert any("saving needs the reviewer role" in c.value for c in app.caption)


def test_service_refuses_a_viewer_save(studio: StudioData) -> None:
    from db.errors import PermissionDeniedError

    data = service.load_labelled(studio.factory, studio.model.id, None, use_known_labels=True)
    with pytest.raises(PermissionDeniedError):
        service.save_version(
            studio.factory,
            actor_id=studio.users["viewer"].id,
            model_version_id=studio.model.id,
            category=None,
            value=0.9,
            upper_value=None,
            method="manual",
            params={},
            data=data,
        )
    with session_scope(studio.factory) as session:
        assert len(list_threshold_versions(session, studio.model.id)) == 1


def test_category_scope_saves_its_own_threshold(studio: StudioData, open_page: OpenPage) -> None:
    app = _with_known_labels(open_page(PAGE).run())
    app.selectbox(key="adn_thr_category").set_value("widget").run()
    assert "(inherited)" in app.markdown[0].value
    app.slider(key=f"adn_thr_value_{studio.model.id}_widget").set_value(0.9).run()
    app.button(key="adn_thr_save").click().run()
    with session_scope(studio.factory) as session:
        own = get_active_threshold(session, studio.model.id, "widget")
        shared = get_active_threshold(session, studio.model.id, None)
        assert own is not None and own.value == 0.9 and own.version == 1
        assert shared is not None and shared.value == 0.5
    assert _verdicts(studio)[_by_score(studio, 0.8)] == "normal"  # the category's own wins


def test_load_labelled_splits_sources_and_unlabelled(studio: StudioData) -> None:
    _review(studio, {0.95: "anomalous", 0.1: "unsure"})
    only_reviews = service.load_labelled(
        studio.factory, studio.model.id, None, use_known_labels=False
    )
    with_known = service.load_labelled(studio.factory, studio.model.id, None, use_known_labels=True)
    assert (only_reviews.n_anomalous, only_reviews.n_normal) == (1, 0)
    assert only_reviews.unlabelled_scores.size == 7  # "unsure" is not a label
    assert only_reviews.unsure_scores.tolist() == [0.1]  # and is not "not reviewed" either
    assert only_reviews.unreviewed_scores.size == 6 and 0.1 not in only_reviews.unreviewed_scores
    assert (with_known.from_verdicts, with_known.from_known_labels) == (1, 7)
    metrics = service.metrics_at(with_known, 0.5, None)
    assert metrics["f1"] == 1.0 and metrics["labelled_from_known_labels"] == 7
    band = service.metrics_at(with_known, 0.3, 0.7)
    assert band["review_share"] == pytest.approx(3 / 8)


def test_a_remembered_value_outside_new_scores_is_kept_in_range(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE)
    app.session_state[f"adn_thr_value_{studio.model.id}_all"] = 50.0  # from an older score range
    app.run()
    assert not app.exception
    value = app.slider(key=f"adn_thr_value_{studio.model.id}_all").value
    assert 0.95 <= value < 1.0  # clipped to the top of the current range


@pytest.mark.parametrize("use_known", [False, True])
def test_labelled_data_matches_the_repository_rule(studio: StudioData, use_known: bool) -> None:
    # Changed minds, an "unsure" and an overruled known label: the latest verdict counts.
    _review(studio, {0.95: "normal", 0.1: "unsure", 0.2: "anomalous"})
    _review(studio, {0.95: "anomalous", 0.45: "anomalous"})
    _review(studio, {0.45: "unsure"})
    with session_scope(studio.factory) as session:
        expected = list_labelled_scores(
            session, model_version_id=studio.model.id, use_known_labels=use_known
        )
    data = service.load_labelled(studio.factory, studio.model.id, None, use_known_labels=use_known)
    assert sorted(zip(data.image_ids.tolist(), data.positives.tolist(), strict=True)) == sorted(
        (r.image_id, r.label == "anomalous") for r in expected
    )
    assert data.from_verdicts == sum(r.source == "verdict" for r in expected)
    assert data.scores.size + data.unlabelled_scores.size == 8


@pytest.mark.parametrize(
    "thresholds",
    [
        [],
        [{"value": 0.4, "upper_value": 0.8}],
        [{"value": 0.4, "upper_value": 0.8}, {"value": 0.6, "category": "widget"}],
        [{"value": 0.9}, {"value": 0.3, "upper_value": 0.5, "category": "widget"}],
    ],
)
def test_verdict_counts_match_the_sql_model_verdicts(
    studio: StudioData, thresholds: list[dict[str, object]]
) -> None:
    with session_scope(studio.factory) as session:
        if not thresholds:
            restore = get_active_threshold(session, studio.model.id)
            assert restore is not None
            restore.is_active = False
        for spec in thresholds:
            save_threshold(session, model_version_id=studio.model.id, method="manual", **spec)
    for category in (None, "widget"):
        with session_scope(studio.factory) as session:
            expected = count_model_verdicts(
                session, model_version_id=studio.model.id, category=category
            )
        assert service.verdict_counts(studio.factory, studio.model.id, category) == expected
        view = service.tuning_view(
            studio.factory, studio.model.id, category, use_known_labels=False
        )
        assert view.counts == expected
