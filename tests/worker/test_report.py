"""Worker reports for the dashboard: written, read back by the dashboard's service, removed."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import worker.report as report_module
from dashboard.services.worker_status import read_reports, weights_status
from worker.report import WorkerReporter, probe_weights, report_path, write_report
from worker.settings import WorkerSettings


def test_report_is_what_the_dashboard_reads(tmp_path: Path) -> None:
    settings = WorkerSettings(data_dir=tmp_path, worker_device="cuda:1")
    path = write_report(settings, "gpu@host/1", ["gpu"], {"alexnet": "available: /w/alexnet.pth"})
    assert path == tmp_path / "workers" / "gpu@host_1.json"
    assert json.loads(path.read_text())["queues"] == ["gpu"]
    [report] = read_reports(tmp_path)
    assert (report.name, report.device, report.problem) == ("gpu@host/1", "cuda:1", None)
    assert report.updated_at is not None
    alexnet = next(w for w in weights_status([report]) if w.backbone == "alexnet")
    assert alexnet.available is True


def test_reporter_writes_then_removes_its_file(tmp_path: Path) -> None:
    settings = WorkerSettings(data_dir=tmp_path, backbone_weights="random")
    reporter = WorkerReporter(settings, "gpu@box", ["gpu", "light"], refresh_s=0.05)
    reporter.start()
    assert report_path(tmp_path, "gpu@box").is_file()
    reporter.stop()
    assert not report_path(tmp_path, "gpu@box").exists()
    assert probe_weights(settings) == {}  # random weights: nothing to look for


def test_a_refresh_racing_with_stop_cannot_bring_the_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = WorkerSettings(data_dir=tmp_path, backbone_weights="random")
    reporter = WorkerReporter(settings, "gpu@box", ["gpu"], refresh_s=0.01)
    refreshing = threading.Event()
    original = report_module.write_report

    def slow_refresh(*args: Any) -> Path:
        if threading.current_thread() is not threading.main_thread():
            refreshing.set()
            reporter._stop.wait(5)  # the refresh is under way when stop() begins
            time.sleep(0.05)
        return original(*args)

    monkeypatch.setattr(report_module, "write_report", slow_refresh)
    reporter.start()
    assert refreshing.wait(5)
    reporter.stop()
    time.sleep(0.1)
    assert not report_path(tmp_path, "gpu@box").exists()


@pytest.mark.slow
def test_probe_reads_the_engines_weights_status(tmp_path: Path) -> None:
    settings = dataclasses.replace(WorkerSettings(data_dir=tmp_path), backbone_weights="imagenet")
    status = probe_weights(settings)
    assert set(status) >= {"alexnet", "mobilenet_v2", "efficientnet_lite0"}
    assert all(v.startswith(("available", "missing")) for v in status.values())
