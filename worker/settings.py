"""Worker runtime settings, read from ``ADN_*`` environment variables (and only here).

Every value has a working default for the embedded mode (one machine, no servers): a SQLite
database and a SQLite-backed broker inside the data directory. The team stack overrides the URLs
with PostgreSQL and Redis (see ``docker-compose.yml`` and ``.env.example``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jobspec.env import env_float, env_int, env_text
from worker.errors import SettingsError, WorkerError

__all__ = ["SettingsError", "WorkerError", "WorkerSettings", "redact_url"]

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "./data"
DEFAULT_TASK_TIME_LIMIT_S = 6 * 3600
DEFAULT_PROGRESS_INTERVAL_S = 2.0
DEFAULT_STALE_JOB_AFTER_S = 120
DEFAULT_MAX_JOB_ATTEMPTS = 3
DEFAULT_SWEEP_INTERVAL_S = 30.0
DEFAULT_RESEND_QUEUED_AFTER_S = 30.0
BACKBONE_WEIGHTS = ("imagenet", "random")
# Redis keeps a delivered message invisible this long after the hard limit before it redelivers it.
VISIBILITY_MARGIN_S = 3600
# The soft limit fires this long before the hard one (at most 10 % of the hard limit), so a task can
# record why it stopped before it is killed.
SOFT_LIMIT_GRACE_S = 60
TEAM_BROKER_URL = "redis://redis:6379/0"

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker process needs to know about its environment.

    Empty URLs and zero soft-limit/visibility values mean "derive the default from the other
    fields"; construct explicitly in tests, or use :meth:`from_env` at the edges.
    """

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str = ""
    broker_url: str = ""
    worker_device: str = "auto"
    task_time_limit_s: int = DEFAULT_TASK_TIME_LIMIT_S
    task_soft_time_limit_s: int = 0
    visibility_timeout_s: int = 0
    progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S
    stale_job_after_s: int = DEFAULT_STALE_JOB_AFTER_S
    max_job_attempts: int = DEFAULT_MAX_JOB_ATTEMPTS
    # 0 turns the periodic sweep of light-queue workers off (the adn.light.sweep task still works).
    sweep_interval_s: float = DEFAULT_SWEEP_INTERVAL_S
    resend_queued_after_s: float = DEFAULT_RESEND_QUEUED_AFTER_S
    # "random" is for smoke tests and demos on machines without the pretrained weight files.
    backbone_weights: str = "imagenet"

    def __post_init__(self) -> None:
        data_dir = Path(self.data_dir).expanduser().resolve()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'studio.db'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", f"sqla+sqlite:///{data_dir / 'broker.sqlite'}")
        if self.task_time_limit_s <= 0:
            raise SettingsError(
                f"ADN_TASK_TIME_LIMIT_S must be a positive number of seconds, got "
                f"{self.task_time_limit_s}"
            )
        if not self.task_soft_time_limit_s:
            grace = min(SOFT_LIMIT_GRACE_S, max(1, self.task_time_limit_s // 10))
            object.__setattr__(self, "task_soft_time_limit_s", self.task_time_limit_s - grace)
        if not self.visibility_timeout_s:
            object.__setattr__(
                self, "visibility_timeout_s", self.task_time_limit_s + VISIBILITY_MARGIN_S
            )
        self._validate()

    def _validate(self) -> None:
        """Raise :class:`SettingsError` naming the variable to fix when values do not fit."""
        if not _DEVICE_RE.match(self.worker_device):
            raise SettingsError(
                f"ADN_WORKER_DEVICE={self.worker_device!r} is not a device; use auto, cpu, mps, "
                "cuda or cuda:N (one worker per GPU: give each worker its own cuda:N)"
            )
        if not 0 < self.task_soft_time_limit_s < self.task_time_limit_s:
            raise SettingsError(
                f"ADN_TASK_SOFT_TIME_LIMIT_S ({self.task_soft_time_limit_s}) must be positive and "
                f"below ADN_TASK_TIME_LIMIT_S ({self.task_time_limit_s})"
            )
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise SettingsError(
                f"ADN_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s}) must be above "
                f"ADN_TASK_TIME_LIMIT_S ({self.task_time_limit_s}); otherwise Redis hands a job "
                "that is still running to a second worker. Raise it (e.g. to the limit plus one "
                "hour) or leave it unset to derive it."
            )
        if self.progress_interval_s <= 0:
            raise SettingsError(
                f"ADN_PROGRESS_INTERVAL_S must be positive, got {self.progress_interval_s}"
            )
        if self.stale_job_after_s < 2 * self.progress_interval_s:
            raise SettingsError(
                f"ADN_STALE_JOB_AFTER_S ({self.stale_job_after_s}) must be at least twice "
                f"ADN_PROGRESS_INTERVAL_S ({self.progress_interval_s}), or live jobs would be "
                "taken for dead ones"
            )
        if self.max_job_attempts < 1:
            raise SettingsError(
                f"ADN_MAX_JOB_ATTEMPTS must be at least 1, got {self.max_job_attempts}"
            )
        if self.sweep_interval_s < 0:
            raise SettingsError(
                f"ADN_SWEEP_INTERVAL_S must be 0 (off) or a positive number of seconds, got "
                f"{self.sweep_interval_s}"
            )
        if self.resend_queued_after_s <= 0:
            raise SettingsError(
                f"ADN_RESEND_QUEUED_AFTER_S must be a positive number of seconds, got "
                f"{self.resend_queued_after_s}"
            )
        if self.backbone_weights not in BACKBONE_WEIGHTS:
            raise SettingsError(
                f"ADN_BACKBONE_WEIGHTS={self.backbone_weights!r} is not one of: "
                f"{', '.join(BACKBONE_WEIGHTS)} (random is for smoke tests only)"
            )

    @property
    def uses_embedded_broker(self) -> bool:
        """Whether the broker is the server-less SQLAlchemy transport (embedded mode)."""
        return self.broker_url.startswith(("sqla+", "sqlalchemy+"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Build settings from ``ADN_*`` variables (``os.environ`` unless ``environ`` is given)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env_text(env, name)

        def whole(name: str, default: int) -> int:
            return env_int(env, name, default, SettingsError)

        def seconds(name: str, default: float) -> float:
            return env_float(env, name, default, SettingsError)

        settings = cls(
            data_dir=Path(get("DATA_DIR") or DEFAULT_DATA_DIR),
            database_url=get("DATABASE_URL"),
            broker_url=get("BROKER_URL"),
            worker_device=get("WORKER_DEVICE") or "auto",
            task_time_limit_s=whole("TASK_TIME_LIMIT_S", DEFAULT_TASK_TIME_LIMIT_S),
            task_soft_time_limit_s=whole("TASK_SOFT_TIME_LIMIT_S", 0),
            visibility_timeout_s=whole("VISIBILITY_TIMEOUT_S", 0),
            progress_interval_s=seconds("PROGRESS_INTERVAL_S", DEFAULT_PROGRESS_INTERVAL_S),
            stale_job_after_s=whole("STALE_JOB_AFTER_S", DEFAULT_STALE_JOB_AFTER_S),
            max_job_attempts=whole("MAX_JOB_ATTEMPTS", DEFAULT_MAX_JOB_ATTEMPTS),
            sweep_interval_s=seconds("SWEEP_INTERVAL_S", DEFAULT_SWEEP_INTERVAL_S),
            resend_queued_after_s=seconds("RESEND_QUEUED_AFTER_S", DEFAULT_RESEND_QUEUED_AFTER_S),
            backbone_weights=get("BACKBONE_WEIGHTS") or "imagenet",
        )
        logger.debug("worker settings: %s", settings.redacted())
        return settings

    def redacted(self) -> dict[str, object]:
        """The settings as a dict with passwords in URLs masked, for logs."""
        return {
            "data_dir": str(self.data_dir),
            "database_url": redact_url(self.database_url),
            "broker_url": redact_url(self.broker_url),
            "worker_device": self.worker_device,
            "task_time_limit_s": self.task_time_limit_s,
            "task_soft_time_limit_s": self.task_soft_time_limit_s,
            "visibility_timeout_s": self.visibility_timeout_s,
            "progress_interval_s": self.progress_interval_s,
            "stale_job_after_s": self.stale_job_after_s,
            "max_job_attempts": self.max_job_attempts,
            "sweep_interval_s": self.sweep_interval_s,
            "resend_queued_after_s": self.resend_queued_after_s,
            "backbone_weights": self.backbone_weights,
        }


def redact_url(url: str) -> str:
    """Replace the password of ``scheme://user:password@host`` with ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
