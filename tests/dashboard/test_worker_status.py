"""Worker health from the report files: alive while refreshed, a warning when a queue has nobody."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard.services import worker_status

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def write_report(data_dir: Path, name: str, queues: list[str], age_s: float) -> None:
    """A worker report as the worker writes it, refreshed ``age_s`` seconds before NOW."""
    folder = data_dir / worker_status.WORKERS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    updated = (NOW - timedelta(seconds=age_s)).isoformat()
    payload = {"name": name, "device": "cpu", "queues": queues, "updated_at": updated}
    (folder / f"{name}.json").write_text(json.dumps(payload), encoding="utf-8")


def test_a_report_is_alive_until_three_refreshes_are_missed(tmp_path: Path) -> None:
    write_report(tmp_path, "fresh", ["gpu"], 30)
    write_report(tmp_path, "late", ["gpu"], worker_status.STALE_AFTER_S + 60)
    reports = {r.name: r for r in worker_status.read_reports(tmp_path)}
    assert reports["fresh"].queues == ("gpu",)
    assert reports["fresh"].alive(NOW) and reports["fresh"].health(NOW) == "listening"
    assert not reports["late"].alive(NOW)
    assert reports["late"].health(NOW) == "silent for 4 min: stopped or hung"


def test_queue_problem_names_the_queue_and_the_silent_worker(tmp_path: Path) -> None:
    assert "No worker is listening on queue 'gpu'" in str(
        worker_status.queue_problem([], "train", NOW)
    )
    write_report(tmp_path, "light-only", ["light"], 10)
    write_report(tmp_path, "gpu-1", ["gpu"], 900)
    problem = worker_status.queue_problem(worker_status.read_reports(tmp_path), "score", NOW)
    assert problem is not None and "gpu-1 is silent for 15 min" in problem
    write_report(tmp_path, "gpu-2", ["gpu", "light"], 5)
    reports = worker_status.read_reports(tmp_path)
    assert worker_status.queue_problem(reports, "train", NOW) is None
    assert worker_status.queue_problem(reports, "score", NOW) is None
