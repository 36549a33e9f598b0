"""The ``adn`` sub-commands: each turns parsed options into engine calls and readable output."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.cli.options import config_from_args, resolve_data
from engine.cli.progress import CountBar, TrainBar
from engine.config import BackboneConfig, ModelConfig
from engine.data.elpv import make_elpv_split, write_elpv_mvtec_layout
from engine.data.images import load_image
from engine.data.sources import folder_records, mvtec_categories, mvtec_split
from engine.detector import ScoreBatch, load_detector
from engine.errors import CheckpointError, ImageLoadError
from engine.evaluation import AurocResult, format_auroc_table
from engine.experiments import evaluate, run_experiment, write_scores_csv
from engine.models.components.backbones import weights_status
from engine.presets import preset_config
from engine.training import train
from engine.visualize import heatmap_to_png, overlay_heatmap
from jobspec import Backbone

EXIT_OK = 0
EXIT_PARTIAL = 3  # some images could not be read; the rest were processed


def train_command(args: argparse.Namespace) -> int:
    """``adn train``: train on normal images and write a checkpoint."""
    data = resolve_data(args, need_test=False)
    config = config_from_args(args)
    with TrainBar(f"train {data.category}/{config.model.variant}") as bar:
        result = train(config, [r.path for r in data.train], on_progress=bar)
    path = result.detector.save(args.out, metadata={"category": data.category})
    _report_failures(result.failures)
    threshold = result.detector.default_threshold
    print(
        f"trained on {result.n_train} images ({result.n_calibration} held out for calibration) "
        f"in {result.elapsed_s:.0f} s; final loss {result.epoch_losses[-1]:.4f}"
    )
    print(
        f"default threshold: {threshold:.4g}" if threshold is not None else "no default threshold"
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"model written to {path}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def _expand(paths: list[str]) -> list[str]:
    expanded: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            expanded.extend(str(r.path) for r in folder_records(path))
        else:
            expanded.append(item)
    return expanded


def score_command(args: argparse.Namespace) -> int:
    """``adn score``: one score, percentile and verdict per image."""
    detector = load_detector(args.model, device=args.device)
    images = _expand(args.images)
    with CountBar("score", len(images)) as bar:
        batch = detector.score(images, threshold=args.threshold, views=args.views, on_progress=bar)
    _print_scores(batch, args.format)
    _report_failures(batch.failures)
    return EXIT_PARTIAL if batch.failures else EXIT_OK


def _print_scores(batch: ScoreBatch, fmt: str) -> None:
    rows = [
        {
            "image": r.source,
            "score": round(r.score, 6),
            "percentile": round(r.percentile, 2),
            "threshold": r.threshold,
            "verdict": {True: "anomalous", False: "normal", None: "unknown"}[r.is_anomalous],
        }
        for r in batch.results
    ]
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["image"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            print(
                f"{row['verdict']:>9}  score {row['score']:>10.4f}  "
                f"p{row['percentile']:>6.1f}  {row['image']}"
            )


def _report_failures(failures: Sequence[ImageLoadError]) -> None:
    for failure in failures:
        print(f"skipped {failure}", file=sys.stderr)


def eval_command(args: argparse.Namespace) -> int:
    """``adn eval``: AUROC with a bootstrap interval on labelled test images."""
    detector = load_detector(args.model, device=args.device)
    data = resolve_data(args, need_test=True)
    with CountBar("score", len(data.test)) as bar:
        auroc, batch = evaluate(detector, data.test, n_bootstrap=args.bootstrap, on_progress=bar)
    if args.scores_csv:
        write_scores_csv(Path(args.scores_csv), data.test, batch)
    _report_failures(batch.failures)
    print(
        f"{data.category}: image AUROC {auroc.as_percent()} % "
        f"({auroc.n_normal} normal, {auroc.n_anomalous} anomalous, 95 % bootstrap interval)"
    )
    return EXIT_PARTIAL if batch.failures else EXIT_OK


def explain_command(args: argparse.Namespace) -> int:
    """``adn explain``: the heatmap (and overlay) of one image by ``--method``."""
    detector = load_detector(args.model, device=args.device)
    heatmap = detector.explain(args.image, method=args.method)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(heatmap_to_png(heatmap))
    print(f"heatmap written to {out}")
    if args.overlay:
        overlay_heatmap(load_image(args.image), heatmap, args.alpha).save(args.overlay)
        print(f"overlay written to {args.overlay}")
    return EXIT_OK


def reproduce_command(args: argparse.Namespace) -> int:
    """``adn reproduce``: every category × variant, and a table in the paper's layout."""
    root = Path(args.root)
    categories = args.categories or mvtec_categories(root)
    out_dir = Path(args.out_dir)
    results: dict[str, dict[str, AurocResult]] = {}
    for category in categories:
        split = mvtec_split(root, category)
        for variant in args.variants:
            config = config_from_args(args, variant)
            with TrainBar(f"{category}/{variant}") as bar:
                outcome = run_experiment(
                    config,
                    split.train,
                    split.test,
                    category=category,
                    out_dir=out_dir,
                    keep_model=not args.no_keep_models,
                    on_progress=bar,
                )
            results.setdefault(category, {})[variant] = outcome.auroc
            print(f"{category}/{variant}: AUROC {outcome.auroc.as_percent()} %")
    table = format_auroc_table(results, args.variants)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# Image AUROC (%), 95 % bootstrap interval\n\nroot: {root}; backbone "
        f"{args.backbone}; preset {args.preset}; seed {args.seed}; {stamp}\n\n{table}\n"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "auroc-table.md").write_text(text)
    print(table)
    print(f"table written to {out_dir / 'auroc-table.md'}")
    return EXIT_OK


def demo_command(args: argparse.Namespace) -> int:
    """``adn demo``: a short ELPV run that shows every engine capability."""
    out_dir = Path(args.out_dir)
    split = make_elpv_split(args.cell_type, seed=0)
    split.write(out_dir / f"elpv_{args.cell_type}-split.json")
    model = ModelConfig(variant=args.variant, backbone=BackboneConfig(name=Backbone.MOBILENET_V2))
    base = preset_config("fast", model)
    config = base.replace(train=dataclasses.replace(base.train, epochs=args.epochs))
    print(
        f"ELPV {args.cell_type}: {len(split.train)} normal cells to train, "
        f"{len(split.test)} to test; backbone mobilenet_v2, variant {args.variant}"
    )
    with TrainBar(f"demo {args.variant}") as bar, CountBar("score", len(split.test)) as count:
        outcome = run_experiment(
            config,
            split.train,
            split.test,
            category=f"elpv_{args.cell_type}",
            out_dir=out_dir,
            on_progress=bar,
            on_score_progress=count,
        )
    print(
        f"image AUROC {outcome.auroc.as_percent()} % on {outcome.auroc.n_normal} normal and "
        f"{outcome.auroc.n_anomalous} defective cells (train {outcome.train_seconds:.0f} s, "
        f"score {outcome.score_seconds:.0f} s)"
    )
    if outcome.model_path is None:
        raise CheckpointError("the demo model was not saved, so it cannot be reloaded")
    detector = load_detector(outcome.model_path)
    defects = [r for r in split.test if r.label == 1][:3]
    for record in defects:
        heatmap = detector.explain(record.path)
        target = out_dir / f"heatmap-{record.path.stem}.png"
        overlay_heatmap(load_image(record.path), heatmap, 0.5).save(target)
    print(
        f"model: {outcome.model_path}\nscores: {outcome.scores_csv}\n"
        f"heatmaps: {out_dir}/heatmap-*.png"
    )
    return EXIT_OK


def weights_command(args: argparse.Namespace) -> int:
    """``adn weights``: where each backbone's pretrained weights come from."""
    for name, status in weights_status().items():
        print(f"{name:>18}: {status}")
    return EXIT_OK


def elpv_layout_command(args: argparse.Namespace) -> int:
    """``adn elpv-layout``: ELPV as MVTec-AD-style folders."""
    categories = write_elpv_mvtec_layout(Path(args.root), seed=args.split_seed)
    print(f"wrote {', '.join(categories)} under {args.root}")
    return EXIT_OK
