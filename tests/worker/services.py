"""Real services for the worker tests: broker messages, PostgreSQL databases, Redis servers and
Celery worker processes. A missing service fails the test (never skips it)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from db.migrate import upgrade_to_head
from tests.fixtures.postgres import temporary_database

if TYPE_CHECKING:
    import redis

REPO_ROOT = Path(__file__).resolve().parents[2]


def broker_messages(broker_file: Path) -> list[dict[str, Any]]:
    """Visible messages of an embedded SQLite broker: queue, task name and args."""
    if not broker_file.exists():
        return []
    with sqlite3.connect(broker_file) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        rows = []
        if "kombu_message" in tables:
            rows = conn.execute(
                "SELECT q.name, m.payload FROM kombu_message m JOIN kombu_queue q "
                "ON q.id = m.queue_id WHERE m.visible = 1 ORDER BY m.id"
            ).fetchall()
    conn.close()
    messages = []
    for queue, payload in rows:
        envelope = json.loads(payload)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"queue": queue, "task": envelope["headers"]["task"], "args": args})
    return messages


# --- PostgreSQL ----------------------------------------------------------------------------------

REDIS_URL = os.environ.get("ADN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database migrated to head; dropped afterwards."""
    with temporary_database("adn_worker_test") as url:
        upgrade_to_head(url)
        yield url


# --- Redis ---------------------------------------------------------------------------------------


def redis_client(url: str = REDIS_URL) -> redis.Redis:
    """A client of the test Redis database; fails the test when Redis is down."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is required for this test but {url} is down ({exc})", pytrace=False)
    return client


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A ``redis-server`` of this test alone, without persistence: a restart loses every message."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is required for this test but is not installed")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._pings(), 20, "the private redis-server to answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _pings(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.exceptions.ConnectionError:
            return False


# --- worker processes ----------------------------------------------------------------------------


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None
) -> None:
    """Poll ``predicate`` until it holds; fail with the worker log's tail when it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text()[-6000:] if log is not None and log.exists() else "(no log)"
    raise AssertionError(f"waited {timeout_s:.0f} s for {what}; worker log:\n{tail}")


def worker_env(data_dir: Path, **settings: str | float) -> dict[str, str]:
    """The environment of a worker process: this test's ``ADN_*`` settings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADN_")}
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        ADN_DATA_DIR=str(data_dir),
        # The GPU check runs these tests with ADN_TEST_WORKER_DEVICE=cuda.
        ADN_WORKER_DEVICE=os.environ.get("ADN_TEST_WORKER_DEVICE", "cpu"),
        ADN_BACKBONE_WEIGHTS="random",
        ADN_TASK_TIME_LIMIT_S="300",
        ADN_PROGRESS_INTERVAL_S="0.3",
        OMP_NUM_THREADS="1",
    )
    env.update({f"ADN_{key.upper()}": str(value) for key, value in settings.items()})
    return env


class WorkerProcess:
    """``celery worker`` on both queues (prefork, one process), in its own process group."""

    def __init__(self, env: dict[str, str], log: Path, node: str = "test") -> None:
        self.env = env
        self.log = log
        self.node = f"{node}-{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WorkerProcess:
        command = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker"]
        command += ["--queues", "gpu,light", "--pool", "prefork", "--concurrency", "1"]
        command += ["--hostname", f"{self.node}@%h", "--without-gossip", "--without-mingle"]
        command += ["--loglevel", "INFO"]
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the main process); kill the group if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL the worker and its pool processes at once, like a lost machine."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
