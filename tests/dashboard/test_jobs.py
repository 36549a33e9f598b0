"""The Jobs page: live table with progress, cancel and retry; and the jobs service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.services import jobs as job_service
from db.errors import JobStateError, PermissionDeniedError
from db.repositories import (
    claim_job,
    create_job,
    create_model_version,
    finish_failed,
    get_job,
    get_model_version,
    get_user,
    list_recent_jobs,
    set_model_job,
    update_progress,
)
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData
from tests.dashboard.test_worker_status import NOW, write_report

PAGE = "dashboard/pages/jobs.py"


def _train_job(session, studio: StudioData, name: str) -> tuple[int, int]:
    reviewer = get_user(session, studio.users["reviewer"].id)
    model = create_model_version(
        session,
        project_id=studio.project.id,
        name=name,
        variant="se",
        backbone="mobilenet_v2",
        category="widget",
        actor=reviewer,
    )
    params = {
        "model_version_id": model.id,
        "batch_ids": [studio.train_batch.id],
        "image_ids": None,
        "category": "widget",
        "preset": "tiny",
        "overrides": {"epochs": 2},
    }
    job = create_job(
        session, kind="train", project_id=studio.project.id, params=params, actor=reviewer
    )
    set_model_job(session, model.id, job.id)
    return job.id, model.id


@pytest.fixture
def job_scene(studio: StudioData) -> dict[str, int]:
    """A running train job at 40 %, a queued one and a failed one (plus the fixture's
    succeeded training job)."""
    with session_scope(studio.factory) as session:
        running, _ = _train_job(session, studio, "running model")
        claim_job(session, running, worker_name="gpu-1")
        update_progress(session, running, 0.4, "epoch 3/12 · loss 0.812 · 2 min left")
        queued, queued_model = _train_job(session, studio, "queued model")
        failed, failed_model = _train_job(session, studio, "failed model")
        claim_job(session, failed, worker_name="gpu-1")
        finish_failed(session, failed, error="CUDA out of memory; lower the image size")
    return {
        "running": running,
        "queued": queued,
        "queued_model": queued_model,
        "failed": failed,
        "failed_model": failed_model,
    }


def test_table_shows_progress_message_and_errors(
    open_page: OpenPage, studio: StudioData, job_scene: dict[str, int]
) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert not app.exception
    table = app.dataframe[0].value.set_index("job")
    running = table.loc[job_scene["running"]]
    assert running["status"] == "running"
    assert running["progress"] == pytest.approx(0.4)
    assert running["message"] == "epoch 3/12 · loss 0.812 · 2 min left"
    assert running["model"] == "running model · se"
    assert running["by"] == "reviewer" and running["attempts"] == 1
    assert table.loc[job_scene["failed"], "error"].startswith("CUDA out of memory")
    assert table.loc[studio.model.job_id, "progress"] == pytest.approx(1.0)
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Running"], metrics["Queued"]) == ("1", "1")
    assert "CUDA out of memory" in app.code[0].value


@pytest.mark.parametrize("worker", ["listening", "silent", "none"])
def test_a_queued_job_says_when_no_worker_listens(
    open_page: OpenPage, studio_store, job_scene: dict[str, int], worker: str
) -> None:
    age = {"listening": (NOW - datetime.now(UTC)).total_seconds(), "silent": 10_000_000.0}
    if worker in age:
        write_report(studio_store.data_dir, "gpu-1", ["gpu"], age[worker] + 5)
    app = open_page(PAGE, role="viewer").run()
    status = app.dataframe[0].value.set_index("job").loc[job_scene["queued"], "status"]
    warnings = [w.value for w in app.warning]
    if worker == "listening":
        assert status == "queued" and not warnings
    else:
        assert status == "queued: no worker is listening on queue 'gpu'"
        assert len(warnings) == 1 and ("gpu-1 is silent" in warnings[0]) is (worker == "silent")


def test_viewer_gets_no_cancel_or_retry(open_page: OpenPage, job_scene: dict[str, int]) -> None:
    app = open_page(PAGE, role="viewer").run()
    labels = [b.label for b in app.button]
    assert "Cancel job" not in labels and "Retry job" not in labels


def test_filters_by_status_and_kind(open_page: OpenPage, job_scene: dict[str, int]) -> None:
    app = open_page(PAGE, role="viewer").run()
    app.multiselect(key="adn_jobs_status").set_value(["failed"]).run()
    assert list(app.dataframe[0].value["job"]) == [job_scene["failed"]]
    app.multiselect(key="adn_jobs_status").set_value([])
    app.selectbox(key="adn_jobs_kind").set_value("score").run()
    assert not app.dataframe
    assert any("No job matches" in i.value for i in app.info)


def test_cancel_a_queued_job(
    open_page: OpenPage, studio: StudioData, job_scene: dict[str, int]
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.selectbox(key="adn_cancel_pick").set_value(job_scene["queued"])
    app.button(key="adn_cancel_job").click().run()
    assert not app.exception
    assert f"Job {job_scene['queued']} cancelled" in app.success[0].value
    with session_scope(studio.factory) as session:
        assert get_job(session, job_scene["queued"]).status == "cancelled"
        assert get_model_version(session, job_scene["queued_model"]).status == "failed"
    table = app.dataframe[0].value.set_index("job")
    assert table.loc[job_scene["queued"], "status"] == "cancelled"


def test_cancel_a_running_job_flags_it(
    open_page: OpenPage, studio: StudioData, job_scene: dict[str, int]
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.selectbox(key="adn_cancel_pick").set_value(job_scene["running"])
    app.button(key="adn_cancel_job").click().run()
    assert "asked to stop" in app.success[0].value
    with session_scope(studio.factory) as session:
        job = get_job(session, job_scene["running"])
        assert (job.status, job.cancel_requested) == ("running", True)
    table = app.dataframe[0].value.set_index("job")
    assert table.loc[job_scene["running"], "status"] == "running (stopping)"


def test_retry_a_failed_training_job(
    open_page: OpenPage,
    studio: StudioData,
    job_scene: dict[str, int],
    dispatch_calls: list[tuple[int, str]],
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.selectbox(key="adn_retry_pick").set_value(job_scene["failed"])
    app.button(key="adn_retry_job").click().run()
    assert not app.error, [e.value for e in app.error]
    with session_scope(studio.factory) as session:
        newest = list_recent_jobs(session, project_id=studio.project.id, limit=1)[0]
        old = get_job(session, job_scene["failed"])
        assert newest.id != old.id and newest.status == "queued"
        new_model = get_model_version(session, newest.params_json["model_version_id"])
        assert new_model.id != job_scene["failed_model"]
        assert (new_model.status, new_model.name, new_model.job_id) == (
            "pending",
            "failed model",
            newest.id,
        )
        expected = dict(old.params_json, model_version_id=new_model.id)
        assert newest.params_json == expected
    assert dispatch_calls == [(newest.id, "train")]
    assert f"queued again as job {newest.id}" in app.success[0].value


def test_retry_with_broker_down_says_the_job_stays_queued(
    open_page: OpenPage,
    studio: StudioData,
    job_scene: dict[str, int],
    broker_down: list[tuple[int, str]],
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.selectbox(key="adn_retry_pick").set_value(job_scene["failed"])
    app.button(key="adn_retry_job").click().run()
    with session_scope(studio.factory) as session:
        newest = list_recent_jobs(session, project_id=studio.project.id, limit=1)[0]
        assert newest.id > max(job_scene["running"], job_scene["queued"], job_scene["failed"])
        # The new job, not the failed one, was handed to the (refusing) broker ...
        assert broker_down == [(newest.id, "train")]
        # ... and its row is untouched by the failed send: queued, never claimed, no error.
        assert (newest.kind, newest.status, newest.attempts) == ("train", "queued", 0)
        assert (newest.error, newest.started_at, newest.finished_at) == (None, None, None)
        model = get_model_version(session, newest.params_json["model_version_id"])
        assert (model.status, model.job_id) == ("pending", newest.id)
        assert get_job(session, job_scene["failed"]).status == "failed"
        assert get_job(session, job_scene["queued"]).status == "queued"
    error = app.error[0].value
    assert error.startswith(f"Job {newest.id} is saved.") and "stays queued" in error


def test_service_refuses_viewer_and_unfinished_retry(
    studio: StudioData, job_scene: dict[str, int], dispatch_calls: list[tuple[int, str]]
) -> None:
    viewer = studio.users["viewer"].id
    with pytest.raises(PermissionDeniedError):
        job_service.cancel_job(studio.factory, job_scene["queued"], actor_id=viewer)
    with pytest.raises(PermissionDeniedError):
        job_service.retry_job(studio.factory, job_scene["failed"], actor_id=viewer)
    reviewer = studio.users["reviewer"].id
    with pytest.raises(JobStateError, match="only failed or cancelled"):
        job_service.retry_job(studio.factory, job_scene["running"], actor_id=reviewer)
    with session_scope(studio.factory) as session:
        assert get_job(session, job_scene["queued"]).status == "queued"
        jobs = list_recent_jobs(session, project_id=studio.project.id)
    assert len(jobs) == 4  # nothing was written by the refused calls
    assert dispatch_calls == []


def test_retry_of_a_score_job_keeps_its_params(
    studio: StudioData, dispatch_calls: list[tuple[int, str]]
) -> None:
    params = {
        "model_version_id": studio.model.id,
        "batch_ids": [studio.inspect_batch.id],
        "image_ids": None,
        "heatmaps": True,
    }
    with session_scope(studio.factory) as session:
        job = create_job(session, kind="score", project_id=studio.project.id, params=params)
        claim_job(session, job.id, worker_name="w")
        finish_failed(session, job.id, error="worker lost")
        old_id = job.id
    result = job_service.retry_job(studio.factory, old_id, actor_id=studio.users["reviewer"].id)
    new_id = result.job_id
    assert new_id != old_id
    assert (result.kind, result.sent, result.task_id) == ("score", True, f"task-{new_id}")
    with session_scope(studio.factory) as session:
        retried = get_job(session, new_id)
        assert retried.params_json == params
        assert (retried.kind, retried.status) == ("score", "queued")
    assert dispatch_calls == [(new_id, "score")]
    assert job_service.send_jobs([(new_id, "score")])[0].sent
    assert dispatch_calls == [(new_id, "score"), (new_id, "score")]


def test_service_retry_with_broker_down_reports_the_saved_job(
    studio: StudioData, job_scene: dict[str, int], broker_down: list[tuple[int, str]]
) -> None:
    result = job_service.retry_job(
        studio.factory, job_scene["failed"], actor_id=studio.users["reviewer"].id
    )
    new_id = result.job_id
    assert new_id > max(job_scene["running"], job_scene["queued"], job_scene["failed"])
    assert broker_down == [(new_id, "train")]  # what was attempted: the new job, once
    assert (result.kind, result.sent, result.task_id) == ("train", False, None)
    assert result.problem is not None
    assert f"job {new_id} could not be handed" in result.problem
    assert "stays queued" in result.problem and "connection refused" in result.problem
    with session_scope(studio.factory) as session:
        saved = get_job(session, new_id)
        assert (saved.status, saved.attempts, saved.error) == ("queued", 0, None)
        assert saved.params_json == dict(
            get_job(session, job_scene["failed"]).params_json,
            model_version_id=saved.params_json["model_version_id"],
        )
