"""Command-line options shared by the ELPV benchmark scripts, and turning them into run specs."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench.baselines import ALL_BASELINES, PatchCoreConfig
from bench.elpv_data import SplitImages, SubsetLimits
from bench.runner import FLOWS, BaselineRequest, RunSpec

DEFAULT_STORE = Path("bench/results/runs.jsonl")


def add_common_options(parser: argparse.ArgumentParser, *, default_out: Path) -> None:
    """Data, schedule, device, output and budget options."""
    data = parser.add_argument_group("data")
    data.add_argument("--types", nargs="+", choices=["mono", "poly"], default=["mono", "poly"])
    data.add_argument(
        "--seeds", nargs="+", type=int, default=[0, 1, 2], help="split and train seeds"
    )
    data.add_argument(
        "--data-dir",
        type=Path,
        help="folder laid out like the elpv-dataset package's data dir (labels.csv + images/); "
        "default: the installed package",
    )
    for part in ("train", "test-normal", "test-defect", "mild"):
        data.add_argument(
            f"--max-{part}",
            type=int,
            help=f"keep a seeded subset of at most this many {part} cells",
        )
    schedule = parser.add_argument_group("schedule")
    schedule.add_argument("--backbone", default="mobilenet_v2", help="backbone of the engine runs")
    schedule.add_argument("--weights", default="imagenet", choices=["imagenet", "random"])
    schedule.add_argument("--epochs", type=int, default=192)
    schedule.add_argument("--image-size", type=int, default=448)
    schedule.add_argument("--cache-views", type=int, default=32, help="cached rotations per image")
    schedule.add_argument("--test-views", type=int, default=64)
    schedule.add_argument(
        "--flow",
        choices=list(FLOWS),
        default="paper",
        help="paper: 8 blocks, subnets 2048 wide; compact: 512 wide; tiny: smoke tests",
    )
    schedule.add_argument("--device", default="auto", help="auto, cuda or cpu")
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, default=default_out, help="Markdown table to write")
    out.add_argument(
        "--store",
        type=Path,
        default=DEFAULT_STORE,
        help="JSON-lines file of finished runs, shared by the quality bench and the ablations "
        "(a run already in it is reused, not trained again)",
    )
    out.add_argument("--budget-s", type=float, help="start no new run after this many seconds")
    out.add_argument(
        "--probe",
        type=Path,
        help="unit costs from `python -m bench.probe`: with --budget-s, skip a run that would "
        "not finish in the time left",
    )
    out.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the CI")


def add_baseline_options(parser: argparse.ArgumentParser, *, default: list[str]) -> None:
    """Which baselines, on which variants' features, and the PatchCore memory bank."""
    group = parser.add_argument_group("baselines")
    group.add_argument("--baselines", nargs="*", choices=list(ALL_BASELINES), default=default)
    group.add_argument("--baseline-variants", nargs="+", default=["none"])
    group.add_argument("--coreset", choices=["greedy", "random"], default="greedy")
    group.add_argument("--coreset-ratio", type=float, default=0.1)
    group.add_argument("--coreset-max", type=int, default=20_000)
    group.add_argument(
        "--baseline-train-views",
        type=int,
        help="views averaged for the training cells' mean features (default: --test-views)",
    )


def subset_limits(args: argparse.Namespace) -> SubsetLimits:
    """The ``--max-*`` options."""
    return SubsetLimits(
        train=args.max_train,
        test_normal=args.max_test_normal,
        test_defect=args.max_test_defect,
        mild=args.max_mild,
    )


def store_path(args: argparse.Namespace) -> Path:
    """The ``--store`` file."""
    return Path(args.store)


def base_spec(args: argparse.Namespace, cell_type: str, seed: int) -> RunSpec:
    """The run spec the options describe (variant ``none``; callers change what they vary)."""
    return RunSpec(
        cell_type=cell_type,
        seed=seed,
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        epochs=args.epochs,
        cache_views=args.cache_views,
        test_views=args.test_views,
        flow=args.flow,
        subset=subset_limits(args).describe(),
    )


def baseline_request(args: argparse.Namespace) -> BaselineRequest:
    """The baselines the options ask for."""
    return BaselineRequest(
        names=tuple(args.baselines),
        variants=tuple(args.baseline_variants),
        patchcore=PatchCoreConfig(
            coreset=args.coreset, ratio=args.coreset_ratio, max_bank=args.coreset_max
        ),
        train_views=args.baseline_train_views,
    )


def common_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings line of a report."""
    return {
        "types": " ".join(args.types),
        "seeds": " ".join(map(str, args.seeds)),
        "epochs": args.epochs,
        "image_size": args.image_size,
        "cache_views": args.cache_views,
        "test_views": args.test_views,
        "flow": args.flow,
        "data": subset_limits(args).describe(),
        "data_dir": args.data_dir or "elpv-dataset package",
    }


def load_probe(args: argparse.Namespace) -> dict | None:
    """The ``--probe`` JSON, if given."""
    return json.loads(Path(args.probe).read_text()) if args.probe else None


def too_long(
    args: argparse.Namespace,
    probe: dict | None,
    spec: RunSpec,
    images: SplitImages,
    left_s: float,
    baselines: bool = False,
) -> str | None:
    """A reason to skip ``spec`` (its estimate exceeds the time left), or None."""
    if probe is None or math.isinf(left_s):
        return None
    from bench.probe import estimate_seconds

    n_test = len(images.test_normal) + len(images.test_defect)
    estimate = estimate_seconds(spec, probe, len(images.train), n_test, len(images.mild), baselines)
    if estimate <= left_s:
        return None
    where = f"{spec.cell_type} seed {spec.seed} {spec.label}"
    return f"{where} (estimated {estimate:.0f} s, {left_s:.0f} s left)"
