"""Worker settings, the Celery app's configuration, and real worker processes on both brokers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from worker.celery_app import (
    GPU_QUEUE,
    LIGHT_QUEUE,
    StudioCelery,
    default_includes,
    make_celery,
)
from worker.settings import SettingsError, WorkerSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"
WAIT_S = 45.0


def _settings(tmp_path: Path, **kwargs: Any) -> WorkerSettings:
    return WorkerSettings(data_dir=tmp_path / "data", **kwargs)


# --- settings ----------------------------------------------------------------------------------


def test_embedded_defaults_live_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = WorkerSettings.from_env({})
    data = tmp_path / "data"
    assert settings.data_dir == data
    assert settings.data_dir.is_absolute()
    assert settings.database_url == f"sqlite:///{data}/studio.db"
    assert settings.broker_url == f"sqla+sqlite:///{data}/broker.sqlite"
    assert settings.uses_embedded_broker
    assert settings.worker_device == "auto"
    assert settings.task_time_limit_s == 6 * 3600
    assert 0 < settings.task_soft_time_limit_s < settings.task_time_limit_s
    assert settings.visibility_timeout_s > settings.task_time_limit_s
    assert settings.progress_interval_s == 2.0
    assert settings.stale_job_after_s == 120
    assert settings.max_job_attempts == 3
    assert settings.sweep_interval_s == 30.0
    assert settings.resend_queued_after_s == 30.0
    assert settings.backbone_weights == "imagenet"


def test_from_env_reads_every_variable(tmp_path: Path) -> None:
    env = {
        "ADN_DATA_DIR": str(tmp_path / "shared"),
        "ADN_DATABASE_URL": "postgresql+psycopg://adn:pw@postgres:5432/adn",
        "ADN_BROKER_URL": "redis://redis:6379/0",
        "ADN_WORKER_DEVICE": "cuda:1",
        "ADN_TASK_TIME_LIMIT_S": "7200",
        "ADN_TASK_SOFT_TIME_LIMIT_S": "7000",
        "ADN_VISIBILITY_TIMEOUT_S": "9000",
        "ADN_PROGRESS_INTERVAL_S": "0.5",
        "ADN_STALE_JOB_AFTER_S": "30",
        "ADN_MAX_JOB_ATTEMPTS": "5",
        "ADN_SWEEP_INTERVAL_S": "10",
        "ADN_RESEND_QUEUED_AFTER_S": "45",
        "ADN_BACKBONE_WEIGHTS": "random",
    }
    s = WorkerSettings.from_env(env)
    assert s.data_dir == tmp_path / "shared"
    assert s.database_url == env["ADN_DATABASE_URL"]
    assert s.broker_url == "redis://redis:6379/0"
    assert not s.uses_embedded_broker
    assert s.worker_device == "cuda:1"
    assert (s.task_time_limit_s, s.task_soft_time_limit_s) == (7200, 7000)
    assert (s.visibility_timeout_s, s.progress_interval_s, s.stale_job_after_s) == (9000, 0.5, 30)
    assert (s.max_job_attempts, s.sweep_interval_s, s.resend_queued_after_s) == (5, 10.0, 45.0)
    assert s.backbone_weights == "random"
    assert s.redacted()["database_url"] == "postgresql+psycopg://adn:***@postgres:5432/adn"


def test_visibility_timeout_follows_a_raised_time_limit(tmp_path: Path) -> None:
    s = WorkerSettings.from_env({"ADN_DATA_DIR": str(tmp_path), "ADN_TASK_TIME_LIMIT_S": "90000"})
    assert s.visibility_timeout_s > 90000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADN_VISIBILITY_TIMEOUT_S": "3600", "ADN_TASK_TIME_LIMIT_S": "3600"}, "VISIBILITY"),
        ({"ADN_VISIBILITY_TIMEOUT_S": "100", "ADN_TASK_TIME_LIMIT_S": "3600"}, "VISIBILITY"),
        ({"ADN_TASK_TIME_LIMIT_S": "0"}, "ADN_TASK_TIME_LIMIT_S"),
        ({"ADN_TASK_TIME_LIMIT_S": "six hours"}, "whole number"),
        ({"ADN_TASK_SOFT_TIME_LIMIT_S": "99999"}, "SOFT"),
        ({"ADN_WORKER_DEVICE": "gpu0"}, "cuda:N"),
        ({"ADN_WORKER_DEVICE": "cuda:"}, "cuda:N"),
        ({"ADN_PROGRESS_INTERVAL_S": "-1"}, "PROGRESS"),
        ({"ADN_PROGRESS_INTERVAL_S": "fast"}, "number"),
        ({"ADN_PROGRESS_INTERVAL_S": "60", "ADN_STALE_JOB_AFTER_S": "100"}, "STALE"),
        ({"ADN_MAX_JOB_ATTEMPTS": "0"}, "ADN_MAX_JOB_ATTEMPTS"),
        ({"ADN_SWEEP_INTERVAL_S": "-5"}, "ADN_SWEEP_INTERVAL_S"),
        ({"ADN_RESEND_QUEUED_AFTER_S": "0"}, "ADN_RESEND_QUEUED_AFTER_S"),
        ({"ADN_BACKBONE_WEIGHTS": "pretrained"}, "ADN_BACKBONE_WEIGHTS"),
    ],
)
def test_bad_values_raise_a_clear_error(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        WorkerSettings.from_env({"ADN_DATA_DIR": str(tmp_path), **env})


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:7", "mps"])
def test_accepted_devices(tmp_path: Path, device: str) -> None:
    assert WorkerSettings(data_dir=tmp_path, worker_device=device).worker_device == device


def test_explicit_construction_derives_urls(tmp_path: Path) -> None:
    s = WorkerSettings(data_dir=tmp_path, database_url="sqlite:////elsewhere.db")
    assert s.database_url == "sqlite:////elsewhere.db"
    assert s.broker_url == f"sqla+sqlite:///{tmp_path}/broker.sqlite"


# --- configuration -----------------------------------------------------------------------------


def test_reliability_settings(tmp_path: Path) -> None:
    conf = make_celery(_settings(tmp_path, task_time_limit_s=600)).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result is True
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_time_limit == 600
    assert 0 < conf.task_soft_time_limit < 600
    assert {q.name for q in conf.task_queues} == {GPU_QUEUE, LIGHT_QUEUE}


def test_each_queue_has_its_own_binding(tmp_path: Path) -> None:
    queues = make_celery(_settings(tmp_path)).amqp.queues
    for name in (GPU_QUEUE, LIGHT_QUEUE):
        assert queues[name].exchange.name == name
        assert queues[name].routing_key == name


@pytest.mark.parametrize(
    ("name", "queue"),
    [
        ("adn.gpu.train", GPU_QUEUE),
        ("adn.gpu.score_batch", GPU_QUEUE),
        ("adn.light.sweep_stale_jobs", LIGHT_QUEUE),
        ("something.else", LIGHT_QUEUE),
    ],
)
def test_routes_by_task_name_prefix(tmp_path: Path, name: str, queue: str) -> None:
    app = make_celery(_settings(tmp_path))
    assert app.amqp.router.route({}, name)["queue"].name == queue


def test_redis_gets_a_visibility_timeout_above_the_hard_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, broker_url="redis://redis:6379/0", task_time_limit_s=1000)
    options = make_celery(settings).conf.broker_transport_options
    assert options["visibility_timeout"] == settings.visibility_timeout_s
    assert options["visibility_timeout"] > 1000


def test_embedded_broker_gets_no_redis_options(tmp_path: Path) -> None:
    options = make_celery(_settings(tmp_path)).conf.broker_transport_options
    assert "visibility_timeout" not in options


def test_building_the_app_touches_no_file(tmp_path: Path) -> None:
    app = make_celery(_settings(tmp_path))
    assert not (tmp_path / "data").exists()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
    assert (tmp_path / "data" / "broker.sqlite").is_file()


def test_tasks_package_is_included_only_when_it_exists(tmp_path: Path) -> None:
    exists = (REPO_ROOT / "worker" / "tasks" / "__init__.py").is_file()
    assert default_includes() == (["worker.tasks"] if exists else [])
    app = make_celery(_settings(tmp_path))
    assert isinstance(app, StudioCelery)
    assert list(app.conf.include) == default_includes()
    assert list(make_celery(_settings(tmp_path), include=["x.y"]).conf.include) == ["x.y"]
    assert app.adn_settings.data_dir == tmp_path / "data"


def test_importing_the_app_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys, worker.celery_app as m, worker.dispatch, worker.tasks, worker.sweep; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'engine' not in sys.modules, 'the engine was imported'; "
        "assert m.app.conf.broker_url.startswith('sqla+sqlite:'); "
        "assert {'adn.gpu.train', 'adn.gpu.score', 'adn.light.sweep'} <= set(m.app.tasks)"
    )
    env = _env(tmp_path, broker_url="")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data").exists(), "importing the app must not create files"


# --- real worker processes ---------------------------------------------------------------------


def _env(tmp_path: Path, broker_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADN_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ADN_DATA_DIR=str(tmp_path / "data"),
        ADN_TASK_TIME_LIMIT_S="120",
        # These workers have no migrated database: no periodic sweep; and no weights probe.
        ADN_SWEEP_INTERVAL_S="0",
        ADN_BACKBONE_WEIGHTS="random",
    )
    if broker_url:
        env["ADN_BROKER_URL"] = broker_url
    return env


@contextmanager
def _celery_worker(tmp_path: Path, broker_url: str, node: str) -> Iterator[Path]:
    """Run ``celery -A worker.celery_app worker`` (prefork, concurrency 1); yield its log file."""
    log = tmp_path / f"{node}.log"
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--include",
        "tests.worker.sample_tasks",
        "--queues",
        f"{GPU_QUEUE},{LIGHT_QUEUE}",
        "--pool",
        "prefork",
        "--concurrency",
        "1",
        "--hostname",
        f"{node}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=_env(tmp_path, broker_url), stdout=out, stderr=out
        )
    try:
        yield log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for_json(path: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        time.sleep(0.2)
    tail = log.read_text()[-4000:] if log.exists() else "(no log)"
    raise AssertionError(f"{path.name} not written within {WAIT_S:.0f} s; worker log:\n{tail}")


def _exercise_worker(
    tmp_path: Path, broker_url: str, node: str, while_running: Callable[[], None] | None = None
) -> None:
    """Send tasks by name to both queues plus one that kills its pool process; check each ran."""
    sender = make_celery(_settings(tmp_path, broker_url=broker_url), include=[])
    out = tmp_path / "out"
    out.mkdir()
    with _celery_worker(tmp_path, broker_url, node) as log:
        sender.send_task("adn.gpu.sample_record", args=[str(out / "gpu.json")])
        sender.send_task("adn.light.sample_record", args=[str(out / "light.json")])
        sender.send_task(
            "adn.light.sample_die_once", args=[str(out / "marker"), str(out / "again.json")]
        )
        gpu = _wait_for_json(out / "gpu.json", log)
        light = _wait_for_json(out / "light.json", log)
        again = _wait_for_json(out / "again.json", log)
        if while_running is not None:
            while_running()

    assert gpu["routing_key"] == GPU_QUEUE
    assert light["routing_key"] == LIGHT_QUEUE
    assert gpu["torch_imported"] is False, "the worker process imported torch"
    # acks_late + reject_on_worker_lost: the message of a killed pool process is delivered again.
    assert again["pid"] != again["first_pid"]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_worker_process_on_embedded_sqlite_broker(tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'data' / 'broker.sqlite'}"
    _exercise_worker(tmp_path, url, f"embedded-{uuid.uuid4().hex[:8]}")
    assert (tmp_path / "data" / "broker.sqlite").is_file()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_worker_process_on_redis(tmp_path: Path) -> None:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.ping()  # fails (not skips) when Redis at 127.0.0.1:6379 is down
    client.flushdb()
    node = f"redis-{uuid.uuid4().hex[:8]}"

    def ping_like_the_compose_healthcheck() -> None:
        ping = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "inspect", "ping"]
        ping += ["--destination", f"{node}@{socket.gethostname()}", "--timeout", "10"]
        done = subprocess.run(
            ping,
            cwd=REPO_ROOT,
            env=_env(tmp_path, REDIS_TEST_URL),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "pong" in done.stdout

    try:
        _exercise_worker(tmp_path, REDIS_TEST_URL, node, ping_like_the_compose_healthcheck)
    finally:
        client.flushdb()
