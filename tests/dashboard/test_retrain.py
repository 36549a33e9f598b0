"""Retrain from reviewed normals: the service, the Train page's section and ``adn-retrain``.

The parent is the ``studio`` fixture's ready model (trained on the 6 images of the train batch,
preset tiny). Reviewers' verdicts on the inspect batch decide what the child adds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from dashboard.retrain_cli import main as retrain_cli
from dashboard.services import jobs as jobs_service
from dashboard.services import retrain
from dashboard.services.models import model_choices
from db.errors import InvalidValueError, PermissionDeniedError
from db.models import Image, ModelVersion
from db.repositories import (
    add_verdict,
    get_job,
    get_model_version,
    get_user,
    request_cancel,
    training_entries,
)
from db.session import session_scope
from jobspec import TrainSpec
from tests.dashboard.conftest import OpenPage, StudioData

PAGE = "dashboard/pages/train.py"


def _verdicts(studio: StudioData, *pairs: tuple[int, str]) -> dict[int, int]:
    """Save verdicts in order as the reviewer; the id of each image's last one."""
    last: dict[int, int] = {}
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        for image_id, label in pairs:
            last[image_id] = add_verdict(session, image_id=image_id, label=label, user=reviewer).id
    return last


def _uploaded(studio: StudioData, minutes_ago: dict[int, int]) -> None:
    now = datetime.now(UTC)
    with session_scope(studio.factory) as session:
        for image_id, minutes in minutes_ago.items():
            session.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(created_at=now - timedelta(minutes=minutes))
            )


def _reviewed(studio: StudioData) -> dict[int, int]:
    """Normal images 0..3 of the inspect batch: 0 unsure, 1 normal then anomalous, 2 and 3
    normal (2 uploaded last), one known defect marked normal; returns the last verdict ids."""
    n = studio.inspect_batch.normal_ids
    defect = studio.inspect_batch.anomalous_ids[0]
    _uploaded(studio, {n[0]: 40, n[1]: 30, n[3]: 20, n[2]: 10})
    return _verdicts(
        studio,
        (n[0], "normal"),
        (n[0], "unsure"),
        (n[1], "normal"),
        (n[1], "anomalous"),
        (n[2], "normal"),
        (n[3], "normal"),
        (defect, "normal"),  # known to be anomalous: training never takes it
    )


def test_retraining_adds_the_newest_confirmed_normals_up_to_the_cap(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    verdicts = _reviewed(studio)
    n = studio.inspect_batch.normal_ids
    parent = studio.model.id
    plan = retrain.plan_retraining(studio.factory, retrain.RetrainRequest(parent, cap=10))
    assert plan.added == (n[2], n[3])  # newest upload first; unsure and flipped ones never
    assert (plan.parent_images, plan.available, plan.preset) == (6, 2, "tiny")

    done = retrain.queue_retraining(
        studio.factory,
        retrain.RetrainRequest(parent, cap=1),
        actor_id=studio.users["reviewer"].id,
    )
    child_id = done.sent.queued.model_version_id
    assert done.plan.added == (n[2],)
    assert dispatch_calls == [(done.sent.queued.job_id, "train")]
    with session_scope(studio.factory) as session:
        child = get_model_version(session, child_id)
        assert (child.parent_id, child.variant, child.backbone, child.category) == (
            parent,
            studio.model.variant,
            studio.model.backbone,
            studio.category,
        )
        assert child.status == "pending" and child.training_image_count == 7
        entries = {
            e.image_id: (e.source, e.verdict_id) for e in training_entries(session, child_id)
        }
        assert entries == {
            **{i: ("parent", None) for i in studio.train_batch.image_ids},
            n[2]: ("confirmed_normal", verdicts[n[2]]),
        }
        job = get_job(session, done.sent.queued.job_id)
        spec = TrainSpec.from_params(job.params_json)
        assert spec.model_version_id == child_id
        assert spec.image_ids == tuple(sorted([*studio.train_batch.image_ids, n[2]]))
        assert (spec.category, spec.preset.value) == (studio.category, "tiny")
        assert set(spec.batch_ids) == {studio.train_batch.id, studio.inspect_batch.id}
        assert child.job_id == job.id
    # The added normal is now the child's: retraining the child adds only the other one.
    with session_scope(studio.factory) as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.id == child_id).values(status="ready")
        )
    again = retrain.plan_retraining(studio.factory, retrain.RetrainRequest(child_id))
    assert (again.parent_images, again.added) == (7, (n[3],))


def test_parent_images_no_longer_normal_are_left_out(studio: StudioData) -> None:
    first = studio.train_batch.image_ids[0]
    _verdicts(studio, (first, "unsure"), (studio.inspect_batch.normal_ids[0], "normal"))
    plan = retrain.plan_retraining(studio.factory, retrain.RetrainRequest(studio.model.id))
    assert (plan.parent_images, plan.dropped_from_parent) == (5, 1)
    assert plan.added == (studio.inspect_batch.normal_ids[0],)


def test_batches_and_cap_narrow_the_choice(studio: StudioData) -> None:
    _reviewed(studio)
    batches = retrain.normals_batches(studio.factory, studio.model.id)
    assert [(b.id, b.new_normals) for b in batches] == [(studio.inspect_batch.id, 2)]
    none = retrain.plan_retraining(
        studio.factory, retrain.RetrainRequest(studio.model.id, batch_ids=[studio.train_batch.id])
    )
    assert none.added == ()
    with pytest.raises(InvalidValueError, match="cap"):
        retrain.plan_retraining(studio.factory, retrain.RetrainRequest(studio.model.id, cap=0))


def test_viewers_cannot_retrain_and_nothing_new_is_refused(studio: StudioData) -> None:
    request = retrain.RetrainRequest(studio.model.id)
    with pytest.raises(InvalidValueError, match="no image confirmed normal"):
        retrain.queue_retraining(studio.factory, request, actor_id=studio.users["reviewer"].id)
    _reviewed(studio)
    with pytest.raises(PermissionDeniedError, match="retrain models"):
        retrain.queue_retraining(studio.factory, request, actor_id=studio.users["viewer"].id)
    with session_scope(studio.factory) as session:
        assert session.scalars(select(ModelVersion.id)).all() == [studio.model.id]


def test_a_retried_retraining_keeps_its_lineage(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    _reviewed(studio)
    reviewer = studio.users["reviewer"].id
    done = retrain.queue_retraining(
        studio.factory, retrain.RetrainRequest(studio.model.id), actor_id=reviewer
    )
    with session_scope(studio.factory) as session:
        request_cancel(session, done.sent.queued.job_id, actor=get_user(session, reviewer))
    again = jobs_service.retry_job(studio.factory, done.sent.queued.job_id, actor_id=reviewer)
    with session_scope(studio.factory) as session:
        new_model_id = get_job(session, again.job_id).params_json["model_version_id"]
        assert get_model_version(session, new_model_id).parent_id == studio.model.id
        assert training_entries(session, new_model_id) == training_entries(
            session, done.sent.queued.model_version_id
        )


def test_model_lists_name_the_lineage(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    _reviewed(studio)
    done = retrain.queue_retraining(
        studio.factory, retrain.RetrainRequest(studio.model.id), actor_id=studio.users["admin"].id
    )
    by_id = {m.id: m for m in model_choices(studio.factory, studio.project.id)}
    child = by_id[done.sent.queued.model_version_id]
    assert child.lineage == f"child of #{studio.model.id}, +2 confirmed normals"
    assert child.label.endswith(f"· child of #{studio.model.id}, +2 confirmed normals")
    assert by_id[studio.model.id].lineage == ""
    rows = {r.model_version_id: r for r in jobs_service.job_rows(studio.factory, project_id=None)}
    assert rows[child.id].model == (
        f"widget cbam · cbam · child of #{studio.model.id}, +2 confirmed normals"
    )
    assert rows[studio.model.id].model == "widget cbam · cbam"


def test_the_train_page_queues_a_retraining(
    studio: StudioData, open_page: OpenPage, dispatch_calls: list[tuple[int, str]]
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    assert any("No image is confirmed normal" in i.value for i in app.info)
    _reviewed(studio)
    app = open_page(PAGE, role="reviewer").run()
    assert not app.exception
    assert app.selectbox(key="adn_retrain_parent").value == studio.model.id
    assert app.multiselect(key="adn_retrain_batches").value == [studio.inspect_batch.id]
    assert any("plus **2** confirmed normal(s)" in m.value for m in app.caption)
    app.number_input(key="adn_retrain_cap").set_value(1)
    app.button(key="adn_queue_retraining").click().run()
    assert not app.error, [e.value for e in app.error]
    assert "Queued 1 job(s)" in app.success[0].value
    with session_scope(studio.factory) as session:
        child = session.scalars(
            select(ModelVersion).where(ModelVersion.parent_id == studio.model.id)
        ).one()
        assert len(training_entries(session, child.id)) == 7
    assert dispatch_calls == [(child.job_id, "train")]

    viewer = open_page(PAGE, role="viewer").run()
    assert any("Viewers cannot retrain models." in i.value for i in viewer.info)
    assert "adn_queue_retraining" not in [b.key for b in viewer.button]


def test_adn_retrain_queues_as_the_named_user(
    studio: StudioData,
    dispatch_calls: list[tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _reviewed(studio)
    model = str(studio.model.id)
    assert retrain_cli([model, "--user", "reviewer", "--dry-run"]) == 0
    assert "6 parent training images + 2 confirmed normals" in capsys.readouterr().out
    assert retrain_cli([model, "--user", "viewer"]) == 2
    assert "retrain models" in capsys.readouterr().err
    assert retrain_cli([model, "--user", "nobody"]) == 2
    assert "no user named 'nobody'" in capsys.readouterr().err
    batch = str(studio.inspect_batch.id)
    assert retrain_cli([model, "--user", "admin", "--batch", batch, "--cap", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("queued job ") and "+ 1 confirmed normals" in out
    with session_scope(studio.factory) as session:
        child = session.scalars(
            select(ModelVersion).where(ModelVersion.parent_id == studio.model.id)
        ).one()
        assert child.created_by == studio.users["admin"].id
    assert dispatch_calls == [(child.job_id, "train")]
