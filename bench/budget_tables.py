"""Tables, targets and the plot of ``bench/quality_budget.py`` from its stored records."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import drift
from bench.common import Report, md_table, mean_std
from bench.paired import paired_delta

Record = dict[str, Any]
Scores = dict[str, list[float]]
BASELINES = {
    "gauss8": "Gaussian, the default's features (8 views)",
    "gauss0": "Gaussian, un-rotated view only",
    "patchcore": "PatchCore-style (stride 8/16 patches)",
}
REFERENCE = "gauss8"


def auroc(scores: Scores) -> float:
    """AUROC of defect against normal scores (ties count one half)."""
    normal = np.asarray(scores["normal"], dtype=float)
    defect = np.asarray(scores["defect"], dtype=float)
    greater = (defect[:, None] > normal[None, :]).mean()
    ties = (defect[:, None] == normal[None, :]).mean()
    return float(greater + 0.5 * ties)


def method_scores(records: Sequence[Record], condition: str = "clean") -> dict[tuple, Scores]:
    """Scores by (method, cell type, seed) for the default's variants and the baselines."""
    out: dict[tuple, Scores] = {}
    for record in records:
        job = record["job"]
        if job["kind"] != "default" or "scores" not in record:
            continue
        where = (job["cell_type"], job["seed"])
        out[(job["variant"], *where)] = record["scores" if condition == "clean" else "drift_scores"]
        for name in BASELINES:
            found = record.get("baselines", {}).get(f"{name}-{condition}")
            if found is not None:
                out[(name, *where)] = found
    return out


def _label(method: str) -> str:
    return BASELINES.get(method, f"default, variant {method}")


def _methods(scores: dict[tuple, Scores]) -> list[str]:
    order = ["none", "se", "cbam", *BASELINES]
    present = {key[0] for key in scores}
    return [m for m in order if m in present]


def auroc_table(scores: dict[tuple, Scores], types: Sequence[str], seeds: Sequence[int]) -> str:
    """AUROC % per type and seed, mean ± std per type, and the mean over types."""
    headers = ["method"] + [f"{t} s{s}" for t in types for s in seeds]
    headers += [f"{t} mean" for t in types] + ["mean"]
    rows = []
    for method in _methods(scores):
        cells: list[str] = []
        means = []
        for cell_type in types:
            values = [
                auroc(scores[(method, cell_type, s)])
                for s in seeds
                if (method, cell_type, s) in scores
            ]
            cells += [
                f"{100 * auroc(scores[(method, cell_type, s)]):.2f}"
                if (method, cell_type, s) in scores
                else "–"
                for s in seeds
            ]
            means.append(values)
        cells += [mean_std(values) for values in means]
        flat = [np.mean(v) for v in means if v]
        cells.append(f"{100 * np.mean(flat):.2f}" if len(flat) == len(types) else "–")
        rows.append([_label(method), *cells])
    return md_table(headers, rows)


def _pair(a: Scores, b: Scores) -> tuple[Record, Record]:
    return {"scores": a}, {"scores": b}


def paired_table(
    scores: dict[tuple, Scores],
    types: Sequence[str],
    seeds: Sequence[int],
    reference: str = REFERENCE,
    other: dict[tuple, Scores] | None = None,
) -> str:
    """Δ AUROC (points) of each method against ``reference`` (or against itself in ``other``),
    per type and seed and pooled, with paired bootstrap 95 % intervals."""
    headers = (
        ["method"] + [f"{t} s{s}" for t in types for s in seeds] + [f"{t} pooled" for t in types]
    )
    rows = []
    for method in _methods(scores):
        if other is None and method == reference:
            continue
        cells = []
        pooled: dict[str, list[tuple[Record, Record]]] = {t: [] for t in types}
        for cell_type in types:
            for seed in seeds:
                mine = scores.get((method, cell_type, seed))
                base = (other or scores).get((method if other else reference, cell_type, seed))
                if mine is None or base is None:
                    cells.append("–")
                    continue
                pair = _pair(mine, base)
                pooled[cell_type].append(pair)
                cells.append(_delta_cell(paired_delta([pair])))
        cells += [_delta_cell(paired_delta(pooled[t])) for t in types]
        rows.append([_label(method), *cells])
    return md_table(headers, rows)


def _delta_cell(found: tuple[float, float, float] | None) -> str:
    return "–" if found is None else f"{found[0]:+.2f} [{found[1]:+.1f}, {found[2]:+.1f}]"


def cost_table(records: Sequence[Record], types: Sequence[str]) -> str:
    """Training wall time, peak RSS, checkpoint size and the epoch kept, per variant and type."""
    rows = []
    variants = sorted(
        {r["job"]["variant"] for r in records if r["job"]["kind"] == "default"},
        key=["none", "se", "cbam"].index,
    )
    for variant in variants:
        for cell_type in types:
            runs = [
                r
                for r in records
                if r["job"]["kind"] == "default"
                and r["job"]["variant"] == variant
                and r["job"]["cell_type"] == cell_type
                and "scores" in r
            ]
            if not runs:
                continue
            minutes = [r["train_s"] / 60 for r in runs]
            rows.append(
                [
                    variant,
                    cell_type,
                    f"{np.mean(minutes):.1f} (max {max(minutes):.1f})",
                    f"{max(r['peak_rss_mb'] for r in runs) / 1024:.2f}",
                    f"{np.mean([r['checkpoint_mb'] for r in runs]):.0f}",
                    ", ".join(str(r["selected_epoch"]) for r in runs),
                    ", ".join(str(r["epochs_run"]) for r in runs),
                ]
            )
    headers = [
        "variant",
        "type",
        "training min, mean (max)",
        "peak RSS GiB (max)",
        "checkpoint MiB",
        "epoch kept, per seed",
        "epochs run",
    ]
    return md_table(headers, rows)


def switch_table(records: Sequence[Record]) -> str:
    """AUROC with one default reverted, against the default on the same cells (paired)."""
    defaults = {
        (r["job"]["cell_type"], r["job"]["seed"]): r
        for r in records
        if r["job"]["kind"] == "default" and r["job"]["variant"] == "none" and "scores" in r
    }
    rows = []
    for record in records:
        job = record["job"]
        if job["kind"] != "switch" or "scores" not in record:
            continue
        base = defaults.get((job["cell_type"], job["seed"]))
        delta = paired_delta([_pair(record["scores"], base["scores"])]) if base else None
        drift_delta = (
            paired_delta([_pair(record["drift_scores"], base["drift_scores"])]) if base else None
        )
        rows.append(
            [
                f"`{job['change']}`",
                f"{job['cell_type']} s{job['seed']}",
                f"{100 * auroc(record['scores']):.2f}",
                f"{100 * auroc(base['scores']):.2f}" if base else "–",
                _delta_cell(delta),
                _delta_cell(drift_delta),
                f"{record['train_s'] / 60:.1f}",
            ]
        )
    headers = [
        "reverted setting",
        "split",
        "AUROC %",
        "default's AUROC %",
        "Δ vs default, points",
        "Δ on drifted cells",
        "training min",
    ]
    return md_table(headers, rows)


def terms_table(records: Sequence[Record]) -> str:
    """Each term of the default alone against the detector's score (variant none, paired):
    what the patch term adds to the flow, on the same model and cells."""
    rows = []
    for record in records:
        job = record["job"]
        if job["kind"] != "default" or job["variant"] != "none" or "patch_terms" not in record:
            continue
        both, flow, patch = record["scores"], record["flow_scores"], record["patch_terms"]
        rows.append(
            [
                f"{job['cell_type']} s{job['seed']}",
                f"{100 * auroc(flow):.2f}",
                f"{100 * auroc(patch):.2f}",
                f"{100 * auroc(both):.2f}",
                _delta_cell(paired_delta([_pair(both, flow)])),
                _delta_cell(paired_delta([_pair(both, patch)])),
            ]
        )
    rows.sort()
    headers = [
        "split",
        "flow alone %",
        "patch term alone %",
        "detector (both) %",
        "Δ detector − flow alone, points",
        "Δ detector − patch term alone",
    ]
    return md_table(headers, rows)


def time_to_reach(curve: Sequence[dict[str, float]], target: float) -> float | None:
    """Training seconds until the curve first reaches ``target`` AUROC (None: never)."""
    for point in curve:
        if point["auroc"] >= target:
            return float(point["train_s"])
    return None


def differnet_table(records: Sequence[Record]) -> tuple[str, list[str]]:
    """The default against DifferNet's procedure on the same split: time to the same AUROC."""
    rows, notes = [], []
    for slow in (r for r in records if r["job"]["kind"] == "differnet"):
        job = slow["job"]
        fast = next(
            (
                r
                for r in records
                if r["job"]["kind"] == "default"
                and r["job"]["variant"] == job["variant"]
                and (r["job"]["cell_type"], r["job"]["seed"]) == (job["cell_type"], job["seed"])
            ),
            None,
        )
        if fast is None:
            continue
        target = auroc(fast["scores"])
        fast_s = time_to_reach(fast["curve"], target - 1e-9) or fast["train_s"]
        slow_s = time_to_reach(slow["curve"], target)
        best = max((p["auroc"] for p in slow["curve"]), default=float("nan"))
        ran = slow["train_s"]
        if slow_s is None:
            ratio = f"> {ran / fast_s:.1f}× (not reached in {ran / 60:.0f} min)"
        else:
            ratio = f"{slow_s / fast_s:.1f}×"
        rows.append(
            [
                f"{job['cell_type']} seed {job['seed']}, variant {job['variant']}",
                f"{100 * target:.2f}",
                f"{fast_s / 60:.1f}",
                "–" if slow_s is None else f"{slow_s / 60:.1f}",
                f"{100 * best:.2f} after {ran / 60:.0f} min, {len(slow['curve']) - 1} epochs",
                ratio,
            ]
        )
        notes.append(
            f"DifferNet's procedure: {job['differnet_views']} test rotations for its curve "
            f"(the paper's 64 would cost 8× the evaluation time, none of it counted as "
            f"training), training stopped after {job['budget_s'] / 60:.0f} min"
        )
    headers = [
        "split",
        "default's AUROC %",
        "default: min to reach it",
        "DifferNet's procedure: min to reach it",
        "DifferNet's procedure: best AUROC %",
        "speed-up",
    ]
    return md_table(headers, rows), notes


def targets(records: Sequence[Record], types: Sequence[str], seeds: Sequence[int]) -> str:
    """Each target of the issue, measured: met or not, with the number."""
    clean = method_scores(records)
    drifted = method_scores(records, "drift")
    lines = []
    variants = [m for m in _methods(clean) if m not in BASELINES]
    worst = None
    for method in variants:
        for cell_type in types:
            for seed in seeds:
                mine, base = (
                    clean.get((method, cell_type, seed)),
                    clean.get((REFERENCE, cell_type, seed)),
                )
                if mine is None or base is None:
                    continue
                found = paired_delta([_pair(mine, base)])
                if found is not None and (worst is None or found[1] < worst[0][1]):
                    worst = (found, method, cell_type, seed)
    if worst:
        (delta, low, high), method, cell_type, seed = worst
        verdict = "met" if low >= -0.5 and delta >= 0 else "not met"
        lines.append(
            f"- never worse than the Gaussian: {verdict}; the lowest paired interval is "
            f"{method} on {cell_type} seed {seed}: {delta:+.2f} [{low:+.1f}, {high:+.1f}] points"
        )
    means = {
        method: np.mean([auroc(clean[(method, t, s)]) for t in types for s in seeds])
        for method in variants
        if all((method, t, s) in clean for t in types for s in seeds)
    }
    if means:
        best = max(means, key=lambda m: means[m])
        patch = [
            auroc(clean[("patchcore", t, s)])
            for t in types
            for s in seeds
            if ("patchcore", t, s) in clean
        ]
        verdict = "met" if means[best] >= 0.93 else "not met"
        lines.append(
            f"- best variant ≥ 93.0 mean over types and seeds: {verdict} ({best}: "
            f"{100 * means[best]:.2f}; PatchCore-style on the same cells: "
            f"{100 * np.mean(patch) if patch else float('nan'):.2f})"
        )
    costs = []
    for method in variants:
        pairs = [(drifted[k], clean[k]) for k in clean if k[0] == method and k in drifted]
        if pairs:
            costs.append((np.mean([auroc(b) - auroc(a) for a, b in pairs]), method))
    if costs:
        cost, method = max(costs)
        verdict = "met" if cost <= 0.02 else "not met"
        lines.append(
            f"- drift costs at most 2 points: {verdict} (largest mean cost: {method}, "
            f"{100 * cost:.2f} points)"
        )
    runs = [r for r in records if r["job"]["kind"] == "default" and "peak_rss_mb" in r]
    if runs:
        peak = max(r["peak_rss_mb"] for r in runs) / 1024
        longest = max(r["train_s"] for r in runs) / 60
        checkpoint = max(r.get("checkpoint_mb", 0.0) for r in runs)
        rss = "met" if peak <= 3e9 / 2**30 else "not met"
        lines.append(f"- peak RSS while training ≤ 3 GB: {rss} ({peak:.2f} GiB)")
        budget = "met" if longest <= 15 else "not met"
        lines.append(
            f"- about 15 minutes of training per model or less: {budget} "
            f"(longest {longest:.1f} min)"
        )
        lines.append(f"- checkpoints well under 700 MiB: {checkpoint:.0f} MiB")
    return "\n".join(lines)


def plot_curves(records: Sequence[Record], path: Path) -> Path:
    """AUROC against training minutes: every default run of the first seed, DifferNet's run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = sorted({r["job"]["cell_type"] for r in records})
    first_seed = min(r["job"]["seed"] for r in records)
    fig, axes = plt.subplots(1, len(types), figsize=(6.5 * len(types), 4.2), squeeze=False)
    colours = {"none": "C0", "se": "C1", "cbam": "C2"}
    for ax, cell_type in zip(axes[0], types, strict=True):
        long_run = False
        for record in records:
            job = record["job"]
            if (
                job["cell_type"] != cell_type
                or job["seed"] != first_seed
                or not record.get("curve")
            ):
                continue
            minutes = [p["train_s"] / 60 for p in record["curve"]]
            values = [100 * p["auroc"] for p in record["curve"]]
            name = (
                f"default, {job['variant']}"
                if job["kind"] == "default"
                else f"DifferNet's procedure, {job['variant']}"
            )
            style = "-o" if job["kind"] == "default" else "--s"
            colour = colours.get(job["variant"]) if job["kind"] == "default" else "C3"
            long_run = long_run or job["kind"] != "default"
            ax.plot(minutes, values, style, color=colour, markersize=3, label=name)
            if job["kind"] == "default" and "baselines" in record:
                for key, colour in (("gauss8", "grey"), ("patchcore", "black")):
                    value = 100 * auroc(record["baselines"][f"{key}-clean"])
                    ax.axhline(
                        value, color=colour, linewidth=0.8, linestyle=":", label=BASELINES[key]
                    )
        if long_run:  # DifferNet's hour beside minutes: a log axis keeps both readable
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("training time, minutes (2 CPU cores shared by two runs)")
        ax.set_ylabel("image AUROC, %")
        ax.set_title(f"ELPV {cell_type}, split seed {first_seed}")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(records: Sequence[Record], args: argparse.Namespace, *, complete: bool) -> Path:
    """The Markdown report (and its PNG) from the stored records."""
    types, seeds = list(args.types), list(args.seeds)
    report = Report(
        "ELPV detection quality per CPU-minute: the default detector against the baselines",
        None,
        {
            "types": " ".join(types),
            "seeds": " ".join(map(str, seeds)),
            "variants": " ".join(args.variants),
            "detector": "adn train defaults (fast preset, mobilenet_v2, ImageNet weights)",
            "split": "full split (spec §5), 10 % of the training cells held out for calibration",
        },
        status="complete" if complete else "INCOMPLETE (some runs are missing; rerun to finish)",
    )
    counts = next((r["counts"] for r in records if "counts" in r), None)
    if counts:
        report.notes.append(f"cells of the first split: {counts}")
    report.notes.append(f"drift test: {drift.describe()}")
    if args.report_only:
        report.notes.append(
            "rebuilt from the stored runs without running any (--report-only): the machine and "
            "load above are where the report was written; every time in it was measured when its "
            "run ran (2-core machines, see the git history of the runs file)"
        )
    report.notes.append(
        "the baselines fit on every training cell of the split (the default holds 10 % of them "
        "out for calibration and epoch choice); all methods see the same input pipeline "
        "(per-image intensity normalisation)"
    )
    clean, drifted = method_scores(records), method_scores(records, "drift")
    report.add("Targets", targets(records, types, seeds))
    report.add("Image AUROC (%)", auroc_table(clean, types, seeds))
    report.add(
        "Paired difference to the Gaussian on the default's features (points, 95 % interval)",
        paired_table(clean, types, seeds),
    )
    report.add("Training cost", cost_table(records, types))
    report.add("Image AUROC (%) on drifted test cells", auroc_table(drifted, types, seeds))
    report.add(
        "Cost of the drift: drifted minus clean, same model and cells (points, 95 % interval)",
        paired_table(drifted, types, seeds, other=clean),
    )
    report.add(
        "The detector's two terms alone (variant none; same model and cells, paired)",
        terms_table(records),
    )
    report.add(
        "Each default reverted alone (variant none; paired against the default)",
        switch_table(records),
    )
    table, notes = differnet_table(records)
    report.add("Time to the same AUROC: the default against DifferNet's procedure", table)
    report.notes += notes
    plot = plot_curves(records, args.out.with_suffix(".png"))
    report.add("AUROC against training time", f"![curves]({plot.name})")
    return report.write(args.out)
