"""ELPV quality (engine spec §5): one model per cell type, seeded splits, AUROC and mild defects.

For every seed, cell type, backbone and variant it trains a detector on the split's normal
training cells (the engine holds 10 % of them out to calibrate the threshold), scores the held-out
normal and the defective (p = 1) cells at every test view, and reports AUROC (with bootstrap CI)
as mean ± std over seeds. Mild cells (p = 1/3, 2/3) are kept out of the AUROC and reported as score
distributions against the calibrated threshold. Baselines (``bench.baselines``) run on the same
split and features. The table is rewritten after every run, so a cut-short run still leaves one.

Example (reduced CPU scale)::

    python -m bench.elpv_quality --types mono --seeds 0 --image-size 224 --epochs 8 \\
        --test-views 8 --max-train 48 --max-test-normal 32 --max-test-defect 32
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.baselines import ALL_BASELINES
from bench.common import SHARED_MACHINE_NOTE, Deadline, Report, log
from bench.elpv_data import SplitImages, payload_note, shared_cache
from bench.options import (
    add_baseline_options,
    add_common_options,
    base_spec,
    baseline_request,
    common_settings,
    load_probe,
    store_path,
    subset_limits,
    too_long,
)
from bench.paired import variant_delta_table
from bench.plots import plot_mild
from bench.runner import Record, RunSpec, RunStore, run_or_reuse
from bench.tables import (
    auroc_at,
    auroc_summary,
    baseline_run_table,
    collect,
    mild_table,
    per_run_table,
)
from engine.device import select_device
from engine.errors import EngineError

DEFAULT_OUT = Path("bench/results/elpv-quality.md")


def parse_backbones(
    items: Sequence[str], variants: Sequence[str]
) -> list[tuple[str, str, tuple[str, ...]]]:
    """``name:weights[:variant,variant]`` triples (weights default to imagenet, variants to
    ``variants``)."""
    triples = []
    for item in items:
        name, _, rest = item.partition(":")
        weights, _, chosen = rest.partition(":")
        own = tuple(v for v in chosen.split(",") if v) or tuple(variants)
        triples.append((name, weights or "imagenet", own))
    return triples


def build_parser() -> argparse.ArgumentParser:
    """Options of this script."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.elpv_quality",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_common_options(parser, default_out=DEFAULT_OUT)
    parser.add_argument("--variants", nargs="+", default=["none", "se", "cbam"])
    parser.add_argument(
        "--backbones",
        nargs="+",
        default=["mobilenet_v2:imagenet", "alexnet:random"],
        help="name:weights[:variants] (overrides --backbone/--weights; variants comma-separated, "
        "default --variants); alexnet:random shows what ImageNet pretraining is worth",
    )
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True)
    add_baseline_options(parser, default=list(ALL_BASELINES))
    return parser


def plan(args: argparse.Namespace) -> list[RunSpec]:
    """Runs in priority order: backbone by backbone, then seed by seed, so that a cut-short run
    has whole seeds of the first backbone (the pretrained one) first."""
    specs = []
    for name, weights, variants in parse_backbones(args.backbones, args.variants):
        for seed in args.seeds:
            for cell_type in args.types:
                base = base_spec(args, cell_type, seed).replace(backbone=name, weights=weights)
                specs += [base.replace(variant=v) for v in variants]
    return specs


def write_report(
    args: argparse.Namespace,
    records: list[Record],
    planned: int,
    device: torch.device,
    status: str,
) -> Path:
    """Rewrite the Markdown table (and plot) from the records so far."""
    settings = common_settings(args)
    settings |= {
        "variants": " ".join(args.variants),
        "backbones": " ".join(args.backbones),
        "baselines": " ".join(args.baselines) or "none",
        "baseline features": " ".join(args.baseline_variants),
        "baseline train views": args.baseline_train_views or args.test_views,
        "patchcore": f"{args.coreset} coreset {args.coreset_ratio:g} (<= {args.coreset_max})",
        "budget_s": args.budget_s,
    }
    report = Report("ELPV image AUROC (engine spec §5 protocol)", device, settings, status=status)
    report.notes.append(SHARED_MACHINE_NOTE)
    report.notes.append(
        "AUROC: normal = defect probability 0, anomalous = 1; mean ± sample std over seeds; "
        "CI = 95 % stratified bootstrap; the model after the last epoch is evaluated"
    )
    note = payload_note(args.data_dir)
    if note:
        report.notes.append(f"data: {note}")
    types = [
        t for t in args.types if any(r["spec"]["cell_type"] == t for r in records)
    ] or args.types
    views = args.test_views
    engine_values = collect(records, lambda r: r["label"], lambda r: auroc_at(r, views))
    baseline_values = collect(
        (
            {**r, "label": f"{name} (baseline; {r['label']} features)", "value": e["auroc"]}
            for r in records
            for name, e in r.get("baselines", {}).items()
        ),
        lambda r: r["label"],
        lambda r: r["value"],
    )
    report.add(
        f"Image AUROC (%) at {views} test views, mean ± std over seeds ({len(records)} of "
        f"{planned} runs done)",
        auroc_summary(engine_values | baseline_values, types),
    )
    if any(r["spec"]["variant"] == "none" for r in records):
        report.add(
            "Attention against none (paired)",
            "Δ AUROC in points, mean over seeds, with a 95 % paired stratified bootstrap "
            "interval (the same test cells resampled for both runs, seeds pooled); an interval "
            "that holds 0 means this data cannot tell the variant from none.\n\n"
            + variant_delta_table(records, types),
        )
    report.add("Every run", per_run_table(records))
    if any("baselines" in r for r in records):
        report.add("Baselines, every run", baseline_run_table(records))
    report.add(
        "Mild defects (p = 1/3, 2/3; excluded from the AUROC)",
        "Each cell: median (interquartile range) of the image scores; share above the "
        "calibrated threshold (99th percentile of the held-out training normals); count. "
        "Values are averaged over seeds. The last column ranks mild cells against the normal "
        "test cells (AUROC, not part of the protocol's AUROC).\n\n" + mild_table(records),
    )
    if args.plot and records:
        png = plot_mild(records, args.out.with_suffix(".png"))
        report.add("Plot", f"![score distributions]({png.name})")
    return report.write(args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the protocol and write the table."""
    args = build_parser().parse_args(argv)
    deadline = Deadline(args.budget_s)
    store = RunStore(store_path(args))
    cache = shared_cache(args.data_dir)
    limits = subset_limits(args)
    device = select_device(args.device)
    specs = plan(args)
    splits: dict[tuple[str, int, int], SplitImages] = {}
    records: list[Record] = []
    status = "complete"
    probe, request, skipped = load_probe(args), baseline_request(args), []
    failures: list[str] = []
    for index, spec in enumerate(specs):
        if deadline.expired():
            status = f"CUT SHORT by --budget-s {args.budget_s:g}: {index} of {len(specs)} runs done"
            log(status)
            break
        key = (spec.cell_type, spec.seed, spec.image_size)
        if key not in splits:
            splits = {k: v for k, v in splits.items() if k[:2] == key[:2]}
            splits[key] = cache.get(spec.cell_type, spec.image_size).split(spec.seed, limits)
        wanted = request.wanted(spec)
        reason = (
            None
            if store.get(spec)
            else too_long(args, probe, spec, splits[key], deadline.left(), wanted)
        )
        if reason:
            skipped.append(reason)
            status = f"CUT SHORT by --budget-s {args.budget_s:g}: skipped " + "; ".join(skipped)
            log(f"skipping {reason}")
            continue
        try:
            records.append(
                run_or_reuse(
                    spec,
                    splits[key],
                    store,
                    device=args.device,
                    baselines=request,
                    n_bootstrap=args.bootstrap,
                )
            )
        except EngineError as exc:  # e.g. a feature collapse: report it, go on with the rest
            failures.append(f"{spec.cell_type} seed {spec.seed} {spec.label}: {exc}")
            log(f"FAILED {failures[-1]}")
        write_report(
            args, records, len(specs), device, "running" if index + 1 < len(specs) else status
        )
    if failures:
        status += "; FAILED runs: " + "; ".join(failures)
    path = write_report(args, records, len(specs), device, status)
    log(f"table written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
