"""What the workers report about themselves: ``<data_dir>/workers/*.json`` files.

Each file: ``{"name", "device", "weights": {backbone: "available: ..." | "missing: ..."},
"updated_at"}``, written by the worker processes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jobspec import Backbone, values_of

logger = logging.getLogger(__name__)

WORKERS_FOLDER = "workers"
BACKBONES: tuple[str, ...] = values_of(Backbone)
NO_REPORT = "no worker has reported yet"


@dataclass(frozen=True)
class WorkerReport:
    """One worker's report."""

    name: str
    device: str
    weights: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    problem: str | None = None  # set when the report file could not be read


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
