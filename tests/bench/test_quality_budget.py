"""The quality-per-budget benchmark end to end on synthetic cells (numbers mean nothing here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import quality_budget
from bench.budget_tables import auroc, time_to_reach
from bench.budget_worker import BudgetJob, changed, run
from bench.drift import GAIN_RANGE, OFFSET_RANGE, drift_images

pytestmark = pytest.mark.slow
JOB = {"backbone": "mobilenet_v2", "weights": "random", "image_size": 64}


def test_drift_is_seeded_bounded_and_spans_its_ranges() -> None:
    images = torch.full((400, 3, 4, 4), 100, dtype=torch.uint8)
    first, second = drift_images(images, seed=3), drift_images(images, seed=3)
    assert torch.equal(first, second) and first.dtype == torch.uint8
    assert not torch.equal(first, drift_images(images, seed=4))
    means = first.float().mean(dim=(1, 2, 3))
    low = 100 * GAIN_RANGE[0] + 255 * OFFSET_RANGE[0]
    high = 100 * GAIN_RANGE[1] + 255 * OFFSET_RANGE[1]
    assert means.min() >= low - 1 and means.max() <= high + 1
    assert means.min() < low + 15 and means.max() > high - 15  # both ends are reached
    # Bright pixels clip at the sensor's top, as a real gain change would.
    bright = drift_images(torch.full((400, 1, 2, 2), 250, dtype=torch.uint8), seed=3)
    assert (bright == 255).any()


def test_time_to_reach_and_auroc() -> None:
    curve = [{"train_s": 1.0, "auroc": 0.6}, {"train_s": 5.0, "auroc": 0.9}]
    assert time_to_reach(curve, 0.8) == 5.0
    assert time_to_reach(curve, 0.95) is None
    assert auroc({"normal": [0.0, 1.0], "defect": [2.0, 1.0]}) == pytest.approx(0.875)


def test_default_run_records_curve_scores_drift_and_baselines(fake_elpv: Path) -> None:
    record = run(BudgetJob("default", "mono", 0, "none", **JOB), fake_elpv)
    counts = record["counts"]
    assert len(record["scores"]["normal"]) == counts["test_normal"]
    assert len(record["drift_scores"]["defect"]) == counts["test_defect"]
    curve = record["curve"]
    assert curve[0]["epoch"] == 0 and len(curve) == record["epochs_run"] + 1
    assert [p["train_s"] for p in curve] == sorted(p["train_s"] for p in curve)
    # The untrained flow on whitened features is the Gaussian on the same 8 views (up to the
    # calibration cells, which the baseline also fits on, and the training jitter).
    assert 0 <= record["selected_epoch"] <= record["epochs_run"]
    assert record["peak_rss_mb"] > 0 and record["checkpoint_mb"] > 0
    for name in ("gauss8", "gauss0", "patchcore"):
        for condition in ("clean", "drift"):
            scores = record["baselines"][f"{name}-{condition}"]
            assert len(scores["normal"]) == counts["test_normal"]
            assert np.isfinite(scores["normal"] + scores["defect"]).all()
    # The drifted cells are other cells to the model: scores move.
    assert record["drift_scores"] != record["scores"]
    # The default keeps a patch memory: the scores are the detector's, the flow's kept apart,
    # and every point of the curve is the detector's score had training stopped there.
    assert len(record["flow_scores"]["normal"]) == counts["test_normal"]
    assert record["flow_scores"] != record["scores"]
    kept = curve[record["selected_epoch"]]["auroc"]
    assert kept == pytest.approx(auroc(record["scores"]), abs=1e-9)


def test_differnet_run_stops_at_its_budget(fake_elpv: Path) -> None:
    record = run(BudgetJob("differnet", "mono", 0, "none", budget_s=5.0, **JOB), fake_elpv)
    assert record["curve"] and record["curve"][0]["epoch"] == 0
    assert "scores" not in record  # cut by its budget: only the curve counts


def test_main_runs_stores_and_reports(
    fake_elpv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run_job(job: BudgetJob, threads: int, data_dir: Path | None) -> dict:
        small = BudgetJob(**{**job.__dict__, **JOB})
        record = run(small, data_dir)
        record["key"], record["job"] = job.key, job.__dict__
        return record

    monkeypatch.setattr(quality_budget, "run_job", fake_run_job)
    store, out = tmp_path / "runs.jsonl", tmp_path / "quality.md"
    argv = ["--types", "mono", "--seeds", "0", "--variants", "none", "se", "--differnet-s", "4",
            "--switches", "model.intensity=none", "--switch-types", "mono",
            "--data-dir", str(fake_elpv), "--store", str(store), "--out", str(out)]  # fmt: skip
    assert quality_budget.main(argv) == 0
    assert len(store.read_text().splitlines()) == 4
    text = out.read_text()
    for heading in ("Targets", "Image AUROC", "Paired difference", "Training cost", "drifted",
                    "DifferNet's procedure", "against training time",
                    "reverted alone", "two terms alone"):  # fmt: skip
        assert heading in text
    assert "| `model.intensity=none` | mono s0 |" in text
    assert out.with_suffix(".png").is_file()
    # A second call finds every run stored and trains nothing.
    monkeypatch.setattr(quality_budget, "run_job", lambda *a: pytest.fail("ran again"))
    assert quality_budget.main(argv) == 0
    assert json.loads(store.read_text().splitlines()[0])["key"]


def test_a_switch_changes_one_setting_and_keeps_old_keys() -> None:
    job = BudgetJob("switch", "poly", 0, change="model.flow.zero_init=false")
    config = job.config()
    default = BudgetJob("default", "poly", 0).config()
    assert config.model.flow.zero_init is False and default.model.flow.zero_init is True
    assert config.replace(model=default.model) == default  # nothing else changed
    assert changed(default, "train.lr=0.5").train.lr == 0.5
    assert changed(default, "model.intensity=none").model.intensity == "none"
    assert "change" not in json.loads(BudgetJob("default", "poly", 0).key)
    assert json.loads(job.key)["change"] == "model.flow.zero_init=false"
    # A run of another default (another config) never stands in for this one.
    assert (
        json.loads(job.key)["config"] != json.loads(BudgetJob("default", "poly", 0).key)["config"]
    )
    assert "config" not in json.loads(BudgetJob("differnet", "poly", 0, budget_s=60).key)
    for bad in ("lr=1", "model.nothing=1", "train.lr"):
        with pytest.raises(ValueError):
            changed(default, bad)


def test_switches_run_on_the_first_seed_of_each_type_or_on_a_pinned_split() -> None:
    jobs = quality_budget.plan(
        ["mono", "poly"],
        [2, 0],
        ["none"],
        0.0,
        ["model.intensity=none", "poly:1:train.epoch_selection=planted"],
        ["mono", "poly"],
    )
    switches = {(j.cell_type, j.seed, j.change) for j in jobs if j.kind == "switch"}
    assert switches == {
        ("mono", 2, "model.intensity=none"),
        ("poly", 2, "model.intensity=none"),
        ("poly", 1, "train.epoch_selection=planted"),
    }
    planted = changed(BudgetJob("default", "poly", 0).config(), "train.epoch_selection=planted")
    assert planted.train.epoch_selection == "planted"
