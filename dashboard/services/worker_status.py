"""What the workers report about themselves: ``<data_dir>/workers/*.json`` files.

Each file: ``{"name", "device", "queues", "weights": {backbone: "available: ..." |
"missing: ..."}, "updated_at"}``, rewritten every minute by each worker while it runs and
removed when it stops. A report not refreshed for :data:`STALE_AFTER_S` belongs to a worker that
died or hangs; a queue that no fresh report names has nobody to take its jobs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobspec import QUEUE_OF_KIND, Backbone, JobKind, values_of

logger = logging.getLogger(__name__)

WORKERS_FOLDER = "workers"
BACKBONES: tuple[str, ...] = values_of(Backbone)
NO_REPORT = "no worker has reported yet"
# Three missed refreshes (workers rewrite their report every minute).
STALE_AFTER_S = 180.0


@dataclass(frozen=True)
class WorkerReport:
    """One worker's report."""

    name: str
    device: str
    weights: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    problem: str | None = None  # set when the report file could not be read
    queues: tuple[str, ...] = ()

    def alive(self, now: datetime, stale_after_s: float = STALE_AFTER_S) -> bool:
        """Whether the worker refreshed its report recently enough to be taking jobs."""
        if self.problem is not None or self.updated_at is None:
            return False
        return now - self.updated_at <= timedelta(seconds=stale_after_s)

    def health(self, now: datetime) -> str:
        """``listening`` or how long the worker has been silent, for tables."""
        if self.problem is not None:
            return self.problem
        if self.updated_at is None:
            return "never refreshed its report"
        if self.alive(now):
            return "listening"
        minutes = (now - self.updated_at).total_seconds() / 60
        return f"silent for {minutes:.0f} min: stopped or hung"


@dataclass(frozen=True)
class WeightsStatus:
    """Whether a backbone's pretrained weights are available, as the workers say."""

    backbone: str
    available: bool | None  # None: no worker said anything about it
    detail: str


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_reports(data_dir: Path) -> list[WorkerReport]:
    """Every worker report file, newest first; unreadable files come back with ``problem``."""
    folder = data_dir / WORKERS_FOLDER
    if not folder.is_dir():
        return []
    reports: list[WorkerReport] = []
    for path in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("the file does not hold a JSON object")
        except (OSError, ValueError) as exc:
            logger.warning("unreadable worker report %s: %s", path, exc)
            reports.append(WorkerReport(path.stem, "?", problem=f"unreadable report ({exc})"))
            continue
        weights = raw.get("weights")
        reports.append(
            WorkerReport(
                name=str(raw.get("name") or path.stem),
                device=str(raw.get("device") or "?"),
                weights={str(k): str(v) for k, v in weights.items()}
                if isinstance(weights, dict)
                else {},
                updated_at=_parse_time(raw.get("updated_at")),
                queues=tuple(str(q) for q in raw.get("queues") or () if isinstance(q, str)),
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(reports, key=lambda r: r.updated_at or epoch, reverse=True)


def weights_status(
    reports: list[WorkerReport], backbones: tuple[str, ...] = BACKBONES
) -> list[WeightsStatus]:
    """Per backbone: available if any worker has the weights, missing if all that say something
    lack them, unknown when no worker reported it."""
    out: list[WeightsStatus] = []
    for backbone in backbones:
        said = [(r.name, r.weights[backbone]) for r in reports if backbone in r.weights]
        if not said:
            out.append(WeightsStatus(backbone, None, NO_REPORT))
            continue
        good = [(n, t) for n, t in said if t.strip().lower().startswith("available")]
        name, text = (good or said)[0]
        out.append(WeightsStatus(backbone, bool(good), f"{name}: {text}"))
    return out


def weights_refusal(statuses: Mapping[str, WeightsStatus], backbone: str) -> str | None:
    """Why training on ``backbone`` must not be queued (every worker that reported lacks its
    pretrained weights), in an inspector's words; None when it can go ahead."""
    status = statuses.get(backbone)
    if status is None or status.available is not False:
        return None
    others = sorted(b for b, s in statuses.items() if s.available and b != backbone)
    instead = f"choose {' or '.join(others)}, whose weights the workers have, " if others else ""
    return (
        f"the workers do not have the pretrained weights of {backbone} ({status.detail}), so "
        f"its training would fail. To go on, {instead}or ask whoever runs the workers to "
        f"install the {backbone} weights file (`adn weights` says where)"
    )


def nobody_listens(kind: str) -> str:
    """The short reason a queued job of ``kind`` does not move, for status columns."""
    return f"no worker is listening on queue '{QUEUE_OF_KIND[JobKind(kind)]}'"


def queue_problem(
    reports: list[WorkerReport], kind: str, now: datetime | None = None
) -> str | None:
    """Why jobs of ``kind`` would wait with nobody to take them, or None when a live worker
    listens on their queue."""
    now = now or datetime.now(UTC)
    queue = QUEUE_OF_KIND[JobKind(kind)]
    headline = nobody_listens(kind).capitalize()
    if any(r.alive(now) and queue in r.queues for r in reports):
        return None
    silent = [r for r in reports if queue in r.queues]
    if silent:
        last = silent[0]
        return (
            f"{headline}: {last.name} is "
            f"{last.health(now)}. {kind.capitalize()} jobs stay "
            "queued until a worker is back; restart it (`adn-studio` in embedded mode, the "
            "worker service in team mode)."
        )
    return (
        f"{headline}. {kind.capitalize()} jobs stay queued until "
        "one starts (`adn-studio` starts one in embedded mode; in team mode start the worker "
        "service)."
    )
