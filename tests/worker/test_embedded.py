"""``adn-studio``: preparation (migrations, first admin) and the whole launcher as a process."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from db.migrate import current_revision, head_revision
from db.repositories import authenticate, count_users
from db.session import make_engine, make_session_factory, session_scope
from tests.worker.services import free_port, wait_for
from worker.embedded import (
    PASSWORD_FILE,
    Login,
    banner,
    dashboard_command,
    ensure_admin,
    parse_args,
    prepare,
)
from worker.settings import WorkerSettings

STOP_WAIT_S = 60


def _can_log_in(settings: WorkerSettings, username: str, password: str) -> bool:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return authenticate(session, username, password) is not None
    finally:
        engine.dispose()


def test_prepare_creates_the_first_admin_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADN_ADMIN_PASSWORD", raising=False)
    settings = WorkerSettings(data_dir=tmp_path / "data")
    login = prepare(settings)
    assert login.created and login.username == "admin" and login.password
    secret = settings.data_dir / PASSWORD_FILE
    assert login.password_file == secret
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert login.password in secret.read_text()
    assert _can_log_in(settings, "admin", login.password)
    assert current_revision(settings.database_url) == head_revision()
    assert (settings.data_dir / "broker.sqlite").is_file()

    again = prepare(settings)  # a second start: nothing new, no password shown
    assert not again.created and again.password is None
    assert again.password_file == secret
    text = banner(again, "http://localhost:8501", settings)
    assert "with your account" in text and login.password not in text


def test_admin_password_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADN_ADMIN_PASSWORD", "a long chosen secret")
    settings = WorkerSettings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    prepare(settings)
    assert _can_log_in(settings, "admin", "a long chosen secret")
    assert not (settings.data_dir / PASSWORD_FILE).exists()
    assert not ensure_admin(settings).created


def test_dashboard_uploader_is_limited_to_the_studio_setting() -> None:
    command = dashboard_command(Path("dashboard/server.py"), 8600, 300)
    limit = command.index("--server.maxUploadSize")
    assert command[limit + 1] == "300" and command[command.index("--server.port") + 1] == "8600"


def test_banner_shows_the_url_and_the_login(tmp_path: Path) -> None:
    settings = WorkerSettings(data_dir=tmp_path)
    login = Login("admin", "s3cret-pass", tmp_path / PASSWORD_FILE, created=True)
    text = banner(login, "http://localhost:8600", settings)
    assert "http://localhost:8600" in text
    assert "admin" in text and "s3cret-pass" in text and PASSWORD_FILE in text


def test_options() -> None:
    args = parse_args(["--port", "8600", "--data-dir", "/tmp/x", "--no-browser", "--worker-only"])
    assert (args.port, args.data_dir, args.no_browser, args.worker_only) == (
        8600,
        Path("/tmp/x"),
        True,
        True,
    )
    with pytest.raises(SystemExit):
        parse_args(["--worker-only", "--dashboard-only"])


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_adn_studio_starts_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    log = tmp_path / "studio.log"
    with _studio(tmp_path, log, "--data-dir", str(data_dir), "--port", str(port)) as proc:
        wait_for(lambda: _health(port), 120, "the dashboard to answer", log)
        wait_for(
            lambda: "embedded@" in log.read_text() and " ready." in log.read_text(),
            120,
            "the embedded worker to be ready",
            log,
        )
    output = _clean_stop_output(proc, log)
    assert f"http://localhost:{port}" in output
    secret = data_dir / PASSWORD_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().split("password: ", 1)[1].strip()
    assert f"Password    {password}" in output, "the banner shows the first password once"
    settings = WorkerSettings(data_dir=data_dir)
    assert current_revision(settings.database_url) == head_revision()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        assert count_users(session) == 1
    engine.dispose()
    assert not _health(port), "the dashboard must be stopped"
    assert "Warm shutdown" in output, "the worker must be stopped the gentle way"
    leftovers = subprocess.run(
        ["pgrep", "-f", "--", f"--server.port {port}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "a child process outlived the launcher"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_adn_studio_restarts_a_killed_worker(tmp_path: Path) -> None:
    log = tmp_path / "studio.log"
    with _studio(tmp_path, log, "--data-dir", str(tmp_path / "data"), "--worker-only") as proc:
        wait_for(lambda: log.read_text().count(" ready.") == 1, 120, "the worker", log)
        first = _worker_pid(proc.pid)
        os.killpg(first, signal.SIGKILL)  # the worker and its pool die at once
        wait_for(lambda: "restarting it in" in log.read_text(), 30, "the restart", log)
        wait_for(lambda: log.read_text().count(" ready.") == 2, 120, "the new worker", log)
        assert proc.poll() is None, "the launcher must stay up"
        assert _worker_pid(proc.pid) != first
    output = _clean_stop_output(proc, log)
    assert "the worker stopped (exit status -9); restarting it in 1 s (restart 1)" in output


def _worker_pid(launcher_pid: int) -> int:
    found = subprocess.run(
        ["pgrep", "-P", str(launcher_pid), "-f", "celery"], capture_output=True, text=True
    )
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, f"expected one worker child, found {pids}"
    return pids[0]


@contextmanager
def _studio(cwd: Path, log: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """The launcher running for the ``with`` block; stopped with SIGTERM afterwards."""
    proc = _launch(cwd, log, *options)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_WAIT_S)


def _clean_stop_output(proc: subprocess.Popen[bytes], log: Path) -> str:
    """The launcher's output, once it is checked to have exited 0 and said it stopped."""
    output = log.read_text()
    assert proc.returncode == 0, output[-4000:]
    assert "adn-studio stopped." in output
    return output


def _launch(cwd: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """``adn-studio OPTIONS --no-browser`` on CPU with random weights, its output in ``log``."""
    script = Path(sys.executable).parent / "adn-studio"
    assert script.is_file(), "run `pip install -e . --no-deps` to register the adn-studio script"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADN_")}
    env.update(ADN_SWEEP_INTERVAL_S="0", ADN_WORKER_DEVICE="cpu", ADN_BACKBONE_WEIGHTS="random")
    with log.open("w") as out:
        return subprocess.Popen(
            [str(script), *options, "--no-browser"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
