"""Measurements that need a fresh process (peak memory, load time); run by ``bench.speed``.

``python -m bench.speed_worker JOB.json`` reads a job, does it and prints one JSON line (the last
line of stdout). Jobs: ``train`` (train with or without the feature cache, then evaluate) and
``score`` (load a checkpoint, then time scoring, heatmaps and the extractor alone).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import current_rss_mb, peak_rss_mb, sync
from bench.runner import RunSpec
from bench.views import score_views, view_subsets
from engine.data.transforms import test_view_angles
from engine.device import autocast_for, resolve_batch_size
from engine.evaluation import auroc_with_ci
from engine.inputs import load_images
from engine.scoring import view_batch
from engine.training import TrainProgress, train

Job = dict[str, Any]


def _gpu_peak_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def train_job(job: Job) -> Job:
    """Train (engine defaults except what the job sets), record phase times, then evaluate."""
    spec = RunSpec(**job["spec"])
    config = spec.config(job["device"])
    phases: dict[str, list[float]] = {}
    steps = {"count": 0}

    def on_progress(report: TrainProgress) -> None:
        span = phases.setdefault(report.phase, [report.elapsed_s, report.elapsed_s])
        span[1] = report.elapsed_s
        if report.phase == "training":
            steps["count"] += 1

    result = train(config, job["train"], on_progress=on_progress)
    detector = result.detector
    device = detector.device
    train_peak = peak_rss_mb()
    gpu_peak = _gpu_peak_mb(device)
    images = load_images(job["eval"], spec.image_size).tensor
    started = time.monotonic()
    scored = score_views(detector.model, images, spec.test_views, device)
    eval_s = time.monotonic() - started
    labels = np.asarray(job["labels"])
    aurocs = {}
    for views in view_subsets(spec.test_views):
        found = auroc_with_ci(labels, scored.scores(views), n_bootstrap=job["bootstrap"])
        aurocs[str(views)] = {
            "auroc": found.auroc,
            "ci_low": found.ci_low,
            "ci_high": found.ci_high,
        }
    return {
        "train_s": result.elapsed_s,
        "phases": phases,
        "flow_steps": steps["count"],
        "used_feature_cache": result.used_feature_cache,
        "n_train": result.n_train,
        "peak_rss_mb": train_peak,
        "gpu_peak_mb": gpu_peak,
        "eval_s": eval_s,
        "auroc": aurocs,
        "final_loss": result.epoch_losses[-1],
    }


def _timed(device: torch.device, action: Any) -> float:
    sync(device)
    started = time.perf_counter()
    action()
    sync(device)
    return time.perf_counter() - started


def extractor_seconds(detector: Any, paths: list[str], views: int) -> float:
    """Seconds ``model.extract`` alone takes on the test views of ``paths`` (views prebuilt)."""
    model, device = detector.model, detector.device
    images = load_images(paths, detector.config.model.image_size).tensor
    index = torch.arange(len(paths)).repeat_interleave(views)
    degrees = test_view_angles(views).repeat(len(paths))
    size = resolve_batch_size(detector.config.score.batch_size, device)
    batches = [
        view_batch(model.config, images, index[s : s + size], degrees[s : s + size], device)
        for s in range(0, index.numel(), size)
    ]

    def run() -> None:
        with torch.inference_mode(), autocast_for(device):
            for batch in batches:
                model.extract(batch)

    return _timed(device, run)


def score_job(job: Job) -> Job:
    """Load a checkpoint (time, memory), then time scoring, heatmaps and the extractor alone."""
    from engine.detector import load_detector

    rss_before = current_rss_mb()
    started = time.perf_counter()
    detector = load_detector(job["checkpoint"], device=job["device"])
    sync(detector.device)
    load_s = time.perf_counter() - started
    loaded_mb = current_rss_mb() - rss_before
    device = detector.device
    paths: list[str] = job["images"]
    detector.score(paths[:1], views=4)  # warm-up (allocator, kernels)
    rows = []
    for views in job["views"]:
        n_batched = max(1, min(len(paths), job["view_budget"] // views))
        n_single = max(1, n_batched // 2)
        batched_s = _timed(device, lambda v=views, n=n_batched: detector.score(paths[:n], views=v))
        single_s = _timed(
            device, lambda v=views, n=n_single: [detector.score([p], views=v) for p in paths[:n]]
        )
        extract_s = extractor_seconds(detector, paths[:n_single], views)
        rows.append(
            {
                "views": views,
                "n_batched": n_batched,
                "batched_images_per_s": n_batched / batched_s,
                "batched_s_per_image": batched_s / n_batched,
                "n_single": n_single,
                "single_s_per_image": single_s / n_single,
                "extract_s_per_image": extract_s / n_single,
                "outside_share": 1.0 - (extract_s / n_single) / (single_s / n_single),
            }
        )
    n_explain = max(1, job["explain_images"])
    explain_s = _timed(device, lambda: [detector.explain(p) for p in paths[:n_explain]])
    return {
        "load_s": load_s,
        "loaded_rss_mb": loaded_mb,
        "rows": rows,
        "explain_s_per_image": explain_s / n_explain,
        "peak_rss_mb": peak_rss_mb(),
        "gpu_peak_mb": _gpu_peak_mb(device),
        "checkpoint_mb": Path(job["checkpoint"]).stat().st_size / 2**20,
    }


def views_job(job: Job) -> Job:
    """Milliseconds per extracted view (batch of 8) with this process's thread settings."""
    import os

    from bench.probe import _per_view
    from engine.models.attentdiffernet.torch_model import AttentDifferNetModel

    spec = RunSpec(**job["spec"])
    model = AttentDifferNetModel(spec.config("cpu").model).eval()
    model = model.to(memory_format=torch.channels_last)
    seconds = _per_view(model, spec.image_size, 8, torch.device("cpu"))
    return {
        "ms_per_view": 1000 * seconds,
        "threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }


JOBS = {"train": train_job, "score": score_job, "views": views_job}


def main(argv: list[str] | None = None) -> int:
    """Run the job file named on the command line; print the result as the last line."""
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text())
    torch.manual_seed(0)
    result = JOBS[job["kind"]](job)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
