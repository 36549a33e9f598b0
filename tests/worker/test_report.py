"""Worker reports for the dashboard: written, read back by the dashboard's service, removed."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
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


class _WatchedLock:
    """The reporter's file lock, with a hook run in the acquiring thread before it acquires."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.before_acquire: Callable[[], None] = lambda: None

    def __enter__(self) -> _WatchedLock:
        self.before_acquire()
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def _reporter_with_watched_lock(tmp_path: Path) -> tuple[WorkerReporter, _WatchedLock]:
    settings = WorkerSettings(data_dir=tmp_path, backbone_weights="random")
    # No timed refresh during the test: the only background write is the first one.
    reporter = WorkerReporter(settings, "gpu@box", ["gpu"], refresh_s=3600)
    lock = _WatchedLock()
    reporter._file_lock = lock  # type: ignore[assignment]
    return reporter, lock


def test_stop_during_a_refresh_write_removes_the_file_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interleaving: the refresh is writing when stop() begins; its write must not outlive stop."""
    reporter, lock = _reporter_with_watched_lock(tmp_path)
    writing = threading.Event()
    stop_went_as_far_as_it_could = threading.Event()
    stopper = threading.Thread(target=reporter.stop, name="stopper")
    original_write, original_remove = report_module.write_report, report_module.remove_report

    def refresh_write(*args: Any) -> Path:
        if threading.current_thread() is reporter._thread:
            writing.set()
            # Hold the write until stop() either waits for the file lock (as it should) or, if
            # it took no lock, has already removed the file; then write.
            assert stop_went_as_far_as_it_could.wait(5)
        return original_write(*args)

    def remove(*args: Any) -> None:
        original_remove(*args)
        stop_went_as_far_as_it_could.set()

    def before_acquire() -> None:
        if threading.current_thread() is stopper and lock.lock.locked():
            stop_went_as_far_as_it_could.set()

    monkeypatch.setattr(report_module, "write_report", refresh_write)
    monkeypatch.setattr(report_module, "remove_report", remove)
    lock.before_acquire = before_acquire
    reporter.start()
    assert report_path(tmp_path, "gpu@box").is_file()  # the first report, from start()
    assert writing.wait(5)  # the background refresh holds the lock, mid-write
    stopper.start()
    stopper.join(5)
    reporter._thread.join(5)
    assert not stopper.is_alive() and not reporter._thread.is_alive()
    assert not report_path(tmp_path, "gpu@box").exists()


def test_a_refresh_waiting_for_the_lock_while_stop_runs_is_skipped(tmp_path: Path) -> None:
    """Interleaving: the refresh passed its loop check, then stop() ran to the end; the refresh
    then gets the lock and must not write the file again."""
    reporter, lock = _reporter_with_watched_lock(tmp_path)
    at_lock, let_through = threading.Event(), threading.Event()

    def before_acquire() -> None:
        if threading.current_thread() is reporter._thread:
            at_lock.set()
            assert let_through.wait(5)

    lock.before_acquire = before_acquire
    reporter.start()
    assert report_path(tmp_path, "gpu@box").is_file()
    assert at_lock.wait(5)  # the refresh is about to take the lock and write
    reporter.stop()
    assert not report_path(tmp_path, "gpu@box").exists()
    let_through.set()
    reporter._thread.join(5)
    assert not reporter._thread.is_alive()
    assert not report_path(tmp_path, "gpu@box").exists()


@pytest.mark.slow
def test_probe_reads_the_engines_weights_status(tmp_path: Path) -> None:
    settings = dataclasses.replace(WorkerSettings(data_dir=tmp_path), backbone_weights="imagenet")
    status = probe_weights(settings)
    assert set(status) >= {"alexnet", "mobilenet_v2", "efficientnet_lite0"}
    assert all(v.startswith(("available", "missing")) for v in status.values())
