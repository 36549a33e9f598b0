"""Run-time estimates and the automatic epoch count from probe numbers."""

from __future__ import annotations

from dataclasses import asdict

from bench.probe import auto_epochs, estimate_seconds
from bench.runner import RunSpec

PROBE = {
    "spec": asdict(RunSpec("mono", 0, variant="se")),
    "build_s": 2.0,
    "view_s": 0.0005,
    "view_half_size_s": 0.0002,
    "alexnet_view_s": 0.0003,
    "flow_update_s": 0.006,
}


def test_estimates_grow_with_epochs_and_trained_attention() -> None:
    spec = RunSpec("mono", 0, variant="se", epochs=48)
    base = estimate_seconds(spec, PROBE, 412, 489, 173, baselines=False)
    assert base < estimate_seconds(spec.replace(epochs=96), PROBE, 412, 489, 173, False)
    assert base < estimate_seconds(spec, PROBE, 412, 489, 173, baselines=True)
    assert base < estimate_seconds(spec.replace(train_attention=True), PROBE, 412, 489, 173, False)
    assert estimate_seconds(spec.replace(image_size=224), PROBE, 412, 489, 173, False) < base


def test_auto_epochs_is_a_bounded_multiple_of_four() -> None:
    assert auto_epochs(PROBE, 9, 57.0, 412) == 64  # 57 s / 9 runs / (16 updates × 6 ms) = 66
    assert auto_epochs(PROBE, 9, 1.0, 412) == 16
    assert auto_epochs(PROBE, 9, 10_000.0, 412) == 192
