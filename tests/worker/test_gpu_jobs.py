"""The train and score jobs on a CUDA device (skipped where there is none)."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Heatmap, Job, ModelVersion
from db.session import session_scope
from tests.worker.seed import Seeded, queue_score, queue_train, seed_project
from worker.jobs.runner import SUCCEEDED, run_job
from worker.jobs.score import ScoreJob
from worker.jobs.train import TrainJob
from worker.settings import WorkerSettings

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

Factory = sessionmaker[Session]


def _train_and_score(factory: Factory, settings: WorkerSettings, seeded: Seeded) -> None:
    model_id, train_id = queue_train(factory, seeded, variant="cbam")
    assert run_job(train_id, TrainJob(), settings) == SUCCEEDED
    score_id = queue_score(factory, seeded, model_id)
    assert run_job(score_id, ScoreJob(), settings) == SUCCEEDED
    with session_scope(factory) as session:
        model = session.get(ModelVersion, model_id)
        assert model is not None and model.config_json["train"]["device"] == "cuda"
        job = session.get(Job, score_id)
        assert job is not None and job.result_json is not None
        assert job.result_json["scored"] == 3


def test_train_and_score_on_the_gpu(
    settings: WorkerSettings, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", "0"))
    seeded = seed_project(factory, settings.data_dir)
    _train_and_score(factory, dataclasses.replace(settings, worker_device="cuda:0"), seeded)
    _train_and_score(factory, dataclasses.replace(settings, worker_device="cuda"), seeded)
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(Heatmap)) == 6
    # Cached blocks go back after each job; what stays is the detector cache and the CUDA
    # libraries' workspaces.
    assert torch.cuda.memory_reserved() - torch.cuda.memory_allocated() < 64 * 2**20
