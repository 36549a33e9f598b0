"""Sending jobs by name, and a clear error when the broker is down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobspec import QUEUE_OF_KIND, JobKind
from tests.worker.services import broker_messages
from worker.celery_app import GPU_QUEUE, LIGHT_QUEUE, make_celery
from worker.dispatch import (
    TASK_FOR_KIND,
    BrokerUnavailableError,
    JobParamsError,
    queue_for,
    send_job,
    send_sweep,
)
from worker.settings import WorkerSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_task_names_and_queues() -> None:
    assert TASK_FOR_KIND == {"train": "adn.gpu.train", "score": "adn.gpu.score"}
    assert queue_for("adn.gpu.train") == GPU_QUEUE
    assert queue_for("adn.light.sweep") == LIGHT_QUEUE


def test_send_job_puts_one_message_on_the_gpu_queue(tmp_path: Path) -> None:
    app = make_celery(WorkerSettings(data_dir=tmp_path), include=[])
    task_id = send_job(7, "train", app)
    score_id = send_job(8, "score", app)
    sweep_id = send_sweep(app)
    assert len({task_id, score_id, sweep_id}) == 3
    assert broker_messages(tmp_path / "broker.sqlite") == [
        {"queue": "gpu", "task": "adn.gpu.train", "args": [7]},
        {"queue": "gpu", "task": "adn.gpu.score", "args": [8]},
        {"queue": "light", "task": "adn.light.sweep", "args": []},
    ]


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    app = make_celery(WorkerSettings(data_dir=tmp_path), include=[])
    with pytest.raises(JobParamsError, match="evaluate"):
        send_job(1, "evaluate", app)


def test_send_job_with_redis_down_raises_a_clear_error(tmp_path: Path) -> None:
    settings = WorkerSettings(
        data_dir=tmp_path, broker_url="redis://:secret@127.0.0.1:1/0", task_time_limit_s=60
    )
    app = make_celery(settings, include=[])
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        send_job(3, "train", app)
    assert time.monotonic() - started < 20, "a dashboard click must not hang on a dead broker"
    message = str(caught.value)
    assert "job 3 (train)" in message
    assert "stays queued" in message
    assert "secret" not in message, "the broker password must not be shown"


def test_send_job_with_an_unwritable_embedded_broker_raises_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    settings = WorkerSettings(data_dir=tmp_path, broker_url=f"sqla+sqlite:///{blocker}/b.sqlite")
    with pytest.raises(BrokerUnavailableError, match="ADN_DATA_DIR"):
        send_job(3, "score", make_celery(settings, include=[]))


def test_dispatch_imports_nothing_heavy_from_the_worker() -> None:
    code = (
        "import json, sys, worker.dispatch; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('worker', 'db', 'engine'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    light = {"worker", "worker.dispatch", "worker.celery_app", "worker.broker", "worker.settings"}
    assert set(json.loads(done.stdout)) <= light | {"worker.errors"}


def test_every_job_kind_is_routed_to_the_queue_the_dashboard_watches() -> None:
    for kind in JobKind:
        assert queue_for(TASK_FOR_KIND[kind]) == QUEUE_OF_KIND[kind]
