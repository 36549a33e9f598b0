"""Localisation of the heatmap methods on ELPV cells with planted defects of known position.

For each split seed and attention variant it trains the CLI's default detector (``adn train
--elpv TYPE --variant V``: the ``fast`` preset, MobileNetV2) on the split's normal training cells
(optionally a seeded subset), plants every defect kind (``engine.data.planted_defects``: cracks,
branching cracks, dark spots, broken fingers; random width and contrast) into each held-out
normal test cell, and computes every method's map at the image's resolution through
``Detector.explain``. Per method and kind it reports the pixel AUROC against the masks, the
pointing game (the map's maximum within ``--tolerance`` of the side of the mask) and seconds per
image, then draws examples. ``python -m bench.heatmaps`` writes ``bench/results/heatmaps.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.common import RESULTS_DIR, Deadline, Report, log, md_table, mean_std
from bench.elpv_data import ImageCache, SubsetLimits
from bench.heatmap_figure import Example, plot_examples
from bench.localisation import chance_hit_rate, pixel_auroc, pointing_hit
from bench.reference_map import REFERENCE_NAME, darker_than_surround
from engine import HEATMAP_METHODS, Detector, train
from engine.config import DetectorConfig
from engine.data.planted_defects import DEFECT_KINDS, plant_defect
from engine.presets import detector_config, model_for

Record = dict[str, Any]
CRACKS = ("crack", "branching_crack")
GROUPS: tuple[str, ...] = (*DEFECT_KINDS, "cracks", "all")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-type", default="mono", choices=("mono", "poly"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["none"], choices=("none", "se", "cbam"))
    parser.add_argument(
        "--extra-variants-seeds",
        type=int,
        nargs="*",
        default=[0],
        help="seeds on which variants other than none run (none runs on every seed)",
    )
    parser.add_argument("--methods", nargs="+", default=list(HEATMAP_METHODS))
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="leave out the detector-free reference map (darker than surround)",
    )
    parser.add_argument("--max-train", type=int, default=None, help="seeded subset of training")
    parser.add_argument("--test-normals", type=int, default=24, help="normal cells to plant into")
    parser.add_argument("--tolerance", type=float, default=0.03, help="share of the image side")
    parser.add_argument("--examples", type=int, default=4, help="figure rows (first run)")
    parser.add_argument("--budget-s", type=float, default=None, help="start no run after this")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "heatmaps.md")
    parser.add_argument("--data-dir", type=Path, default=None)
    return parser.parse_args(argv)


def job_config(variant: str, seed: int) -> DetectorConfig:
    """What ``adn train --elpv TYPE --variant V`` trains, seeded, on CPU."""
    config = detector_config("fast", model_for(variant, "mobilenet_v2", download=False))
    return config.replace(
        train=dataclasses.replace(config.train, seed=seed, device="cpu"),
        score=dataclasses.replace(config.score, device="cpu"),
    )


def planted_images(normals_u8: torch.Tensor, seed: int) -> list[tuple[np.ndarray, Any]]:
    """Every defect kind planted once into each normal cell (H×W×3 uint8, PlantedDefect)."""
    rng = np.random.default_rng(50_000 + seed)
    out = []
    for index in range(normals_u8.shape[0]):
        picture = normals_u8[index].permute(1, 2, 0).contiguous().numpy()
        for kind in DEFECT_KINDS:
            out.append((picture, plant_defect(picture, kind, rng)))
    return out


def run_one(
    args: argparse.Namespace, cache: ImageCache, variant: str, seed: int, want_examples: bool
) -> tuple[Record, list[Example]]:
    """Train one detector, map every planted image with every method, measure."""
    torch.manual_seed(seed)
    config = job_config(variant, seed)
    limits = SubsetLimits(train=args.max_train, test_normal=args.test_normals)
    images = cache.get(args.cell_type, config.model.image_size).split(seed, limits)
    started = time.monotonic()
    detector = train(config, [r.path for r in images.split.train]).detector
    train_s = time.monotonic() - started
    log(f"{variant} seed {seed}: trained on {len(images.split.train)} cells in {train_s:.0f} s")
    planted = planted_images(images.test_normal, seed)
    side = planted[0][0].shape[0]
    tolerance = args.tolerance * side
    record: Record = {
        "variant": variant,
        "seed": seed,
        "train_cells": len(images.split.train),
        "planted_images": len(planted),
        "train_s": train_s,
        "chance": _chance(planted, tolerance),
        "methods": {},
    }
    examples = [_example_base(p) for p in _example_choice(planted, args.examples)]
    for method in all_methods(args):
        record["methods"][method] = _measure(detector, planted, method, tolerance, examples)
        log(f"{variant} seed {seed} {method}: {record['methods'][method]['all']}")
    return record, examples if want_examples else []


def _measure(
    detector: Detector,
    planted: list[tuple[np.ndarray, Any]],
    method: str,
    tolerance: float,
    examples: list[Example],
) -> dict[str, dict[str, float]]:
    def heatmap(image: np.ndarray) -> np.ndarray:
        if method == REFERENCE_NAME:
            return darker_than_surround(image)
        return detector.explain(Image.fromarray(image), method=method)

    maps, seconds = [], []
    for _, defect in planted:
        begun = time.perf_counter()
        maps.append(heatmap(defect.image))
        seconds.append(time.perf_counter() - begun)
    for example in examples:
        example.maps[method] = heatmap(example.image)
    results = {}
    for group in GROUPS:
        chosen = [i for i, (_, d) in enumerate(planted) if _in_group(d.kind, group)]
        group_maps = [maps[i] for i in chosen]
        group_masks = [planted[i][1].mask for i in chosen]
        hits = [pointing_hit(m, k, tolerance) for m, k in zip(group_maps, group_masks, strict=True)]
        results[group] = {
            "pixel_auroc": pixel_auroc(group_maps, group_masks),
            "pointing": float(np.mean(hits)),
            "s_per_image": float(np.mean([seconds[i] for i in chosen])),
        }
    return results


def all_methods(args: argparse.Namespace) -> list[str]:
    """The methods measured: the asked ones, then the detector-free reference unless left out."""
    return [*args.methods, REFERENCE_NAME] if args.reference else list(args.methods)


def _in_group(kind: str, group: str) -> bool:
    return group == "all" or kind == group or (group == "cracks" and kind in CRACKS)


def _chance(planted: list[tuple[np.ndarray, Any]], tolerance: float) -> dict[str, float]:
    rates = [chance_hit_rate(d.mask, tolerance) for _, d in planted]
    kinds = [d.kind for _, d in planted]
    return {
        group: float(np.mean([r for r, k in zip(rates, kinds, strict=True) if _in_group(k, group)]))
        for group in GROUPS
    }


def _example_choice(planted: list[tuple[np.ndarray, Any]], count: int) -> list[Any]:
    """``count`` planted defects, each kind in turn, each in a different cell."""
    step = len(DEFECT_KINDS) + 1
    return [defect for _, defect in planted[::step][:count]]


def _example_base(defect: Any) -> Example:
    return Example(image=defect.image, mask=defect.mask, kind=defect.kind, maps={})


def write_report(args: argparse.Namespace, records: list[Record], status: str) -> Path:
    """The Markdown report from every finished run."""
    report = Report(
        title="Heatmap localisation on ELPV cells with planted defects",
        device=torch.device("cpu"),
        settings={
            "cell_type": args.cell_type,
            "seeds": " ".join(map(str, args.seeds)),
            "variants": " ".join(args.variants),
            "detector": "adn train defaults (fast preset, mobilenet_v2, ImageNet weights, 224 px)",
            "train cells": f"<= {args.max_train}" if args.max_train else "full split",
            "normal test cells planted into": f"<= {args.test_normals}",
            "defects": "each kind once per cell, random width and contrast (DefectStyle())",
            "pointing tolerance": f"{args.tolerance:.0%} of the side",
        },
        status=status,
    )
    runs = [f"{r['variant']} seed {r['seed']}" for r in records]
    report.notes.append("finished runs: " + (", ".join(runs) or "none"))
    report.notes.append(
        "maps come from Detector.explain (the un-rotated view's score), resized to the image; "
        "s/image includes decoding and resizing, on 1 torch thread while other jobs shared the "
        "2 cores"
    )
    if args.reference:
        report.notes.append(
            f"'{REFERENCE_NAME}' uses no detector: how much darker each pixel is than a wide blur "
            "of the cell (bench/reference_map.py); planted defects are dark, so a detector's map "
            "has to beat it to show more than a dark-mark finder"
        )
    for variant in args.variants:
        chosen = [r for r in records if r["variant"] == variant]
        if not chosen:
            continue
        report.add(f"Variant {variant}: all kinds and cracks", _summary_table(chosen, args))
        report.add(f"Variant {variant}: per kind", _kind_table(chosen, args))
    report.add("Examples", f"![examples]({args.out.stem}.png)\n\n" + FIGURE_NOTE)
    return report.write(args.out)


FIGURE_NOTE = (
    "First run, one planted cell per kind: the image with the mask outlined (green), then each "
    "method's map over it (mask in white, the map's maximum as ×)."
)


def _summary_table(records: list[Record], args: argparse.Namespace) -> str:
    headers = ["method", "pixel AUROC % (all)", "pointing % (all)", "pixel AUROC % (cracks)"]
    headers += ["pointing % (cracks)", "s/image"]
    rows = []
    for method in all_methods(args):
        values = [r["methods"][method] for r in records if method in r["methods"]]
        rows.append(
            [
                method,
                mean_std([v["all"]["pixel_auroc"] for v in values]),
                mean_std([v["all"]["pointing"] for v in values], digits=1),
                mean_std([v["cracks"]["pixel_auroc"] for v in values]),
                mean_std([v["cracks"]["pointing"] for v in values], digits=1),
                f"{np.mean([v['all']['s_per_image'] for v in values]):.3f}",
            ]
        )
    rows.append(
        [
            "chance (a peak placed at random)",
            "50",
            mean_std([r["chance"]["all"] for r in records], digits=1),
            "50",
            mean_std([r["chance"]["cracks"] for r in records], digits=1),
            "–",
        ]
    )
    text = md_table(headers, rows)
    counts = ", ".join(
        f"seed {r['seed']}: {r['train_cells']} training cells, {r['planted_images']} planted "
        f"images, trained in {r['train_s'] / 60:.1f} min"
        for r in records
    )
    return text + f"\n\nMean ± std over seeds. {counts}."


def _kind_table(records: list[Record], args: argparse.Namespace) -> str:
    headers = ["method", *[f"{k}: AUROC / pointing %" for k in DEFECT_KINDS]]
    rows = []
    for method in all_methods(args):
        values = [r["methods"][method] for r in records if method in r["methods"]]
        row = [method]
        for kind in DEFECT_KINDS:
            auroc = np.mean([v[kind]["pixel_auroc"] for v in values]) * 100
            pointing = np.mean([v[kind]["pointing"] for v in values]) * 100
            row.append(f"{auroc:.1f} / {pointing:.0f}")
        rows.append(row)
    return md_table(headers, rows) + "\n\nMeans over seeds."


def main(argv: Sequence[str] | None = None) -> int:
    """Run every (seed, variant) in turn, rewriting the report after each."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    deadline = Deadline(args.budget_s)
    cache = ImageCache(args.data_dir)
    records: list[Record] = []
    store = args.out.with_name(f"{args.out.stem}-runs.json")
    jobs = [
        (variant, seed)
        for seed in args.seeds
        for variant in args.variants
        if variant == "none" or seed in args.extra_variants_seeds
    ]
    status = "complete"
    for index, (variant, seed) in enumerate(jobs):
        if deadline.expired():
            status = f"CUT SHORT by --budget-s: {len(jobs) - index} runs not started"
            break
        record, examples = run_one(args, cache, variant, seed, want_examples=index == 0)
        records.append(record)
        if examples:
            plot_examples(examples, all_methods(args), args.out.with_suffix(".png"))
        store.write_text(json.dumps(records, indent=1), encoding="utf-8")
        write_report(args, records, "running" if index < len(jobs) - 1 else status)
    write_report(args, records, status)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
