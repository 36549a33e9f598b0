"""The shared dashboard fixtures build what their docstrings promise."""

from __future__ import annotations

from db.repositories import authenticate, get_heatmap_png, list_scores
from db.session import session_scope
from tests.dashboard.conftest import PASSWORDS, StudioData


def test_studio_scene_has_users_images_scores_and_threshold(studio: StudioData) -> None:
    with session_scope(studio.factory) as session:
        for role, password in PASSWORDS.items():
            user = authenticate(session, role, password)
            assert user is not None and user.role == role
        page = list_scores(session, model_version_id=studio.model.id, limit=100)
        assert page.total == len(studio.inspect_batch.image_ids) == 8
        verdicts = {row.image_id: row.model_verdict for row in page.items}
        assert all(verdicts[i] == "normal" for i in studio.inspect_batch.normal_ids)
        assert all(verdicts[i] == "anomalous" for i in studio.inspect_batch.anomalous_ids)
        assert all(row.category == "widget" and row.has_heatmap for row in page.items)
        png = get_heatmap_png(
            session, image_id=studio.inspect_batch.image_ids[0], model_version_id=studio.model.id
        )
        assert png is not None and png.startswith(b"\x89PNG")
    assert (studio.settings.data_dir / studio.model.artifact_path).is_file()
