"""Tables of ``bench.speed``: every number comes from the measurements in ``results``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.common import Report, md_table

CACHE = "feature cache (engine default)"
NO_CACHE = "no cache (DifferNet procedure)"


def _f(value: float | None, digits: int = 2) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _phase(run: dict[str, Any], name: str) -> float:
    span = run.get("phases", {}).get(name)
    return float(span[1] - span[0]) if span else 0.0


def _auroc(run: dict[str, Any], views: int | str) -> float | None:
    entry = run.get("auroc", {}).get(str(views))
    return None if entry is None else 100.0 * entry["auroc"]


def training_section(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Both procedures side by side, the ratio and the AUROC difference."""
    runs = results.get("train", {})
    rows = []
    for name, run in runs.items():
        if "error" in run:
            rows.append([name, f"failed: {run['error']}", *["–"] * 9])
            continue
        steps = max(run["flow_steps"], 1)
        ci = run["auroc"][str(args.eval_views)]
        rows.append(
            [
                name,
                _f(run["train_s"], 1),
                _f(_phase(run, "features"), 1),
                _f(_phase(run, "training"), 1),
                run["flow_steps"],
                _f(_phase(run, "training") / steps, 2),
                _f(run["peak_rss_mb"], 0),
                _f(run.get("gpu_peak_mb"), 0),
                f"{100 * ci['auroc']:.2f} [{100 * ci['ci_low']:.1f}, {100 * ci['ci_high']:.1f}]",
                _f(_auroc(run, 4)),
                _f(run["final_loss"], 3),
            ]
        )
    headers = [
        "procedure",
        "train() wall s",
        "feature-cache phase s",
        "flow phase s",
        "flow updates",
        "s per update",
        "peak RSS MiB",
        "peak GPU MiB",
        f"AUROC % at {args.eval_views} views [95 % CI]",
        "AUROC % at 4 views",
        "final loss",
    ]
    text = md_table(headers, rows)
    cache, plain = runs.get(CACHE, {}), runs.get(NO_CACHE, {})
    if "train_s" in cache and "train_s" in plain:
        ratio = plain["train_s"] / cache["train_s"]
        gap = (_auroc(cache, args.eval_views) or 0.0) - (_auroc(plain, args.eval_views) or 0.0)
        text += (
            f"\n\nMeasured in this run: DifferNet's procedure took **{ratio:.2f}×** the wall time "
            f"of the feature cache; AUROC (cache − no cache) = {gap:+.2f} points. "
            "train() wall time includes decoding the images and scoring the calibration cells."
        )
        text += "\n\n" + projection(cache, plain, results, args)
    return text


def projection(
    cache: dict[str, Any], plain: dict[str, Any], results: dict[str, Any], args: argparse.Namespace
) -> str:
    """The paper's schedule on ELPV mono, computed from the unit costs measured above."""
    flow_step = _phase(cache, "training") / max(cache["flow_steps"], 1)
    plain_step = _phase(plain, "training") / max(plain["flow_steps"], 1)
    bank_views = max(cache["n_train"] * args.cache_views, 1)
    view_cost = _phase(cache, "features") / bank_views
    per_step_views = min(24, cache["n_train"]) * 4
    n, epochs, cached = args.project_images, args.project_epochs, args.project_cache_views
    steps = epochs * math.ceil(n / 24)
    rows = []
    costs = [(f"{args.train_size} px (measured view cost)", view_cost, plain_step)]
    score_runs = [r for r in results.get("score", {}).values() if "rows" in r]
    first = args.score_backbones[0].partition(":")[0] if args.score_backbones else None
    if score_runs and first == args.backbone:
        row = next((r for r in score_runs[0]["rows"] if r["views"] == max(args.views)), None)
        if row:
            view448 = row["extract_s_per_image"] / row["views"]
            costs.append(
                (
                    f"{args.score_size} px (extractor-alone view cost)",
                    view448,
                    per_step_views * view448 + flow_step,
                )
            )
    for label, view_s, plain_step_s in costs:
        with_cache = n * cached * view_s + steps * flow_step
        without = steps * plain_step_s
        rows.append(
            [
                label,
                _f(view_s * 1000, 1),
                _f(flow_step, 2),
                _f(without / 3600, 2),
                _f(without / epochs, 1),
                _f(with_cache / 3600, 2),
                _f(without / with_cache, 1),
            ]
        )
    headers = [
        "unit costs at",
        "ms per view",
        "s per flow update",
        "no cache: hours",
        "no cache: s per epoch",
        "cache: hours",
        "ratio",
    ]
    return (
        f"**Projection** (computed, not run): the paper's schedule on ELPV mono ({n} training "
        f"images, {epochs} epochs × {math.ceil(n / 24)} updates, cache {cached} views/image), "
        "from the unit costs measured above (view cost = feature-cache phase / cached views; "
        "flow update = flow phase / updates with the cache; no-cache update = measured, or "
        "96 views + one flow update at the larger size).\n\n" + md_table(headers, rows)
    )


def scoring_section(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Throughput and latency per backbone and view count."""
    rows = []
    for name, run in results.get("score", {}).items():
        if "error" in run:
            rows.append([name, f"failed: {run['error']}", *["–"] * 7])
            continue
        for row in run["rows"]:
            rows.append(
                [
                    name,
                    row["views"],
                    f"{_f(row['batched_images_per_s'], 3)} (n={row['n_batched']})",
                    _f(row["batched_s_per_image"]),
                    f"{_f(row['single_s_per_image'])} (n={row['n_single']})",
                    _f(row["extract_s_per_image"]),
                    f"{100 * row['outside_share']:.0f} %",
                    _f(row["single_s_per_image"] + run["explain_s_per_image"]),
                ]
            )
    headers = [
        "backbone",
        "views",
        "images/s, batched",
        "s/image, batched",
        "s/image, one at a time",
        "extractor alone s/image",
        "time outside the extractor",
        "s/image with heatmap",
    ]
    return (
        f"{args.score_size} px, variant {args.variant}. *Batched*: one `Detector.score` call on "
        "n images; *one at a time*: one call per image; both include decoding. *Extractor "
        "alone*: `model.extract` on the same, pre-rotated views; the share outside it is "
        "decoding, rotation and the flow. *With heatmap*: one at a time plus `Detector.explain` "
        "(Grad-CAM on the un-rotated view).\n\n" + md_table(headers, rows)
    )


def fast_section(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Fewest views vs the most: speed-up measured above, AUROC cost from the training eval."""
    fast, slow = min(args.views), max(args.views)
    rows = []
    cache_run = results.get("train", {}).get(CACHE, {})
    for name, run in results.get("score", {}).items():
        by_views = {r["views"]: r for r in run.get("rows", [])}
        if fast not in by_views or slow not in by_views:
            continue
        speedup = by_views[slow]["batched_s_per_image"] / by_views[fast]["batched_s_per_image"]
        reference = _auroc(cache_run, args.eval_views)
        quick = _auroc(cache_run, fast)
        cost = None if reference is None or quick is None else reference - quick
        rows.append(
            [
                f"{name}: {fast} views",
                f"{speedup:.1f}×",
                _f(by_views[fast]["batched_s_per_image"]),
                _f(quick),
                _f(reference),
                _f(cost),
            ]
        )
    headers = [
        "fast setting",
        f"speed-up vs {slow} views",
        "s/image",
        f"AUROC % at {fast} views",
        f"AUROC % at {args.eval_views} views",
        "AUROC cost, points",
    ]
    return (
        f"AUROC from the feature-cache model's evaluation above (the same model scored at "
        f"{fast} and {args.eval_views} views, every view scored once and subsets averaged).\n\n"
        + md_table(headers, rows)
    )


def checkpoint_section(results: dict[str, Any]) -> str:
    """Size on disk, load time and memory of a loaded detector (fresh process each)."""
    rows = [
        [
            name,
            _f(run["checkpoint_mb"], 0),
            _f(run["load_s"]),
            _f(run["loaded_rss_mb"], 0),
            _f(run["peak_rss_mb"], 0),
            _f(run.get("gpu_peak_mb"), 0),
        ]
        for name, run in results.get("score", {}).items()
        if "error" not in run
    ]
    headers = [
        "backbone",
        "checkpoint MiB",
        "load s",
        "RSS added by loading MiB",
        "peak RSS while scoring MiB",
        "peak GPU MiB",
    ]
    return md_table(headers, rows)


def targets_section(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The issue's targets next to what this run measured (context, not assertions)."""
    runs = results.get("train", {})
    cache, plain = runs.get(CACHE, {}), runs.get(NO_CACHE, {})
    ratio = (
        plain["train_s"] / cache["train_s"] if "train_s" in cache and "train_s" in plain else None
    )
    peak = max((r.get("peak_rss_mb", 0.0) for r in runs.values()), default=None)
    latencies = [
        f"{name}: {_f(row['single_s_per_image'])}"
        for name, run in results.get("score", {}).items()
        for row in run.get("rows", [])
        if row["views"] == 64
    ]
    rows = [
        ["training wall time, no cache / cache", "≥ 10×", _f(ratio, 2) + "× (this workload)"],
        ["peak RSS while training", "≤ 3 GB", f"{_f(peak, 0)} MiB"],
        [
            f"scoring, 64 views, {args.score_size} px, s/image (one at a time)",
            "≤ 3.6 s on 2 cores",
            "; ".join(latencies) or "–",
        ],
    ]
    return (
        "Original DifferNet code on ELPV mono (issue): 339 s per training epoch, 5.4 s per test "
        "image at 64 views, 6.6 GB.\n\n" + md_table(["target", "issue", "measured here"], rows)
    )


def threads_section(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Extractor milliseconds per view under each OpenMP setting (fresh process each)."""
    rows = []
    for label, run in results.get("threads", {}).items():
        round_number, _, setting = label.partition(": ")
        rows.append(
            [
                round_number,
                setting,
                _f(run.get("ms_per_view"), 1),
                run.get("threads", "–"),
                run.get("load", "–"),
                run.get("error", ""),
            ]
        )
    return (
        f"{args.backbone} extractor, {args.train_size} px, batches of 8 views, {args.variant}. "
        "On an oversubscribed machine OpenMP threads that spin while waiting for a descheduled "
        "partner waste their time slices; a passive wait policy avoids that. Rounds are "
        "interleaved so that each setting sees similar load.\n\n"
        + md_table(
            [
                "round",
                "setting",
                "ms per view",
                "torch threads",
                "load average (1/5/15 min)",
                "error",
            ],
            rows,
        )
    )


def add_sections(report: Report, results: dict[str, Any], args: argparse.Namespace) -> None:
    """Add or refresh every section that has data."""
    if "threads" in results:
        report.add("OpenMP threads on this machine", threads_section(results, args))
    if "train" in results:
        data = results.get("train_data", {})
        report.add(
            f"Training: feature cache vs DifferNet's procedure ({data.get('train', '?')} cells "
            f"given to train(), {data.get('eval', '?')} evaluation cells of which "
            f"{data.get('defect', '?')} defective)",
            training_section(results, args),
        )
    if "score" in results:
        report.add("Scoring speed", scoring_section(results, args))
        report.add("Fast setting", fast_section(results, args))
        report.add("Checkpoint, loading and memory", checkpoint_section(results))
    if "train" in results or "score" in results:
        report.add("Targets from the issue (context)", targets_section(results, args))
