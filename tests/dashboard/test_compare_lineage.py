"""Compare a parent and its retrained child honestly: images either trained on are left out of
both sides' numbers, and the page says how many."""

from __future__ import annotations

from dashboard.services import compare as service
from db.repositories import save_threshold
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData
from tests.dashboard.lineage import confirm_added_normals, ready_child

PAGE = "dashboard/pages/compare.py"


def _ready_child(studio: StudioData) -> tuple[int, list[int]]:
    """A ready child that added normal inspect images 2 and 3, with a manual threshold; returns
    its id and the added images."""
    added = confirm_added_normals(studio)
    child = ready_child(studio)
    with session_scope(studio.factory) as session:
        save_threshold(session, model_version_id=child, value=0.25, method="manual")
    return child, added


def test_training_images_of_either_model_are_left_out_of_both(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    child, added = _ready_child(studio)
    groups = service.training_groups(studio.factory, studio.project.id)
    lineage = groups[0]
    assert lineage.key == f"lineage-{studio.model.id}"
    assert [m.id for m in lineage.models] == [studio.model.id, child]
    assert (
        lineage.label
        == f"#{studio.model.id} and its retrained children: #{child} (+2 confirmed normals)"
    )
    # The child's own single-model group is folded into its lineage.
    assert all(g.models != (lineage.models[1],) for g in groups)

    comparison = service.load_comparison(studio.factory, lineage.models)
    assert comparison.excluded_training == 2
    assert set(comparison.image_ids.tolist()) == set(studio.model.scores) - set(added)
    table = service.auroc_table(comparison, n_boot=50)
    assert table.counts[service.MEAN_ROW] == (4, 2)  # 4 defects, 2 normals neither trained on

    # The parent alone trained on none of the scored images: nothing is left out.
    alone = service.load_comparison(studio.factory, lineage.models[:1])
    assert alone.excluded_training == 0 and alone.image_ids.size == 8


def test_the_compare_page_says_how_many_images_were_left_out(
    studio: StudioData, open_page: OpenPage, dispatch_calls: list[tuple[int, str]]
) -> None:
    child, _ = _ready_child(studio)
    app = open_page(PAGE).run()
    assert not app.exception
    assert app.selectbox(key="adn_cmp_group").value == f"lineage-{studio.model.id}"
    captions = [c.value for c in app.caption]
    assert f"#{child} is a child of #{studio.model.id}, +2 confirmed normals." in captions
    assert any(
        c.startswith("6 images scored by every model")
        and "2 images are left out of every number here" in c
        for c in captions
    )
    table = next(m.value for m in app.markdown if m.value.startswith("| Category"))
    assert (
        table.splitlines()[0]
        == f"| Category | CBAM #{studio.model.id} | CBAM #{child} | anomalous / normal |"
    )
    assert table.splitlines()[-1].endswith("| 4 / 2 |")
