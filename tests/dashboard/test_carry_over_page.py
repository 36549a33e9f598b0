"""The Thresholds page offers a retrained child its parent's threshold method."""

from __future__ import annotations

from db.repositories import get_active_threshold
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData
from tests.dashboard.test_carry_over import retrained_child

PAGE = "dashboard/pages/thresholds.py"


def test_the_thresholds_page_offers_the_parents_method(
    studio: StudioData, open_page: OpenPage, dispatch_calls: list[tuple[int, str]]
) -> None:
    child = retrained_child(studio)
    app = open_page(PAGE).run()
    assert app.selectbox(key="adn_thr_model").value == child  # the newest model
    assert not app.exception
    assert "Active threshold:** v1 · all categories = **0.12**" in app.markdown[0].value
    app = app.toggle(key="adn_thr_known").set_value(True).run()
    assert any("**Parent's threshold method**" in m.value for m in app.markdown)
    assert any("2 labelled images this model trained on left out" in m.value for m in app.markdown)
    app.button(key="adn_thr_carry").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("by the parent's method" in s.value for s in app.success)
    with session_scope(studio.factory) as session:
        active = get_active_threshold(session, child)
        assert active is not None and (active.version, active.method) == (2, "target_recall")

    viewer = open_page(PAGE, role="viewer").run()
    viewer = viewer.toggle(key="adn_thr_known").set_value(True).run()
    assert "adn_thr_carry" not in [b.key for b in viewer.button]
    # The parent itself has no parent: no offer.
    parent_view = open_page(PAGE).run()
    parent_view.selectbox(key="adn_thr_model").set_value(studio.model.id).run()
    assert not any("Parent's threshold method" in m.value for m in parent_view.markdown)
