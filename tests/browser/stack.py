"""Start and stop the embedded studio (dashboard + one worker) for browser tests.

Uses the ``adn-studio`` launcher when it is installed; otherwise starts the pieces itself
(migrate, first admin, one Celery worker on both queues, Streamlit). Every process is started in
its own process group and stopped by that group's id, whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "browser-admin-pass-1"
HEALTH_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(data_dir: Path) -> dict[str, str]:
    """This process's environment without ``ADN_*`` leftovers, pointed at ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADN_")}
    env.update(
        {
            "ADN_DATA_DIR": str(data_dir),
            "ADN_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ADN_WORKER_DEVICE": "cpu",
            "OMP_NUM_THREADS": "2",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
        }
    )
    return env


@dataclass
class Stack:
    """The running studio: its URL, data dir, and the processes this test started."""

    url: str
    data_dir: Path
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def logs(self, lines: int = 60) -> str:
        """The last lines of every process log (for failure messages)."""
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL what is left after the grace period."""
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, proc in self.processes.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing its process group", name)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _start(stack: Stack, name: str, command: list[str], env: dict[str, str]) -> None:
    log = (stack.log_dir / f"{name}.log").open("wb")
    stack.processes[name] = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _launcher() -> Path | None:
    candidate = Path(sys.executable).parent / "adn-studio"
    return candidate if candidate.is_file() else None


def _start_pieces(stack: Stack, env: dict[str, str], port: int) -> None:
    """Without the launcher: migrate, create the admin, start a worker and Streamlit."""
    prepare = (
        "from db.migrate import upgrade_to_head;"
        "from db.repositories import ensure_first_admin;"
        "from db.session import make_engine, make_session_factory, session_scope;"
        "from db.settings import StoreSettings;"
        "s = StoreSettings.from_env(); upgrade_to_head(s.database_url);"
        "f = make_session_factory(make_engine(s.database_url));"
        "import os\n"
        "with session_scope(f) as x:\n"
        "    ensure_first_admin(x, 'admin', os.environ['ADN_ADMIN_PASSWORD'])"
    )
    subprocess.run([sys.executable, "-c", prepare], cwd=REPO_ROOT, env=env, check=True, timeout=120)
    worker = [sys.executable, "-m", "celery", "--app=worker.celery_app", "worker"]
    worker += ["--queues=gpu,light", "--concurrency=1", "--loglevel=INFO"]
    _start(stack, "worker", worker, env)
    dashboard = [sys.executable, "-m", "streamlit", "run", "dashboard/server.py"]
    dashboard += ["--server.headless", "true", "--server.port", str(port)]
    _start(stack, "dashboard", dashboard, env)


def wait_healthy(stack: Stack, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Poll Streamlit's health endpoint; raise with the logs when it never answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in stack.processes.values()):
            break
        try:
            with urllib.request.urlopen(f"{stack.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the studio did not become healthy at {stack.url}\n{stack.logs()}")


def start_stack(data_dir: Path, log_dir: Path) -> Stack:
    """Start the studio on a free port with a fresh data dir; the caller must ``stop()`` it."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(f"http://127.0.0.1:{port}", data_dir, log_dir)
    env = child_env(data_dir)
    launcher = _launcher()
    try:
        if launcher is not None:
            command = [str(launcher), "--port", str(port), "--data-dir", str(data_dir)]
            _start(stack, "adn-studio", [*command, "--no-browser"], env)
        else:
            _start_pieces(stack, env, port)
        wait_healthy(stack)
    except BaseException:
        stack.stop()
        raise
    return stack
