"""A retrained child of the studio fixture's model, for the lineage tests (Compare, carry-over)."""

from __future__ import annotations

from dashboard.services import retrain
from db.repositories import add_verdict, get_user, mark_model_ready, upsert_score
from db.session import session_scope
from tests.dashboard.conftest import StudioData


def confirm_added_normals(studio: StudioData) -> list[int]:
    """Reviewer verdicts "normal" on normal inspect images 2 and 3 (what a child adds)."""
    added = studio.inspect_batch.normal_ids[2:]
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        for image_id in added:
            add_verdict(session, image_id=image_id, label="normal", user=reviewer)
    return added


def ready_child(studio: StudioData) -> int:
    """Retrain the studio's model from its confirmed normals, then mark the child ready with a
    score for every inspect image at half the parent's; returns the child's id."""
    done = retrain.queue_retraining(
        studio.factory,
        retrain.RetrainRequest(studio.model.id),
        actor_id=studio.users["reviewer"].id,
    )
    child = done.sent.queued.model_version_id
    with session_scope(studio.factory) as session:
        mark_model_ready(session, child, artifact_path=f"models/{child}/model.adn")
        for image_id, value in studio.model.scores.items():
            upsert_score(session, image_id=image_id, model_version_id=child, score=value / 2)
    return child
