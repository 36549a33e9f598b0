"""``adn-studio``: the whole studio on one machine, in one command (the embedded mode).

It creates the data folder, brings the database up to date, creates the first admin when nobody
can log in yet, starts one local Celery worker (both queues, one job at a time) and the Streamlit
dashboard, prints where to open it and how to log in, restarts the worker when it crashes (the
dashboard stays up), and stops both cleanly on Ctrl-C or SIGTERM. Settings come from the
``ADN_*`` variables (the options override a few), so the same command also runs against
PostgreSQL and Redis when their URLs are set.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from db.errors import StoreError
from db.migrate import upgrade_to_head
from db.repositories import count_users, ensure_first_admin
from db.session import make_engine, make_session_factory, session_scope
from db.settings import StoreSettings
from worker import broker
from worker.errors import WorkerError
from worker.restarts import RestartPolicy
from worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8501
ADMIN_USERNAME = "admin"
PASSWORD_FILE = "first-admin-password.txt"
STOP_GRACE_S = 15.0
HEALTH_TIMEOUT_S = 90.0
WORKER_NODE = "embedded@%h"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LauncherError(WorkerError):
    """The studio could not be started (bad options, missing dashboard, failed migration)."""


@dataclass(frozen=True)
class Login:
    """How to log in, for the banner."""

    username: str
    password: str | None  # set only when the account was created by this start
    password_file: Path | None
    created: bool


# --- preparation ---------------------------------------------------------------------------------


def prepare(settings: WorkerSettings) -> Login:
    """Data folder, migrations, embedded broker file, first admin. Safe to repeat."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    broker.prepare_embedded_broker(settings.broker_url)
    return ensure_admin(settings)


def ensure_admin(settings: WorkerSettings) -> Login:
    """Create the first admin when no user exists (password from ADN_ADMIN_PASSWORD or new)."""
    password_file = settings.data_dir / PASSWORD_FILE
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with session_scope(factory, immediate=True) as session:
            if count_users(session) > 0:
                existing = password_file if password_file.is_file() else None
                return Login(ADMIN_USERNAME, None, existing, created=False)
            given = os.environ.get("ADN_ADMIN_PASSWORD", "").strip()
            password = given or secrets.token_urlsafe(12)
            user = ensure_first_admin(session, ADMIN_USERNAME, password)
            if user is None:  # another process created it at the same moment
                return Login(ADMIN_USERNAME, None, None, created=False)
            if not given:
                write_private(password_file, f"username: {ADMIN_USERNAME}\npassword: {password}\n")
            return Login(ADMIN_USERNAME, password, None if given else password_file, created=True)
    finally:
        engine.dispose()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(path, 0o600)


# --- child processes -----------------------------------------------------------------------------


def project_root() -> Path:
    """The folder that holds ``dashboard/`` (and ``.streamlit/``)."""
    spec = importlib.util.find_spec("dashboard")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve().parent
    return Path(__file__).resolve().parents[1]


def worker_command() -> list[str]:
    """One local Celery worker on both queues, one job at a time."""
    return [
        sys.executable,
        "-m",
        "celery",
        "--app=worker.celery_app",
        "worker",
        "--queues=gpu,light",
        "--concurrency=1",
        "--pool=prefork",
        f"--hostname={WORKER_NODE}",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
    ]


def dashboard_command(app_path: Path, port: int, max_upload_mb: int) -> list[str]:
    """Streamlit on the dashboard entry point, its uploader limited to the studio's largest
    accepted upload (ADN_MAX_UPLOAD_MB)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(max_upload_mb),
    ]


def _die_with_parent() -> None:
    """In the child (Linux): receive SIGTERM when the launcher dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_child(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a child in its own process group (the launcher decides how it stops)."""
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True, preexec_fn=preexec)


def stop_children(children: dict[str, subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM each child's main process (Celery's warm shutdown stops its own pool), then
    SIGKILL the process group of any child still running after ``grace_s``.

    A job killed that way is re-queued by the sweep once its heartbeat is stale.
    """
    for proc in children.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("the %s did not stop within %.0f s; killing it", name, grace_s)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Poll Streamlit's health endpoint until it answers, the process exits, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


# --- the command ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="adn-studio",
        description="Run AttentDifferNet Studio on this machine: dashboard and one worker.",
    )
    parser.add_argument("--port", type=int, default=None, help="dashboard port (ADN_PORT, 8501)")
    parser.add_argument("--data-dir", type=Path, default=None, help="data folder (ADN_DATA_DIR)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--worker-only", action="store_true", help="start the worker only")
    only.add_argument("--dashboard-only", action="store_true", help="start the dashboard only")
    return parser.parse_args(argv)


def banner(login: Login, url: str | None, settings: WorkerSettings) -> str:
    """What the launcher prints once everything is started."""
    lines = ["", "AttentDifferNet Studio", "=" * 22]
    if url:
        lines.append(f"Open        {url}")
    lines.append(f"Data        {settings.data_dir}")
    if login.created and login.password is not None:
        lines.append(f"Log in as   {login.username}")
        if login.password_file is not None:
            lines.append(f"Password    {login.password}")
            lines.append(f"            (saved, readable by you only, in {login.password_file})")
        else:
            lines.append("Password    the value of ADN_ADMIN_PASSWORD")
        lines.append("            Change it after your first login.")
    elif login.password_file is not None:
        lines.append(
            f"Log in      with your account (first admin password in {login.password_file})"
        )
    else:
        lines.append("Log in      with your account")
    lines += ["Stop        Ctrl-C", ""]
    return "\n".join(lines)


def child_env(settings: WorkerSettings, port: int) -> dict[str, str]:
    """The environment of both children: the same ``ADN_*`` settings as the launcher."""
    env = dict(os.environ)
    env["ADN_DATA_DIR"] = str(settings.data_dir)
    env["ADN_PORT"] = str(port)
    root = str(project_root())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adn-studio``; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.data_dir is not None:
        os.environ["ADN_DATA_DIR"] = str(args.data_dir.expanduser().resolve())
    port = args.port or int(os.environ.get("ADN_PORT") or DEFAULT_PORT)
    try:
        settings = WorkerSettings.from_env()
        login = prepare(settings)
        return run(settings, login, args, port)
    except (WorkerError, StoreError, OSError) as exc:
        print(f"adn-studio: could not start: {exc}", file=sys.stderr)
        return 2


def run(settings: WorkerSettings, login: Login, args: argparse.Namespace, port: int) -> int:
    """Start the children, print the banner, supervise until a signal or a child exits."""
    root = project_root()
    env = child_env(settings, port)
    children: dict[str, subprocess.Popen[bytes]] = {}
    url = None
    if not args.dashboard_only:
        children["worker"] = start_child(worker_command(), env, root)
    if not args.worker_only:
        app_path = root / "dashboard" / "server.py"
        if not app_path.is_file():
            stop_children(children, STOP_GRACE_S)
            raise LauncherError(f"the dashboard entry point {app_path} is missing")
        max_upload_mb = StoreSettings.from_env(env).max_upload_mb
        children["dashboard"] = start_child(
            dashboard_command(app_path, port, max_upload_mb), env, root
        )
        url = f"http://localhost:{port}"
    print(banner(login, url, settings), flush=True)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if url and not args.no_browser:
        threading.Thread(
            target=_open_browser, args=(url, children["dashboard"]), daemon=True
        ).start()
    status = _supervise(children, stop, lambda: start_child(worker_command(), env, root))
    stop_children(children, STOP_GRACE_S)
    print("adn-studio stopped.", flush=True)
    return status


def _supervise(
    children: dict[str, subprocess.Popen[bytes]],
    stop: threading.Event,
    start_worker: Callable[[], subprocess.Popen[bytes]],
    policy: RestartPolicy | None = None,
) -> int:
    """Watch the children until ``stop`` is set: restart a worker that stopped on its own (the
    dashboard stays up; its jobs are re-queued by the sweep), stop everything when the
    dashboard stops or the worker keeps crashing. Returns the launcher's exit status."""
    policy = policy or RestartPolicy()
    started = dict.fromkeys(children, time.monotonic())
    while not stop.wait(0.5):
        ended = [name for name, proc in children.items() if proc.poll() is not None]
        if not ended:
            continue
        name = ended[0]
        code = children[name].returncode
        if name != "worker":
            print(f"adn-studio: the {name} stopped (exit status {code}); stopping", file=sys.stderr)
            return 1
        now = time.monotonic()
        delay = policy.after_crash(now, started[name])
        if delay is None:
            print(
                f"adn-studio: the worker stopped (exit status {code}) {policy.max_restarts + 1} "
                f"times within {policy.window_s:.0f} s; stopping. Read the worker's log above "
                "(out of memory, a broken install, an unreachable database)",
                file=sys.stderr,
            )
            return 1
        print(
            f"adn-studio: the worker stopped (exit status {code}); restarting it in "
            f"{delay:.0f} s (restart {policy.restarts}); the dashboard stays up and the "
            "interrupted job is re-queued",
            file=sys.stderr,
            flush=True,
        )
        logger.warning("worker exited with status %s; restart %s", code, policy.restarts)
        if stop.wait(delay):
            break
        children[name] = start_worker()
        started[name] = time.monotonic()
    return 0


def _open_browser(url: str, proc: subprocess.Popen[bytes]) -> None:
    if wait_until_healthy(url, proc, HEALTH_TIMEOUT_S):
        webbrowser.open(url)


if __name__ == "__main__":
    sys.exit(main())
