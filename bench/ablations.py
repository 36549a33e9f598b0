"""Ablations on ELPV: each open switch of the method against its default, same splits and seeds.

Groups (``--groups``):

- ``train-attention``: attention blocks kept at initialisation (default) vs trained with the flow
  (convolutions frozen; the feature cache is then off and the collapse guard watches);
- ``position``: attention before (default) vs after AlexNet's max-pools. Only AlexNet has pools,
  so this group runs on AlexNet with RANDOM weights (no ImageNet AlexNet file offline);
- ``se-ratio``: SE reduction 2 (default) vs 16;
- ``cbam-kernel``: CBAM spatial kernel 7 (default) vs 49;
- ``cbam-residual``: CBAM output ``x + gated(x)`` (default) vs ``gated(x)``;
- ``views``: 64 vs 16 vs 8 vs 4 test views, the same trained models scored each way (no new run);
- ``epochs``: the run's epoch count against a quarter of it and four times it (at most 192): how
  far the flow is from converged at this schedule;
- ``image-size``: the run's size against 448 px (or, at 448, against 224 px);
- ``standardize``: the flow's input standardised with the training statistics (default) vs raw
  pooled features (the paper);
- ``flow-width``: the paper's flow (subnets 2048 wide, about 170 M parameters) vs a compact one
  (512 wide, about 18 M), which makes a flow update several times cheaper on a CPU;
- ``cache-views``: the run's cached rotations per training image against four times as many (at
  most 64): how much the flow gains from more distinct training samples.

Runs are shared with ``bench.elpv_quality`` through ``--store``. Table: setting → AUROC per cell
type (mean ± std over seeds) and the difference to the group's default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import SHARED_MACHINE_NOTE, Deadline, Report, log, md_table, mean_std
from bench.elpv_data import SplitImages, payload_note, shared_cache
from bench.options import (
    add_common_options,
    base_spec,
    common_settings,
    load_probe,
    store_path,
    subset_limits,
    too_long,
)
from bench.paired import paired_delta
from bench.runner import Record, RunSpec, RunStore, run_or_reuse
from bench.tables import auroc_at
from bench.views import view_subsets
from engine.device import select_device
from engine.errors import EngineError

DEFAULT_OUT = Path("bench/results/ablations.md")
GROUPS = (
    "views",
    "epochs",
    "train-attention",
    "image-size",
    "se-ratio",
    "cbam-kernel",
    "cbam-residual",
    "position",
    "standardize",
    "flow-width",
    "cache-views",
)


@dataclass(frozen=True)
class Row:
    """One table row: a setting of a group, the spec it trains and how to read its AUROC."""

    group: str
    setting: str
    spec: RunSpec
    default: bool
    views: int | None = None  # score the spec's runs at this many views (None: all)


def group_rows(
    group: str, base: RunSpec, variants: Sequence[str], size_variants: Sequence[str]
) -> list[Row]:
    """The rows of ``group`` for one (cell type, seed) base spec."""
    rows: list[Row] = []
    if group == "views":
        for variant in variants:
            spec = base.replace(variant=variant)
            for views in view_subsets(base.test_views):
                if views in (64, 16, 8, 4) or views == base.test_views:
                    rows.append(
                        Row(
                            group,
                            f"{variant}: {views} views",
                            spec,
                            views == base.test_views,
                            views,
                        )
                    )
    elif group == "epochs":
        for variant in size_variants:
            spec = base.replace(variant=variant)
            counts = sorted({max(1, base.epochs // 4), base.epochs, min(192, 4 * base.epochs)})
            for epochs in counts:
                rows.append(
                    Row(group, f"{variant}: {epochs} epochs", spec.replace(epochs=epochs),
                        epochs == base.epochs)
                )  # fmt: skip
    elif group == "train-attention":
        for variant in ("se", "cbam"):
            spec = base.replace(variant=variant)
            rows.append(Row(group, f"{variant}: kept at init", spec, True))
            rows.append(
                Row(group, f"{variant}: trained", spec.replace(train_attention=True), False)
            )
    elif group == "image-size":
        for variant in size_variants:
            spec = base.replace(variant=variant)
            rows.append(Row(group, f"{variant}: {base.image_size} px", spec, True))
            size = 448 if base.image_size < 448 else base.image_size // 2
            other = spec.replace(image_size=size)
            rows.append(Row(group, f"{variant}: {size} px", other, False))
    elif group == "se-ratio":
        spec = base.replace(variant="se")
        rows.append(Row(group, "se: r = 2", spec.replace(se_reduction=2), True))
        rows.append(Row(group, "se: r = 16", spec.replace(se_reduction=16), False))
    elif group == "cbam-kernel":
        spec = base.replace(variant="cbam")
        rows.append(Row(group, "cbam: kernel 7", spec.replace(cbam_kernel=7), True))
        rows.append(Row(group, "cbam: kernel 49", spec.replace(cbam_kernel=49), False))
    elif group == "cbam-residual":
        spec = base.replace(variant="cbam")
        rows.append(Row(group, "cbam: residual", spec.replace(cbam_residual=True), True))
        rows.append(Row(group, "cbam: no residual", spec.replace(cbam_residual=False), False))
    elif group == "position":
        alexnet = base.replace(backbone="alexnet", weights="random")
        for variant in ("se", "cbam"):
            spec = alexnet.replace(variant=variant)
            rows.append(Row(group, f"alexnet(random) {variant}: pre-pool", spec, True))
            post = spec.replace(position="post_pool")
            rows.append(Row(group, f"alexnet(random) {variant}: post-pool", post, False))
    elif group == "standardize":
        for variant in size_variants:
            spec = base.replace(variant=variant)
            rows.append(Row(group, f"{variant}: standardised input", spec, True))
            raw = spec.replace(standardize=False)
            rows.append(Row(group, f"{variant}: raw features (paper)", raw, False))
    elif group == "flow-width":
        for variant in size_variants:
            spec = base.replace(variant=variant)
            rows.append(Row(group, f"{variant}: {spec.flow} flow", spec, True))
            width = "paper" if spec.flow == "compact" else "compact"
            rows.append(Row(group, f"{variant}: {width} flow", spec.replace(flow=width), False))
    elif group == "cache-views":
        for variant in size_variants:
            spec = base.replace(variant=variant)
            rows.append(Row(group, f"{variant}: {spec.cache_views} cached views", spec, True))
            more = spec.replace(cache_views=min(64, 4 * spec.cache_views))
            if more != spec:
                rows.append(Row(group, f"{variant}: {more.cache_views} cached views", more, False))
    else:
        raise ValueError(f"unknown ablation group {group!r}; choose from {', '.join(GROUPS)}")
    return rows


def build_parser() -> argparse.ArgumentParser:
    """Options of this script."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ablations",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_common_options(parser, default_out=DEFAULT_OUT)
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--variants", nargs="+", default=["none", "se", "cbam"], help="views group")
    parser.add_argument(
        "--size-variants",
        nargs="+",
        default=["se"],
        help="variants of the image-size, epochs, standardize and flow-width groups",
    )
    return parser


def plan(args: argparse.Namespace) -> list[list[Row]]:
    """Rows per (seed, cell type), in priority order (seed-major, groups in the given order)."""
    batches = []
    for seed in args.seeds:
        for cell_type in args.types:
            base = base_spec(args, cell_type, seed)
            rows = [
                row
                for group in args.groups
                for row in group_rows(group, base, args.variants, args.size_variants)
            ]
            batches.append(rows)
    return batches


def table(rows: Sequence[Row], records: dict[str, Record], types: Sequence[str]) -> str:
    """Setting → AUROC per type (mean ± std over seeds), the difference to the default and its
    paired-bootstrap 95 % interval (the same test cells resampled for both)."""
    value: Callable[[Row], float | None] = lambda r: (  # noqa: E731
        auroc_at(records[r.spec.key], r.views) if r.spec.key in records else None
    )
    seen: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    # Records whose stored scores are the row's (all test views): the ones a bootstrap can pair.
    pairable: dict[tuple[str, str], dict[str, dict[int, Record]]] = {}
    defaults: dict[tuple[str, str], tuple[str, str]] = {}
    order: list[tuple[str, str]] = []
    for row in rows:
        key = (row.group, row.setting)
        if key not in seen:
            seen[key], pairable[key] = {}, {}
            order.append(key)
        found = value(row)
        if found is not None:
            seen[key].setdefault(row.spec.cell_type, {})[row.spec.seed] = found
            if row.views in (None, row.spec.test_views):
                record = records[row.spec.key]
                pairable[key].setdefault(row.spec.cell_type, {})[row.spec.seed] = record
        variant = row.setting.split(":")[0]
        if row.default:
            defaults[(row.group, variant)] = key
    lines = []
    for group, setting in order:
        variant = setting.split(":")[0]
        default_key = defaults.get((group, variant), ("", ""))
        is_default = default_key == (group, setting)
        cells = []
        for cell_type in types:
            mine = seen[(group, setting)].get(cell_type, {})
            base = seen.get(default_key, {}).get(cell_type, {})
            shared = sorted(set(mine) & set(base))
            delta = (
                f"{100 * np.mean([mine[s] - base[s] for s in shared]):+.2f}"
                if shared and not is_default
                else "–"
            )
            cells += [mean_std(list(mine.values())), delta]
            own = pairable[(group, setting)].get(cell_type, {})
            ref = pairable.get(default_key, {}).get(cell_type, {})
            both = sorted(set(own) & set(ref))
            paired = None if is_default else paired_delta([(own[s], ref[s]) for s in both])
            cells.append("–" if paired is None else f"[{paired[1]:+.1f}, {paired[2]:+.1f}]")
        lines.append([group, setting + (" (default)" if is_default else ""), *cells])
    headers = ["group", "setting"]
    for cell_type in types:
        headers += [
            f"{cell_type} AUROC %",
            f"{cell_type} Δ vs default",
            f"{cell_type} Δ 95 % CI (paired)",
        ]
    return md_table(headers, lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ablations (reusing stored runs) and write the table."""
    args = build_parser().parse_args(argv)
    deadline = Deadline(args.budget_s)
    store = RunStore(store_path(args))
    cache = shared_cache(args.data_dir)
    limits = subset_limits(args)
    device = select_device(args.device)
    batches = plan(args)
    all_rows = [row for batch in batches for row in batch]
    unique = list({row.spec.key: row.spec for row in all_rows}.values())
    report = Report(
        "ELPV ablations",
        device,
        common_settings(args) | {"groups": " ".join(args.groups), "budget_s": args.budget_s},
    )
    report.notes.append(SHARED_MACHINE_NOTE)
    report.notes.append(
        "AUROC mean ± sample std over seeds; Δ = mean over seeds of (setting − default) in "
        "points, same split and seed; Δ 95 % CI: paired stratified bootstrap over the test "
        "cells (1000 draws, the same cells for both runs, seeds pooled), – where the scores "
        "cannot be paired (the views group stores scores at all views only); an interval that "
        "holds 0 means this data cannot tell the two settings apart; backbone as in the "
        "settings except the position group (AlexNet, random weights: the only backbone with "
        "pools)"
    )
    note = payload_note(args.data_dir)
    if note:
        report.notes.append(f"data: {note}")
    done: dict[str, Record] = {}

    def write(status: str) -> None:
        report.status = status
        body = f"{len(done)} of {len(unique)} runs done.\n\n" + table(all_rows, done, args.types)
        report.add("AUROC by setting", body)
        report.write(args.out)

    status = "complete"
    probe, skipped, failures = load_probe(args), [], []
    for batch in batches:
        specs = list({row.spec.key: row.spec for row in batch}.values())
        specs.sort(key=lambda s: -s.image_size)  # one image size at a time
        splits: dict[int, SplitImages] = {}
        for spec in specs:
            if spec.key in done:
                continue
            if deadline.expired():
                status = (
                    f"CUT SHORT by --budget-s {args.budget_s:g}: {len(done)} of {len(unique)} runs"
                )
                break
            if spec.image_size not in splits:
                images = cache.get(spec.cell_type, spec.image_size)
                splits[spec.image_size] = images.split(spec.seed, limits)
            reason = (
                None
                if store.get(spec)
                else too_long(args, probe, spec, splits[spec.image_size], deadline.left())
            )
            if reason:
                skipped.append(reason)
                status = f"CUT SHORT by --budget-s {args.budget_s:g}: skipped " + "; ".join(skipped)
                log(f"skipping {reason}")
                continue
            try:
                done[spec.key] = run_or_reuse(
                    spec,
                    splits[spec.image_size],
                    store,
                    device=args.device,
                    n_bootstrap=args.bootstrap,
                )
            except EngineError as exc:  # e.g. a feature collapse: report it, go on
                failures.append(f"{spec.cell_type} seed {spec.seed} {spec.label}: {exc}")
                log(f"FAILED {failures[-1]}")
            write("running")
        if deadline.expired():
            log(status)
            break
    if failures:
        status += "; FAILED runs: " + "; ".join(failures)
    write(status)
    log(f"table written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
