"""Review page and service: ranked queue, one-key verdicts, history, roles, progress."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dashboard.services import review as service
from db.errors import PermissionDeniedError
from db.repositories import get_image, list_scores, record_audit, verdict_history
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData

PAGE = "dashboard/pages/review.py"


def _shown_name(app: AppTest) -> str:
    facts = next(m.value for m in app.markdown if m.value.startswith("**Image:**"))
    return facts.split("**Image:** ")[1].split(" (#")[0]


def _shown_id(app: AppTest) -> int:
    facts = next(m.value for m in app.markdown if m.value.startswith("**Image:**"))
    return int(facts.split("(#")[1].split(")")[0])


def _progress(app: AppTest) -> str:
    return app.get("progress")[0].proto.text


def _name(studio: StudioData, image_id: int) -> str:
    with session_scope(studio.factory) as session:
        return get_image(session, image_id).original_name


def _top_ids(studio: StudioData) -> list[int]:
    return sorted(studio.model.scores, key=studio.model.scores.__getitem__, reverse=True)


def test_reviewer_saves_a_verdict_with_one_click_and_moves_on(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE).run()
    assert not app.exception
    top, second = _top_ids(studio)[:2]
    assert _shown_id(app) == top  # highest score first
    assert _progress(app).startswith("0 of 8 reviewed")
    shortcuts = {b.label: b.proto.shortcut for b in app.button}
    assert shortcuts["Anomalous (A)"] == "a"
    assert shortcuts["Normal (N)"] == "n"
    assert shortcuts["Unsure (U)"] == "u"
    assert shortcuts["Skip (S)"] == "s"

    app.button(key="adn_review_anomalous").click().run()

    assert not app.exception
    with session_scope(studio.factory) as session:
        saved = verdict_history(session, top)
        assert [(v.label, v.user_id, v.model_version_id) for v in saved] == [
            ("anomalous", studio.users["reviewer"].id, studio.model.id)
        ]
    assert _shown_id(app) == second
    assert _progress(app).startswith("1 of 8 reviewed")


def test_changing_a_verdict_keeps_both_in_the_history(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE, role="admin").run()
    app.toggle(key="adn_review_unreviewed").set_value(False).run()
    top = _top_ids(studio)[0]
    assert _shown_id(app) == top
    app.button(key="adn_review_anomalous").click().run()
    assert _shown_id(app) != top
    app.button(key="adn_review_previous").click().run()
    assert _shown_id(app) == top
    app.button(key="adn_review_normal").click().run()
    app.button(key="adn_review_previous").click().run()

    assert _shown_id(app) == top
    history = app.dataframe[0].value
    assert history["verdict"].tolist() == ["normal", "anomalous"]  # newest first
    assert history["who"].tolist() == ["admin", "admin"]
    facts = next(m.value for m in app.markdown if m.value.startswith("**Image:**"))
    assert ":green[**normal**] by admin" in facts


def test_skip_moves_on_without_saving(studio: StudioData, open_page: OpenPage) -> None:
    app = open_page(PAGE).run()
    first = _shown_id(app)
    app.button(key="adn_review_skip").click().run()
    assert _shown_id(app) != first
    with session_scope(studio.factory) as session:
        assert verdict_history(session, first) == []


def test_viewer_sees_the_queue_but_no_verdict_buttons(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert not app.exception
    assert _shown_id(app) == _top_ids(studio)[0]
    labels = [b.label for b in app.button]
    assert not any(label.startswith(("Anomalous", "Normal", "Unsure")) for label in labels)
    assert "Skip (S)" in labels
    assert any("read-only access" in i.value for i in app.info)


def test_service_refuses_a_viewer_verdict(studio: StudioData) -> None:
    image_id = studio.inspect_batch.image_ids[0]
    denied = pytest.raises(PermissionDeniedError, match=r"role 'viewer'.*need role admin")
    with denied:
        service.save_verdict(
            studio.factory,
            actor_id=studio.users["viewer"].id,
            image_id=image_id,
            label="anomalous",
            model_version_id=studio.model.id,
        )
    with session_scope(studio.factory) as session:
        assert verdict_history(session, image_id) == []


def test_a_verdict_is_saved_while_a_worker_writes(
    studio: StudioData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker committing (a heartbeat, a chunk of scores) between the verdict's first read and
    its write must not fail it with "database is locked": the write lock is taken first."""
    image_id = studio.inspect_batch.image_ids[0]
    original = service.get_user
    writers: list[threading.Thread] = []

    def worker_write() -> None:
        with session_scope(studio.factory) as session:
            record_audit(session, action="worker.heartbeat", entity_type="job", entity_id=1)

    def read_then_let_a_worker_write(session: Session, user_id: int) -> Any:
        user = original(session, user_id)
        writer = threading.Thread(target=worker_write)
        writer.start()
        writer.join(timeout=1.0)  # finishes at once unless the verdict holds the write lock
        writers.append(writer)
        return user

    monkeypatch.setattr(service, "get_user", read_then_let_a_worker_write)
    service.save_verdict(
        studio.factory,
        actor_id=studio.users["reviewer"].id,
        image_id=image_id,
        label="normal",
        model_version_id=studio.model.id,
    )
    for writer in writers:
        writer.join(timeout=60)
    with session_scope(studio.factory) as session:
        assert [v.label for v in verdict_history(session, image_id)] == ["normal"]


def test_batch_filter_limits_the_queue_and_its_progress(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE).run()
    picker = app.selectbox(key="adn_review_batch")
    assert picker.value is None and len(picker.options) == 3  # all, train, inspect
    picker.set_value(studio.inspect_batch.id).run()
    assert _progress(app).startswith("0 of 8 reviewed")
    assert _shown_id(app) in studio.inspect_batch.image_ids
    app.selectbox(key="adn_review_batch").set_value(studio.train_batch.id).run()
    assert any("This queue is empty" in i.value for i in app.info)  # it scored no training image
    empty = service.QueueFilter(studio.model.id, batch_id=studio.train_batch.id)
    assert service.queue_view(studio.factory, empty, 0).slot.total == 0


def test_uncertain_order_starts_nearest_the_threshold(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE).run()
    app.selectbox(key="adn_review_order").set_value("uncertain").run()
    first = studio.model.scores[_shown_id(app)]
    app.button(key="adn_review_skip").click().run()
    second = studio.model.scores[_shown_id(app)]
    app.button(key="adn_review_skip").click().run()
    third = studio.model.scores[_shown_id(app)]
    assert {first, second} == {0.45, 0.55}  # both 0.05 from the threshold 0.5
    assert third in (0.3, 0.7)


def test_audit_order_only_shows_passed_images_reproducibly(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE).run()
    app.selectbox(key="adn_review_order").set_value("audit").run()
    seen = []
    for _ in range(4):
        seen.append(_shown_id(app))
        app.button(key="adn_review_skip").click().run()
    assert sorted(seen) == sorted(studio.inspect_batch.normal_ids)
    assert any("end of this queue" in s.value for s in app.success)
    with session_scope(studio.factory) as session:
        expected = [
            r.image_id
            for r in list_scores(
                session, model_version_id=studio.model.id, order="audit", seed=0, limit=10
            ).items
        ]
    assert seen == expected


def test_overlay_view_and_missing_file_message(studio: StudioData, open_page: OpenPage) -> None:
    app = open_page(PAGE).run()
    assert len(app.image) == 2  # original and overlay side by side
    app.radio(key="adn_review_view").set_value("Overlaid").run()
    assert len(app.image) == 1
    with session_scope(studio.factory) as session:
        image = get_image(session, _shown_id(app))
        path = Path(studio.settings.data_dir) / image.storage_path
    path.unlink()
    app.run()
    assert any("missing from the data directory" in e.value for e in app.error)
    assert app.button(key="adn_review_anomalous")  # the reviewer can still decide or skip


def test_reviewer_switches_maps_and_sees_two_side_by_side(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE).run()
    default, gradient = "LayerCAM, every stage (default)", "input gradient"
    assert default in app.image[1].captions[0]
    app.selectbox(key="adn_review_method_pick").set_value("input_gradient").run()
    assert gradient in app.image[1].captions[0]
    # The choice stays for the next image.
    app.button(key="adn_review_skip").click().run()
    assert gradient in app.image[1].captions[0]
    app.radio(key="adn_review_view").set_value("Two heatmaps").run()
    assert [i.captions[0] for i in app.image] == [f"{gradient} at 45%", f"{default} at 45%"]
    # One opacity slider drives both maps.
    app.slider(key="adn_review_opacity").set_value(0.8).run()
    assert [i.captions[0] for i in app.image] == [f"{gradient} at 80%", f"{default} at 80%"]


def test_without_project_or_models_the_page_explains(
    studio: StudioData, open_page: OpenPage
) -> None:
    app = open_page(PAGE, project_id=None).run()
    assert any("Choose a project" in i.value for i in app.info)


def test_next_position_rules() -> None:
    assert service.next_position(3, unreviewed_only=True, saved=True) == 3
    assert service.next_position(3, unreviewed_only=True, saved=False) == 4
    assert service.next_position(3, unreviewed_only=False, saved=True) == 4


def test_percentile_among_calibration() -> None:
    assert service.percentile_among((0.1, 0.2, 0.3, 0.4), 0.25) == 50.0
    assert service.percentile_among((), 0.25) is None
