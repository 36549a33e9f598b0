"""A retrained child, trained end to end in this process: it trains on exactly its recorded
lineage (less the unreadable files) and starts from its own calibration threshold."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard.services.retrain import (
    CONFIRMED_NORMAL_REPEATS,
    RetrainRequest,
    write_retraining,
)
from db.models import Image
from db.repositories import (
    add_verdict,
    create_user,
    get_active_threshold,
    training_entries,
)
from db.session import session_scope
from tests.worker.seed import job_row, model_row, queue_train, seed_project
from worker.jobs.runner import SUCCEEDED, run_job
from worker.jobs.train import TrainJob
from worker.settings import WorkerSettings

Factory = sessionmaker[Session]


def _by_name(session: Session, project_id: int) -> dict[str, int]:
    images = session.query(Image).filter(Image.project_id == project_id).all()
    return {i.original_name: i.id for i in images}


@pytest.mark.slow
def test_a_child_trains_on_its_lineage_and_calibrates_itself(
    settings: WorkerSettings, factory: Factory
) -> None:
    seeded = seed_project(factory, settings.data_dir)
    parent_id, parent_job = queue_train(factory, seeded)
    assert run_job(parent_job, TrainJob(), settings) == SUCCEEDED
    with session_scope(factory) as session:
        # An ordinary training records the images it read: the readable normals of the batch.
        readable = sorted(set(seeded.train_image_ids) - {seeded.broken_train_image_id})
        assert [(e.image_id, e.source) for e in training_entries(session, parent_id)] == [
            (i, "batch") for i in readable
        ]
        parent_threshold = get_active_threshold(session, parent_id)
        assert parent_threshold is not None
        reviewer = create_user(session, username="rita", password="correct horse", role="reviewer")
        names = _by_name(session, seeded.project_id)
        for name, labels in {
            "check_000.png": ["normal"],  # unreadable on disk: dropped when training
            "check_001.png": ["normal"],
            "defect_000.png": ["normal", "anomalous"],  # the newest verdict is what counts
            "defect_001.png": ["unsure"],
        }.items():
            for label in labels:
                add_verdict(session, image_id=names[name], label=label, user=reviewer)
        queued, plan = write_retraining(session, RetrainRequest(parent_id), actor=reviewer)
    assert plan.added == (names["check_001.png"], names["check_000.png"])  # newest first
    assert run_job(queued.job_id, TrainJob(), settings) == SUCCEEDED

    child = model_row(factory, queued.model_version_id)
    result = job_row(factory, queued.job_id).result_json or {}
    # The confirmed normal is used CONFIRMED_NORMAL_REPEATS times; the unreadable one not at all.
    used = len(readable) + CONFIRMED_NORMAL_REPEATS
    assert result["train_images"] + result["calibration_images"] == used
    failures = (child.metrics_json or {})["failures"]
    assert [f["image"] for f in failures] == ["check_000.png"]  # listed once, not per copy
    assert child.training_image_count == len(readable) + 1
    with session_scope(factory) as session:
        entries = {e.image_id: e.source for e in training_entries(session, child.id)}
        assert entries == {
            **{i: "parent" for i in readable},
            names["check_001.png"]: "confirmed_normal",
        }
        threshold = get_active_threshold(session, child.id)
        assert threshold is not None and threshold.id != parent_threshold.id
        assert threshold.params_json["source"] == "calibration"
        assert child.calibration_json is not None
        assert threshold.value == pytest.approx(child.calibration_json["threshold"])
